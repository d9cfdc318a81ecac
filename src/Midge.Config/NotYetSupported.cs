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
    public const string Bridges = "bridge cipher lists and TCP socket options";

    private static readonly string[] PluginOptions = ["plugin", "auth_plugin", "auth_plugin_deny_special_chars"];

    /// <summary>Mosquitto 2.1's bridge socket and cipher options; the 2.0 bridge options are parsed.</summary>
    private static readonly string[] BridgeOptions =
    [
        "bridge_ciphers", "bridge_ciphers_tls1.3", "bridge_tcp_keepalive", "bridge_tcp_user_timeout",
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
