using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.RegularExpressions;
using Midge.TestKit;

namespace Midge.Integration.Tests;

/// <summary>
/// The brokers <see cref="ToolParityTests"/> runs mosquitto_pub/mosquitto_sub and midge pub/midge sub against:
/// Debian's mosquitto (an anonymous TCP listener, a Unix socket listener, a listener that wants a password),
/// a Midge broker whose ACL denies <c>denied/#</c> (Mosquitto 2.0 grants any subscription and filters the
/// messages; Midge answers 0x80 as the tools expect from an ACL), a TLS front for the anonymous listener (TLS 1.2
/// only, two cipher suites, recording what each handshake chose) and a SOCKS5 proxy (recording each request).
/// </summary>
public sealed class ToolParityFixture : IAsyncLifetime
{
    private PeerProcess? _mosquitto;

    public string Directory { get; } = MidgeProcess.NewDirectory();
    public int Port { get; } = FreePort.Next();
    public int PasswordPort { get; } = FreePort.Next();
    public string Socket => Path.Combine(Directory, "mosquitto.sock");
    public MidgeProcess AclBroker { get; private set; } = null!;
    public TestPki Pki { get; } = new();
    public TlsFront Tls { get; private set; } = null!;
    public Socks5Server Proxy { get; private set; } = null!;

    public string CaFile => Pki.PathOf("ca.pem");
    public string HashedCaDirectory => Path.Combine(Directory, "hashed");
    public string PlainCaDirectory => Path.Combine(Directory, "plain");

    public async Task InitializeAsync()
    {
        // mosquitto started as root runs as the mosquitto user: it must be able to make its socket and read the files.
        File.SetUnixFileMode(Directory, (UnixFileMode)0x1FF);
        string passwd = Path.Combine(Directory, "passwd");
        var made = await PeerProcess.RunAsync("mosquitto_passwd", ["-c", "-b", passwd, "alice", "secret"], TimeSpan.FromSeconds(10));
        Assert.True(made.ExitCode == 0, made.ToString());
        File.SetUnixFileMode(passwd, (UnixFileMode)0x1A4);
        string conf = Path.Combine(Directory, "mosquitto.conf");
        File.WriteAllLines(conf,
        [
            "per_listener_settings true",
            $"listener {Port} 127.0.0.1",
            "allow_anonymous true",
            $"listener 0 {Socket}",
            "allow_anonymous true",
            $"listener {PasswordPort} 127.0.0.1",
            "allow_anonymous false",
            $"password_file {passwd}",
        ]);
        File.SetUnixFileMode(conf, (UnixFileMode)0x1A4);
        _mosquitto = PeerProcess.Start("mosquitto", ["-c", conf]);
        for (int i = 0; i < 200 && !(await FreePort.AcceptsAsync(Port) && await FreePort.AcceptsAsync(PasswordPort) && File.Exists(Socket)); i++)
        {
            if (_mosquitto.HasExited) break;
            await Task.Delay(50);
        }
        Assert.True(File.Exists(Socket) && !_mosquitto.HasExited, "mosquitto did not start: " + _mosquitto.Stderr);

        string acl = Path.Combine(Directory, "acl");
        File.WriteAllLines(acl, ["topic readwrite allowed/#", "user alice", "topic readwrite allowed/#"]);
        AclBroker = await MidgeProcess.StartAsync($"acl_file {acl}", $"password_file {passwd}");

        var ca = Pki.CreateCa("ca");
        var server = Pki.CreateServer(ca, "server");
        System.IO.Directory.CreateDirectory(HashedCaDirectory);
        System.IO.Directory.CreateDirectory(PlainCaDirectory);
        File.Copy(CaFile, Path.Combine(HashedCaDirectory, "ca.pem"));
        File.Copy(CaFile, Path.Combine(PlainCaDirectory, "ca.pem"));
        var rehash = await PeerProcess.RunAsync("openssl", ["rehash", HashedCaDirectory], TimeSpan.FromSeconds(10));
        Assert.True(rehash.ExitCode == 0, rehash.ToString());
        Tls = new TlsFront(server, Port);
        Proxy = new Socks5Server();
    }

