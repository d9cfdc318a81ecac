using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Midge.Bridges;
using Midge.Core;

namespace Midge.Hosting;

/// <summary>Starts the configuration's bridges with the host and stops them before the broker (docs/bridges.md).</summary>
internal sealed class BridgeService(Broker broker, ILoggerFactory? loggers) : IHostedService
{
    private readonly BridgeManager _bridges = new(broker, loggers);

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _bridges.Start();
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken) => await _bridges.DisposeAsync();
}
