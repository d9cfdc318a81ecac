using System.Globalization;
using System.Net.Security;
using System.Security.Authentication;
using System.Text;
using Midge.Client;
using Midge.Config;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Tools;

/// <summary>
/// A command line error: printed as "Error: ..." followed by the usage hint (or, with <paramref name="usage"/>, the
/// usage text on stdout, as mosquitto_pub does for a missing topic or message), exit code 1. Some of mosquitto's
/// messages end in a blank line of their own: <paramref name="blankLines"/> says how many.
/// </summary>
internal sealed class ClientArgumentException(string message, bool usage = false, int blankLines = 0) : Exception(message)
{
    public bool ShowUsage { get; } = usage;
    public int BlankLines { get; } = blankLines;
}

/// <summary>Options that parse but cannot be applied (mosquitto's client_opts_set errors): "Error: ...", exit 1, no hint.</summary>
internal sealed class ClientSetupException(string message) : Exception(message);

/// <summary>The options mosquitto_pub and mosquitto_sub share, parsed the same way.</summary>
internal sealed class ClientArguments
{
    public required string Tool { get; init; }
    public string Host = "localhost";
    public int? Port;
    public string? ClientId;
    public string? ClientIdPrefix;
    public string? UserName;
    public string? Password;
    public int KeepAlive = 60;
    public ProtocolVersion Version = ProtocolVersion.V311;
    public bool Debug;
    public bool Quiet;
    public bool NoClean;
    public long? SessionExpiry;
    public QoS QoS;
    public bool Retain;
    public List<string> Topics = [];
    public string? WillTopic;
    public string? WillPayload;
    public QoS WillQoS;
    public bool WillRetain;
    public string? BindAddress;
    public bool NoDelay;
    public string? CaFile;
    public string? CaPath;
    public string? CertFile;
    public string? KeyFile;
    public bool Insecure;
    public string? TlsVersion;
    public string? Ciphers;
    public Socks5Proxy? Proxy;
    public string? UnixPath;
    public readonly Dictionary<string, MqttProperties> Properties = [];

    // pub
    public string? Message;
    public string? MessageFile;
    public bool LineMode;
    public bool StdinMode;
    public bool NullMessage;
    public int Repeat = 1;
    public double RepeatDelay;
    public int MaxInflight = 20;

    // sub
    public bool Verbose;
    public int? Count;
    public int? Timeout;
    public bool NoRetained;
    public bool NoEol;
    public bool ExitAfterSubscribe;
    public string? Format;
    public List<string> FilterOut = [];
    public List<string> Unsubscribe = [];
    public bool RetainedOnly;
    public bool RemoveRetained;
    public bool Pretty;
    public bool Help;

    private int _messageModes;

    public MqttProperties? PropertiesFor(string command) => Properties.GetValueOrDefault(command);

    /// <summary>
    /// Parses the arguments of <c>midge pub</c> or <c>midge sub</c> the way mosquitto_pub/mosquitto_sub answer
    /// them: an error prints the message and a hint and exits 1, <c>--help</c> prints the usage and exits 1.
    /// Returns null with the exit code in <paramref name="exitCode"/> when the tool should stop there.
    /// </summary>
    public static ClientArguments? ParseOrExit(string tool, string[] args, string usage, out int exitCode)
    {
        exitCode = 1;
        ClientArguments a;
        try
        {
            a = Parse(tool, args);
        }
        catch (ClientArgumentException ex)
        {
            Console.Error.WriteLine($"Error: {ex.Message}");
            if (ex.ShowUsage)
            {
                Console.WriteLine(usage);
                return null;
            }
            for (int i = 0; i < ex.BlankLines; i++) Console.Error.WriteLine();
            Console.Error.WriteLine();
            Console.Error.WriteLine($"Use 'midge {tool} --help' to see usage.");
            return null;
        }
        if (a.Help)
        {
            Console.WriteLine(usage);
            return null;
        }
        exitCode = 0;
        return a;
    }

