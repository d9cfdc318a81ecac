using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;

namespace Midge.TestKit;

/// <summary>One MQTT control packet as read off the wire: the fixed-header byte and the body.</summary>
public sealed record RawPacket(byte Header, byte[] Body)
{
    public int Type => Header >> 4;

    public override string ToString() => $"{Header:X2} [{Convert.ToHexString(Body)}]";
}

/// <summary>
/// A TCP client that writes hand-made bytes and reads whole packets back, for tests that must send what a
/// real client library refuses to. Every read has a timeout.
/// </summary>
public sealed class RawMqttClient : IDisposable
{
    public const byte V31 = 3, V311 = 4, V5 = 5;

    private readonly TcpClient? _tcp;
    private readonly Stream _stream;

    private RawMqttClient(TcpClient tcp, Stream? stream = null)
    {
        _tcp = tcp;
        _stream = stream ?? tcp.GetStream();
    }

    private RawMqttClient(ClientWebSocket socket)
    {
        WebSocket = socket;
        _stream = WebSocketStream.Create(socket, WebSocketMessageType.Binary, ownsWebSocket: true);
    }

    /// <summary>The WebSocket of a client made by <see cref="ConnectWebSocketAsync"/> (its close status, text frames);
    /// each <see cref="SendAsync"/> on it is one binary message.</summary>
    public ClientWebSocket? WebSocket { get; }

    /// <summary>Opens a WebSocket to <c>ws://127.0.0.1:PORT/PATH</c> (<paramref name="tls"/>: <c>wss://</c>, the
    /// certificate not checked) offering <paramref name="subProtocols"/> (default: <c>mqtt</c>). Throws
    /// <see cref="WebSocketException"/> when the handshake is refused; <paramref name="configure"/> may ask for the
    /// response's details, or add a client certificate; <paramref name="invoker"/>, when given, opens the connection
    /// (to write a PROXY header first, say).</summary>
    public static async Task<RawMqttClient> ConnectWebSocketAsync(int port, string path = "/mqtt", bool tls = false,
        string[]? subProtocols = null, Action<ClientWebSocketOptions>? configure = null, ClientWebSocket? socket = null,
        HttpMessageInvoker? invoker = null)
    {
        socket ??= new ClientWebSocket();
        foreach (var protocol in subProtocols ?? ["mqtt"]) socket.Options.AddSubProtocol(protocol);
        socket.Options.KeepAliveInterval = TimeSpan.Zero;
        if (tls) socket.Options.RemoteCertificateValidationCallback = (_, _, _, _) => true;
        configure?.Invoke(socket.Options);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        var uri = new Uri($"{(tls ? "wss" : "ws")}://127.0.0.1:{port}{path}");
        if (invoker is null) await socket.ConnectAsync(uri, cts.Token);
        else await socket.ConnectAsync(uri, invoker, cts.Token);
        return new RawMqttClient(socket);
    }

    public static async Task<RawMqttClient> ConnectTcpAsync(int port)
    {
        var tcp = new TcpClient { NoDelay = true };
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await tcp.ConnectAsync(IPAddress.Loopback, port, cts.Token);
        return new RawMqttClient(tcp);
    }

