namespace Midge.Config;

// The cluster on NATS (docs/cluster.md): `cluster_*` options, global, each given once except `cluster_nats_url`.
public static partial class ConfigParser
{
    private sealed class ClusterBuilder
    {
        public readonly List<Uri> Urls = [];
        public ConfigSource? FirstSource;
        public string? Name, NodeName, Username, Password, Token, CredentialsFile, CaFile, CertFile, KeyFile;
        public ConfigSource? PasswordSource, UsernameSource, TokenSource, CertFileSource, KeyFileSource;
        public bool Insecure;
        public int Replicas = 1;
    }

    private sealed partial class ParseState
    {
        private readonly ClusterBuilder _cluster = new();

        /// <summary>Handles a cluster option; false when <paramref name="line"/> is not one.</summary>
        private bool ApplyCluster(in Line line, string baseDirectory)
        {
            if (!line.Name.StartsWith("cluster_", StringComparison.Ordinal)) return false;
            var c = _cluster;
            switch (line.Name)
            {
                case "cluster_nats_url":
                    c.Urls.Add(ParseNatsUrl(line));
                    break;
                case "cluster_name":
                    c.Name = SetOnce(GlobalScope, line, ClusterToken(line));
                    break;
                case "cluster_node_name":
                    c.NodeName = SetOnce(GlobalScope, line, ClusterToken(line));
                    break;
                case "cluster_nats_username":
                    c.Username = SetOnce(GlobalScope, line, line.Text());
                    c.UsernameSource = line.Source;
                    break;
                case "cluster_nats_password":
                    c.Password = SetOnce(GlobalScope, line, line.Text());
                    c.PasswordSource = line.Source;
                    break;
                case "cluster_nats_token":
                    c.Token = SetOnce(GlobalScope, line, line.Text());
                    c.TokenSource = line.Source;
                    break;
                case "cluster_nats_credentials":
                    c.CredentialsFile = SetOnce(GlobalScope, line, ExistingFile(line, baseDirectory));
                    break;
                case "cluster_nats_cafile":
                    c.CaFile = SetOnce(GlobalScope, line, ExistingFile(line, baseDirectory));
                    break;
                case "cluster_nats_certfile":
                    c.CertFile = SetOnce(GlobalScope, line, ExistingFile(line, baseDirectory));
                    c.CertFileSource = line.Source;
                    break;
                case "cluster_nats_keyfile":
                    c.KeyFile = SetOnce(GlobalScope, line, ExistingFile(line, baseDirectory));
                    c.KeyFileSource = line.Source;
                    break;
                case "cluster_nats_insecure":
                    c.Insecure = line.Bool();
                    break;
                case "cluster_replicas":
                    c.Replicas = (int)line.Integer(1, 5, "must be between 1 and 5 (JetStream's limit)");
                    break;
                default:
                    return false;
            }
            c.FirstSource ??= line.Source;
            return true;
        }

        /// <summary><c>nats://host:port</c> or <c>tls://host:port</c> (port 4222 when left out).</summary>
        private static Uri ParseNatsUrl(in Line line)
        {
            var text = line.Token();
            if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || uri.Scheme is not ("nats" or "tls")
                || uri.Host.Length == 0 || uri.AbsolutePath is not ("" or "/") || uri.Query.Length > 0 || uri.UserInfo.Length > 0)
            {
                Fail(line.Source, $"'cluster_nats_url' must be nats://host:port or tls://host:port, got '{text}'"
                    + " (credentials go in cluster_nats_username, cluster_nats_password or cluster_nats_token)");
            }
            if (uri!.IsDefaultPort || uri.Port < 0) uri = new UriBuilder(uri) { Port = 4222 }.Uri;
            if (uri.Port is 0 or > 65535) Fail(line.Source, $"'cluster_nats_url' port must be between 1 and 65535, got '{text}'");
            return uri;
        }

        /// <summary>A cluster or node name: letters, digits, '-' and '_' (it is part of NATS subjects and JetStream
        /// bucket names).</summary>
        private static string ClusterToken(in Line line)
        {
            var name = line.Token();
            if (name.Length > 64 || !name.All(ch => char.IsAsciiLetterOrDigit(ch) || ch is '-' or '_'))
            {
                Fail(line.Source, $"'{line.Name}' must be 1 to 64 letters, digits, '-' or '_', got '{name}'");
            }
            return name;
        }

        private static string ExistingFile(in Line line, string baseDirectory)
        {
            var path = line.Text();
            var full = Path.IsPathRooted(path) ? path : Path.Combine(baseDirectory, path);
            if (!File.Exists(full)) Fail(line.Source, $"'{line.Name}': file '{path}' does not exist");
            return full;
        }

        private ClusterConfig? BuildCluster()
        {
            var c = _cluster;
            if (c.FirstSource is not { } first) return null;
            if (c.Urls.Count == 0) Fail(first, "cluster options need at least one 'cluster_nats_url'");
            if (c.Password is not null && c.Username is null) Fail(c.PasswordSource!.Value, "'cluster_nats_password' needs 'cluster_nats_username'");
            if (c.Username is not null && c.Password is null) Fail(c.UsernameSource!.Value, "'cluster_nats_username' needs 'cluster_nats_password'");
            if (c.Token is not null && c.Username is not null)
            {
                Fail(c.TokenSource!.Value, "'cluster_nats_token' and 'cluster_nats_username' exclude each other: NATS takes one of them");
            }
            if ((c.CertFile is null) != (c.KeyFile is null))
            {
                Fail(c.CertFileSource ?? c.KeyFileSource!.Value, "'cluster_nats_certfile' and 'cluster_nats_keyfile' go together");
            }
            return new ClusterConfig
            {
                NatsUrls = [.. c.Urls],
                Name = c.Name ?? "midge",
                NodeName = c.NodeName ?? DefaultNodeName(),
                Username = c.Username,
                Password = c.Password,
                Token = c.Token,
                CredentialsFile = c.CredentialsFile,
                CaFile = c.CaFile,
                CertFile = c.CertFile,
                KeyFile = c.KeyFile,
                Insecure = c.Insecure,
                Replicas = c.Replicas,
                Source = first,
            };
        }

        /// <summary>The host name, cut to what a node name may hold.</summary>
        private static string DefaultNodeName()
        {
            var host = System.Net.Dns.GetHostName();
            var name = new string([.. host.Select(ch => char.IsAsciiLetterOrDigit(ch) || ch is '-' or '_' ? ch : '_')]);
            return name.Length == 0 ? "node" : name.Length > 64 ? name[..64] : name;
        }
    }
}
