using Midge.TestKit;

namespace Midge.Integration.Tests;

/// <summary>One broker per test class, with $SYS published every second (a cluster behind a balancer when
/// MIDGE_TEST_CLUSTER_NODES is set: <see cref="BrokerUnderTest"/>). Tests use topics of their own.</summary>
public sealed class BrokerFixture : IAsyncLifetime
{
    private BrokerUnderTest? _broker;

    public BrokerUnderTest Broker => _broker ?? throw new InvalidOperationException("broker not started");

    public int Port => Broker.Port;

    public async Task InitializeAsync() => _broker = await BrokerUnderTest.StartAsync(["sys_interval 1"]);

    public async Task DisposeAsync()
    {
        if (_broker is not null) await _broker.DisposeAsync();
    }
}
