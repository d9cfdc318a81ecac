using System.Globalization;
using System.Net;
using Midge.Protocol;

namespace Midge.Tools;

/// <summary>The load shapes <c>midge bench</c> knows.</summary>
internal enum BenchScenario
{
    /// <summary>N clients connect (at a rate) and stay idle until the end.</summary>
    Conn,
    /// <summary>N publishers only.</summary>
    Pub,
    /// <summary>N subscribers only (messages come from elsewhere).</summary>
    Sub,
    /// <summary>N publishers, 1 subscriber on a filter matching them all.</summary>
    FanIn,
    /// <summary>1 publisher, N subscribers on its topic.</summary>
    FanOut,
    /// <summary>N pairs, each pair its own topic.</summary>
    P2P,
}

internal sealed class BenchOptionException(string message) : Exception(message);

/// <summary>Options of <c>midge bench</c>, parsed from the command line (emqtt-bench's names where they exist).</summary>
internal sealed class BenchOptions
{
    public BenchScenario Scenario { get; set; }
    public string Host { get; set; } = "127.0.0.1";
    public int Port { get; set; } = 1883;

    /// <summary>--sub-port: the port subscribers connect to (another node of a cluster, docs/cluster.md); 0: --port.</summary>
    public int SubPort { get; set; }
    /// <summary>Clients: connections (conn), publishers (pub, fanin), subscribers (sub, fanout), pairs (p2p).</summary>
    public int Count { get; set; } = 10;
    /// <summary>Milliseconds between two messages of one publisher (0 = not set).</summary>
    public double IntervalMs { get; set; }
    /// <summary>Total messages per second over all publishers; for conn, connections per second (0 = not set).</summary>
    public double Rate { get; set; }
    public int PayloadSize { get; set; } = 64;
    public QoS QoS { get; set; }
    public string? Topic { get; set; }
    public string? SubTopic { get; set; }
    public ProtocolVersion Version { get; set; } = ProtocolVersion.V311;
    public double DurationSeconds { get; set; } = 10;
    public double WarmupSeconds { get; set; } = 1;
    public IPAddress[] SourceAddresses { get; set; } = [];
    public bool Json { get; set; }
    public int BrokerPid { get; set; }
    /// <summary>QoS 1/2 messages a publisher may have unacknowledged.</summary>
    public int Inflight { get; set; } = 64;
    /// <summary>Handshakes in progress at once while connecting.</summary>
    public int ConnectConcurrency { get; set; } = 64;
    public ushort KeepAlive { get; set; } = 300;
    public string ClientIdPrefix { get; set; } = "bench";
    /// <summary>Seconds the broker gets to settle before its memory is read (conn).</summary>
    public double SettleSeconds { get; set; } = 1;
    /// <summary>Flood only: deliveries allowed on the way before publishers pause (0 = no limit).</summary>
    public long MaxOutstanding { get; set; } = 20_000;
    public bool Quiet { get; set; }

    /// <summary>--persistent: every client keeps a session (3.x clean session 0; MQTT 5 Session Expiry 3600 s), so a
    /// broker with persistence stores what is queued and in flight for it.</summary>
    public bool Persistent { get; set; }
    /// <summary>
    /// Latency ends at the kernel's arrival time on the subscriber's socket (SO_TIMESTAMPNS) instead of when the
    /// receive loop reads the message, so the generator's own queueing is left out (Linux).
    /// </summary>
    public bool KernelReceiveTime { get; set; }
    /// <summary>Where to write every measured message slower than <see cref="SlowMicros"/>: its send and arrival
    /// times, to set beside a trace of the machine (null: not written).</summary>
    public string? SlowLog { get; set; }
    public double SlowMicros { get; set; } = 1000;
    /// <summary>--ws: MQTT over WebSocket (ws://host:port/path, subprotocol mqtt), each packet one masked frame.</summary>
    public bool WebSocket { get; set; }
    public string WebSocketPath { get; set; } = "/";
    public bool Help { get; set; }

    public bool HasPublishers => Scenario is BenchScenario.Pub or BenchScenario.FanIn or BenchScenario.FanOut or BenchScenario.P2P;
    public bool HasSubscribers => Scenario is BenchScenario.Sub or BenchScenario.FanIn or BenchScenario.FanOut or BenchScenario.P2P;

    public int Publishers => Scenario switch
    {
        BenchScenario.Pub or BenchScenario.FanIn or BenchScenario.P2P => Count,
        BenchScenario.FanOut => 1,
        _ => 0,
    };

