using System.Globalization;

namespace Midge.Config;

/// <summary>A command-line error (unknown flag, missing or bad value).</summary>
public sealed class CommandLineException(string message) : Exception(message);

/// <summary>
/// The broker's command line, as Mosquitto 2.0's <c>mosquitto</c> takes it (plus <c>--test-config</c> and
/// <c>--version</c>).
/// </summary>
/// <remarks>
/// <c>-p</c> follows what Mosquitto 2.0 does, not what its man page says: the ports given replace 1883 in
/// local-only mode (no config file, or a file that defines no listener), bound to 127.0.0.1 and ::1 only; when
/// the file defines listeners, <c>-p</c> is ignored (Midge records a notice saying so).
/// </remarks>
public sealed record BrokerArguments
{
    /// <summary>Mosquitto's limit on <c>-p</c> occurrences.</summary>
    public const int MaxPorts = 10;

    public string? ConfigFile { get; init; }
    public IReadOnlyList<int> Ports { get; init; } = [];
    public bool Daemon { get; init; }
    public bool Verbose { get; init; }
    public bool TestConfig { get; init; }
    public bool Help { get; init; }
    public bool Version { get; init; }

    public const string Usage =
        """
        Usage: midge [-c config_file] [-d] [-h] [-p port] [-v] [--test-config] [--version]

         -c, --config-file FILE  read the broker configuration (mosquitto.conf format) from FILE.
         -d, --daemon            run in the background (same as Mosquitto's -d).
         -h, --help              show this help and exit.
         -p, --port PORT         with no listener configured, listen on PORT instead of 1883, on
                                 127.0.0.1 and ::1 only. May be repeated (at most 10). Ignored when the
                                 configuration file defines listeners, as in Mosquitto 2.0.
         -v, --verbose           log everything (log_type all), overriding the configuration file.
             --test-config       read and check the configuration, then exit.
             --version           print the version and exit.

        Tools (each has --help):
          midge pub     publish messages (mosquitto_pub's options)
          midge sub     subscribe and print messages (mosquitto_sub's options)
          midge passwd  manage a password file (mosquitto_passwd's options)
          midge bench   load generator: conn, pub, sub, fanin, fanout, p2p

        See docs/configuration.md for every configuration option.
        """;

    /// <summary>Parses the arguments (without the program name). Throws <see cref="CommandLineException"/>.</summary>
    public static BrokerArguments Parse(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var result = new BrokerArguments();
        var ports = new List<int>();
        for (var i = 0; i < args.Count; i++)
        {
            var a = args[i];
            switch (a)
            {
                case "-c":
                case "--config-file":
                    if (result.ConfigFile is not null)
                    {
                        throw new CommandLineException($"{a} given more than once");
                    }
                    result = result with { ConfigFile = Value(args, ref i, "a configuration file") };
                    break;
                case "-d":
                case "--daemon":
                    result = result with { Daemon = true };
                    break;
                case "-h":
                case "--help":
                    result = result with { Help = true };
                    break;
                case "-p":
                case "--port":
                {
                    var v = Value(args, ref i, "a port");
                    if (!int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var port)
                        || port is < 1 or > 65535)
                    {
                        throw new CommandLineException($"{a}: port must be between 1 and 65535, got '{v}'");
                    }
                    if (ports.Count == MaxPorts)
                    {
                        throw new CommandLineException($"at most {MaxPorts} ports can be given with -p");
                    }
                    ports.Add(port);
                    break;
                }
                case "-v":
                case "--verbose":
                    result = result with { Verbose = true };
                    break;
                case "--test-config":
                    result = result with { TestConfig = true };
                    break;
                case "--version":
                    result = result with { Version = true };
                    break;
                case "--tls-keylog":
                    throw new CommandLineException(
                        $"option '--tls-keylog' is not supported yet ({NotYetSupported.TlsKeyLog})");
                default:
                    throw new CommandLineException($"unknown option '{a}' (see --help)");
            }
        }
        return result with { Ports = ports };
    }

    private static string Value(IReadOnlyList<string> args, ref int i, string what)
    {
        if (i + 1 >= args.Count)
        {
            throw new CommandLineException($"{args[i]} needs {what}");
        }
        i++;
        return args[i];
    }

    /// <summary>
    /// The configuration the broker runs with: the file (if any) parsed, then <c>-p</c> and <c>-v</c> applied.
    /// Throws <see cref="ConfigException"/> for configuration errors.
    /// </summary>
    public BrokerConfig ToBrokerConfig()
    {
        var config = ConfigFile is null ? new BrokerConfig() : ConfigParser.ParseFile(ConfigFile);
        if (Ports.Count > 0)
        {
            if (config.LocalOnlyMode)
            {
                config = config with { LocalOnlyPorts = [.. Ports] };
            }
            else
            {
                config = config with
                {
                    Notices =
                    [
                        .. config.Notices,
                        new ConfigNotice(new ConfigSource("command line", 0),
                            "-p is ignored because the configuration file defines listeners (as in Mosquitto 2.0)"),
                    ],
                };
            }
        }
        if (Verbose)
        {
            config = config with { LogTypes = LogTypes.All };
        }
        return config;
    }
}
