using Midge.TestKit;

namespace Midge.Integration.Tests;

/// <summary>One broker per test class, with $SYS published every second. Tests use topics of their own.</summary>
public sealed class BrokerFixture : IAsyncLifetime
{
    private MidgeProcess? _broker;

    public MidgeProcess Broker => _broker ?? throw new InvalidOperationException("broker not started");

    public int Port => Broker.Port;

    public async Task InitializeAsync() => _broker = await MidgeProcess.StartAsync("sys_interval 1");

    public async Task DisposeAsync()
    {
        if (_broker is not null) await _broker.DisposeAsync();
    }
}