    public async Task DisposeAsync()
    {
        Tls?.Dispose();
        Proxy?.Dispose();
        if (AclBroker is not null) await AclBroker.DisposeAsync();
        _mosquitto?.Dispose();
        Pki.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>
/// midge pub / midge sub against mosquitto_pub / mosquitto_sub (Debian 12's mosquitto-clients 2.0): the same
/// script runs with each pair of tools, and what they print and their exit codes must be the same.
/// </summary>
public sealed class ToolParityTests(ToolParityFixture f) : IClassFixture<ToolParityFixture>
{
    private static readonly string Midge = string.Join(' ', [MidgeProcess.Program, .. MidgeProcess.Arguments()]);

    private async Task<string> RunScript(string script, bool midge, string topic)
    {
        var start = new System.Diagnostics.ProcessStartInfo("bash")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = f.Directory,
        };
        start.ArgumentList.Add("-c");
        // stdbuf: mosquitto_sub block-buffers its stdout into a file or pipe; wait_for needs its lines as they come.
        start.ArgumentList.Add("wait_for() { for i in $(seq 150); do grep -q \"$1\" \"$2\" 2>/dev/null && return 0; sleep 0.1; done; return 1; }\n" + script);
        start.Environment["PUB"] = midge ? Midge + " pub" : "mosquitto_pub";
        start.Environment["SUB"] = midge ? "stdbuf -oL " + Midge + " sub" : "stdbuf -oL mosquitto_sub";
        start.Environment["PORT"] = f.Port.ToString(CultureInfo.InvariantCulture);
        start.Environment["PWPORT"] = f.PasswordPort.ToString(CultureInfo.InvariantCulture);
        start.Environment["ACLPORT"] = f.AclBroker.Port.ToString(CultureInfo.InvariantCulture);
        start.Environment["TLSPORT"] = f.Tls.Port.ToString(CultureInfo.InvariantCulture);
        start.Environment["SOCKSPORT"] = f.Proxy.Port.ToString(CultureInfo.InvariantCulture);
        start.Environment["SOCK"] = f.Socket;
        start.Environment["CA"] = f.CaFile;
        start.Environment["HASHED"] = f.HashedCaDirectory;
        start.Environment["PLAIN"] = f.PlainCaDirectory;
        start.Environment["T"] = topic;
        start.Environment["OUT"] = Path.Combine(f.Directory, Guid.NewGuid().ToString("N"));
        using var p = System.Diagnostics.Process.Start(start)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await p.WaitForExitAsync(cts.Token);
        string text = $"{await stdout}\n--stderr--\n{await stderr}\n--rc {p.ExitCode}";
        return Normalize(text.Replace(topic, "T"));
    }

    /// <summary>The tools' names (in usage lines and hints) and the ids brokers assign (auto-...) are not compared.</summary>
    private static string Normalize(string text) => Regex.Replace(text, "auto-[0-9A-Fa-f-]{32,36}", "auto-ID")
        .Replace("mosquitto_pub", "PUB").Replace("mosquitto_sub", "SUB").Replace("midge pub", "PUB").Replace("midge sub", "SUB");

    private static string Topic(string prefix) => $"{prefix}/{Guid.NewGuid():N}";

    /// <summary>Runs <paramref name="script"/> with both pairs of tools; returns mosquitto's output (for assertions).</summary>
    private async Task<string> Same(string script, string prefix = "cmp")
    {
        string topic = Topic(prefix);
        string expected = await RunScript(script, midge: false, topic + "/mosquitto");
        string actual = await RunScript(script, midge: true, topic + "/midge");
        Assert.Equal(expected, actual);
        return expected;
    }

    // ---------------- 1. every filter denied ----------------

    [Theory]
    [InlineData("mqttv311")]
    [InlineData("mqttv5")]
    public async Task A_subscription_denied_for_every_filter_ends_the_session_with_exit_0(string version)
    {
        string output = await Same(
            $"$SUB -p $ACLPORT -V {version} -t denied/x -W 5; echo rc=$?;"
            + $" $SUB -p $ACLPORT -V {version} -t denied/x -t denied/y -W 5 -d -i deny1; echo rc=$?;"
            + $" $SUB -p $ACLPORT -V {version} -t denied/x -W 5 --quiet; echo rc=$?;"
            // One filter granted: no message, the subscriber stays until -W.
            + $" $SUB -p $ACLPORT -V {version} -t denied/x -t allowed/$T -W 1; echo rc=$?");
        Assert.Contains("All subscription requests were denied.", output);
        Assert.Contains(version == "mqttv5" ? "Subscribed (mid: 1): 135, 135" : "Subscribed (mid: 1): 128, 128", output);
    }

    // ---------------- 2. wrong credentials ----------------

    [Theory]
    [InlineData("mosquitto", "mqttv311")]
    [InlineData("mosquitto", "mqttv5")]
    [InlineData("midge", "mqttv311")]
    [InlineData("midge", "mqttv5")]
    public async Task Wrong_credentials_print_the_same_lines_and_exit_code(string broker, string version)
    {
        string port = broker == "midge" ? "$ACLPORT" : "$PWPORT";
        string output = await Same(
            $"$PUB -p {port} -V {version} -u alice -P wrong -t $T -m x; echo rc=$?;"
            + $" $SUB -p {port} -V {version} -u alice -P wrong -t $T; echo rc=$?;"
            + $" $PUB -p {port} -V {version} -u alice -P wrong -t $T -m x --quiet; echo rc=$?;"
            + $" $PUB -p {port} -V {version} -u alice -P wrong -t $T -m x -d -i cred1; echo rc=$?");
        Assert.Contains("Connection error: ", output);
    }

    // ---------------- 3. -d ----------------

    [Theory]
    [InlineData("mqttv311", 0)]
    [InlineData("mqttv311", 1)]
    [InlineData("mqttv311", 2)]
    [InlineData("mqttv5", 0)]
    [InlineData("mqttv5", 1)]
    [InlineData("mqttv5", 2)]
    public async Task Debug_output_of_pub_is_mosquitto_pubs(string version, int qos)
    {
        string output = await Same(
            $"$PUB -p $PORT -V {version} -q {qos} -d -i pub1 -t $T -m hello; echo rc=$?;"
            + $" $PUB -p $PORT -V {version} -q {qos} -d -i pub2 -t $T -m again --repeat 2 -r; echo rc=$?;"
            + $" $PUB -p $PORT -V {version} -q {qos} -d -t $T -n -r; echo rc=$?");
        Assert.Contains($"Client pub1 sending PUBLISH (d0, q{qos}, r0, m1, 'T', ... (5 bytes))", output);
    }

    [Theory]
    [InlineData("mqttv311", 0)]
    [InlineData("mqttv311", 1)]
    [InlineData("mqttv311", 2)]
    [InlineData("mqttv5", 0)]
    [InlineData("mqttv5", 1)]
    [InlineData("mqttv5", 2)]
    public async Task Debug_output_of_sub_is_mosquitto_subs(string version, int qos)
    {
        // A retained QoS 1 message, then live QoS 2 and QoS 0 ones: every acknowledgement in both directions. The
        // QoS 0 one is published once the subscriber has finished with the QoS 2 one (its last line for it), or
        // the two would interleave in whatever order the broker happened to send them.
        string last = qos switch { 2 => "sending PUBCOMP", 1 => "sending PUBACK (m2", _ => "received PUBLISH (d0, q0, r0, m0, '[^']*/b'" };
        string output = await Same(
            "$PUB -p $PORT -t $T/c -m there -q 1 -r;"
            + $" $SUB -p $PORT -V {version} -q {qos} -d -i sub1 -C 3 -v -t $T/b -t $T/c > $OUT & wait_for Subscribed $OUT;"
            + $" $PUB -p $PORT -t $T/b -m hi -q 2; wait_for \"{last}\" $OUT; $PUB -p $PORT -t $T/c -m x -q 0; wait $!; echo rc=$?; cat $OUT;"
            + " $PUB -p $PORT -t $T/c -r -n");
        Assert.Contains("Client sub1 received SUBACK", output);
    }

    [Fact]
    public async Task Debug_output_shows_unsubscribe_and_keepalive()
    {
        // -k 5: one PINGREQ/PINGRESP (at 5 s, the next would be at 10 s) before -W 9 ends it; -U goes out right behind the SUBSCRIBE.
        string output = await Same("$SUB -p $PORT -d -i ping1 -k 5 -W 9 -t $T -U $T/other; echo rc=$?");
        Assert.Contains("Client ping1 sending PINGREQ", output);
        Assert.Contains("Client ping1 received UNSUBACK", output);
    }

    // ---------------- 4. --capath ----------------

    [Fact]
    public async Task Capath_with_a_hashed_directory_verifies_the_server()
    {
        string output = await Same(
            "$PUB --capath $HASHED -h 127.0.0.1 -p $TLSPORT -t $T -m secure -q 1 -r -d -i tls1; echo rc=$?;"
            + " $SUB --capath $HASHED -h 127.0.0.1 -p $TLSPORT -t $T -C 1 -v; echo rc=$?;"
            + " $PUB --capath $HASHED -h 127.0.0.1 -p $TLSPORT -t $T -r -n; echo rc=$?");
        Assert.Contains("T secure", output);

        // OpenSSL reads a capath directory by hashed names only: without them no CA is found. (mosquitto's exit
        // code then depends on when the handshake fails, 1 or 8, so only the failure is compared.)
        foreach (bool midge in new[] { false, true })
        {
            string failed = await RunScript("$PUB --capath $PLAIN -h 127.0.0.1 -p $TLSPORT -t $T -m x", midge, Topic("plain"));
            Assert.DoesNotContain("--rc 0", failed);
            Assert.Contains("A TLS error occurred.", failed);
        }
    }

    // ---------------- 5. --tls-version, --ciphers, --unix, --proxy ----------------

    [Fact]
    public async Task Tls_version_sets_the_lowest_version_offered()
    {
        // The TLS front speaks TLS 1.2 only.
        await Same("$PUB --cafile $CA -h 127.0.0.1 -p $TLSPORT --tls-version tlsv1.2 -t $T -m x -d -i v12; echo rc=$?;"
            + " $PUB --cafile $CA -h 127.0.0.1 -p $TLSPORT -t $T -m x; echo rc=$?;"
            + " $PUB --cafile $CA -h 127.0.0.1 -p $TLSPORT --tls-version tlsv1.0 -t $T -m x; echo rc=$?");
        foreach (bool midge in new[] { false, true })
        {
            string failed = await RunScript("$PUB --cafile $CA -h 127.0.0.1 -p $TLSPORT --tls-version tlsv1.3 -t $T -m x", midge, Topic("v13"));
            Assert.DoesNotContain("--rc 0", failed);
            Assert.Contains("A TLS error occurred.", failed);
        }
    }

    [Theory]
    [InlineData("ECDHE-RSA-AES128-GCM-SHA256", TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)]
    [InlineData("ECDHE-RSA-AES256-GCM-SHA384", TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384)]
    public async Task Ciphers_choose_the_tls12_suite(string name, TlsCipherSuite suite)
    {
        foreach (bool midge in new[] { false, true })
        {
            f.Tls.Negotiated.Clear();
            string output = await RunScript($"$PUB --cafile $CA -h 127.0.0.1 -p $TLSPORT --ciphers {name} -t $T -m x; echo rc=$?", midge, Topic("ciphers"));
            Assert.Contains("rc=0", output);
            Assert.Equal(new[] { (SslProtocols.Tls12, suite) }, f.Tls.Negotiated.ToArray());
        }
    }

    [Fact]
    public async Task Ciphers_keywords_are_refused_naming_the_word()
    {
        var r = await MidgeProcess.RunAsync(TimeSpan.FromSeconds(20), "pub", "--cafile", f.CaFile, "-p", f.Tls.Port.ToString(CultureInfo.InvariantCulture),
            "--ciphers", "HIGH:!aNULL", "-t", "a", "-m", "b");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("'HIGH'", r.Stderr);
    }

    [Fact]
    public Task Unix_socket() => Same(
        "$PUB --unix $SOCK -t $T -m local -q 1 -r -d -i unix1; echo rc=$?;"
        + " $SUB --unix $SOCK -t $T -C 1 -v; echo rc=$?;"
        + " $PUB --unix $SOCK -t $T -r -n; echo rc=$?;"
        + " $PUB --unix $SOCK.missing -t $T -m x; echo rc=$?; $SUB --unix $SOCK.missing -t $T; echo rc=$?");

    [Fact]
    public async Task Socks5_proxy_resolves_the_host_and_authenticates()
    {
        f.Proxy.Requests.Clear();
        await Same(
            "$PUB --proxy socks5h://alice:pw@127.0.0.1:$SOCKSPORT -h localhost -p $PORT -t $T -m proxied -q 1 -r; echo rc=$?;"
            + " $SUB --proxy socks5h://127.0.0.1:$SOCKSPORT -h localhost -p $PORT -t $T -C 1 -v; echo rc=$?;"
            + " $PUB -p $PORT -t $T -r -n;"
            + " $PUB --proxy http://127.0.0.1:$SOCKSPORT -t $T -m x; echo rc=$?; $PUB --proxy socks5h://h:port -t $T -m x; echo rc=$?");
        var requests = f.Proxy.Requests.ToArray();
        string port = f.Port.ToString(CultureInfo.InvariantCulture);
        Assert.Equal(new[] { $"alice:pw localhost:{port}", $"- localhost:{port}", $"alice:pw localhost:{port}", $"- localhost:{port}" }, requests);
    }

    // ---------------- 6. usage errors ----------------

    [Fact]
    public async Task A_missing_topic_prints_what_mosquittos_tools_print()
    {
        // Compared: the first line of stdout (mosquitto_pub prints its usage), all of stderr, the exit code.
        const string run = "run() { \"$@\" > $OUT.o 2> $OUT.e; echo rc=$?; head -1 $OUT.o; cat $OUT.e; };";
        string output = await Same(run
            + " run $PUB -p $PORT -m x; run $PUB -p $PORT -t $T; run $PUB; run $PUB -t;"
            + " run $SUB -p $PORT; run $SUB -p $PORT -U $T; run $SUB -t");
        Assert.Contains("PUB is a simple mqtt client", output);
        Assert.Contains("Error: You must specify a topic to subscribe to.", output);
    }
}

/// <summary>
/// A TLS server (TLS 1.2 only; ECDHE-RSA AES-128-GCM and AES-256-GCM) that hands each connection on to a plain
/// TCP port, remembering the protocol and suite each handshake settled on.
/// </summary>
public sealed class TlsFront : LoopbackServer
{
    private readonly X509Certificate2 _certificate;
    private readonly int _target;