    public int Subscribers => Scenario switch
    {
        BenchScenario.Sub or BenchScenario.FanOut or BenchScenario.P2P => Count,
        BenchScenario.FanIn => 1,
        _ => 0,
    };

    /// <summary>How many subscribers receive each published message (for the expected count).</summary>
    public int FanFactor => Scenario switch
    {
        BenchScenario.FanOut => Count,
        BenchScenario.FanIn or BenchScenario.P2P => 1,
        _ => 0,
    };

    public string PublishTopic => Topic ?? Scenario switch
    {
        BenchScenario.FanIn => "bench/fanin/%i",
        BenchScenario.FanOut => "bench/fanout",
        BenchScenario.P2P => "bench/p2p/%i",
        _ => "bench/%i",
    };

    public string SubscribeFilter => SubTopic ?? Scenario switch
    {
        BenchScenario.FanIn => Topic is null ? "bench/fanin/+" : "#",
        BenchScenario.FanOut => PublishTopic,
        BenchScenario.P2P => PublishTopic,
        _ => Topic ?? "bench/#",
    };

    /// <summary>Messages per second one publisher sends; 0 = as fast as the broker takes them.</summary>
    public double PerPublisherRate =>
        IntervalMs > 0 ? 1000.0 / IntervalMs : Rate > 0 && Publishers > 0 ? Rate / Publishers : 0;

    public static string Template(string template, int index) =>
        template.Replace("%i", index.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal);

    public const string Usage = """
        Usage: midge bench conn|pub|sub|fanin|fanout|p2p [options]

        Scenarios:
          conn     -c clients connect (at --rate per second) and stay idle for --duration
          pub      -c publishers
          sub      -c subscribers (messages come from elsewhere; latency needs the same host clock)
          fanin    -c publishers -> 1 subscriber
          fanout   1 publisher -> -c subscribers
          p2p      -c pairs, each pair on its own topic

        Options:
          -h HOST          broker host (127.0.0.1)
          -p PORT          broker port (1883)
          --ws             MQTT over WebSocket (ws://HOST:PORT/, subprotocol mqtt): each packet goes in one
                           masked binary frame, as browser clients send them
          --ws-path PATH   the WebSocket request's path (/); implies --ws
          -c COUNT         clients, publishers, subscribers or pairs (10)
          -I MS            interval between two messages of one publisher, in milliseconds
          --rate N         total messages per second over all publishers (conn: connections per second);
                           without -I or --rate publishers send as fast as the broker takes them
          -s BYTES         payload size (64; at least 8 carries the send timestamp for latency)
          -q 0|1|2         QoS of publishes and subscriptions (0)
          -t TOPIC         publish topic template, %i = client index
          --sub-topic F    subscription filter template, %i = client index
          --sub-port N     subscribers connect to port N of the host (another node of a cluster)
          -V 3|4|5         protocol: 3 = MQTT 3.1, 4 = 3.1.1, 5 = 5.0 (4)
          --duration S     measured seconds (10)
          --warmup S       seconds before measuring starts (1)
          --inflight N     unacknowledged QoS 1/2 messages per publisher (64)
          --max-outstanding N  flood (no -I/--rate) with subscribers: publishers pause while N deliveries
                           are on the way, so the delivered rate is measured (20000; 0 = off)
          --concurrency N  handshakes in progress at once while connecting (64)
          --ifaddr A,B     local source addresses to spread connections over (127.0.0.x)
          -k SECONDS       keep alive (300)
          --settle S       conn: seconds to wait before reading the broker's memory (1)
          --broker-pid PID read the broker's CPU time and memory from /proc over the measured window
          --rx-time T      when latency ends: user (when the generator reads a message; default) or kernel
                           (its arrival on the subscriber's socket, SO_TIMESTAMPNS; Linux): the
                           generator's own queueing is left out
          --slow-log FILE  write each measured message slower than --slow-us to FILE: its send time, arrival
                           time (CLOCK_MONOTONIC ns, as perf record -k CLOCK_MONOTONIC) and latency
          --slow-us US     the threshold for --slow-log, microseconds (1000)
          --persistent     clients keep their sessions (clean session 0, MQTT 5: expiry 3600 s)
          --json           print the summary as JSON on stdout
          --quiet          no live line per second
          --help           this text
        """;

