using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Midge.TestKit;

namespace Midge.Integration.Tests;

/// <summary>
/// The HTTP management API (docs/http-api.md) of the real <c>midge</c> process, called with <see cref="HttpClient"/>
/// (and curl once), its effects checked with real MQTT peers: mosquitto_sub gets what POST /publish sent, DELETE
/// kicks a connected client, bans refuse the client id, errors are JSON with the right status, wrong keys are logged
/// and throttled, paging follows EMQX's meta object.
/// </summary>
public sealed class HttpApiTests
{
    private static readonly TimeSpan Short = TimeSpan.FromSeconds(5);

    /// <summary>A broker with an MQTT listener and a <c>protocol http</c> listener whose keys file has
    /// <c>admin:secret</c> (plain text) and whatever <paramref name="keyLines"/> add.</summary>
    private sealed class ApiBroker : IAsyncDisposable
    {
        public required MidgeProcess Broker { get; init; }
        public required int HttpPort { get; init; }
        public required HttpClient Http { get; init; }
        public required string Directory { get; init; }

        public static async Task<ApiBroker> StartAsync(string[]? keyLines = null, params string[] extra)
        {
            string dir = MidgeProcess.NewDirectory();
            File.WriteAllLines(Path.Combine(dir, "keys"), ["# the API's keys", "admin:secret", .. keyLines ?? []]);
            int httpPort = FreePort.Next();
            var broker = await MidgeProcess.StartInAsync(dir, [.. extra, $"listener {httpPort} 127.0.0.1", "protocol http", "api_key_file keys"]);
            await WaitForHttpAsync(httpPort);
            var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{httpPort}"), Timeout = Short };
            http.DefaultRequestHeaders.Authorization = Basic("admin", "secret");
            return new ApiBroker { Broker = broker, HttpPort = httpPort, Http = http, Directory = dir };
        }

        public async ValueTask DisposeAsync()
        {
            Http.Dispose();
            await Broker.DisposeAsync();
        }
    }

