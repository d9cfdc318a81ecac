using Microsoft.Extensions.Hosting;
using Midge.Core;
using Midge.Core.Sys;

namespace Midge.Hosting;

/// <summary>Ticks the broker once a second (keep-alive, expiry, delayed wills), publishes <c>$SYS</c>, gives memory back
/// after a flood (<see cref="MemoryTrim"/>), and closes every client when the application stops.</summary>
internal sealed class BrokerHeartbeat(Broker broker, string version, IHostApplicationLifetime lifetime) : BackgroundService
{
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
