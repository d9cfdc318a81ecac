using Microsoft.Extensions.Logging;
using Midge.Config;
using NATS.Client.Core;

namespace Midge.Cluster;

/// <summary>The NATS client's options for a node: <see cref="ClusterConfig"/>'s servers, credentials and TLS.</summary>
internal static class NatsOptions
{
    public static NatsOpts From(ClusterConfig config, ILoggerFactory? loggers) => NatsOpts.Default with
    {
        Url = string.Join(",", config.NatsUrls.Select(u => u.GetLeftPart(UriPartial.Authority))),
        Name = $"midge {config.Name}/{config.NodeName}",
        // A node routes its own clients' messages itself: what it publishes never comes back to it.
        Echo = false,
        AuthOpts = new NatsAuthOpts
        {
            Username = config.Username,
            Password = config.Password,
            Token = config.Token,
            CredsFile = config.CredentialsFile,
        },
        TlsOpts = config.UsesTls
            ? new NatsTlsOpts
            {
                Mode = TlsMode.Require,
                CaFile = config.CaFile,
                CertFile = config.CertFile,
                KeyFile = config.KeyFile,
                InsecureSkipVerify = config.Insecure,
            }
            : NatsTlsOpts.Default,
        // Never give up: while NATS is away the node serves its own clients and says so ($SYS, the log).
        MaxReconnectRetry = -1,
        RetryOnInitialConnect = true,
        ReconnectWaitMin = TimeSpan.FromMilliseconds(200),
        ReconnectWaitMax = TimeSpan.FromSeconds(2),
        LoggerFactory = loggers ?? NatsOpts.Default.LoggerFactory,
    };

    /// <summary>The options of a node's second connection, which subscribes to its shared groups only: it must receive
    /// what the node's first connection publishes (NATS may choose this node for a group), so echo stays on; it never
    /// publishes.</summary>
    public static NatsOpts ForSharedGroups(ClusterConfig config, ILoggerFactory? loggers) =>
        From(config, loggers) with { Name = $"midge {config.Name}/{config.NodeName} groups", Echo = true };
}