    public TlsFront(X509Certificate2 certificate, int target)
    {
        // Through PKCS#12, so that OpenSSL holds a key it can use for the handshake.
        _certificate = X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pkcs12), null);
        _target = target;
        Start();
    }

    public System.Collections.Concurrent.ConcurrentQueue<(SslProtocols, TlsCipherSuite)> Negotiated { get; } = new();

    protected override async Task Serve(TcpClient client)
    {
        using var _ = client;
        try
        {
            await using var ssl = new SslStream(client.GetStream());
            await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
            {
                ServerCertificate = _certificate,
                EnabledSslProtocols = SslProtocols.Tls12,
                CipherSuitesPolicy = new CipherSuitesPolicy(
                [
                    TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
                ]),
            }, Stopping);
            Negotiated.Enqueue((ssl.SslProtocol, ssl.NegotiatedCipherSuite));
            using var upstream = new TcpClient();
            await upstream.ConnectAsync(IPAddress.Loopback, _target, Stopping);
            await Relay.BothWays(ssl, upstream.GetStream(), Stopping);
        }
        catch (Exception)
        {
            // A failed handshake is what some tests want.
        }
    }

}

/// <summary>A SOCKS5 proxy (RFC 1928, with RFC 1929 user name and password when offered) recording each CONNECT.</summary>
public sealed class Socks5Server : LoopbackServer
{
    public Socks5Server() => Start();