    /// <summary>Opens a TLS connection to a listener whose certificate is not checked (a test's own PKI);
    /// <paramref name="preamble"/> (a PROXY header) is sent in clear before the handshake.</summary>
    public static async Task<RawMqttClient> ConnectTlsAsync(int port, byte[]? preamble = null)
    {
        var tcp = new TcpClient { NoDelay = true };
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await tcp.ConnectAsync(IPAddress.Loopback, port, cts.Token);
        if (preamble is not null) await tcp.GetStream().WriteAsync(preamble, cts.Token);
        var ssl = new System.Net.Security.SslStream(tcp.GetStream());
        await ssl.AuthenticateAsClientAsync(new System.Net.Security.SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            RemoteCertificateValidationCallback = (_, _, _, _) => true,
        }, cts.Token);
        return new RawMqttClient(tcp, ssl);
    }

    /// <summary>Opens a connection (<paramref name="tls"/>: a TLS one), sends CONNECT and asserts a successful CONNACK.</summary>
    public static async Task<RawMqttClient> ConnectMqttAsync(int port, string clientId, byte version = V311, bool tls = false)
    {
        var client = tls ? await ConnectTlsAsync(port) : await ConnectTcpAsync(port);
        await client.SendAsync(Connect(clientId, version));
        var connack = await client.ReadAsync(TimeSpan.FromSeconds(5))
            ?? throw new InvalidOperationException("connection closed instead of CONNACK");
        if (connack.Type != 2) throw new InvalidOperationException($"expected CONNACK, got {connack}");
        if (connack.Body[1] != 0) throw new InvalidOperationException($"CONNACK refused: {connack}");
        return client;
    }

    public Task SendAsync(byte[] bytes) => _stream.WriteAsync(bytes).AsTask();

    /// <summary>Reads one packet; null when the server closed the connection. Throws on timeout.</summary>
    public async Task<RawPacket?> ReadAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            var header = new byte[1];
            if (!await ReadExactAsync(header, cts.Token)) return null;
            int length = 0, shift = 0;
            var one = new byte[1];
            while (true)
            {
                if (!await ReadExactAsync(one, cts.Token)) return null;
                length |= (one[0] & 0x7F) << shift;
                if ((one[0] & 0x80) == 0) break;
                shift += 7;
                if (shift > 21) throw new InvalidDataException("malformed remaining length from server");
            }
            var body = new byte[length];
            if (!await ReadExactAsync(body, cts.Token)) return null;
            return new RawPacket(header[0], body);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"no packet within {timeout}");
        }
        catch (Exception ex) when (ex is IOException or WebSocketException)
        {
            return null; // reset by peer counts as closed
        }
    }

    /// <summary>Reads until the server closes; returns what it sent first. Throws if it stays open.</summary>
    public async Task<List<RawPacket>> ReadUntilClosedAsync(TimeSpan timeout)
    {
        var packets = new List<RawPacket>();
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero) throw new TimeoutException($"connection still open after {timeout}; got {string.Join(", ", packets)}");
            var p = await ReadAsync(left);
            if (p is null) return packets;
            packets.Add(p);
        }
    }

    public void Dispose()
    {
        _stream.Dispose();
        _tcp?.Dispose();
    }

    private async Task<bool> ReadExactAsync(byte[] buffer, CancellationToken token)
    {
        int read = 0;
        while (read < buffer.Length)
        {
            int n = await _stream.ReadAsync(buffer.AsMemory(read), token);
            if (n == 0) return false;
            read += n;
        }
        return true;
    }

    // ---- packet builders ----

    /// <summary>CONNECT with clean session/start, keep-alive 60 and no properties.</summary>
    public static byte[] Connect(string clientId, byte version = V311, string? protocolName = null, byte connectFlags = 0x02)
    {
        var body = new List<byte>();
        AddString(body, protocolName ?? (version == V31 ? "MQIsdp" : "MQTT"));
        body.Add(version);
        body.Add(connectFlags);
        body.Add(0);
        body.Add(60);
        if (version == V5) body.Add(0);
        AddString(body, clientId);
        return Frame(0x10, body);
    }

    /// <summary>SUBSCRIBE of one filter; <paramref name="header"/> lets a test set reserved flags.</summary>
    public static byte[] Subscribe(ushort packetId, string filter, byte qos = 0, byte version = V311, byte header = 0x82)
    {
        var body = new List<byte> { (byte)(packetId >> 8), (byte)packetId };
        if (version == V5) body.Add(0);
        AddString(body, filter);
        body.Add(qos);
        return Frame(header, body);
    }

    /// <summary>A QoS 0 PUBLISH.</summary>
    public static byte[] Publish(string topic, byte[] payload, byte version = V311)
    {
        var body = new List<byte>();
        AddString(body, topic);
        if (version == V5) body.Add(0);
        body.AddRange(payload);
        return Frame(0x30, body);
    }

    /// <summary>Frames a body with a fixed-header byte and a variable-byte remaining length.</summary>
    public static byte[] Frame(byte header, IReadOnlyCollection<byte> body)
    {
        var packet = new List<byte>(body.Count + 5) { header };
        int length = body.Count;
        do
        {
            byte b = (byte)(length & 0x7F);
            length >>= 7;
            if (length > 0) b |= 0x80;
            packet.Add(b);
        }
        while (length > 0);
        packet.AddRange(body);
        return [.. packet];
    }

    private static void AddString(List<byte> body, string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        body.Add((byte)(bytes.Length >> 8));
        body.Add((byte)bytes.Length);
        body.AddRange(bytes);
    }

    /// <summary>
    /// A well-behaved subscriber and publisher on fresh connections: SUBSCRIBE, SUBACK, PUBLISH, delivery.
    /// Throws when anything is missing, so a test can call it to prove the broker still serves.
    /// </summary>
    public static async Task AssertRoundTripAsync(int port, byte version = V311)
    {
        string id = Guid.NewGuid().ToString("N")[..10];
        string topic = "health/" + id;
        byte[] payload = Encoding.UTF8.GetBytes("alive-" + id);
        using var sub = await ConnectMqttAsync(port, "hs-" + id, version);
        await sub.SendAsync(Subscribe(7, topic, 0, version));
        var suback = await sub.ReadAsync(TimeSpan.FromSeconds(5));
        if (suback?.Type != 9) throw new InvalidOperationException($"expected SUBACK, got {suback?.ToString() ?? "close"}");
        using var pub = await ConnectMqttAsync(port, "hp-" + id, version);
        await pub.SendAsync(Publish(topic, payload, version));
        var delivered = await sub.ReadAsync(TimeSpan.FromSeconds(5));
        if (delivered?.Type != 3) throw new InvalidOperationException($"expected PUBLISH, got {delivered?.ToString() ?? "close"}");
        var expected = new List<byte>();
        AddString(expected, topic);
        if (version == V5) expected.Add(0);
        expected.AddRange(payload);
        if (!delivered.Body.AsSpan().SequenceEqual(expected.ToArray()))
            throw new InvalidOperationException($"delivered PUBLISH differs: {delivered}");
    }
}