    public static BenchOptions Parse(string[] args)
    {
        var o = new BenchOptions();
        if (args.Length == 0) throw new BenchOptionException("a scenario is required: conn, pub, sub, fanin, fanout or p2p");
        int i = 0;
        if (args[0] is "--help" or "-?")
        {
            o.Help = true;
            return o;
        }
        o.Scenario = args[0] switch
        {
            "conn" => BenchScenario.Conn,
            "pub" => BenchScenario.Pub,
            "sub" => BenchScenario.Sub,
            "fanin" or "fan-in" => BenchScenario.FanIn,
            "fanout" or "fan-out" => BenchScenario.FanOut,
            "p2p" or "point-to-point" => BenchScenario.P2P,
            _ => throw new BenchOptionException($"unknown scenario '{args[0]}'"),
        };
        i++;
        while (i < args.Length)
        {
            string name = args[i++];
            string Value()
            {
                if (i >= args.Length) throw new BenchOptionException($"option '{name}' needs a value");
                return args[i++];
            }
            int Int(int min, int max)
            {
                string v = Value();
                if (!int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int n) || n < min || n > max)
                    throw new BenchOptionException($"option '{name}' needs a number from {min} to {max}, not '{v}'");
                return n;
            }
            double Real(double min)
            {
                string v = Value();
                if (!double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) || d < min || double.IsNaN(d))
                    throw new BenchOptionException($"option '{name}' needs a number of at least {min}, not '{v}'");
                return d;
            }
            switch (name)
            {
                case "-h" or "--host": o.Host = Value(); break;
                case "-p" or "--port": o.Port = Int(1, 65535); break;
                case "--ws": o.WebSocket = true; break;
                case "--ws-path":
                    o.WebSocketPath = Value();
                    if (!o.WebSocketPath.StartsWith('/')) throw new BenchOptionException($"option '--ws-path' needs a path starting with '/', not '{o.WebSocketPath}'");
                    o.WebSocket = true;
                    break;
                case "-c" or "--count": o.Count = Int(1, 10_000_000); break;
                case "-I" or "--interval": o.IntervalMs = Real(0.001); break;
                case "--rate": o.Rate = Real(0.001); break;
                case "-s" or "--size": o.PayloadSize = Int(0, 256 * 1024 * 1024); break;
                case "-q" or "--qos": o.QoS = (QoS)Int(0, 2); break;
                case "-t" or "--topic": o.Topic = Value(); break;
                case "--sub-topic": o.SubTopic = Value(); break;
                case "--sub-port": o.SubPort = Int(1, 65535); break;
                case "-V" or "--protocol":
                    o.Version = Value() switch
                    {
                        "3" or "31" or "mqttv31" => ProtocolVersion.V310,
                        "4" or "311" or "mqttv311" => ProtocolVersion.V311,
                        "5" or "mqttv5" => ProtocolVersion.V500,
                        var v => throw new BenchOptionException($"option '-V' needs 3, 4 or 5, not '{v}'"),
                    };
                    break;
                case "--duration": o.DurationSeconds = Real(0); break;
                case "--warmup": o.WarmupSeconds = Real(0); break;
                case "--inflight": o.Inflight = Int(1, 65535); break;
                case "--concurrency": o.ConnectConcurrency = Int(1, 100_000); break;
                case "-k" or "--keepalive": o.KeepAlive = (ushort)Int(0, 65535); break;
                case "--settle": o.SettleSeconds = Real(0); break;
                case "--prefix": o.ClientIdPrefix = Value(); break;
                case "--max-outstanding": o.MaxOutstanding = Int(0, int.MaxValue); break;
                case "--ifaddr":
                    o.SourceAddresses = [.. Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                        .Select(a => IPAddress.TryParse(a, out var ip) ? ip : throw new BenchOptionException($"'{a}' is not an IP address"))];
                    break;
                case "--broker-pid": o.BrokerPid = Int(1, int.MaxValue); break;
                case "--rx-time":
                    o.KernelReceiveTime = Value() switch
                    {
                        "user" => false,
                        "kernel" when OperatingSystem.IsLinux() => true,
                        "kernel" => throw new BenchOptionException("'--rx-time kernel' needs Linux"),
                        var v => throw new BenchOptionException($"option '--rx-time' needs user or kernel, not '{v}'"),
                    };
                    break;
                case "--slow-log": o.SlowLog = Value(); break;
                case "--slow-us": o.SlowMicros = Real(0); break;
                case "--json": o.Json = true; break;
                case "--quiet": o.Quiet = true; break;
                case "--persistent": o.Persistent = true; break;
                case "--help": o.Help = true; break;
                default: throw new BenchOptionException($"unknown option '{name}'");
            }
        }
        if (o.IntervalMs > 0 && o.Rate > 0) throw new BenchOptionException("use either -I or --rate, not both");
        if (o.Scenario == BenchScenario.Conn && o.IntervalMs > 0) o.Rate = 1000.0 / o.IntervalMs;
        return o;
    }
}
