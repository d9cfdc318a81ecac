namespace Midge.Config;

/// <summary>
/// The cluster this node joins (docs/cluster.md): the NATS servers it connects to, its names, and how it
/// authenticates to NATS. Null in <see cref="BrokerConfig.Cluster"/> when no <c>cluster_nats_url</c> is given: the
/// node runs alone.
/// </summary>
public sealed record ClusterConfig
{
    /// <summary><c>cluster_nats_url</c>, in file order (at least one): <c>nats://host:port</c> or <c>tls://host:port</c>.</summary>
    public required IReadOnlyList<Uri> NatsUrls { get; init; }

    /// <summary><c>cluster_name</c>: nodes with the same name on the same NATS form one cluster; part of every NATS
    /// subject and JetStream bucket name the cluster uses.</summary>
    public string Name { get; init; } = "midge";

    /// <summary><c>cluster_node_name</c>: this node's name, unique in the cluster (default: the host name).</summary>
    public required string NodeName { get; init; }

    /// <summary><c>cluster_nats_username</c> / <c>cluster_nats_password</c>: NATS user and password; null for none.</summary>
    public string? Username { get; init; }

    public string? Password { get; init; }

    /// <summary><c>cluster_nats_token</c>: a NATS authentication token; null for none.</summary>
    public string? Token { get; init; }

    /// <summary><c>cluster_nats_credentials</c>: a NATS <c>.creds</c> file (user JWT and NKey seed); null for none.</summary>
    public string? CredentialsFile { get; init; }

    /// <summary><c>cluster_nats_cafile</c>: CA certificates the NATS servers' certificates are checked against (PEM);
    /// null: the system's. Setting any TLS option makes the connection TLS.</summary>
    public string? CaFile { get; init; }

    /// <summary><c>cluster_nats_certfile</c> and <c>cluster_nats_keyfile</c>: this node's client certificate (PEM).</summary>
    public string? CertFile { get; init; }

    public string? KeyFile { get; init; }

    /// <summary><c>cluster_nats_insecure</c>: do not check the servers' certificates (testing only).</summary>
    public bool Insecure { get; init; }

    /// <summary>True when the connection to NATS is TLS (a <c>tls://</c> URL or any TLS option).</summary>
    public bool UsesTls => CaFile is not null || CertFile is not null || Insecure
        || NatsUrls.Any(u => u.Scheme == "tls");

    /// <summary><c>cluster_replicas</c>: how many NATS servers keep a copy of the cluster's JetStream buckets
    /// (1 to 5; at most the number of servers of the NATS cluster).</summary>
    public int Replicas { get; init; } = 1;

    /// <summary>Where the first cluster option was read, for errors that concern the whole block.</summary>
    public ConfigSource Source { get; init; }
}
