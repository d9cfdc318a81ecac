using Midge.TestKit;

namespace Midge.Integration.Tests;

/// <summary>
/// One broker with Midge's MQTT 5 options turned on (Response Information, payload validation, exclusive
/// subscriptions, max_keepalive 10) and a second listener that redirects every client elsewhere.
/// </summary>
public sealed class Mqtt5BrokerFixture : IAsyncLifetime
{
    public const string ServerReference = "elsewhere.example:1883";

    private BrokerUnderTest? _broker;

    public BrokerUnderTest Broker => _broker ?? throw new InvalidOperationException("broker not started");

    public int Port => Broker.Port;

    /// <summary>The listener with server_reference.</summary>
    public int RedirectPort { get; private set; }

    public async Task InitializeAsync()
    {
        RedirectPort = FreePort.Next();
        _broker = await BrokerUnderTest.StartAsync(
            ["response_information reply/%c", "validate_payload_format true", "exclusive_subscriptions true", "max_keepalive 10"],
            firstNodeOnly: [$"listener {RedirectPort} 127.0.0.1", $"server_reference {ServerReference}"]);
    }

    public async Task DisposeAsync()
    {
        if (_broker is not null) await _broker.DisposeAsync();
    }
}
