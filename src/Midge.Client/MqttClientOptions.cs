using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Client;

/// <summary>What the incoming message buffer does when it is full.</summary>
public enum BufferFullMode
{
    /// <summary>The read loop waits for the consumer (back-pressure on the connection). Acks wait too.</summary>
    Wait,
    /// <summary>The oldest buffered message is dropped to make room.</summary>
    DropOldest,
    /// <summary>The arriving message is dropped.</summary>
    DropNewest,
}

/// <summary>Automatic reconnection with exponential backoff (doubling from <see cref="InitialDelay"/> up to
/// <see cref="MaxDelay"/>).</summary>
public sealed record ReconnectPolicy
{
    public static readonly ReconnectPolicy Disabled = new() { Enabled = false };

    /// <summary>Default false: a lost connection stays lost.</summary>
    public bool Enabled { get; init; }
    /// <summary>Default 1 s.</summary>
    public TimeSpan InitialDelay { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>Default 30 s.</summary>
    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>A will message, published by the server when the client goes away without DISCONNECT.</summary>
public sealed record MqttWill(string Topic, ReadOnlyMemory<byte> Payload, QoS QoS = QoS.AtMostOnce, bool Retain = false)
{
    /// <summary>MQTT 5 will properties (Will Delay Interval, Message Expiry Interval, Content Type, ...).</summary>
    public MqttProperties? Properties { get; init; }
}

/// <summary>TLS over the TCP connection (SslStream).</summary>
public sealed record MqttTlsOptions
{
    /// <summary>The name checked against the server certificate; default the host name.</summary>
    public string? TargetHost { get; init; }
    /// <summary>PEM file of CA certificates to trust instead of the system store (mosquitto's --cafile).</summary>
    public string? CaFile { get; init; }
    /// <summary>Directory of CA certificates to trust instead of the system store (mosquitto's --capath): as
    /// OpenSSL's hashed directory lookup, the files named <c>HASH.N</c> (made by <c>openssl rehash</c> or
    /// <c>c_rehash</c>) are read; other files are not. With <see cref="CaFile"/>, both are trusted.</summary>
    public string? CaPath { get; init; }
    /// <summary>PEM client certificate (mosquitto's --cert) and its key (--key).</summary>
    public string? CertFile { get; init; }
    public string? KeyFile { get; init; }
    /// <summary>Client certificates to offer (in addition to <see cref="CertFile"/>).</summary>
    public X509CertificateCollection? ClientCertificates { get; init; }
    /// <summary>Do not check the server certificate's host name (mosquitto's --insecure).</summary>
    public bool AllowNameMismatch { get; init; }
    /// <summary>Overrides every certificate check when set.</summary>
    public RemoteCertificateValidationCallback? RemoteCertificateValidation { get; init; }
    public SslProtocols EnabledProtocols { get; init; } = SslProtocols.None;
    /// <summary>The cipher suites offered (TLS 1.2 and 1.3); null for the platform's defaults. Linux and macOS only
    /// (.NET's <see cref="CipherSuitesPolicy"/>).</summary>
    public IReadOnlyList<TlsCipherSuite>? CipherSuites { get; init; }
    /// <summary>ALPN protocol names, if any.</summary>
    public IReadOnlyList<string>? ApplicationProtocols { get; init; }
}

/// <summary>A SOCKS5 proxy (RFC 1928) the connection goes through; the proxy resolves the server's host name
/// (mosquitto's <c>--proxy socks5h://...</c>). With a user name, the proxy may ask for RFC 1929's user name and
/// password authentication.</summary>
public sealed record Socks5Proxy(string Host, int Port = 1080)
{
    public string? UserName { get; init; }
    public string? Password { get; init; }
}

/// <summary>Sees each packet the client sends (when it is queued, before it reaches the socket) and receives
/// (once decoded, before the client acts on it). Called on the thread that sends or reads; it must return quickly,
/// and an exception it throws is ignored.</summary>
public delegate void PacketTraceHandler(MqttPacket packet, bool outgoing);

/// <summary>Options of an <see cref="MqttClient"/>; change them with <c>with</c>.</summary>
public sealed record MqttClientOptions
{
    public static readonly MqttClientOptions Default = new();

    /// <summary>Default "localhost".</summary>
    public string Host { get; init; } = "localhost";
    /// <summary>Default 1883.</summary>
    public int Port { get; init; } = 1883;
    /// <summary>Default "" (MQTT 5 servers assign one; 3.1.1 servers accept it with CleanStart).</summary>
    public string ClientId { get; init; } = "";
    /// <summary>Default 3.1.1.</summary>
    public ProtocolVersion ProtocolVersion { get; init; } = ProtocolVersion.V311;
    /// <summary>Clean Session (3.x) / Clean Start (5.0) of the first connect; default true. Automatic reconnects
    /// of an MQTT 5 client always ask to resume the session.</summary>
    public bool CleanStart { get; init; } = true;
    /// <summary>Default 60 s; zero turns keep-alive off.</summary>
    public TimeSpan KeepAlive { get; init; } = TimeSpan.FromSeconds(60);
    public string? UserName { get; init; }
    public ReadOnlyMemory<byte>? Password { get; init; }
    public MqttWill? Will { get; init; }
    /// <summary>MQTT 5 Session Expiry Interval in seconds (null: not sent, meaning 0).</summary>
    public uint? SessionExpiryInterval { get; init; }
    /// <summary>MQTT 5 Receive Maximum sent to the server (null: not sent, meaning 65,535).</summary>
    public ushort? ReceiveMaximum { get; init; }
    /// <summary>MQTT 5 Maximum Packet Size accepted from the server (null: not sent; the protocol maximum).</summary>
    public uint? MaximumPacketSize { get; init; }
    /// <summary>MQTT 5 Topic Alias Maximum accepted from the server (default 0: none).</summary>
    public ushort TopicAliasMaximum { get; init; }
    public bool? RequestResponseInformation { get; init; }
    public bool? RequestProblemInformation { get; init; }
    /// <summary>MQTT 5 user properties of CONNECT.</summary>
    public IReadOnlyList<UserProperty>? UserProperties { get; init; }
    /// <summary>Extra MQTT 5 CONNECT properties (the fields above win where both are set).</summary>
    public MqttProperties? ConnectProperties { get; init; }
    /// <summary>Bounds socket connect, TLS handshake and CONNACK together. Default 10 s.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);
    public ReconnectPolicy Reconnect { get; init; } = ReconnectPolicy.Disabled;
    /// <summary>Incoming message buffer capacity; default 16,384.</summary>
    public int IncomingBufferCapacity { get; init; } = 16_384;
    /// <summary>Default <see cref="BufferFullMode.Wait"/> (no message lost; the connection is slowed down).</summary>
    public BufferFullMode IncomingBufferFullMode { get; init; } = BufferFullMode.Wait;
    /// <summary>TCP_NODELAY; default true.</summary>
    public bool NoDelay { get; init; } = true;
    /// <summary>Local address to bind before connecting (mosquitto's -A).</summary>
    public string? BindAddress { get; init; }
    /// <summary>TLS; null for plain TCP.</summary>
    public MqttTlsOptions? Tls { get; init; }
    /// <summary>Connect to this Unix domain socket instead of <see cref="Host"/>:<see cref="Port"/> (mosquitto's
    /// --unix); <see cref="Host"/> is still the name TLS checks.</summary>
    public string? UnixSocketPath { get; init; }
    /// <summary>Reach <see cref="Host"/>:<see cref="Port"/> through this SOCKS5 proxy; null for a direct connection.</summary>
    public Socks5Proxy? Proxy { get; init; }
    /// <summary>MQTT 3.x: set the bridge bit in CONNECT's protocol level (Mosquitto's <c>try_private</c>), asking a
    /// server that knows it not to echo the client's own messages back and to keep their RETAIN flags.</summary>
    public bool Bridge { get; init; }
    /// <summary>Keep unacknowledged QoS 1/2 publishes when the connection is lost (instead of failing them), and
    /// resend them, with their packet identifiers, on the next <see cref="MqttClient.ConnectAsync"/> of this client
    /// (a bridge's store and forward). Default false.</summary>
    public bool KeepPublishesOnConnectionLoss { get; init; }
    /// <summary>Every packet sent and received, for debug logs (mosquitto's -d); null for none.</summary>
    public PacketTraceHandler? PacketTrace { get; init; }
}
