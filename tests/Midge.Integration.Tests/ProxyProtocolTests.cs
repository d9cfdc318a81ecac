using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Midge.TestKit;

namespace Midge.Integration.Tests;

/// <summary>
/// <c>enable_proxy_protocol 1|2</c> with real sockets: headers written by hand over a TcpClient, then MQTT (plain, after
/// TLS, over WebSocket); bad headers refused while other clients are served; the address lists applied to the header's
/// address; X-Forwarded-For from trusted and untrusted peers; and HAProxy's send-proxy / send-proxy-v2 in front of the
/// broker with mosquitto_pub and mosquitto_sub. Every read is bounded.
/// </summary>
public sealed class ProxyProtocolTests
{
    private static readonly TimeSpan Short = TimeSpan.FromSeconds(5);

    private static readonly byte[] Signature = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];

    private static byte[] V1(string line) => Encoding.ASCII.GetBytes(line + "\r\n");

    private static byte[] V2(byte command, byte family, byte[] block, int? length = null)
    {
        int n = length ?? block.Length;
        return [.. Signature, (byte)(0x20 | command), family, (byte)(n >> 8), (byte)n, .. block];
    }

    /// <summary>A v2 PROXY header for TCP from <paramref name="source"/> (IPv4 or IPv6) to the broker.</summary>
    private static byte[] V2Tcp(string source, int sourcePort, int destinationPort)
    {
        var s = IPAddress.Parse(source).GetAddressBytes();
        var d = (s.Length == 4 ? IPAddress.Loopback : IPAddress.IPv6Loopback).GetAddressBytes();
        // A TLV after the addresses (PP2_TYPE_ALPN), which the broker skips.
        return V2(1, s.Length == 4 ? (byte)0x11 : (byte)0x21,
            [.. s, .. d, (byte)(sourcePort >> 8), (byte)sourcePort, (byte)(destinationPort >> 8), (byte)destinationPort, 0x01, 0x00, 0x01, (byte)'x']);
    }

    /// <summary>Connects, sends <paramref name="header"/> and CONNECT in one write, and expects a successful CONNACK.</summary>
    private static async Task<RawMqttClient> ConnectThroughAsync(int port, byte[] header, string clientId)
    {
        var client = await RawMqttClient.ConnectTcpAsync(port);
        await client.SendAsync([.. header, .. RawMqttClient.Connect(clientId)]);
        var connack = await client.ReadAsync(Short);
        Assert.True(connack is { Type: 2 } && connack.Body[1] == 0, $"no CONNACK for {clientId}: {connack}");
        return client;
    }

    /// <summary>True when the broker closes the connection (end of stream or reset) within <see cref="Short"/>.</summary>
    private static async Task<bool> ClosedByBrokerAsync(RawMqttClient client)
    {
        try
        {
            return await client.ReadAsync(Short) is null;
        }
        catch (IOException)
        {
            return true;
        }
    }

    [Fact]
    public async Task V1_header_address_is_the_client_address_in_the_log()
    {
        await using var broker = await MidgeProcess.StartAsync("enable_proxy_protocol 1");
        using var tcp4 = await ConnectThroughAsync(broker.Port, V1($"PROXY TCP4 192.0.2.7 127.0.0.1 56324 {broker.Port}"), "v1-tcp4");
        using var tcp6 = await ConnectThroughAsync(broker.Port, V1($"PROXY TCP6 2001:db8::7 ::1 4000 {broker.Port}"), "v1-tcp6");
        using var unknown = await ConnectThroughAsync(broker.Port, V1("PROXY UNKNOWN"), "v1-unknown");
        Assert.True(await broker.WaitForLogAsync("New client connected from 192.0.2.7:56324 as v1-tcp4", Short), broker.Log);
        Assert.True(await broker.WaitForLogAsync("New client connected from 2001:db8::7:4000 as v1-tcp6", Short), broker.Log);
        Assert.True(await broker.WaitForLogAsync("New client connected from 127.0.0.1:", Short), broker.Log); // UNKNOWN: the socket's
        Assert.Contains("as v1-unknown", broker.Log);
    }

    [Fact]
    public async Task V2_ipv4_ipv6_and_local_headers_and_a_message_between_them()
    {
        await using var broker = await MidgeProcess.StartAsync("enable_proxy_protocol 2");
        using var v4 = await ConnectThroughAsync(broker.Port, V2Tcp("198.51.100.4", 40004, broker.Port), "v2-ipv4");
        using var v6 = await ConnectThroughAsync(broker.Port, V2Tcp("2001:db8::6", 40006, broker.Port), "v2-ipv6");
        using var local = await ConnectThroughAsync(broker.Port, V2(0, 0x00, []), "v2-local");
        Assert.True(await broker.WaitForLogAsync("New client connected from 198.51.100.4:40004 as v2-ipv4", Short), broker.Log);
        Assert.True(await broker.WaitForLogAsync("New client connected from 2001:db8::6:40006 as v2-ipv6", Short), broker.Log);
        Assert.True(await broker.WaitForLogAsync("as v2-local", Short), broker.Log);
        Assert.Matches(@"New client connected from 127\.0\.0\.1:\d+ as v2-local", broker.Log);

        // MQTT goes on as usual after the header.
        await v4.SendAsync(RawMqttClient.Subscribe(1, "proxy/t"));
        Assert.Equal(9, (await v4.ReadAsync(Short))?.Type);
        await v6.SendAsync(RawMqttClient.Publish("proxy/t", "hello"u8.ToArray()));
        var publish = await v4.ReadAsync(Short);
        Assert.Equal(3, publish?.Type);
    }

    [Fact]
    public async Task Address_lists_apply_to_the_header_address_not_the_proxy()
    {
        // The proxy (127.0.0.1) is not in the allow list: only the header's address counts.
        await using var broker = await MidgeProcess.StartAsync("enable_proxy_protocol 2",
            "allow_address 198.51.100.0/24", "deny_address 198.51.100.66");
        using var allowed = await ConnectThroughAsync(broker.Port, V2Tcp("198.51.100.10", 1000, broker.Port), "allowed");

        using var denied = await RawMqttClient.ConnectTcpAsync(broker.Port);
        await denied.SendAsync([.. V2Tcp("198.51.100.66", 1001, broker.Port), .. RawMqttClient.Connect("denied")]);
        Assert.True(await ClosedByBrokerAsync(denied));
        Assert.True(await broker.WaitForLogAsync("Connection from 198.51.100.66:1001 on 127.0.0.1:", Short), broker.Log);
        Assert.Contains("refused: address not allowed", broker.Log);
        Assert.DoesNotContain("as denied", broker.Log);

        using var outside = await RawMqttClient.ConnectTcpAsync(broker.Port);
        await outside.SendAsync([.. V2Tcp("203.0.113.1", 1002, broker.Port), .. RawMqttClient.Connect("outside")]);
        Assert.True(await ClosedByBrokerAsync(outside));
        Assert.True(await broker.WaitForLogAsync("Connection from 203.0.113.1:1002", Short), broker.Log);
    }

    [Fact]
    public async Task Bad_headers_are_refused_and_logged_while_other_clients_are_served()
    {
        int v1Port = FreePort.Next();
        await using var broker = await MidgeProcess.StartAsync("enable_proxy_protocol 2", "connect_timeout 2",
            $"listener {v1Port} 127.0.0.1", "enable_proxy_protocol 1", "connect_timeout 2");
        await WaitForListenersAsync(v1Port);
        using var good = await ConnectThroughAsync(broker.Port, V2Tcp("198.51.100.1", 2000, broker.Port), "good");
        await good.SendAsync(RawMqttClient.Subscribe(1, "still/served"));
        Assert.Equal(9, (await good.ReadAsync(Short))?.Type);

        // Silence first, so its timeout runs while the others are refused.
        using var silent = await RawMqttClient.ConnectTcpAsync(broker.Port);
        var bad = new (string What, int Port, byte[] Bytes, string Reason)[]
        {
            ("garbage", broker.Port, Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "not a PROXY protocol v2 header"),
            ("mqtt without a header", broker.Port, RawMqttClient.Connect("sneaky"), "not a PROXY protocol v2 header"),
            ("v1 on a v2 listener", broker.Port, V1($"PROXY TCP4 192.0.2.1 127.0.0.1 1 {broker.Port}"), "a version 1 header on a version 2 listener"),
            ("v2 longer than the maximum", broker.Port, V2(1, 0x11, new byte[12], length: 65535), "version 2 address block of 65535 bytes"),
            ("v2 too short for its family", broker.Port, V2(1, 0x21, new byte[12]), "too short for its family"),
            ("v1 longer than 107 bytes", v1Port, Encoding.ASCII.GetBytes("PROXY UNKNOWN " + new string('x', 150)), "longer than 107 bytes"),
            ("v1 not a header", v1Port, Encoding.ASCII.GetBytes("PROXY TCP4 not-an-address 127.0.0.1 1 2\r\n"), "malformed version 1 header"),
        };
        foreach (var (what, port, bytes, reason) in bad)
        {
            using var client = await RawMqttClient.ConnectTcpAsync(port);
            try
            {
                await client.SendAsync(bytes);
            }
            catch (IOException)
            {
                // already reset by the broker
            }
            Assert.True(await ClosedByBrokerAsync(client), what);
            Assert.True(await broker.WaitForLogAsync(reason, Short), $"{what}: {broker.Log}");
        }

        // Truncated: half a header, then the client goes away.
        using (var truncated = await RawMqttClient.ConnectTcpAsync(broker.Port))
        {
            await truncated.SendAsync(V2Tcp("198.51.100.2", 2001, broker.Port)[..20]);
            await Task.Delay(100);
        }
        Assert.True(await broker.WaitForLogAsync("closed after 20 bytes of an incomplete PROXY header", Short), broker.Log);

        Assert.True(await ClosedByBrokerAsync(silent), "silence");
        Assert.True(await broker.WaitForLogAsync("no whole PROXY header within 2 s", Short), broker.Log);
        Assert.DoesNotContain("as sneaky", broker.Log);

        // The good client was served all along.
        using var publisher = await ConnectThroughAsync(broker.Port, V2Tcp("198.51.100.3", 2002, broker.Port), "publisher");
        await publisher.SendAsync(RawMqttClient.Publish("still/served", "yes"u8.ToArray()));
        Assert.Equal(3, (await good.ReadAsync(Short))?.Type);
    }

    [Fact]
    public async Task Tls_listener_reads_the_header_in_clear_then_the_handshake()
    {
        using var pki = new TestPki();
        var ca = pki.CreateCa("ca");
        pki.CreateServer(ca, "server");
        await using var broker = await MidgeProcess.StartAsync("enable_proxy_protocol 2",
            $"certfile {pki.PathOf("server.pem")}", $"keyfile {pki.PathOf("server.key")}");
        using var client = await RawMqttClient.ConnectTlsAsync(broker.Port, V2Tcp("192.0.2.44", 4444, broker.Port));
        await client.SendAsync(RawMqttClient.Connect("tls-behind-proxy"));
        Assert.Equal(2, (await client.ReadAsync(Short))?.Type);
        Assert.True(await broker.WaitForLogAsync("New client connected from 192.0.2.44:4444 as tls-behind-proxy", Short), broker.Log);

        // A TLS client without the header: its ClientHello is not a PROXY header.
        await Assert.ThrowsAnyAsync<Exception>(() => RawMqttClient.ConnectTlsAsync(broker.Port));
        Assert.True(await broker.WaitForLogAsync("not a PROXY protocol v2 header", Short), broker.Log);
    }

    /// <summary>An HTTP handler whose connections start with <paramref name="header"/> (what a proxy would send).</summary>
    private static HttpMessageInvoker WithHeader(byte[] header) => new(new SocketsHttpHandler
    {
        ConnectCallback = async (context, cancel) =>
        {
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync(context.DnsEndPoint, cancel);
            var stream = new NetworkStream(socket, ownsSocket: true);
            await stream.WriteAsync(header, cancel);
            return stream;
        },
    });

    [Fact]
    public async Task WebSocket_listener_reads_the_header_before_the_upgrade()
    {
        int wsPort = FreePort.Next();
        await using var broker = await MidgeProcess.StartAsync($"listener {wsPort} 127.0.0.1", "protocol websockets", "enable_proxy_protocol 1");
        await WaitForListenersAsync(wsPort);
        using var invoker = WithHeader(V1($"PROXY TCP4 203.0.113.5 127.0.0.1 1234 {wsPort}"));
        using var client = await RawMqttClient.ConnectWebSocketAsync(wsPort, invoker: invoker);
        await client.SendAsync(RawMqttClient.Connect("ws-behind-proxy"));
        Assert.Equal(2, (await client.ReadAsync(Short))?.Type);
        Assert.True(await broker.WaitForLogAsync("New client connected from 203.0.113.5:1234 as ws-behind-proxy", Short), broker.Log);
        Assert.Contains("WebSocket connection from 203.0.113.5:1234 on 127.0.0.1:", broker.Log);

        // Without the header the HTTP request line is refused before any HTTP is served.
        await Assert.ThrowsAnyAsync<Exception>(() => RawMqttClient.ConnectWebSocketAsync(wsPort));
        Assert.True(await broker.WaitForLogAsync("not a PROXY protocol v1 header", Short), broker.Log);
    }

    [Fact]
    public async Task X_Forwarded_For_is_believed_from_trusted_proxies_only()
    {
        int trustedPort = FreePort.Next(), untrustedPort = FreePort.Next();
        await using var broker = await MidgeProcess.StartAsync(
            $"listener {trustedPort} 127.0.0.1", "protocol websockets", "websockets_trusted_proxies 127.0.0.1 10.0.0.0/8",
            $"listener {untrustedPort} 127.0.0.1", "protocol websockets", "websockets_trusted_proxies 10.0.0.0/8");
        await WaitForListenersAsync(trustedPort, untrustedPort);
        const string Chain = "198.51.100.1, 203.0.113.50, 10.1.2.3";

        using var trusted = await RawMqttClient.ConnectWebSocketAsync(trustedPort,
            configure: o => o.SetRequestHeader("X-Forwarded-For", Chain));
        await trusted.SendAsync(RawMqttClient.Connect("xff-trusted"));
        Assert.Equal(2, (await trusted.ReadAsync(Short))?.Type);
        // Right to left: 10.1.2.3 is a trusted proxy, 203.0.113.50 is not: the client (198.51.100.1 is its own claim).
        Assert.True(await broker.WaitForLogAsync("New client connected from 203.0.113.50:0 as xff-trusted", Short), broker.Log);

        using var untrusted = await RawMqttClient.ConnectWebSocketAsync(untrustedPort,
            configure: o => o.SetRequestHeader("X-Forwarded-For", Chain));
        await untrusted.SendAsync(RawMqttClient.Connect("xff-untrusted"));
        Assert.Equal(2, (await untrusted.ReadAsync(Short))?.Type);
        Assert.True(await broker.WaitForLogAsync("as xff-untrusted", Short), broker.Log);
        Assert.Matches(@"New client connected from 127\.0\.0\.1:[1-9]\d* as xff-untrusted", broker.Log);
    }

    [Fact]
    public async Task Log_type_websockets_alone_logs_websocket_connections_and_nothing_else()
    {
        int port = FreePort.Next();
        string dir = MidgeProcess.NewDirectory();
        string conf = Path.Combine(dir, "mosquitto.conf");
        File.WriteAllLines(conf, [$"listener {port} 127.0.0.1", "protocol websockets", "allow_anonymous true", "log_dest stderr", "log_type websockets"]);
        await using var broker = await MidgeProcess.StartWithArgumentsAsync(port, "-c", conf);
        using (var client = await RawMqttClient.ConnectWebSocketAsync(port))
        {
            await client.SendAsync(RawMqttClient.Connect("ws-logged"));
            Assert.Equal(2, (await client.ReadAsync(Short))?.Type);
            Assert.True(await broker.WaitForLogAsync("WebSocket connection from 127.0.0.1:", Short), broker.Log);
            Assert.Contains("path /mqtt, subprotocol mqtt", broker.Log);
        }
        Assert.True(await broker.WaitForLogAsync("closed (close code", Short), broker.Log);
        Assert.DoesNotContain("New client connected", broker.Log);
        Assert.DoesNotContain("Opening websockets listen socket", broker.Log);
    }

    /// <summary>mosquitto_pub → HAProxy (send-proxy) → midge → HAProxy (send-proxy-v2) → mosquitto_sub. HAProxy reaches
    /// the broker from 127.0.0.3, which the broker denies: only clients named by the headers (127.0.0.1) get in, and a
    /// third HAProxy route without a header, to a listener without the PROXY protocol, is refused.</summary>
    [Fact]
    public async Task Through_haproxy_send_proxy_and_send_proxy_v2()
    {
        int v1Port = FreePort.Next(), plainPort = FreePort.Next(), haV1 = FreePort.Next(), haV2 = FreePort.Next(), haPlain = FreePort.Next();
        await using var broker = await MidgeProcess.StartAsync("enable_proxy_protocol 2", "deny_address 127.0.0.3",
            $"listener {v1Port} 127.0.0.1", "enable_proxy_protocol 1", "deny_address 127.0.0.3",
            $"listener {plainPort} 127.0.0.1", "deny_address 127.0.0.3");
        await WaitForListenersAsync(v1Port, plainPort);
        string dir = MidgeProcess.NewDirectory();
        string cfg = Path.Combine(dir, "haproxy.cfg");
        File.WriteAllLines(cfg,
        [
            "defaults", "  mode tcp", "  timeout connect 5s", "  timeout client 30s", "  timeout server 30s",
            "frontend v2", $"  bind 127.0.0.1:{haV2}", "  default_backend midge_v2",
            "backend midge_v2", $"  server midge 127.0.0.1:{broker.Port} source 127.0.0.3 send-proxy-v2",
            "frontend v1", $"  bind 127.0.0.1:{haV1}", "  default_backend midge_v1",
            "backend midge_v1", $"  server midge 127.0.0.1:{v1Port} source 127.0.0.3 send-proxy",
            "frontend plain", $"  bind 127.0.0.1:{haPlain}", "  default_backend midge_plain",
            "backend midge_plain", $"  server midge 127.0.0.1:{plainPort} source 127.0.0.3",
        ]);
        using var haproxy = PeerProcess.Start("haproxy", ["-db", "-f", cfg], dir);
        try
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (!await PortOpenAsync(haV1) || !await PortOpenAsync(haV2) || !await PortOpenAsync(haPlain))
            {
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10) && !haproxy.HasExited, "haproxy did not start: " + haproxy.Stderr);
                await Task.Delay(50);
            }
            string topic = "haproxy/" + Guid.NewGuid().ToString("N");
            using var sub = await MosquittoClients.SubscribeAsync(haV2, "%t|%p", "-t", topic, "-C", "1", "-i", "sub-via-haproxy");
            var pub = await MosquittoClients.PublishAsync(haV1, "-t", topic, "-m", "through", "-i", "pub-via-haproxy");
            Assert.True(pub.ExitCode == 0, pub.ToString());
            var (result, messages) = await sub.WaitAsync();
            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.Equal([$"{topic}|through"], messages);
            // The log is written by its own thread: the lines may come a moment after the clients are done.
            Assert.True(await broker.WaitForLogAsync("as sub-via-haproxy", Short), broker.Log);
            Assert.True(await broker.WaitForLogAsync("as pub-via-haproxy", Short), broker.Log);
            Assert.Matches(@"New client connected from 127\.0\.0\.1:\d+ as sub-via-haproxy", broker.Log);
            Assert.Matches(@"New client connected from 127\.0\.0\.1:\d+ as pub-via-haproxy", broker.Log);

            // The control: without a PROXY header, HAProxy's own address (127.0.0.3) is the one checked, and denied.
            var direct = await MosquittoClients.PublishAsync(haPlain, "-t", topic, "-m", "direct", "-i", "pub-no-header");
            Assert.True(direct.ExitCode != 0, direct.ToString());
            Assert.True(await broker.WaitForLogAsync("Connection from 127.0.0.3:", Short), broker.Log);
            Assert.Contains("refused: address not allowed", broker.Log);
            Assert.DoesNotContain("as pub-no-header", broker.Log);
        }
        finally
        {
            haproxy.KillTree();
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>Waits until the broker's other listeners listen (it was started when its first one accepted).</summary>
    private static async Task WaitForListenersAsync(params int[] ports)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        foreach (int port in ports)
        {
            while (!await PortOpenAsync(port))
            {
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"nothing listens on {port}");
                await Task.Delay(25);
            }
        }
    }

    /// <summary>Whether something listens on <paramref name="port"/>, without connecting to it (a connection to HAProxy
    /// would reach the broker as a connection without a header).</summary>
    private static async Task<bool> PortOpenAsync(int port)
    {
        var listening = await File.ReadAllTextAsync("/proc/net/tcp");
        string hex = ":" + port.ToString("X4", CultureInfo.InvariantCulture) + " ";
        return listening.Split('\n').Any(l => l.Contains(hex, StringComparison.Ordinal) && l.Split(' ', StringSplitOptions.RemoveEmptyEntries) is [_, var local, _, "0A", ..] && local.EndsWith(hex.Trim(), StringComparison.Ordinal));
    }
}