    public static ClientArguments Parse(string tool, string[] args)
    {
        bool pub = tool == "pub";
        var a = new ClientArguments { Tool = tool };
        for (int i = 0; i < args.Length; i++)
        {
            string arg = args[i];
            string Next()
            {
                if (i + 1 >= args.Length) throw MissingValue(arg);
                return args[++i];
            }
            switch (arg)
            {
                case "--help": a.Help = true; return a;
                case "-h" or "--host": a.Host = Next(); break;
                case "-p" or "--port": a.Port = ParseInt(Next(), 1, 65535, "Invalid port given: "); break;
                case "-t" or "--topic":
                    string topic = Next();
                    if (pub)
                    {
                        if (a.Topics.Count > 0) throw new ClientArgumentException("Only one topic may be specified.");
                        if (!Midge.Protocol.Topics.IsValidTopicName(topic)) throw new ClientArgumentException($"Invalid publish topic '{topic}', does it contain '+' or '#'?");
                    }
                    else if (!Midge.Protocol.Topics.IsValidSubscriptionFilter(topic))
                    {
                        throw new ClientArgumentException($"Invalid subscription topic '{topic}', are all '+' and '#' wildcards correct?");
                    }
                    a.Topics.Add(topic);
                    break;
                case "-i" or "--id": a.ClientId = Next(); break;
                case "-I" or "--id-prefix": a.ClientIdPrefix = Next(); break;
                case "-u" or "--username": a.UserName = Next(); break;
                case "-P" or "--pw": a.Password = Next(); break;
                case "-k" or "--keepalive": a.KeepAlive = ParseInt(Next(), 0, 65535, "Invalid keepalive given, it must be between 5 and 65535 inclusive."); break;
                case "-V" or "--protocol-version": a.Version = ParseVersion(Next()); break;
                case "-d" or "--debug": a.Debug = true; break;
                case "--quiet": a.Quiet = true; break;
                case "-c" or "--disable-clean-session": a.NoClean = true; break;
                case "-x": a.SessionExpiry = ParseExpiry(Next()); break;
                case "-q" or "--qos":
                    string q = Next();
                    if (q is not ("0" or "1" or "2")) throw new ClientArgumentException($"Invalid QoS given: {q}");
                    a.QoS = (QoS)(q[0] - '0');
                    break;
                case "-A": a.BindAddress = Next(); break;
                case "--nodelay": a.NoDelay = true; break;
                case "--will-topic": a.WillTopic = Next(); break;
                case "--will-payload": a.WillPayload = Next(); break;
                case "--will-qos":
                    string wq = Next();
                    if (wq is not ("0" or "1" or "2")) throw new ClientArgumentException($"Invalid will QoS {wq}.");
                    a.WillQoS = (QoS)(wq[0] - '0');
                    break;
                case "--will-retain": a.WillRetain = true; break;
                case "--cafile": a.CaFile = Next(); break;
                case "--capath": a.CaPath = Next(); break;
                case "--cert": a.CertFile = Next(); break;
                case "--key": a.KeyFile = Next(); break;
                case "--insecure": a.Insecure = true; break;
                case "--tls-version": a.TlsVersion = Next(); break;
                case "--ciphers": a.Ciphers = Next(); break;
                case "--proxy": a.Proxy = ParseProxy(Next()); break;
                case "--unix": a.UnixPath = Next(); break;
                case "--tls-alpn" or "--keyform": Next(); break;
                case "-D" or "--property": a.ParseProperty(args, ref i); break;
                case "-L" or "--url": a.ParseUrl(Next()); break;
                // pub
                case "-m" or "--message" when pub: a.Message = Next(); a._messageModes++; break;
                case "-f" or "--file" when pub: a.MessageFile = Next(); a._messageModes++; break;
                case "-l" or "--stdin-line" when pub: a.LineMode = true; a._messageModes++; break;
                case "-s" or "--stdin-file" when pub: a.StdinMode = true; a._messageModes++; break;
                case "-n" or "--null-message" when pub: a.NullMessage = true; a._messageModes++; break;
                case "-r" or "--retain" when pub: a.Retain = true; break;
                case "-M" when pub: a.MaxInflight = ParseInt(Next(), 1, 65535, "Maximum inflight messages must be >= 1."); break;
                case "--repeat" when pub:
                    if (!int.TryParse(Next(), NumberStyles.Integer, CultureInfo.InvariantCulture, out a.Repeat) || a.Repeat < 1)
                        throw new ClientArgumentException("--repeat argument must be >0.", blankLines: 1);
                    break;
                case "--repeat-delay" when pub:
                    if (!double.TryParse(Next(), NumberStyles.Float, CultureInfo.InvariantCulture, out a.RepeatDelay) || a.RepeatDelay < 0)
                        throw new ClientArgumentException("--repeat-delay argument must be >=0.0.");
                    break;
                // sub
                case "-v" or "--verbose" when !pub: a.Verbose = true; break;
                case "-C" when !pub: a.Count = ParseInt(Next(), 1, int.MaxValue, "Invalid message count \""); break;
                case "-W" when !pub: a.Timeout = ParseInt(Next(), 1, 3600, "Invalid timeout \""); break;
                case "-R" when !pub: a.NoRetained = true; break;
                case "-N" when !pub: a.NoEol = true; break;
                case "-E" when !pub: a.ExitAfterSubscribe = true; break;
                case "-F" when !pub: a.Format = Next(); break;
                case "-T" or "--filter-out" when !pub: a.FilterOut.Add(Next()); break;
                case "-U" or "--unsubscribe" when !pub: a.Unsubscribe.Add(Next()); break;
                case "--retained-only" when !pub: a.RetainedOnly = true; break;
                case "--remove-retained" when !pub: a.RemoveRetained = true; break;
                case "--pretty" when !pub: a.Pretty = true; break;
                default: throw new ClientArgumentException($"Unknown option '{arg}'.");
            }
        }
        a.Validate(pub);
        return a;
    }