    /// <summary>"user:password host:port", or "- host:port" without authentication.</summary>
    public System.Collections.Concurrent.ConcurrentQueue<string> Requests { get; } = new();

    protected override async Task Serve(TcpClient client)
    {
        using var _ = client;
        var s = client.GetStream();
        var ct = Stopping;
        try
        {
            var head = await Read(s, 2, ct);
            var methods = await Read(s, head[1], ct);
            string who = "-";
            if (Array.IndexOf(methods, (byte)2) >= 0)
            {
                await s.WriteAsync(new byte[] { 5, 2 }, ct);
                var version = await Read(s, 2, ct);
                string user = Encoding.UTF8.GetString(await Read(s, version[1], ct));
                var passLength = await Read(s, 1, ct);
                string pass = Encoding.UTF8.GetString(await Read(s, passLength[0], ct));
                who = $"{user}:{pass}";
                await s.WriteAsync(new byte[] { 1, 0 }, ct);
            }
            else
            {
                await s.WriteAsync(new byte[] { 5, 0 }, ct);
            }
            var request = await Read(s, 4, ct);
            string host = request[3] switch
            {
                1 => new IPAddress(await Read(s, 4, ct)).ToString(),
                4 => new IPAddress(await Read(s, 16, ct)).ToString(),
                _ => Encoding.ASCII.GetString(await Read(s, (await Read(s, 1, ct))[0], ct)),
            };
            int port = BinaryPrimitives.ReadUInt16BigEndian(await Read(s, 2, ct));
            Requests.Enqueue($"{who} {host}:{port}");
            using var upstream = new TcpClient();
            try
            {
                await upstream.ConnectAsync(host, port, ct);
            }
            catch (SocketException)
            {
                await s.WriteAsync(new byte[] { 5, 5, 0, 1, 0, 0, 0, 0, 0, 0 }, ct);
                return;
            }
            await s.WriteAsync(new byte[] { 5, 0, 0, 1, 127, 0, 0, 1, 0, 0 }, ct);
            await Relay.BothWays(s, upstream.GetStream(), ct);
        }
        catch (Exception)
        {
        }
    }

    private static async Task<byte[]> Read(Stream s, int count, CancellationToken ct)
    {
        var buffer = new byte[count];
        await s.ReadExactlyAsync(buffer, ct);
        return buffer;
    }

}

/// <summary>A test server on a loopback port: accepts until disposed and serves each connection on its own.</summary>
public abstract class LoopbackServer : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    protected CancellationToken Stopping => _stop.Token;

    /// <summary>Called by the subclass's constructor once it is ready to serve.</summary>
    protected void Start()
    {
        _listener.Start();
        _ = AcceptLoop();
    }

    protected abstract Task Serve(TcpClient client);

    private async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception)
            {
                return;
            }
            _ = Serve(client);
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        GC.SuppressFinalize(this);
    }
}

internal static class Relay
{
    /// <summary>Copies both ways until either side closes.</summary>
    public static async Task BothWays(Stream a, Stream b, CancellationToken ct)
    {
        using var done = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var one = a.CopyToAsync(b, done.Token);
        var other = b.CopyToAsync(a, done.Token);
        await Task.WhenAny(one, other);
        done.Cancel();
        try
        {
            await Task.WhenAll(one, other);
        }
        catch (Exception)
        {
        }
    }
}
