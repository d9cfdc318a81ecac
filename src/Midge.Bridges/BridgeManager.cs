using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Midge.Core;

namespace Midge.Bridges;

/// <summary>The broker's bridges (its configuration's <c>connection</c> blocks): started with the broker, stopped
/// before it, and their counters published under <c>$SYS/broker/bridges/&lt;name&gt;/</c> every sys_interval.</summary>
public sealed class BridgeManager : IAsyncDisposable, IBridgeDirectory
{
    private readonly Broker _broker;
    private readonly List<Bridge> _bridges;
    private readonly CancellationTokenSource _stop = new();
    private Task _sys = Task.CompletedTask;

    public BridgeManager(Broker broker, ILoggerFactory? loggers = null)
    {
        _broker = broker;
        var logger = loggers?.CreateLogger("Midge") ?? NullLogger.Instance;
        _bridges = [.. broker.Config.Bridges.Select(c => new Bridge(broker, c, logger))];
        broker.Bridges = this;
    }

    public IReadOnlyList<Bridge> Bridges => _bridges;

    public void Start()
    {
        foreach (var b in _bridges) b.Start();
        if (_bridges.Count > 0 && _broker.Config.SysInterval > 0) _sys = Task.Run(SysLoopAsync);
    }

    private async Task SysLoopAsync()
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(_broker.Config.SysInterval));
        try
        {
            do
            {
                PublishSys();
            }
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false));
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Publishes every bridge's counters (retained, as the broker's own $SYS topics).</summary>
    public void PublishSys()
    {
        foreach (var b in Snapshot())
        {
            string prefix = $"$SYS/broker/bridges/{b.Name}/";
            Publish(prefix + "state", b.Connected ? 1 : 0);
            Publish(prefix + "messages/sent", b.MessagesSent);
            Publish(prefix + "messages/received", b.MessagesReceived);
            Publish(prefix + "messages/dropped", b.MessagesDropped);
            Publish(prefix + "messages/queued", b.MessagesQueued);
            Publish(prefix + "reconnects", b.Reconnects);
        }
    }

    /// <summary>Every bridge's state and counters now (the HTTP API's <c>/api/v5/bridges</c>, <c>$SYS</c>).</summary>
    public IReadOnlyList<BridgeStatus> Snapshot()
    {
        var all = new List<BridgeStatus>(_bridges.Count);
        foreach (var b in _bridges)
        {
            int queued = _broker.Clients.TryGet(b.Config.LocalClientId, out var s) ? s.QueuedCount + s.InflightCount : 0;
            var c = b.Counters;
            all.Add(new BridgeStatus(b.Config.Name, c.Connected, c.MessagesSent, c.MessagesReceived, c.MessagesDropped, queued, c.Reconnects));
        }
        return all;
    }

    private void Publish(string topic, long value) =>
        _broker.PublishFromBroker(topic, Encoding.UTF8.GetBytes(value.ToString(CultureInfo.InvariantCulture)), retain: true);

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        foreach (var b in _bridges) await b.DisposeAsync().ConfigureAwait(false);
        try
        {
            await _sys.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        _stop.Dispose();
    }
}