    private void Validate(bool pub)
    {
        if (pub)
        {
            if (_messageModes > 1) throw new ClientArgumentException("Only one type of message can be sent at once.", blankLines: 1);
            if (Topics.Count == 0 || _messageModes == 0) throw new ClientArgumentException("Both topic and message must be supplied.", usage: true);
        }
        else if (Topics.Count == 0)
        {
            // Unsubscribing alone (-U without -t) is refused too, as by mosquitto_sub.
            throw new ClientArgumentException("You must specify a topic to subscribe to.");
        }
        if (WillPayload is not null && WillTopic is null) throw new ClientArgumentException("Will payload given, but no will topic given.");
        if (WillRetain && WillTopic is null) throw new ClientArgumentException("Will retain given, but no will topic given.");
        if (Password is not null && UserName is null && !Quiet) Console.Error.WriteLine("Warning: Not using password since username not set.");
        if (Properties.Count > 0 && Version != ProtocolVersion.V500) throw new ClientArgumentException("You must use MQTT v5 to use properties.");
        if (ClientId is not null && ClientIdPrefix is not null) throw new ClientArgumentException("-i and -I argument cannot be used together.", blankLines: 1);
        if (!NoClean && SessionExpiry is > 0 && Version == ProtocolVersion.V500) { }
    }

    private static ClientArgumentException MissingValue(string arg) => arg switch
    {
        "-t" => new ClientArgumentException("-t argument given but no topic specified.", blankLines: 1),
        _ => new ClientArgumentException(MissingValueText(arg)),
    };

    private static string MissingValueText(string arg) => arg switch
    {
        "-h" => "-h argument given but no host specified.",
        "-p" => "-p argument given but no port specified.",
        "-m" => "-m argument given but no message specified.",
        "-q" => "-q argument given but no QoS specified.",
        "-i" => "-i argument given but no id specified.",
        _ => $"{arg} argument given but no value specified.",
    };

