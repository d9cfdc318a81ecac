using Microsoft.Extensions.Hosting;
using Midge.Core;
using Midge.Core.Sys;

namespace Midge.Hosting;

/// <summary>Ticks the broker once a second (keep-alive, expiry, delayed wills), publishes <c>$SYS</c>, gives memory back
/// after a flood (<see cref="MemoryTrim"/>), closes every client when the application stops, and then closes the
/// broker's session store.</summary>
internal sealed class BrokerHeartbeat(Broker broker, string version, IHostApplicationLifetime lifetime) : BackgroundService
{
    /// <summary>How long the stop waits for the clients' connections to end before it closes the store anyway.</summary>
    private static readonly TimeSpan ConnectionsGone = TimeSpan.FromSeconds(5);

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        if (broker.SessionStore is null) return;
        // Every connection records its end (its will, its session's state) before the store is closed.
        broker.Shutdown();
        var deadline = DateTime.UtcNow + ConnectionsGone;
        while (broker.ConnectedCount > 0 && DateTime.UtcNow < deadline) await Task.Delay(10, CancellationToken.None);
        broker.SaveTotals();
        (broker.SessionStore as IDisposable)?.Dispose(); // writes what is pending
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var stopping = lifetime.ApplicationStopping.Register(broker.Shutdown);
        var sys = new SysTopics(broker, version);
        var trim = new MemoryTrim(broker);
        long nextSys = 0;
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        try
        {
            do
            {
                broker.Tick();
                int interval = broker.Config.SysInterval;
                if (interval > 0 && broker.NowMs >= nextSys)
                {
                    sys.Publish();
                    nextSys = broker.NowMs + interval * 1000L;
                }
                trim.Tick();
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException)
        {
        }
    }
}
