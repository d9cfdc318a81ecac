using System.Collections.Frozen;
using System.Diagnostics.CodeAnalysis;

namespace Midge.Config;

/// <summary>
/// The one table of mosquitto.conf options that Midge recognises but cannot honour yet, each with the
/// capability it waits for. The parser fails on them (never ignores them silently); enabling a capability means
/// deleting its rows here and handling the options in <see cref="ConfigParser"/>. Options that .NET can never
/// honour (TLS-PSK, OpenSSL engines) are in <see cref="ConfigParser.UnsupportedTlsOptions"/> instead.
/// </summary>
public static class NotYetSupported
{
    public const string TlsKeyLog = "TLS key logging";
    public const string Plugins = "authentication plugins";
    public const string Bridges = "bridges";

    private static readonly string[] PluginOptions = ["plugin", "auth_plugin", "auth_plugin_deny_special_chars"];

    private static readonly string[] BridgeOptions =
    [
        "connection", "address", "addresses", "topic",
        "bridge_alpn", "bridge_attempt_unsubscribe", "bridge_bind_address", "bridge_cafile", "bridge_capath",
        "bridge_certfile", "bridge_ciphers", "bridge_ciphers_tls1.3", "bridge_identity", "bridge_insecure",
        "bridge_keyfile", "bridge_max_packet_size", "bridge_max_topic_alias", "bridge_outgoing_retain",
        "bridge_protocol_version", "bridge_psk", "bridge_receive_maximum", "bridge_require_ocsp",
        "bridge_session_expiry_interval", "bridge_tcp_keepalive", "bridge_tcp_user_timeout", "bridge_tls_version",
        "cleansession", "local_cleansession", "clientid", "remote_clientid", "local_clientid",
        "username", "remote_username", "password", "remote_password", "local_username", "local_password",
        "idle_timeout", "keepalive_interval", "notifications", "notifications_local_only", "notification_topic",
        "restart_timeout", "round_robin", "start_type", "threshold", "try_private",
    ];

    /// <summary>Option name → the capability it needs.</summary>
    public static FrozenDictionary<string, string> Options { get; } = Build();

    /// <summary>Option name prefixes (plugin options are free-form after the prefix).</summary>
    public static IReadOnlyList<KeyValuePair<string, string>> Prefixes { get; } =
    [
        new("auth_opt_", Plugins),
        new("plugin_opt_", Plugins),
    ];

    public static bool TryGet(string option, [NotNullWhen(true)] out string? capability)
    {
        if (Options.TryGetValue(option, out capability))
        {
            return true;
        }
        foreach (var (prefix, cap) in Prefixes)
        {
            if (option.StartsWith(prefix, StringComparison.Ordinal))
            {
                capability = cap;
                return true;
            }
        }
        capability = null;
        return false;
    }

    private static FrozenDictionary<string, string> Build()
    {
        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        void Add(string[] names, string cap)
        {
            foreach (var n in names)
            {
                d.Add(n, cap);
            }
        }
        Add(PluginOptions, Plugins);
        Add(BridgeOptions, Bridges);
        return d.ToFrozenDictionary(StringComparer.Ordinal);
    }
}
