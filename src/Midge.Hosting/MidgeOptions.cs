using Midge.Config;
using Midge.Core;
using Midge.Core.Hooks;

namespace Midge.Hosting;

/// <summary>
/// How an embedded broker is set up: its configuration (the same <c>mosquitto.conf</c> grammar as the <c>midge</c>
/// executable, read from text or a file, or built as a <see cref="BrokerConfig"/>), and the hooks to attach before the
/// first client can connect.
/// </summary>
public sealed class MidgeOptions
{
    /// <summary>The configuration. Default: one listener on 127.0.0.1:1883 that lets anonymous clients in.</summary>
    public BrokerConfig Config { get; set; } = ConfigParser.Parse("listener 1883 127.0.0.1\nallow_anonymous true\n", "<embedded defaults>");

    /// <summary>The version the broker reports in <c>$SYS/broker/version</c>.</summary>
    public string Version { get; set; } = typeof(MidgeOptions).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";

    /// <summary>Called with the broker's hook registry once the broker exists and before any listener is open.</summary>
    public Action<BrokerHooks>? ConfigureHooks { get; set; }

    /// <summary>Called with the broker once it exists and before any listener is open (for what needs more than hooks).</summary>
    public Action<Broker>? ConfigureBroker { get; set; }

    /// <summary>What the HTTP API's <c>POST /api/v5/configs/reload</c> calls: re-read and apply the configuration, and
    /// return null, or why it could not. Null (the default): the API answers 501. The <c>midge</c> executable sets
    /// it to what SIGHUP does.</summary>
    public Func<string?>? Reload { get; set; }

    /// <summary>Reads the configuration from <c>mosquitto.conf</c> text; errors name the line
    /// (<see cref="ConfigException"/>).</summary>
    public MidgeOptions UseConfig(string text)
    {
        Config = ConfigParser.Parse(text, "<embedded>", Directory.GetCurrentDirectory());
        return this;
    }

    /// <summary>Reads the configuration from a <c>mosquitto.conf</c> file; errors name the file and line.</summary>
    public MidgeOptions UseConfigFile(string path)
    {
        Config = ConfigParser.ParseFile(path);
        return this;
    }
}
