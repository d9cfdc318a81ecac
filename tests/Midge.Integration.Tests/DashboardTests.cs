using System.Net;
using System.Net.Http.Headers;
using Microsoft.Playwright;
using Midge.TestKit;

namespace Midge.Integration.Tests;

/// <summary>
/// The dashboard (docs/http-api.md, "Dashboard") in Debian's headless Chromium, driven by Playwright, against the real
/// <c>midge</c> process with an HTTP and a WebSocket listener: logging in with an API key, a mosquitto_sub client in
/// the client list and the message chart moving, kicking it, the browser MQTT client publishing to mosquitto_sub and
/// logging what mosquitto_pub sent, deleting a retained message. Every page must run without a script error or a
/// Content-Security-Policy violation. No browser is downloaded: Chromium comes from Debian (run-tests.sh installs it),
/// and a missing one fails the tests rather than skipping them.
/// </summary>
public sealed class DashboardTests
{
    private static readonly TimeSpan Short = TimeSpan.FromSeconds(10);

    /// <summary>Debian's Chromium, or <c>MIDGE_CHROMIUM</c>.</summary>
    private static string Chromium =>
        Environment.GetEnvironmentVariable("MIDGE_CHROMIUM") is { Length: > 0 } path ? path : "/usr/bin/chromium";

    /// <summary>A broker with MQTT, WebSocket and HTTP listeners (key <c>admin:secret</c>), and a fresh Chromium
    /// profile with a page that records every script error and console error.</summary>
    private sealed class Dashboard : IAsyncDisposable
    {
        private readonly List<string> _errors = [];

        public required MidgeProcess Broker { get; init; }
        public required int HttpPort { get; init; }
        public required int WsPort { get; init; }
        public required IPlaywright Playwright { get; init; }
        public required IBrowserContext Browser { get; init; }
        public IPage Page { get; private set; } = null!;

        public string Url => $"http://127.0.0.1:{HttpPort}";

        public static async Task<Dashboard> StartAsync()
        {
            Assert.True(File.Exists(Chromium), $"{Chromium} is missing: install Debian's chromium package (run-tests.sh does)");
            string dir = MidgeProcess.NewDirectory();
            File.WriteAllLines(Path.Combine(dir, "keys"), ["admin:secret"]);
            int httpPort = FreePort.Next();
            int wsPort = FreePort.Next();
            var broker = await MidgeProcess.StartInAsync(dir,
                $"listener {wsPort} 127.0.0.1", "protocol websockets",
                $"listener {httpPort} 127.0.0.1", "protocol http", "api_key_file keys");
            await HttpApiTests.WaitForHttpAsync(httpPort);
            await HttpApiTests.WaitForHttpAsync(wsPort);
            var playwright = await Microsoft.Playwright.Playwright.CreateAsync();
            var browser = await playwright.Chromium.LaunchPersistentContextAsync(Path.Combine(dir, "chromium-profile"), new()
            {
                ExecutablePath = Chromium,
                Headless = true,
                // The flags this machine's closed network needs (Chromium calls home at every start otherwise).
                Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync"],
                ViewportSize = new ViewportSize { Width = 1280, Height = 860 },
                Timeout = 30_000,
            });
            var dashboard = new Dashboard { Broker = broker, HttpPort = httpPort, WsPort = wsPort, Playwright = playwright, Browser = browser };
            dashboard.Page = browser.Pages.Count > 0 ? browser.Pages[0] : await browser.NewPageAsync();
            dashboard.Page.SetDefaultTimeout((float)Short.TotalMilliseconds);
            dashboard.Page.PageError += (_, error) => dashboard.Error("page error: " + error);
            dashboard.Page.Console += (_, message) =>
            {
                if (message.Type == "error") dashboard.Error("console: " + message.Text);
            };
            return dashboard;
        }

        private void Error(string text)
        {
            lock (_errors) _errors.Add(text);
        }

        /// <summary>Fails when a page had a script error, a refused request or a CSP violation.</summary>
        public void AssertNoErrors(params string[] expected)
        {
            lock (_errors)
            {
                var unexpected = _errors.Where(e => !expected.Any(x => e.Contains(x, StringComparison.Ordinal))).ToList();
                Assert.True(unexpected.Count == 0, string.Join('\n', unexpected));
            }
        }