    /// <summary>The broker is started once its MQTT port accepts; Kestrel may bind the HTTP listener a moment later.</summary>
    internal static async Task WaitForHttpAsync(int port)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!await FreePort.AcceptsAsync(port))
        {
            Assert.True(clock.Elapsed < Short, $"the HTTP listener on {port} never accepted");
            await Task.Delay(50);
        }
    }

    private static AuthenticationHeaderValue Basic(string key, string secret) =>
        new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(key + ":" + secret)));

    private static StringContent JsonBody(string json) => new(json, Encoding.UTF8, "application/json");

    private static async Task<JsonElement> JsonOf(HttpResponseMessage response)
    {
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return doc.RootElement.Clone();
    }

    private static async Task AssertError(HttpResponseMessage response, HttpStatusCode status, string code)
    {
        Assert.Equal(status, response.StatusCode);
        var body = await JsonOf(response);
        Assert.Equal(code, body.GetProperty("code").GetString());
        Assert.False(string.IsNullOrEmpty(body.GetProperty("message").GetString()));
        Assert.DoesNotContain("   at ", body.GetProperty("message").GetString(), StringComparison.Ordinal); // no stack trace
    }

    [Fact]
    public async Task Publish_ReachesMosquittoSub_WithQoSRetainAndBase64()
    {
        await using var api = await ApiBroker.StartAsync();
        using var sub = await MosquittoClients.SubscribeAsync(api.Broker.Port, "%t %p %q", "-t", "api/#", "-q", "1");
        var response = await api.Http.PostAsync("/api/v5/publish", JsonBody("""{"topic":"api/plain","payload":"hello","qos":1}"""));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(32, (await JsonOf(response)).GetProperty("id").GetString()!.Length);
        Assert.True(await sub.WaitForMessageAsync("api/plain hello 1", Short), sub.Output);

        response = await api.Http.PostAsync("/api/v5/publish", JsonBody("""{"topic":"api/b64","payload":"aGk=","payload_encoding":"base64"}"""));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.True(await sub.WaitForMessageAsync("api/b64 hi 0", Short), sub.Output);

        // Nobody subscribes: EMQX's 202 with reason code 16.
        response = await api.Http.PostAsync("/api/v5/publish", JsonBody("""{"topic":"nobody/here","payload":"x"}"""));
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.Equal(16, (await JsonOf(response)).GetProperty("reason_code").GetInt32());

        response = await api.Http.PostAsync("/api/v5/publish/bulk",
            JsonBody("""[{"topic":"api/bulk/1","payload":"one"},{"topic":"api/bulk/2","payload":"two","qos":2}]"""));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(2, (await JsonOf(response)).GetArrayLength());
        Assert.True(await sub.WaitForMessageAsync("api/bulk/1 one 0", Short), sub.Output);
        Assert.True(await sub.WaitForMessageAsync("api/bulk/2 two 1", Short), sub.Output); // granted QoS 1
    }

    [Fact]
    public async Task Publish_WithMqtt5Properties_ArrivesWithThem()
    {
        await using var api = await ApiBroker.StartAsync();
        using var sub = await MosquittoClients.SubscribeAsync(api.Broker.Port, "%t %p %P", "-t", "props/#", "-V", "mqttv5");
        var response = await api.Http.PostAsync("/api/v5/publish", JsonBody(
            """{"topic":"props/1","payload":"p","properties":{"user_properties":{"k":"v"},"content_type":"text/plain","message_expiry_interval":60}}"""));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.True(await sub.WaitForMessageAsync("props/1 p k:v", Short), sub.Output);
    }

    [Fact]
    public async Task Curl_PublishesWithAKeyThatMidgeApikeyHashed()
    {
        string dir = MidgeProcess.NewDirectory();
        var made = await MidgeProcess.RunAsync(TimeSpan.FromSeconds(30), "apikey", "-c", Path.Combine(dir, "hashed"), "ops");
        Assert.Equal(0, made.ExitCode);
        string printed = made.Stdout.Trim().Split('\n')[^1];
        Assert.StartsWith("ops:", printed, StringComparison.Ordinal);
        string line = File.ReadAllText(Path.Combine(dir, "hashed")).Trim();
        Assert.StartsWith("ops:$7$", line, StringComparison.Ordinal); // only the hash is kept
        await using var api = await ApiBroker.StartAsync([line]);
        using var sub = await MosquittoClients.SubscribeAsync(api.Broker.Port, "%t %p", "-t", "curl/t");
        var curl = await PeerProcess.RunAsync("curl", ["-s", "-S", "-f", "-u", printed, "-H", "Content-Type: application/json",
            "-d", """{"topic":"curl/t","payload":"from curl"}""", $"http://127.0.0.1:{api.HttpPort}/api/v5/publish"], Short);
        Assert.True(curl.ExitCode == 0, curl.ToString());
        Assert.Contains("\"id\"", curl.Stdout, StringComparison.Ordinal);
        Assert.True(await sub.WaitForMessageAsync("curl/t from curl", Short), sub.Output);
    }

    [Fact]
    public async Task Retained_ListReadDelete()
    {
        await using var api = await ApiBroker.StartAsync();
        Assert.Equal(0, (await MosquittoClients.PublishAsync(api.Broker.Port, "-t", "keep/a", "-m", "A", "-r", "-q", "1")).ExitCode);
        var response = await api.Http.PostAsync("/api/v5/publish", JsonBody("""{"topic":"keep/b","payload":"B","retain":true}"""));
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);

        var list = await JsonOf(await api.Http.GetAsync("/api/v5/mqtt/retainer/messages?topic=keep/%23"));
        Assert.Equal(["keep/a", "keep/b"], list.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("topic").GetString()));
        Assert.Equal(2, list.GetProperty("meta").GetProperty("count").GetInt32());

        var one = await JsonOf(await api.Http.GetAsync("/api/v5/mqtt/retainer/message/keep%2Fa"));
        Assert.Equal("A", Encoding.UTF8.GetString(Convert.FromBase64String(one.GetProperty("payload").GetString()!)));
        Assert.Equal(1, one.GetProperty("qos").GetInt32());

        Assert.Equal(HttpStatusCode.NoContent, (await api.Http.DeleteAsync("/api/v5/mqtt/retainer/message/keep%2Fa")).StatusCode);
        await AssertError(await api.Http.GetAsync("/api/v5/mqtt/retainer/message/keep%2Fa"), HttpStatusCode.NotFound, "NOT_FOUND");
        using var check = await MosquittoClients.SubscribeAsync(api.Broker.Port, "%t %p", "-t", "keep/#", "--retained-only");
        var (_, messages) = await check.WaitAsync();
        Assert.Equal(["keep/b B"], messages);

        Assert.Equal(HttpStatusCode.NoContent, (await api.Http.DeleteAsync("/api/v5/mqtt/retainer/messages")).StatusCode);
        list = await JsonOf(await api.Http.GetAsync("/api/v5/mqtt/retainer/messages?topic=keep/%23"));
        Assert.Equal(0, list.GetProperty("meta").GetProperty("count").GetInt32());
    }

    [Fact]
    public async Task Clients_DetailsThenDelete_KicksTheClient()
    {
        await using var api = await ApiBroker.StartAsync();
        using var client = await RawMqttClient.ConnectMqttAsync(api.Broker.Port, "kick-me", RawMqttClient.V5);
        await client.SendAsync(RawMqttClient.Subscribe(1, "k/#", 1, RawMqttClient.V5));
        Assert.Equal(9, (await client.ReadAsync(Short))!.Type); // SUBACK

        var c = await JsonOf(await api.Http.GetAsync("/api/v5/clients/kick-me"));
        Assert.Equal("kick-me", c.GetProperty("clientid").GetString());
        Assert.True(c.GetProperty("connected").GetBoolean());
        Assert.Equal(5, c.GetProperty("proto_ver").GetInt32());
        Assert.Equal("127.0.0.1", c.GetProperty("ip_address").GetString());
        Assert.Equal(1, c.GetProperty("subscriptions_cnt").GetInt32());
        Assert.Equal(0, c.GetProperty("mqueue_len").GetInt32());
        Assert.Equal(0, c.GetProperty("inflight_cnt").GetInt32());
        Assert.True(c.TryGetProperty("inflight_max", out _));
        Assert.True(c.TryGetProperty("connected_at", out _));

        var subs = await JsonOf(await api.Http.GetAsync("/api/v5/clients/kick-me/subscriptions"));
        Assert.Equal("k/#", subs[0].GetProperty("topic").GetString());
        Assert.Equal(1, subs[0].GetProperty("qos").GetInt32());

        Assert.Equal(HttpStatusCode.NoContent, (await api.Http.DeleteAsync("/api/v5/clients/kick-me")).StatusCode);
        var packets = await client.ReadUntilClosedAsync(Short);
        var disconnect = Assert.Single(packets, p => p.Type == 14);
        Assert.Equal(0x98, disconnect.Body[0]); // Administrative action
        // The session goes when the connection's close is handled, a moment after the answer.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        HttpResponseMessage gone;
        while ((gone = await api.Http.GetAsync("/api/v5/clients/kick-me")).StatusCode == HttpStatusCode.OK && clock.Elapsed < Short) await Task.Delay(50);
        await AssertError(gone, HttpStatusCode.NotFound, "CLIENTID_NOT_FOUND");
        Assert.True(await api.Broker.WaitForLogAsync("client 'kick-me' kicked by key 'admin'", Short), api.Broker.Log);
    }

    [Fact]
    public async Task Delete_KicksAConnectedMosquittoSub()
    {
        await using var api = await ApiBroker.StartAsync();
        using var sub = await MosquittoClients.SubscribeAsync(api.Broker.Port, "%t", "-t", "x", "-i", "mosq-kick", "-V", "mqttv5");
        Assert.Equal(HttpStatusCode.NoContent, (await api.Http.DeleteAsync("/api/v5/clients/mosq-kick")).StatusCode);
        Assert.True(await api.Broker.WaitForLogAsync("Sending DISCONNECT to mosq-kick (rc152)", Short), api.Broker.Log); // 0x98
        Assert.True(await api.Broker.WaitForLogAsync("Client mosq-kick disconnected", Short), api.Broker.Log);
    }

    [Fact]
    public async Task Clients_PagingAndFilters_FollowEmqxMeta()
    {
        await using var api = await ApiBroker.StartAsync();
        var clients = new List<RawMqttClient>();
        try
        {
            for (int i = 0; i < 5; i++) clients.Add(await RawMqttClient.ConnectMqttAsync(api.Broker.Port, "page-" + i));
            var page2 = await JsonOf(await api.Http.GetAsync("/api/v5/clients?limit=2&page=2"));
            Assert.Equal(["page-2", "page-3"], page2.GetProperty("data").EnumerateArray().Select(c => c.GetProperty("clientid").GetString()));
            var meta = page2.GetProperty("meta");
            Assert.Equal(2, meta.GetProperty("page").GetInt32());
            Assert.Equal(2, meta.GetProperty("limit").GetInt32());
            Assert.Equal(5, meta.GetProperty("count").GetInt32());
            Assert.True(meta.GetProperty("hasnext").GetBoolean());
            var page3 = await JsonOf(await api.Http.GetAsync("/api/v5/clients?limit=2&page=3"));
            Assert.Single(page3.GetProperty("data").EnumerateArray());
            Assert.False(page3.GetProperty("meta").GetProperty("hasnext").GetBoolean());

            var filtered = await JsonOf(await api.Http.GetAsync("/api/v5/clients?like_clientid=-4&conn_state=connected&proto_ver=v4"));
            Assert.Equal("page-4", filtered.GetProperty("data")[0].GetProperty("clientid").GetString());
            Assert.Equal(1, filtered.GetProperty("meta").GetProperty("count").GetInt32());

            await AssertError(await api.Http.GetAsync("/api/v5/clients?limit=0"), HttpStatusCode.BadRequest, "BAD_REQUEST");
            await AssertError(await api.Http.GetAsync("/api/v5/clients?limit=100000"), HttpStatusCode.BadRequest, "BAD_REQUEST");
            await AssertError(await api.Http.GetAsync("/api/v5/clients?page=x"), HttpStatusCode.BadRequest, "BAD_REQUEST");
        }
        finally
        {
            foreach (var c in clients) c.Dispose();
        }
    }

    [Fact]
    public async Task SubscribeOnBehalf_DeliversToTheClient_AndShowsInSubscriptionsAndTopics()
    {
        await using var api = await ApiBroker.StartAsync();
        using var client = await RawMqttClient.ConnectMqttAsync(api.Broker.Port, "behalf");
        var response = await api.Http.PostAsync("/api/v5/clients/behalf/subscribe", JsonBody("""{"topic":"o/+","qos":1}"""));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(0, (await MosquittoClients.PublishAsync(api.Broker.Port, "-t", "o/1", "-m", "via api", "-q", "1")).ExitCode);
        var publish = await client.ReadAsync(Short);
        Assert.NotNull(publish);
        Assert.Equal(3, publish.Type);
        Assert.Contains("via api", Encoding.UTF8.GetString(publish.Body), StringComparison.Ordinal);

        var all = await JsonOf(await api.Http.GetAsync("/api/v5/subscriptions?clientid=behalf"));
        Assert.Equal("o/+", all.GetProperty("data")[0].GetProperty("topic").GetString());
        var topics = await JsonOf(await api.Http.GetAsync("/api/v5/topics"));
        Assert.Contains(topics.GetProperty("data").EnumerateArray(), t => t.GetProperty("topic").GetString() == "o/+");

        response = await api.Http.PostAsync("/api/v5/clients/behalf/unsubscribe", JsonBody("""{"topic":"o/+"}"""));
        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        all = await JsonOf(await api.Http.GetAsync("/api/v5/subscriptions?clientid=behalf"));
        Assert.Equal(0, all.GetProperty("meta").GetProperty("count").GetInt32());
        await AssertError(await api.Http.PostAsync("/api/v5/clients/nobody/subscribe", JsonBody("""{"topic":"a"}""")),
            HttpStatusCode.NotFound, "CLIENTID_NOT_FOUND");
        await AssertError(await api.Http.PostAsync("/api/v5/clients/behalf/subscribe", JsonBody("""{"topic":"a/#/b"}""")),
            HttpStatusCode.BadRequest, "BAD_REQUEST");
    }

    [Fact]
    public async Task Banned_RefusesTheClientId_UntilLifted()
    {
        await using var api = await ApiBroker.StartAsync();
        using var connected = await RawMqttClient.ConnectMqttAsync(api.Broker.Port, "villain", RawMqttClient.V5);
        var response = await api.Http.PostAsync("/api/v5/banned", JsonBody("""{"as":"clientid","who":"villain","reason":"test"}"""));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("infinity", (await JsonOf(response)).GetProperty("until").GetString());
        // A ban disconnects the client it matches.
        Assert.Contains(await connected.ReadUntilClosedAsync(Short), p => p.Type == 14);

        var refused = await MosquittoClients.PublishAsync(api.Broker.Port, "-t", "t", "-m", "m", "-i", "villain");
        Assert.NotEqual(0, refused.ExitCode);
        Assert.True(await api.Broker.WaitForLogAsync("refused: Banned", Short), api.Broker.Log);

        var list = await JsonOf(await api.Http.GetAsync("/api/v5/banned"));
        var ban = Assert.Single(list.GetProperty("data").EnumerateArray());
        Assert.Equal("clientid", ban.GetProperty("as").GetString());
        Assert.Equal("villain", ban.GetProperty("who").GetString());
        await AssertError(await api.Http.PostAsync("/api/v5/banned", JsonBody("""{"as":"clientid","who":"villain"}""")),
            HttpStatusCode.Conflict, "ALREADY_EXISTS");
        await AssertError(await api.Http.PostAsync("/api/v5/banned", JsonBody("""{"as":"nobody","who":"x"}""")),
            HttpStatusCode.BadRequest, "BAD_REQUEST");

        Assert.Equal(HttpStatusCode.NoContent, (await api.Http.DeleteAsync("/api/v5/banned/clientid/villain")).StatusCode);
        Assert.Equal(0, (await MosquittoClients.PublishAsync(api.Broker.Port, "-t", "t", "-m", "m", "-i", "villain")).ExitCode);
        await AssertError(await api.Http.DeleteAsync("/api/v5/banned/clientid/villain"), HttpStatusCode.NotFound, "NOT_FOUND");
    }

    [Fact]
    public async Task FlappingBans_AreListed_AndLiftedByTheApi()
    {
        await using var api = await ApiBroker.StartAsync(null, "flapping_detect true", "flapping_max_connects 2", "flapping_window 60",
            "flapping_ban_time 300");
        for (int i = 0; i < 3; i++) await MosquittoClients.PublishAsync(api.Broker.Port, "-t", "t", "-m", "m", "-i", "flapper");
        Assert.NotEqual(0, (await MosquittoClients.PublishAsync(api.Broker.Port, "-t", "t", "-m", "m", "-i", "flapper")).ExitCode);
        var list = await JsonOf(await api.Http.GetAsync("/api/v5/banned"));
        var ban = Assert.Single(list.GetProperty("data").EnumerateArray());
        Assert.Equal("flapper", ban.GetProperty("who").GetString());
        Assert.Equal("flapping_detect", ban.GetProperty("by").GetString());
        Assert.NotEqual("infinity", ban.GetProperty("until").GetString());
        Assert.Equal(HttpStatusCode.NoContent, (await api.Http.DeleteAsync("/api/v5/banned/clientid/flapper")).StatusCode);
        Assert.Equal(0, (await MosquittoClients.PublishAsync(api.Broker.Port, "-t", "t", "-m", "m", "-i", "flapper")).ExitCode);
    }

    [Fact]
    public async Task BadRequests_AreJsonErrors_WithTheRightStatus()
    {
        await using var api = await ApiBroker.StartAsync();
        await AssertError(await api.Http.PostAsync("/api/v5/publish", JsonBody("{bad json")), HttpStatusCode.BadRequest, "BAD_REQUEST");
        await AssertError(await api.Http.PostAsync("/api/v5/publish", JsonBody("[1]")), HttpStatusCode.BadRequest, "BAD_REQUEST");
        await AssertError(await api.Http.PostAsync("/api/v5/publish", JsonBody("""{"payload":"no topic"}""")), HttpStatusCode.BadRequest, "BAD_REQUEST");
        await AssertError(await api.Http.PostAsync("/api/v5/publish", JsonBody("""{"topic":"a/#"}""")), HttpStatusCode.BadRequest, "BAD_REQUEST");
        await AssertError(await api.Http.PostAsync("/api/v5/publish", JsonBody("""{"topic":"a","qos":3}""")), HttpStatusCode.BadRequest, "BAD_REQUEST");
        await AssertError(await api.Http.PostAsync("/api/v5/publish", JsonBody("""{"topic":"a","payload":"!!","payload_encoding":"base64"}""")),
            HttpStatusCode.BadRequest, "BAD_REQUEST");
        await AssertError(await api.Http.PostAsync("/api/v5/publish/bulk", JsonBody("""[{"topic":"ok"},{"topic":""}]""")),
            HttpStatusCode.BadRequest, "BAD_REQUEST");
        await AssertError(await api.Http.GetAsync("/api/v5/publish"), HttpStatusCode.MethodNotAllowed, "METHOD_NOT_ALLOWED");
        await AssertError(await api.Http.GetAsync("/api/v5/no/such/thing"), HttpStatusCode.NotFound, "NOT_FOUND");
        await AssertError(await api.Http.GetAsync("/elsewhere"), HttpStatusCode.NotFound, "NOT_FOUND");
        // A body announced beyond the limit is refused from its headers (raw: HttpClient would still be sending it).
        using (var tcp = new System.Net.Sockets.TcpClient())
        {
            await tcp.ConnectAsync(IPAddress.Loopback, api.HttpPort);
            var stream = tcp.GetStream();
            await stream.WriteAsync(Encoding.ASCII.GetBytes("POST /api/v5/publish HTTP/1.1\r\nHost: x\r\nAuthorization: " +
                Basic("admin", "secret") + "\r\nContent-Type: application/json\r\nContent-Length: 5000000\r\n\r\n{"));
            var buffer = new byte[4096];
            int n = await stream.ReadAsync(buffer).AsTask().WaitAsync(Short);
            string answer = Encoding.ASCII.GetString(buffer, 0, n);
            Assert.StartsWith("HTTP/1.1 413", answer, StringComparison.Ordinal);
            Assert.Contains("PAYLOAD_TOO_LARGE", answer, StringComparison.Ordinal);
        }
        Assert.False(api.Broker.HasExited);
        Assert.DoesNotContain("Exception", api.Broker.Log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WrongKey_Is401AndLogged_AndRepeatedFailuresAreThrottled()
    {
        await using var api = await ApiBroker.StartAsync();
        using var anonymous = new HttpClient { BaseAddress = api.Http.BaseAddress, Timeout = Short };
        await AssertError(await anonymous.GetAsync("/api/v5/clients"), HttpStatusCode.Unauthorized, "BAD_API_KEY_OR_SECRET");
        Assert.True(await api.Broker.WaitForLogAsync("request without credentials", Short), api.Broker.Log);
        // The OpenAPI document needs no key.
        var docs = await anonymous.GetAsync("/api-docs");
        Assert.Equal(HttpStatusCode.OK, docs.StatusCode);
        Assert.Equal("3.0.3", (await JsonOf(docs)).GetProperty("openapi").GetString());

        anonymous.DefaultRequestHeaders.Authorization = Basic("admin", "wrong");
        var response = await anonymous.GetAsync("/api/v5/clients");
        await AssertError(response, HttpStatusCode.Unauthorized, "BAD_API_KEY_OR_SECRET");
        Assert.NotEmpty(response.Headers.WwwAuthenticate);
        Assert.True(await api.Broker.WaitForLogAsync("failed login with key 'admin' from 127.0.0.1", Short), api.Broker.Log);
        // The request without credentials and this one were failures 1 and 2.
        for (int i = 3; i <= 5; i++) Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/api/v5/clients")).StatusCode);
        Assert.True(await api.Broker.WaitForLogAsync("failed to log in 5 times", Short), api.Broker.Log);
        // Blocked now, the right key included: the address waits.
        response = await api.Http.GetAsync("/api/v5/clients");
        await AssertError(response, (HttpStatusCode)429, "TOO_MANY_REQUESTS");
        Assert.NotNull(response.Headers.RetryAfter);
    }

    [Fact]
    public async Task ApiAllowAnonymous_LetsRequestsWithoutCredentialsIn_ButNotWrongOnes()
    {
        string dir = MidgeProcess.NewDirectory();
        int httpPort = FreePort.Next();
        await using var broker = await MidgeProcess.StartInAsync(dir, $"listener {httpPort} 127.0.0.1", "protocol http", "api_allow_anonymous true");
        await WaitForHttpAsync(httpPort);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{httpPort}"), Timeout = Short };
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/api/v5/nodes")).StatusCode);
        http.DefaultRequestHeaders.Authorization = Basic("who", "ever");
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("/api/v5/nodes")).StatusCode);
    }

    [Fact]
    public async Task Metrics_PrometheusTextAndEmqxJson()
    {
        await using var api = await ApiBroker.StartAsync();
        using var client = await RawMqttClient.ConnectMqttAsync(api.Broker.Port, "metered");
        foreach (var path in new[] { "/metrics", "/api/v5/prometheus/stats" })
        {
            var response = await api.Http.GetAsync(path);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
            string text = await response.Content.ReadAsStringAsync();
            Assert.Contains("# TYPE midge_publish_received_total counter", text, StringComparison.Ordinal);
            Assert.Contains("midge_clients_connected 1", text, StringComparison.Ordinal);
            Assert.Contains($"midge_listener_connections{{listener=\"tcp:127.0.0.1:{api.Broker.Port}\"}} 1", text, StringComparison.Ordinal);
            Assert.Contains("midge_authentication_failures_total 0", text, StringComparison.Ordinal);
            Assert.Contains("midge_retained ", text, StringComparison.Ordinal);
        }
        var stats = await JsonOf(await api.Http.GetAsync("/api/v5/stats"));
        Assert.Equal(1, stats[0].GetProperty("connections.count").GetInt32());
        Assert.StartsWith("midge@", stats[0].GetProperty("node").GetString(), StringComparison.Ordinal);
        var metrics = await JsonOf(await api.Http.GetAsync("/api/v5/metrics?aggregate=true"));
        Assert.True(metrics.GetProperty("packets.received").GetInt64() >= 1);
        Assert.Equal(JsonValueKind.Object, metrics.ValueKind);

        var listeners = await JsonOf(await api.Http.GetAsync("/api/v5/listeners"));
        Assert.Equal(2, listeners.GetArrayLength());
        Assert.Equal(1, listeners[0].GetProperty("current_connections").GetInt32());
        Assert.Equal("http", listeners[1].GetProperty("type").GetString());
        var nodes = await JsonOf(await api.Http.GetAsync("/api/v5/nodes"));
        Assert.Equal("running", nodes[0].GetProperty("node_status").GetString());
        string node = nodes[0].GetProperty("node").GetString()!;
        Assert.Equal(HttpStatusCode.OK, (await api.Http.GetAsync("/api/v5/nodes/" + Uri.EscapeDataString(node))).StatusCode);
    }

    [Fact]
    public async Task Reload_AppliesTheConfiguration_AndTheNewKeys()
    {
        await using var api = await ApiBroker.StartAsync();
        File.WriteAllLines(Path.Combine(api.Directory, "keys"), ["admin:secret", "second:key2"]);
        using var second = new HttpClient { BaseAddress = api.Http.BaseAddress, Timeout = Short };
        second.DefaultRequestHeaders.Authorization = Basic("second", "key2");
        Assert.Equal(HttpStatusCode.Unauthorized, (await second.GetAsync("/api/v5/nodes")).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await api.Http.PostAsync("/api/v5/configs/reload", null)).StatusCode);
        Assert.True(await api.Broker.WaitForLogAsync("Reloaded configuration", Short), api.Broker.Log);
        Assert.Equal(HttpStatusCode.OK, (await second.GetAsync("/api/v5/nodes")).StatusCode);

        File.AppendAllText(api.Broker.ConfigPath!, "no_such_option 1\n");
        await AssertError(await api.Http.PostAsync("/api/v5/configs/reload", null), HttpStatusCode.BadRequest, "BAD_CONFIG");
    }

    [Fact]
    public async Task Bridges_AreListedWithTheirStateAndCounters()
    {
        // A bridge to a port nothing listens on: configured, disconnected, its QoS 1 messages waiting in its session.
        int nowhere = FreePort.Next();
        await using var api = await ApiBroker.StartAsync(null, "connection upstream", $"address 127.0.0.1:{nowhere}",
            "topic out/# out 1", "local_cleansession false", "restart_timeout 30");
        await Task.Delay(500); // the local session is made as the bridge starts
        var r = await MosquittoClients.PublishAsync(api.Broker.Port, "-t", "out/1", "-m", "waits", "-q", "1");
        Assert.True(r.ExitCode == 0, r.ToString());

        var clock = System.Diagnostics.Stopwatch.StartNew();
        JsonElement bridge;
        do
        {
            var body = await JsonOf(await api.Http.GetAsync("/api/v5/bridges"));
            bridge = Assert.Single(body.EnumerateArray());
            if (bridge.GetProperty("metrics").GetProperty("messages.queued").GetInt64() == 1) break;
            await Task.Delay(100);
        }
        while (clock.Elapsed < Short);
        Assert.Equal("upstream", bridge.GetProperty("name").GetString());
        Assert.Equal("disconnected", bridge.GetProperty("status").GetString());
        Assert.Equal(1, bridge.GetProperty("metrics").GetProperty("messages.queued").GetInt64());
        Assert.Equal(0, bridge.GetProperty("metrics").GetProperty("messages.sent").GetInt64());
    }

    [Fact]
    public async Task ConfigErrors_NameTheLine()
    {
        var r = await MidgeProcess.RunAsync(TimeSpan.FromSeconds(30), "-c", WriteConfig("listener 1883", "api_allow_anonymous true"), "--test-config");
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("'api_allow_anonymous' needs 'protocol http'", r.Stderr, StringComparison.Ordinal);
        r = await MidgeProcess.RunAsync(TimeSpan.FromSeconds(30), "-c", WriteConfig("listener 1883", "protocol htp"), "--test-config");
        Assert.Contains("mqtt, websockets or http", r.Stderr, StringComparison.Ordinal);
    }

    private static string WriteConfig(params string[] lines)
    {
        string path = Path.Combine(MidgeProcess.NewDirectory(), "m.conf");
        File.WriteAllLines(path, lines);
        return path;
    }
}