    private static int ParseInt(string s, int min, int max, string error)
    {
        if (!int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) || v < min || v > max)
            throw new ClientArgumentException(error.EndsWith('"') ? $"{error}{s}\"." : error.EndsWith(' ') ? error + s : error);
        return v;
    }

    private static long ParseExpiry(string s)
    {
        if (s is "∞" or "-1") return uint.MaxValue;
        if (!long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out long v) || v < 0 || v > uint.MaxValue)
            throw new ClientArgumentException("session-expiry-interval not in range 0..4294967295.");
        return v;
    }

    private static ProtocolVersion ParseVersion(string s) => s switch
    {
        "mqttv31" or "31" => ProtocolVersion.V310,
        "mqttv311" or "311" => ProtocolVersion.V311,
        "mqttv5" or "5" => ProtocolVersion.V500,
        _ => throw new ClientArgumentException($"Invalid protocol version argument given."),
    };

    /// <summary>mosquitto's --proxy: socks5h://[username[:password]@]hostname[:port], port 1080 by default.</summary>
    private static Socks5Proxy ParseProxy(string url)
    {
        const string scheme = "socks5h://";
        if (!url.StartsWith(scheme, StringComparison.Ordinal)) throw new ClientArgumentException($"Unsupported proxy protocol: {url}");
        string rest = url[scheme.Length..];
        string? user = null, password = null;
        int at = rest.LastIndexOf('@');
        if (at >= 0)
        {
            string credentials = rest[..at];
            rest = rest[(at + 1)..];
            int colon = credentials.IndexOf(':');
            user = colon < 0 ? credentials : credentials[..colon];
            if (colon >= 0) password = credentials[(colon + 1)..];
            if (user.Length == 0) throw new ClientArgumentException("Invalid proxy.");
        }
        string host = rest;
        int port = 1080;
        int portColon = rest.LastIndexOf(':');
        if (portColon >= 0 && rest.IndexOf(']') < portColon)
        {
            host = rest[..portColon];
            if (!int.TryParse(rest[(portColon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out port)) port = 0;
            if (port is < 1 or > 65535) throw new ClientArgumentException($"Invalid proxy port {port}");
        }
        if (host.StartsWith('[') && host.EndsWith(']')) host = host[1..^1];
        if (host.Length == 0) throw new ClientArgumentException("Invalid proxy.");
        return new Socks5Proxy(host, port) { UserName = user, Password = password };
    }

    /// <summary>The TLS protocol versions --tls-version allows: as libmosquitto, the one named and later ones.</summary>
    public static SslProtocols TlsProtocols(string? version) => version switch
    {
        null or "tlsv1.2" => SslProtocols.Tls12 | SslProtocols.Tls13,
        "tlsv1.3" => SslProtocols.Tls13,
#pragma warning disable SYSLIB0039 // TLS 1.1 is obsolete; asked for by name, it is offered (OpenSSL's security level may still refuse it)
        "tlsv1.1" => SslProtocols.Tls11 | SslProtocols.Tls12 | SslProtocols.Tls13,
#pragma warning restore SYSLIB0039
        _ => throw new ClientSetupException("Problem setting TLS options, check the options are valid."),
    };

    /// <summary>
    /// --ciphers, an OpenSSL cipher list, as .NET's cipher suite policy: each name must be a suite (OpenSSL's
    /// name or the IANA one); keywords such as HIGH or DEFAULT cannot be expanded. As with libmosquitto, where
    /// the list sets the TLS 1.2 suites only, TLS 1.3 keeps OpenSSL's default suites unless the list names some.
    /// </summary>
    public static IReadOnlyList<TlsCipherSuite> CipherSuites(string list)
    {
        if (!TlsCiphers.TryMap(list, tls13: false, out var suites, out var unmapped))
        {
            throw new ClientSetupException($"--ciphers: '{unmapped}' is not a cipher suite name midge knows; it takes OpenSSL or IANA suite names "
                + "(ECDHE-RSA-AES128-GCM-SHA256, TLS_AES_128_GCM_SHA256), not keywords such as HIGH or DEFAULT.");
        }
        if (suites.Count == 0) throw new ClientSetupException("--ciphers: no cipher suite given.");
        if (!suites.Any(TlsCiphers.Tls13.Contains)) suites.AddRange(TlsCiphers.DefaultTls13);
        return suites;
    }

    /// <summary>What mosquitto checks once the arguments are parsed, before connecting (client_opts_set).</summary>
    public void CheckSetup()
    {
        if (UsesTls && CaFile is not null && !File.Exists(CaFile)) throw new ClientSetupException("Problem setting TLS options: File not found.");
        TlsProtocols(TlsVersion);
        if (Ciphers is not null) CipherSuites(Ciphers);
    }

    private bool UsesTls => CaFile is not null || CaPath is not null || CertFile is not null || Insecure;

    private void ParseUrl(string url)
    {
        var uri = new Uri(url);
        if (uri.Scheme is not ("mqtt" or "mqtts")) throw new ClientArgumentException("Unsupported URL scheme.");
        Host = uri.Host;
        if (uri.Port > 0) Port = uri.Port;
        if (uri.UserInfo.Length > 0)
        {
            var parts = uri.UserInfo.Split(':', 2);
            UserName = Uri.UnescapeDataString(parts[0]);
            if (parts.Length > 1) Password = Uri.UnescapeDataString(parts[1]);
        }
        string topic = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/'));
        if (topic.Length > 0) Topics.Add(topic);
    }

    private static readonly string[] Commands = ["connect", "publish", "subscribe", "unsubscribe", "disconnect", "will", "auth", "puback", "pubrec", "pubrel", "pubcomp"];

    /// <summary>-D command identifier value [value]: MQTT 5 properties by mosquitto's names.</summary>
    private void ParseProperty(string[] args, ref int i)
    {
        if (i + 3 >= args.Length + 0 && !(i + 3 < args.Length))
        {
            if (i + 2 >= args.Length) throw new ClientArgumentException("--property argument given but not enough arguments specified.");
        }
        string command = args[++i].ToLowerInvariant();
        string name = args[++i].ToLowerInvariant();
        if (Array.IndexOf(Commands, command) < 0) throw new ClientArgumentException($"Invalid command given in {command}.");
        if (i + 1 >= args.Length) throw new ClientArgumentException("--property argument given but not enough arguments specified.");
        string value = args[++i];
        if (!Properties.TryGetValue(command, out var p)) Properties[command] = p = new MqttProperties();
        static uint U(string name, string v, uint max)
        {
            if (!uint.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out uint x) || x > max)
                throw new ClientArgumentException($"Invalid property value for {name}.");
            return x;
        }
        switch (name)
        {
            case "payload-format-indicator": p.PayloadFormatIndicator = (byte)U(name, value, 1); break;
            case "message-expiry-interval": p.MessageExpiryInterval = U(name, value, uint.MaxValue); break;
            case "content-type": p.ContentType = value; break;
            case "response-topic": p.ResponseTopic = value; break;
            case "correlation-data": p.CorrelationData = Encoding.UTF8.GetBytes(value); break;
            case "subscription-identifier": (p.SubscriptionIdentifiers ??= []).Add(U(name, value, 268_435_455)); break;
            case "session-expiry-interval": p.SessionExpiryInterval = U(name, value, uint.MaxValue); break;
            case "authentication-method": p.AuthenticationMethod = value; break;
            case "authentication-data": p.AuthenticationData = Encoding.UTF8.GetBytes(value); break;
            case "request-problem-information": p.RequestProblemInformation = (byte)U(name, value, 1); break;
            case "will-delay-interval": p.WillDelayInterval = U(name, value, uint.MaxValue); break;
            case "request-response-information": p.RequestResponseInformation = (byte)U(name, value, 1); break;
            case "reason-string": p.ReasonString = value; break;
            case "receive-maximum": p.ReceiveMaximum = (ushort)U(name, value, ushort.MaxValue); break;
            case "topic-alias-maximum": p.TopicAliasMaximum = (ushort)U(name, value, ushort.MaxValue); break;
            case "topic-alias": p.TopicAlias = (ushort)U(name, value, ushort.MaxValue); break;
            case "maximum-packet-size": p.MaximumPacketSize = U(name, value, uint.MaxValue); break;
            case "user-property":
                if (i + 1 >= args.Length) throw new ClientArgumentException("--property argument given but not enough arguments specified.");
                p.AddUserProperty(value, args[++i]);
                break;
            default: throw new ClientArgumentException($"Invalid property name {name} given.");
        }
    }

    /// <summary>The client options these arguments describe (<see cref="CheckSetup"/> has passed).</summary>
    public MqttClientOptions ToClientOptions(PacketTraceHandler? trace = null)
    {
        string clientId = ClientId ?? (ClientIdPrefix is { } prefix ? prefix + Environment.ProcessId
            : Version == ProtocolVersion.V310 || NoClean ? $"midge_{Tool}_{Environment.ProcessId}" : "");
        var connect = PropertiesFor("connect");
        uint? expiry = SessionExpiry is { } x ? (uint)x : NoClean && Version == ProtocolVersion.V500 ? uint.MaxValue : null;
        MqttWill? will = null;
        if (WillTopic is not null)
        {
            will = new MqttWill(WillTopic, Encoding.UTF8.GetBytes(WillPayload ?? ""), WillQoS, WillRetain) { Properties = PropertiesFor("will") };
        }
        MqttTlsOptions? tls = null;
        if (UsesTls)
        {
            tls = new MqttTlsOptions
            {
                CaFile = CaFile,
                CaPath = CaPath,
                CertFile = CertFile,
                KeyFile = KeyFile,
                AllowNameMismatch = Insecure,
                EnabledProtocols = TlsProtocols(TlsVersion),
                CipherSuites = Ciphers is null ? null : CipherSuites(Ciphers),
            };
        }
        return new MqttClientOptions
        {
            Host = Host,
            Port = Port ?? (tls is null ? 1883 : 8883),
            ClientId = clientId,
            ProtocolVersion = Version,
            CleanStart = !NoClean,
            KeepAlive = TimeSpan.FromSeconds(KeepAlive),
            UserName = UserName,
            Password = UserName is not null && Password is not null ? Encoding.UTF8.GetBytes(Password) : (ReadOnlyMemory<byte>?)null,
            Will = will,
            SessionExpiryInterval = Version == ProtocolVersion.V500 ? expiry : null,
            ConnectProperties = connect,
            NoDelay = NoDelay,
            BindAddress = BindAddress,
            Tls = tls,
            UnixSocketPath = UnixPath,
            Proxy = Proxy,
            PacketTrace = trace,
        };
    }

    /// <summary>Mosquitto's wording of a CONNACK refusal (mosquitto_connack_string, or for MQTT 5 mosquitto_reason_string).</summary>
    public static string ConnAckMessage(ConnectResult result)
    {
        if (result.V3ReturnCode is { } v3)
        {
            return v3 switch
            {
                ConnectReturnCode.UnacceptableProtocolVersion => "Connection Refused: unacceptable protocol version.",
                ConnectReturnCode.IdentifierRejected => "Connection Refused: identifier rejected.",
                ConnectReturnCode.ServerUnavailable => "Connection Refused: broker unavailable.",
                ConnectReturnCode.BadUserNameOrPassword => "Connection Refused: bad user name or password.",
                ConnectReturnCode.NotAuthorized => "Connection Refused: not authorised.",
                _ => "Connection Refused: unknown reason.",
            };
        }
        return ReasonString(result.ReasonCode);
    }

    /// <summary>mosquitto_reason_string's wording.</summary>
    public static string ReasonString(ReasonCode code) => code switch
    {
        ReasonCode.Success => "Success",
        ReasonCode.UnspecifiedError => "Unspecified error",
        ReasonCode.MalformedPacket => "Malformed Packet",
        ReasonCode.ProtocolError => "Protocol Error",
        ReasonCode.ImplementationSpecificError => "Implementation specific error",
        ReasonCode.UnsupportedProtocolVersion => "Unsupported Protocol Version",
        ReasonCode.ClientIdentifierNotValid => "Client Identifier not valid",
        ReasonCode.BadUserNameOrPassword => "Bad User Name or Password",
        ReasonCode.NotAuthorized => "Not authorized",
        ReasonCode.ServerUnavailable => "Server unavailable",
        ReasonCode.ServerBusy => "Server busy",
        ReasonCode.Banned => "Banned",
        ReasonCode.BadAuthenticationMethod => "Bad authentication method",
        ReasonCode.TopicNameInvalid => "Topic Name invalid",
        ReasonCode.PacketTooLarge => "Packet too large",
        ReasonCode.QuotaExceeded => "Quota exceeded",
        ReasonCode.PayloadFormatInvalid => "Payload format invalid",
        ReasonCode.RetainNotSupported => "Retain not supported",
        ReasonCode.QoSNotSupported => "QoS not supported",
        ReasonCode.UseAnotherServer => "Use another server",
        ReasonCode.ServerMoved => "Server moved",
        ReasonCode.ConnectionRateExceeded => "Connection rate exceeded",
        _ => "Unknown reason",
    };

    /// <summary>MOSQ_ERR_TLS: the exit code of a failed TLS handshake.</summary>
    public const int TlsErrorExitCode = 8;

    /// <summary>MOSQ_ERR_CONN_LOST: the exit code when the server closes the connection before CONNACK.</summary>
    public const int ConnectionLostExitCode = 7;

    /// <summary>
    /// Prints what mosquitto_pub/mosquitto_sub print for a failed connect (nothing with --quiet) and returns their
    /// exit code: a CONNACK refusal exits with its return or reason code, and mosquitto_pub adds libmosquitto's
    /// error ("The connection was refused." for 3.x, "A network protocol error ..." for MQTT 5).
    /// </summary>
    public int ReportConnectFailure(Exception ex)
    {
        switch (ex)
        {
            case MqttConnectException refused:
                int code = refused.Result.V3ReturnCode is { } v3 ? (int)v3 : (int)refused.Result.ReasonCode;
                Error($"Connection error: {ConnAckMessage(refused.Result)}");
                if (Tool == "pub")
                {
                    Error(refused.Result.V3ReturnCode is >= ConnectReturnCode.UnacceptableProtocolVersion and <= ConnectReturnCode.NotAuthorized
                        ? "Error: The connection was refused."
                        : "Error: A network protocol error occurred when communicating with the broker.");
                }
                return code;
            case System.Security.Authentication.AuthenticationException tls:
                if (Debug) Error($"TLS error: {tls.Message}{(tls.InnerException is { } inner ? " (" + inner.Message + ")" : "")}");
                Error("Error: A TLS error occurred.");
                return TlsErrorExitCode;
            case MqttConnectionLostException:
            case IOException { InnerException: System.Net.Sockets.SocketException { SocketErrorCode: System.Net.Sockets.SocketError.ConnectionReset } }:
                Error("Error: The connection was lost.");
                return ConnectionLostExitCode;
            case System.Net.Sockets.SocketException se when se.SocketErrorCode == System.Net.Sockets.SocketError.ConnectionRefused:
                Error("Error: Connection refused");
                return 1;
            case System.Net.Sockets.SocketException se when se.SocketErrorCode is System.Net.Sockets.SocketError.HostNotFound or System.Net.Sockets.SocketError.TryAgain or System.Net.Sockets.SocketError.NoData:
                Error("Error: Temporary failure in name resolution");
                return 1;
            case System.Net.Sockets.SocketException se when UnixPath is not null:
                // .NET reports a socket path that does not exist (ENOENT) as "address not available".
                Error(se.SocketErrorCode == System.Net.Sockets.SocketError.AddressNotAvailable ? "Error: No such file or directory" : $"Error: {se.Message}");
                return 1;
            default:
                Error($"Error: {ex.Message}");
                return 1;
        }
    }

    private void Error(string line)
    {
        if (!Quiet) Console.Error.WriteLine(line);
    }

    public static TopicSubscription Subscription(string filter, QoS qos) => new(filter, qos);
}