        /// <summary>Opens the dashboard at <paramref name="page"/> and logs in as admin.</summary>
        public async Task LogInAsync(string page = "overview")
        {
            await Page.GotoAsync($"{Url}/dashboard/#{page}");
            await Page.FillAsync("#login-form input[name=key]", "admin");
            await Page.FillAsync("#login-form input[name=secret]", "secret");
            await Page.ClickAsync("#login-form button[type=submit]");
            await Page.WaitForSelectorAsync($"#view[data-page={page}]");
        }

        public async ValueTask DisposeAsync()
        {
            await Browser.CloseAsync();
            Playwright.Dispose();
            await Broker.DisposeAsync();
        }
    }

    /// <summary>Waits until <paramref name="script"/> (a function of <paramref name="arg"/>) answers true.</summary>
    private static Task WaitUntilAsync(IPage page, string script, object? arg = null) =>
        page.WaitForFunctionAsync(script, arg, new() { Timeout = (float)Short.TotalMilliseconds, PollingInterval = 100 });

    [Fact]
    public async Task Overview_ShowsAConnectedClientAndTheMessageRate_AndIsPhotographedForTheDocs()
    {
        await using var d = await Dashboard.StartAsync();
        // A wrong secret first: the form says so and stays.
        await d.Page.GotoAsync(d.Url + "/");
        await d.Page.FillAsync("#login-form input[name=key]", "admin");
        await d.Page.FillAsync("#login-form input[name=secret]", "wrong");
        await d.Page.ClickAsync("#login-form button[type=submit]");
        await WaitUntilAsync(d.Page, "() => document.getElementById('login-error').textContent.includes('Wrong key')");
        Assert.True(await d.Page.IsHiddenAsync("#shell"));

        await d.LogInAsync();
        using var sub = await MosquittoClients.SubscribeAsync(d.Broker.Port, "%t", "-i", "chart-watcher", "-t", "chart/#", "-W", "60");
        await WaitUntilAsync(d.Page, "() => document.querySelector('[data-tile=connections] .value')?.textContent === '1'");

        // Messages for a few seconds: the chart's "in" and "out" rates rise above zero.
        var traffic = MosquittoClients.PublishAsync(d.Broker.Port, "-t", "chart/load", "-m", "tick", "-q", "1",
            "--repeat", "60", "--repeat-delay", "0.05");
        await WaitUntilAsync(d.Page, """
            () => {
              const [rateIn, rateOut] = (document.querySelector('[data-chart="Messages per second"]')?.dataset.last ?? '').split(' ').map(Number);
              return rateIn > 0 && rateOut > 0;
            }
            """);
        Assert.Equal(0, (await traffic).ExitCode);
        Assert.True(await d.Page.Locator("[data-chart='Messages per second'] canvas").CountAsync() > 0);

        // The screenshot the README shows, once the charts have a few points.
        await WaitUntilAsync(d.Page, "() => Number(document.querySelector('[data-chart=Connections]').dataset.points) >= 6");
        await d.Page.ScreenshotAsync(new() { Path = Path.Combine(RepositoryRoot(), "docs", "dashboard.png") });
        d.AssertNoErrors("401"); // the refused login's request
    }

    [Fact]
    public async Task Clients_SearchShowsDetails_AndKickDisconnectsTheClient()
    {
        await using var d = await Dashboard.StartAsync();
        using var other = await MosquittoClients.SubscribeAsync(d.Broker.Port, "%t", "-i", "bystander", "-t", "b/#", "-W", "60");
        using var victim = await MosquittoClients.SubscribeAsync(d.Broker.Port, "%t", "-i", "kick-me", "-V", "5", "-t", "k/#", "-W", "60");
        await d.LogInAsync("clients");
        await d.Page.WaitForSelectorAsync("[data-table=clients] td:has-text('bystander')");
        await d.Page.FillAsync("input[name=clientid]", "kick");
        await d.Page.ClickAsync("form.toolbar button[type=submit]");
        await WaitUntilAsync(d.Page, "() => !document.querySelector('[data-table=clients]').textContent.includes('bystander')");
        await d.Page.ClickAsync("[data-table=clients] td:has-text('kick-me')");
        await d.Page.WaitForSelectorAsync(".details td:has-text('k/#')"); // its subscription
        await d.Page.ClickAsync(".details button:has-text('Kick')");
        await d.Page.ClickAsync(".details button:has-text('Confirm')");
        await d.Page.WaitForSelectorAsync("[data-kicked='kick-me']");
        var (result, _) = await victim.WaitAsync(Short);
        Assert.False(result.TimedOut, "mosquitto_sub was not disconnected");
        Assert.Contains("Received DISCONNECT (152)", result.Stdout + result.Stderr, StringComparison.Ordinal);
        await WaitUntilAsync(d.Page, "() => !document.querySelector('[data-table=clients]').textContent.includes('kick-me')");
        Assert.Contains("client 'kick-me' kicked by key 'admin'", d.Broker.Log, StringComparison.Ordinal);
        d.AssertNoErrors();
    }

