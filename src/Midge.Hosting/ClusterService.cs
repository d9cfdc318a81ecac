using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Midge.Cluster;
using Midge.Config;
using Midge.Core;

namespace Midge.Hosting;

/// <summary>Joins the cluster of the configuration's <c>cluster_nats_url</c> with the host and leaves it before the
/// broker stops (docs/cluster.md).</summary>
internal sealed partial class ClusterService(Broker broker, ClusterConfig config, ILoggerFactory? loggers) : IHostedService
{
    /// <summary>How long the start waits for NATS before the listeners open anyway (the node keeps trying).</summary>
    private static readonly TimeSpan JoinWait = TimeSpan.FromSeconds(5);

    private ClusterNode? _node;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        _node = ClusterNode.Start(broker, config, loggers);
        try
        {
            await _node.Joined.WaitAsync(JoinWait, cancellationToken);
        }
        catch (TimeoutException)
        {
            if (loggers is not null)
            {
                Log.NotJoined(loggers.CreateLogger("Midge.Cluster"), string.Join(", ", config.NatsUrls), JoinWait.TotalSeconds);
            }
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_node is { } node) await node.DisposeAsync();
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1420, Level = LogLevel.Warning,
            Message = "Cluster: NATS ({Urls}) not reachable within {Seconds} s; serving this node's clients alone and still trying")]
        public static partial void NotJoined(ILogger logger, string urls, double seconds);
    }
}
