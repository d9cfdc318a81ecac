using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using Midge.TestKit;

namespace Midge.Integration.Tests;

/// <summary><c>protocol websockets</c> listeners (MQTT over WebSocket, WSS, http_dir), driven by MQTT.js, paho-mqtt,
/// Debian's mosquitto clients on the TCP listener beside them, and .NET's ClientWebSocket for bad input.</summary>
public sealed class WebSocketTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);
    private readonly TestPki _pki = new();

    public void Dispose() => _pki.Dispose();

    private static string[] WebSocketListener(int port, params string[] more) =>
        [$"listener {port} 127.0.0.1", "protocol websockets", .. more];

    /// <summary>Starts the broker and waits until the WebSocket listeners accept too (the start waits for the TCP one).</summary>
    private static async Task<MidgeProcess> StartAsync(string[] lines, params int[] webSocketPorts)
    {
        var broker = await MidgeProcess.StartAsync(lines);
        foreach (int port in webSocketPorts)
        {
            var deadline = DateTime.UtcNow + Timeout;
            while (!await FreePort.AcceptsAsync(port))
            {
                if (DateTime.UtcNow > deadline) throw new TimeoutException($"port {port} does not accept: {broker.Log}");
                await Task.Delay(20);
            }
        }
        return broker;
    }

    private static string Port(int port) => port.ToString(CultureInfo.InvariantCulture);

    [Theory]
    [InlineData("ws")]
    [InlineData("wss")]
    public async Task Mqtt_js_on_path_mqtt_exchanges_messages_with_tcp_clients(string scheme)
    {
        int ws = FreePort.Next();
        string[] tls = [];
        if (scheme == "wss")
        {
            var ca = _pki.CreateCa("ca");
            _pki.CreateServer(ca, "server");
            tls = [$"certfile {_pki.PathOf("server.pem")}", $"keyfile {_pki.PathOf("server.key")}"];
        }
        await using var broker = await StartAsync(WebSocketListener(ws, tls), ws);
        Assert.True(await broker.WaitForLogAsync($"Opening websockets listen socket on port {ws}.", Timeout), broker.Log);

        using var tcpSub = await MosquittoClients.SubscribeAsync(broker.Port, "%t %p", "-t", "from-ws/#", "-C", "1", "-q", "1");
        using var peer = MqttJs.Start("websocket.mjs", ws, scheme, _pki.PathOf("ca.pem"));
        Assert.True(await peer.WaitForOutputAsync("ready", TimeSpan.FromSeconds(10)), peer.Stdout + peer.Stderr + broker.Log);
        var pub = await MosquittoClients.PublishAsync(broker.Port, "-t", "to-ws/tcp", "-m", "hello from tcp", "-q", "1");
        Assert.Equal(0, pub.ExitCode);

        var r = MqttJs.Parse(await peer.WaitAsync(MqttJs.PeerTimeout));
        Assert.Equal(0, r.GetProperty("connack").GetInt32());
        Assert.Equal([1, 1], MqttJs.Ints(r.GetProperty("granted")));
        Assert.Equal(0, r.GetProperty("puback").GetInt32());
        Assert.True(r.GetProperty("large_ok").GetBoolean(), r.ToString()); // 200 kB in one message each way
        Assert.Equal(["to-ws/tcp hello from tcp"], MqttJs.Strings(r.GetProperty("from_tcp")));
        Assert.Equal(["from-ws/hello hello from websocket"], (await tcpSub.WaitAsync()).Messages);
    }

    [Fact]
    public async Task Paho_on_path_slash_subscribes_and_publishes()
    {
        int ws = FreePort.Next();
        await using var broker = await StartAsync(WebSocketListener(ws), ws);
        const string Script = """
            import sys, time, paho.mqtt.client as mqtt
            try:
                c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="paho-ws", transport="websockets")
            except AttributeError:
                c = mqtt.Client(client_id="paho-ws", transport="websockets")
            c.ws_set_options(path="/")
            got = []
            c.on_message = lambda client, userdata, m: got.append(m.topic + " " + m.payload.decode())
            c.connect("127.0.0.1", int(sys.argv[1]))
            c.loop_start()
            c.subscribe("paho/#", 1)
            time.sleep(0.5)
            c.publish("paho/x", "over websockets", qos=1).wait_for_publish(5)
            deadline = time.time() + 5
            while not got and time.time() < deadline:
                time.sleep(0.05)
            c.disconnect()
            c.loop_stop()
            print("|".join(got))
            """;
        using var tcpSub = await MosquittoClients.SubscribeAsync(broker.Port, "%t %p", "-t", "paho/#", "-C", "1");
        var r = await PeerProcess.RunAsync(PeerProcess.Python, ["-c", Script, Port(ws)], TimeSpan.FromSeconds(20));
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("paho/x over websockets", r.Lines.Last());
        Assert.Equal(["paho/x over websockets"], (await tcpSub.WaitAsync()).Messages);
        Assert.True(await broker.WaitForLogAsync("as paho-ws (p2, c1, k60).", Timeout), broker.Log);
    }

    [Fact]
    public async Task Packets_split_across_messages_or_sharing_one_are_read_and_a_text_frame_closes_with_1003()
    {
        int ws = FreePort.Next();
        await using var broker = await StartAsync(WebSocketListener(ws), ws);
        using var client = await RawMqttClient.ConnectWebSocketAsync(ws, "/any/path");
        Assert.Equal("mqtt", client.WebSocket!.SubProtocol);

        // CONNECT in two messages.
        byte[] connect = RawMqttClient.Connect("ws-raw");
        await client.SendAsync(connect[..5]);
        await client.SendAsync(connect[5..]);
        var connack = await client.ReadAsync(Timeout);
        Assert.Equal(2, connack?.Type);
        Assert.Equal(0, connack!.Body[1]);

        // SUBSCRIBE and a PUBLISH to it in one message: SUBACK, then the message comes back.
        await client.SendAsync([.. RawMqttClient.Subscribe(1, "raw/#"), .. RawMqttClient.Publish("raw/t", "both"u8.ToArray())]);
        Assert.Equal(9, (await client.ReadAsync(Timeout))?.Type);
        var publish = await client.ReadAsync(Timeout);
        Assert.Equal(3, publish?.Type);
        Assert.EndsWith("both", Encoding.UTF8.GetString(publish!.Body), StringComparison.Ordinal);

        // Text is not MQTT: the close says so.
        await client.WebSocket.SendAsync("hello"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        Assert.Empty(await client.ReadUntilClosedAsync(Timeout));
        Assert.Equal(WebSocketCloseStatus.InvalidMessageType, client.WebSocket.CloseStatus);
        Assert.True(await broker.WaitForLogAsync("sent a text frame: closed (1003)", Timeout), broker.Log);
    }

    [Fact]
    public async Task A_packet_larger_than_the_input_buffer_arrives_whole_in_many_messages()
    {
        int ws = FreePort.Next();
        await using var broker = await StartAsync(WebSocketListener(ws), ws);
        using var client = await RawMqttClient.ConnectWebSocketAsync(ws);
        await client.SendAsync(RawMqttClient.Connect("ws-large"));
        Assert.Equal(2, (await client.ReadAsync(Timeout))?.Type);
        await client.SendAsync(RawMqttClient.Subscribe(1, "large"));
        Assert.Equal(9, (await client.ReadAsync(Timeout))?.Type);
        var payload = new byte[3 * 1024 * 1024];
        Random.Shared.NextBytes(payload);
        byte[] publish = RawMqttClient.Publish("large", payload);
        for (int offset = 0; offset < publish.Length; offset += 64 * 1024)
        {
            await client.SendAsync(publish[offset..Math.Min(publish.Length, offset + 64 * 1024)]);
        }
        var back = await client.ReadAsync(TimeSpan.FromSeconds(15));
        Assert.Equal(3, back?.Type);
        Assert.True(back!.Body.AsSpan(7).SequenceEqual(payload)); // after the topic "large" (2 + 5 bytes)
    }

    [Fact]
    public async Task An_oversized_packet_gets_the_same_answer_as_over_tcp()
    {
        int ws = FreePort.Next();
        await using var broker = await StartAsync(WebSocketListener(ws, "max_packet_size 200"), ws);
        using var client = await RawMqttClient.ConnectWebSocketAsync(ws);
        await client.SendAsync(RawMqttClient.Connect("ws-big", RawMqttClient.V5));
        Assert.Equal(2, (await client.ReadAsync(Timeout))?.Type);
        await client.SendAsync(RawMqttClient.Publish("big", new byte[300], RawMqttClient.V5));
        var disconnect = Assert.Single(await client.ReadUntilClosedAsync(Timeout));
        Assert.Equal(14, disconnect.Type);
        Assert.Equal(0x95, disconnect.Body[0]);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, client.WebSocket!.CloseStatus);
    }

    [Fact]
    public async Task A_handshake_without_an_mqtt_subprotocol_gets_400_and_a_log_line_and_mqttv31_is_accepted()
    {
        int ws = FreePort.Next();
        await using var broker = await StartAsync(WebSocketListener(ws), ws);
        foreach (string[] offered in new[] { Array.Empty<string>(), ["chat"] })
        {
            var socket = new ClientWebSocket();
            await Assert.ThrowsAsync<WebSocketException>(() => RawMqttClient.ConnectWebSocketAsync(ws, subProtocols: offered,
                configure: o => o.CollectHttpResponseDetails = true, socket: socket));
            Assert.Equal(HttpStatusCode.BadRequest, socket.HttpStatusCode);
            socket.Dispose();
        }
        Assert.True(await broker.WaitForLogAsync("refused (400): no MQTT subprotocol offered (mqtt or mqttv3.1; offered: none)", Timeout), broker.Log);
        Assert.True(await broker.WaitForLogAsync("offered: chat).", Timeout), broker.Log);

        using var v31 = await RawMqttClient.ConnectWebSocketAsync(ws, "/", subProtocols: ["mqttv3.1"]);
        Assert.Equal("mqttv3.1", v31.WebSocket!.SubProtocol);
        await v31.SendAsync(RawMqttClient.Connect("ws-31", RawMqttClient.V31));
        Assert.Equal(2, (await v31.ReadAsync(Timeout))?.Type);
    }

    [Fact]
    public async Task Wss_with_require_certificate_takes_the_user_name_from_the_client_certificate()
    {
        var ca = _pki.CreateCa("ca");
        _pki.CreateServer(ca, "server");
        var alice = _pki.CreateClient(ca, "alice", "CN=alice, O=Midge Tests");
        int ws = FreePort.Next();
        await using var broker = await StartAsync(WebSocketListener(ws, $"certfile {_pki.PathOf("server.pem")}",
            $"keyfile {_pki.PathOf("server.key")}", $"cafile {_pki.PathOf("ca.pem")}", "require_certificate true", "use_identity_as_username true"), ws);
        using var client = await RawMqttClient.ConnectWebSocketAsync(ws, tls: true, configure: o => o.ClientCertificates.Add(alice));
        await client.SendAsync(RawMqttClient.Connect("ws-alice"));
        Assert.Equal(0, (await client.ReadAsync(Timeout))!.Body[1]);
        Assert.True(await broker.WaitForLogAsync("as ws-alice (p2, c1, k60, u'alice').", Timeout), broker.Log);

        // Without a certificate the TLS handshake fails.
        await Assert.ThrowsAsync<WebSocketException>(() => RawMqttClient.ConnectWebSocketAsync(ws, tls: true));
    }

    [Fact]
    public async Task Http_dir_serves_its_files_and_nothing_outside_it()
    {
        string dir = Directory.CreateTempSubdirectory("midge-ws-").FullName;
        try
        {
            string www = Path.Combine(dir, "www");
            Directory.CreateDirectory(Path.Combine(www, "sub"));
            File.WriteAllText(Path.Combine(www, "index.html"), "<p>midge</p>");
            File.WriteAllText(Path.Combine(www, "sub", "app.js"), "let x = 1;");
            File.WriteAllText(Path.Combine(dir, "secret.txt"), "secret");
            File.CreateSymbolicLink(Path.Combine(www, "leak.txt"), Path.Combine(dir, "secret.txt"));
            int ws = FreePort.Next(), bare = FreePort.Next();
            await using var broker = await StartAsync([.. WebSocketListener(ws, $"http_dir {www}"), .. WebSocketListener(bare)], ws, bare);

            Assert.Equal(("200", "<p>midge</p>"), await GetAsync(ws, "/"));
            Assert.Equal(("200", "let x = 1;"), await GetAsync(ws, "/sub/app.js"));
            Assert.Equal("404", (await GetAsync(ws, "/sub/")).Status); // no index.html there, and no listing
            Assert.Equal("404", (await GetAsync(ws, "/sub")).Status);
            Assert.Equal("404", (await GetAsync(ws, "/missing.html")).Status);
            foreach (var path in new[] { "/../secret.txt", "/sub/../../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt" })
            {
                var (status, body) = await GetAsync(ws, path);
                Assert.NotEqual("200", status);
                Assert.DoesNotContain("secret", body, StringComparison.Ordinal);
            }
            Assert.Equal("403", (await GetAsync(ws, "/leak.txt")).Status);
            Assert.True(await broker.WaitForLogAsync("/leak.txt is outside http_dir", Timeout), broker.Log);
            Assert.Equal("405", (await GetAsync(ws, "/", "POST")).Status);

            // Without http_dir plain HTTP gets 404; MQTT still works on both.
            Assert.Equal("404", (await GetAsync(bare, "/")).Status);
            foreach (int port in new[] { ws, bare })
            {
                using var client = await RawMqttClient.ConnectWebSocketAsync(port, "/");
                await client.SendAsync(RawMqttClient.Connect("ws-files-" + port));
                Assert.Equal(2, (await client.ReadAsync(Timeout))?.Type);
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Websockets_headers_size_limits_the_request_headers()
    {
        int ws = FreePort.Next();
        await using var broker = await StartAsync([.. WebSocketListener(ws), "websockets_headers_size 1024"], ws);
        using var client = await RawMqttClient.ConnectWebSocketAsync(ws);
        var socket = new ClientWebSocket();
        await Assert.ThrowsAsync<WebSocketException>(() => RawMqttClient.ConnectWebSocketAsync(ws, socket: socket,
            configure: o =>
            {
                o.CollectHttpResponseDetails = true;
                o.SetRequestHeader("Cookie", new string('c', 2000));
            }));
        Assert.Equal(HttpStatusCode.RequestHeaderFieldsTooLarge, socket.HttpStatusCode);
        socket.Dispose();
        Assert.True(await broker.WaitForLogAsync("headers larger than websockets_headers_size 1024", Timeout), broker.Log);
    }

    /// <summary>A GET (or <paramref name="method"/>) written by hand, so the path reaches the server as written.</summary>
    private static async Task<(string Status, string Body)> GetAsync(int port, string path, string method = "GET")
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, port);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"));
        using var reader = new StreamReader(stream, Encoding.UTF8);
        using var cts = new CancellationTokenSource(Timeout);
        string response = await reader.ReadToEndAsync(cts.Token);
        string status = response.Split(' ', 3)[1];
        int bodyStart = response.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        return (status, bodyStart < 0 ? "" : response[(bodyStart + 4)..]);
    }
}