    [Fact]
    public async Task MqttClient_PublishesToMosquittoSub_AndLogsWhatMosquittoPubSent()
    {
        await using var d = await Dashboard.StartAsync();
        using var sub = await MosquittoClients.SubscribeAsync(d.Broker.Port, "%t|%p|%q|%C|%P|%R|%E", "-V", "5", "-t", "web/#", "-q", "2", "-W", "60");
        await d.LogInAsync("mqtt");
        // The URL is the broker's WebSocket listener, found through GET /listeners.
        Assert.Equal($"ws://127.0.0.1:{d.WsPort}/mqtt", await d.Page.InputValueAsync("form[name=connect] input[name=url]"));
        await d.Page.FillAsync("form[name=connect] input[name=clientid]", "browser-1");
        await d.Page.ClickAsync("form[name=connect] button[type=submit]");
        await d.Page.WaitForSelectorAsync("[data-status=connected]");
        await d.Page.FillAsync("form[name=subscribe] input[name=filter]", "cli/#");
        await d.Page.SelectOptionAsync("form[name=subscribe] select[name=qos]", "1");
        await d.Page.ClickAsync("form[name=subscribe] button[type=submit]");
        await d.Page.WaitForSelectorAsync("li[data-filter='cli/#']");

        // Browser → mosquitto_sub, QoS 2 with MQTT 5 properties.
        await d.Page.FillAsync("form[name=publish] input[name=topic]", "web/from-browser");
        await d.Page.FillAsync("form[name=publish] textarea[name=payload]", "hello from chromium");
        await d.Page.SelectOptionAsync("form[name=publish] select[name=qos]", "2");
        await d.Page.FillAsync("form[name=publish] input[name=content_type]", "text/plain");
        await d.Page.FillAsync("form[name=publish] input[name=response_topic]", "web/replies");
        await d.Page.FillAsync("form[name=publish] input[name=expiry]", "120");
        await d.Page.FillAsync("form[name=publish] textarea[name=user_properties]", "origin=dashboard");
        await d.Page.ClickAsync("form[name=publish] button[type=submit]");
        Assert.True(await sub.WaitForMessageAsync("web/from-browser|hello from chromium|2|text/plain|origin:dashboard|web/replies|", Short), sub.Output);
        await d.Page.WaitForSelectorAsync("tr[data-dir=out][data-topic='web/from-browser']");

        // mosquitto_pub → the browser's log, retained.
        var pub = await MosquittoClients.PublishAsync(d.Broker.Port, "-t", "cli/to-browser", "-m", "hello from mosquitto_pub", "-q", "1");
        Assert.Equal(0, pub.ExitCode);
        var row = d.Page.Locator("tr[data-dir=in][data-topic='cli/to-browser']");
        await row.WaitForAsync();
        Assert.Contains("hello from mosquitto_pub", await row.TextContentAsync(), StringComparison.Ordinal);

        // The browser client is a client like any other: the API lists it on the WebSocket listener.
        using var http = new HttpClient { BaseAddress = new Uri(d.Url), Timeout = Short };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String("admin:secret"u8));
        string client = await http.GetStringAsync("/api/v5/clients/browser-1");
        Assert.Contains($"\"listener\":\"ws:127.0.0.1:{d.WsPort}\"", client, StringComparison.Ordinal);
        d.AssertNoErrors();
    }

    [Fact]
    public async Task Retained_BrowseShowsThePayload_AndDeleteRemovesIt()
    {
        await using var d = await Dashboard.StartAsync();
        Assert.Equal(0, (await MosquittoClients.PublishAsync(d.Broker.Port, "-t", "keep/1", "-m", "first value", "-r")).ExitCode);
        Assert.Equal(0, (await MosquittoClients.PublishAsync(d.Broker.Port, "-t", "keep/2", "-m", "second value", "-r")).ExitCode);
        await d.LogInAsync("retained");
        await d.Page.FillAsync("input[name=topic]", "keep/#");
        await d.Page.ClickAsync("form.toolbar button[type=submit]");
        await d.Page.ClickAsync("[data-table=retained] td:has-text('keep/1')");
        Assert.Equal("first value", await d.Page.Locator("pre[data-payload='keep/1']").TextContentAsync());
        await d.Page.ClickAsync(".details button:has-text('Delete')");
        await d.Page.ClickAsync(".details button:has-text('Confirm')");
        await d.Page.WaitForSelectorAsync("[data-deleted='keep/1']");
        await WaitUntilAsync(d.Page, "() => !document.querySelector('[data-table=retained]').textContent.includes('keep/1')");
        Assert.Contains("keep/2", await d.Page.Locator("[data-table=retained]").TextContentAsync(), StringComparison.Ordinal);

        // The broker no longer has it: a new subscriber gets only keep/2.
        using var sub = await MosquittoClients.SubscribeAsync(d.Broker.Port, "%t %p", "-t", "keep/#", "--retained-only", "-W", "3");
        var (_, messages) = await sub.WaitAsync(Short);
        Assert.Equal(["keep/2 second value"], messages);
        d.AssertNoErrors();
    }

    [Fact]
    public async Task EveryPage_RendersItsData_WithoutAScriptError()
    {
        await using var d = await Dashboard.StartAsync();
        using var sub = await MosquittoClients.SubscribeAsync(d.Broker.Port, "%t", "-i", "lister", "-t", "listed/+/topic", "-W", "60");
        using var http = new HttpClient { BaseAddress = new Uri(d.Url), Timeout = Short };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String("admin:secret"u8));
        var ban = await http.PostAsync("/api/v5/banned", new StringContent("""{"as":"clientid","who":"spammer","reason":"spam"}""",
            System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, ban.StatusCode);
        await d.LogInAsync();
        (string Page, string Table, string Expected)[] pages =
        [
            ("subscriptions", "subscriptions", "listed/+/topic"),
            ("topics", "topics", "listed/+/topic"),
            ("banned", "banned", "spammer"),
            ("listeners", "listeners", $"ws:127.0.0.1:{d.WsPort}"),
            ("clients", "clients", "lister"),
        ];
        foreach (var (page, table, expected) in pages)
        {
            await d.Page.ClickAsync($"nav a[href='#{page}']");
            await d.Page.WaitForSelectorAsync($"#view[data-page={page}] [data-table={table}] td:has-text('{expected}')");
        }

        // A ban added from the page, and lifted again.
        await d.Page.ClickAsync("nav a[href='#banned']");
        await d.Page.FillAsync("input[name=who]", "10.1.2.3");
        await d.Page.SelectOptionAsync("select[name=as]", "peerhost");
        await d.Page.ClickAsync("form.toolbar button[type=submit]");
        var row = d.Page.Locator("[data-table=banned] tr", new() { HasText = "10.1.2.3" });
        await row.WaitForAsync();
        await row.Locator("button").ClickAsync();
        await row.Locator("button:has-text('Confirm')").ClickAsync();
        await WaitUntilAsync(d.Page, "() => !document.querySelector('[data-table=banned]').textContent.includes('10.1.2.3')");

        // Retained messages: $SYS only when asked for.
        await d.Page.ClickAsync("nav a[href='#retained']");
        await d.Page.WaitForSelectorAsync("[data-table=retained] td:has-text('No retained messages.')");
        await d.Page.CheckAsync("input[name=sys]");
        await d.Page.WaitForSelectorAsync("[data-table=retained] td:has-text('$SYS/broker/version')");

        // Logging out forgets the key: the login form again, and the API calls stop.
        await d.Page.ClickAsync("#logout");
        await d.Page.WaitForSelectorAsync("#login-form");
        Assert.True(await d.Page.IsHiddenAsync("#shell"));
        Assert.Null(await d.Page.EvaluateAsync<string?>("() => sessionStorage.getItem('midge.credentials')"));
        d.AssertNoErrors();
    }

    [Fact]
    public async Task StaticFiles_ArePublicWithTypesCachingAndCsp_WhileTheApiStillNeedsAKey()
    {
        string dir = MidgeProcess.NewDirectory();
        File.WriteAllLines(Path.Combine(dir, "keys"), ["admin:secret"]);
        int httpPort = FreePort.Next();
        await using var broker = await MidgeProcess.StartInAsync(dir, $"listener {httpPort} 127.0.0.1", "protocol http", "api_key_file keys");
        await HttpApiTests.WaitForHttpAsync(httpPort);
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false })
        {
            BaseAddress = new Uri($"http://127.0.0.1:{httpPort}"),
            Timeout = Short,
        };

        var root = await http.GetAsync("/");
        Assert.Equal(HttpStatusCode.Found, root.StatusCode);
        Assert.Equal("/dashboard/", root.Headers.Location?.OriginalString);

        var index = await http.GetAsync("/dashboard/");
        Assert.Equal(HttpStatusCode.OK, index.StatusCode);
        Assert.Equal("text/html", index.Content.Headers.ContentType?.MediaType);
        Assert.Equal("no-cache", index.Headers.CacheControl?.ToString());
        string csp = string.Join(' ', index.Headers.GetValues("Content-Security-Policy"));
        Assert.Contains("default-src 'self'", csp, StringComparison.Ordinal);
        Assert.Contains("script-src 'self';", csp, StringComparison.Ordinal);
        Assert.Contains("connect-src 'self' ws: wss:", csp, StringComparison.Ordinal);
        Assert.Equal("nosniff", index.Headers.GetValues("X-Content-Type-Options").Single());

        // The vendored libraries carry their version in their names: cached for a year; a known ETag gets 304.
        var mqtt = await http.GetAsync("/dashboard/vendor/mqtt-5.16.0.esm.js");
        Assert.Equal(HttpStatusCode.OK, mqtt.StatusCode);
        Assert.Equal("text/javascript", mqtt.Content.Headers.ContentType?.MediaType);
        Assert.Contains("immutable", mqtt.Headers.CacheControl?.ToString(), StringComparison.Ordinal);
        using var again = new HttpRequestMessage(HttpMethod.Get, "/dashboard/vendor/mqtt-5.16.0.esm.js");
        again.Headers.IfNoneMatch.Add(mqtt.Headers.ETag!);
        Assert.Equal(HttpStatusCode.NotModified, (await http.SendAsync(again)).StatusCode);
        Assert.Equal("text/css", (await http.GetAsync("/dashboard/app.css")).Content.Headers.ContentType?.MediaType);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/dashboard/nothing.js")).StatusCode);
        Assert.Equal(HttpStatusCode.MethodNotAllowed, (await http.PostAsync("/dashboard/", new StringContent(""))).StatusCode);

        // The API is as closed as before; a script that says so gets no Basic challenge (no browser login dialog).
        var api = await http.GetAsync("/api/v5/clients");
        Assert.Equal(HttpStatusCode.Unauthorized, api.StatusCode);
        Assert.NotEmpty(api.Headers.WwwAuthenticate);
        using var fromScript = new HttpRequestMessage(HttpMethod.Get, "/api/v5/clients");
        fromScript.Headers.Add("X-Requested-With", "midge-dashboard");
        var scripted = await http.SendAsync(fromScript);
        Assert.Equal(HttpStatusCode.Unauthorized, scripted.StatusCode);
        Assert.Empty(scripted.Headers.WwwAuthenticate);
    }

    /// <summary>The repository's root (where Midge.slnx is), for the screenshot under docs/.</summary>
    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Midge.slnx"))) return dir.FullName;
        }
        throw new InvalidOperationException("Midge.slnx not found above " + AppContext.BaseDirectory);
    }
}
