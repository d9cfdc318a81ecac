using System.Globalization;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Midge.TestKit;

namespace Midge.Integration.Tests;

/// <summary>TLS and mutual TLS listeners, driven by Debian's mosquitto_pub/mosquitto_sub and .NET's SslStream.</summary>
public sealed class TlsTests : IDisposable
{
    private readonly TestPki _pki = new();
    private readonly X509Certificate2 _ca;
    private readonly X509Certificate2 _server;

    public TlsTests()
    {
        _ca = _pki.CreateCa("ca");
        _server = _pki.CreateServer(_ca, "server");
    }

    public void Dispose() => _pki.Dispose();

    private string P(string name) => _pki.PathOf(name);

    private string[] ServerLines(params string[] more) =>
        [$"certfile {P("server.pem")}", $"keyfile {P("server.key")}", .. more];

    private string[] ClientCert(string name) => ["--cafile", P("ca.pem"), "--cert", P(name + ".pem"), "--key", P(name + ".key")];

    private static string Topic(string prefix) => $"{prefix}/{Guid.NewGuid():N}";

    private static void AssertOk(ProcessResult r) => Assert.True(r.ExitCode == 0 && !r.TimedOut, r.ToString());

    private static void AssertRefused(ProcessResult r) => Assert.True(r.ExitCode != 0 && !r.TimedOut, r.ToString());

    [Fact]
    public async Task Server_only_tls_round_trip_with_mosquitto_clients()
    {
        await using var broker = await MidgeProcess.StartAsync(ServerLines());
        string topic = Topic("tls");
        using var sub = await MosquittoClients.SubscribeAsync(broker.Port, "%t|%p", "--cafile", P("ca.pem"), "-t", topic, "-C", "1");
        AssertOk(await MosquittoClients.PublishAsync(broker.Port, "--cafile", P("ca.pem"), "-q", "1", "-t", topic, "-m", "secret"));
        var (result, messages) = await sub.WaitAsync();
        AssertOk(result);
        Assert.Equal([$"{topic}|secret"], messages);

        // A client that does not speak TLS gets nowhere.
        AssertRefused(await PeerProcess.RunAsync("mosquitto_pub",
            ["-h", "127.0.0.1", "-p", broker.Port.ToString(CultureInfo.InvariantCulture), "-t", topic, "-m", "plain"],
            TimeSpan.FromSeconds(10)));
    }

    /// <summary>A packet larger than the transport's 1 MiB read buffer still arrives whole over TLS (the read loop waits
    /// for the rest of a frame without stalling the pipe that brings it).</summary>
    [Fact]
    public async Task A_3_MiB_message_crosses_a_TLS_listener()
    {
        await using var broker = await MidgeProcess.StartAsync(ServerLines());
        string topic = Topic("big");
        string file = P("big.bin");
        await File.WriteAllBytesAsync(file, Enumerable.Range(0, 3 * 1024 * 1024).Select(i => (byte)('a' + i % 26)).ToArray());
        using var sub = await MosquittoClients.SubscribeAsync(broker.Port, "%l", "--cafile", P("ca.pem"), "-t", topic, "-C", "1", "-q", "1");
        AssertOk(await MosquittoClients.PublishAsync(broker.Port, "--cafile", P("ca.pem"), "-q", "1", "-t", topic, "-f", file));
        var (result, messages) = await sub.WaitAsync();
        AssertOk(result);
        Assert.Equal([(3 * 1024 * 1024).ToString(CultureInfo.InvariantCulture)], messages);
    }

    [Fact]
    public async Task Mutual_tls_accepts_ca_signed_clients_and_refuses_the_rest()
    {
        _pki.CreateClient(_ca, "alice", "CN=alice, O=Midge Tests");
        _pki.CreateClient(_ca, "old", "CN=old", expired: true);
        var other = _pki.CreateCa("other");
        _pki.CreateClient(other, "stranger", "CN=stranger");
        await using var broker = await MidgeProcess.StartAsync(ServerLines($"cafile {P("ca.pem")}", "require_certificate true"));
        string topic = Topic("mtls");

        using var sub = await MosquittoClients.SubscribeAsync(broker.Port, "%p", [.. ClientCert("alice"), "-t", topic, "-C", "1"]);
        AssertOk(await MosquittoClients.PublishAsync(broker.Port, [.. ClientCert("alice"), "-t", topic, "-m", "mutual"]));
        var (result, messages) = await sub.WaitAsync();
        AssertOk(result);
        Assert.Equal(["mutual"], messages);

        AssertRefused(await MosquittoClients.PublishAsync(broker.Port, "--cafile", P("ca.pem"), "-t", topic, "-m", "no cert"));
        AssertRefused(await MosquittoClients.PublishAsync(broker.Port, [.. ClientCert("stranger"), "-t", topic, "-m", "wrong ca"]));
        AssertRefused(await MosquittoClients.PublishAsync(broker.Port, [.. ClientCert("old"), "-t", topic, "-m", "expired"]));
        Assert.True(await broker.WaitForLogAsync("no client certificate", TimeSpan.FromSeconds(5)), broker.Log);
        Assert.True(await broker.WaitForLogAsync("'CN=stranger' not accepted", TimeSpan.FromSeconds(5)), broker.Log);
        Assert.True(await broker.WaitForLogAsync("'CN=old' not accepted", TimeSpan.FromSeconds(5)), broker.Log);
    }

    [Fact]
    public async Task Revoked_client_certificate_is_refused_with_crlfile()
    {
        _pki.CreateClient(_ca, "good", "CN=good");
        var revoked = _pki.CreateClient(_ca, "revoked", "CN=revoked");
        _pki.CreateCrl(_ca, "crl", revoked);
        await using var broker = await MidgeProcess.StartAsync(
            ServerLines($"cafile {P("ca.pem")}", "require_certificate true", $"crlfile {P("crl.pem")}"));
        string topic = Topic("crl");

        AssertOk(await MosquittoClients.PublishAsync(broker.Port, [.. ClientCert("good"), "-t", topic, "-m", "ok"]));
        AssertRefused(await MosquittoClients.PublishAsync(broker.Port, [.. ClientCert("revoked"), "-t", topic, "-m", "revoked"]));
        Assert.True(await broker.WaitForLogAsync("'CN=revoked' is revoked", TimeSpan.FromSeconds(5)), broker.Log);
    }

    [Fact]
    public async Task Use_identity_as_username_makes_the_cn_the_user_for_acls_and_skips_passwords()
    {
        _pki.CreateClient(_ca, "alice", "CN=alice, O=Midge Tests");
        _pki.CreateClient(_ca, "bob", "CN=bob");
        File.WriteAllText(P("acl"), "user alice\ntopic readwrite alice/#\n");
        // A password file that knows neither alice nor bob: certificate users are not checked against it.
        File.WriteAllText(P("passwd"), "carol:$7$101$aaaaaaaaaaaaaaaa$" + new string('A', 86) + "==\n");
        await using var broker = await MidgeProcess.StartAsync(ServerLines($"cafile {P("ca.pem")}", "require_certificate true",
            "use_identity_as_username true", $"acl_file {P("acl")}", $"password_file {P("passwd")}"));
        string topic = "alice/" + Guid.NewGuid().ToString("N");

        using var sub = await MosquittoClients.SubscribeAsync(broker.Port, "%p", [.. ClientCert("alice"), "-t", topic, "-C", "1"]);
        // bob may connect, but the ACL gives him nothing: his message is dropped.
        AssertOk(await MosquittoClients.PublishAsync(broker.Port, [.. ClientCert("bob"), "-t", topic, "-m", "from bob"]));
        // CONNECT's user name and password are ignored: alice is alice.
        AssertOk(await MosquittoClients.PublishAsync(broker.Port, [.. ClientCert("alice"), "-u", "mallory", "-P", "wrong", "-t", topic, "-m", "from alice"]));
        var (result, messages) = await sub.WaitAsync();
        AssertOk(result);
        Assert.Equal(["from alice"], messages);
        Assert.Contains("u'alice'", broker.Log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tls_version_tlsv13_refuses_a_tls12_only_client()
    {
        await using var broker = await MidgeProcess.StartAsync(ServerLines("tls_version tlsv1.3"));
        // libmosquitto's --tls-version is a minimum (tlsv1.2 still offers 1.3), so the 1.2-only client is SslStream.
        await Assert.ThrowsAnyAsync<Exception>(() => ServerCertificateAsync(broker.Port, SslProtocols.Tls12));
        Assert.Equal(_server.Thumbprint, (await ServerCertificateAsync(broker.Port, SslProtocols.Tls13)).Thumbprint);
        AssertOk(await MosquittoClients.PublishAsync(broker.Port, "--cafile", P("ca.pem"), "--tls-version", "tlsv1.3", "-t", Topic("v13"), "-m", "x"));
    }

    [Fact]
    public async Task Default_tls_version_accepts_tls12_and_tls13_clients()
    {
        await using var broker = await MidgeProcess.StartAsync(ServerLines());
        Assert.Equal(_server.Thumbprint, (await ServerCertificateAsync(broker.Port, SslProtocols.Tls12)).Thumbprint);
        Assert.Equal(_server.Thumbprint, (await ServerCertificateAsync(broker.Port, SslProtocols.Tls13)).Thumbprint);
    }

    [Fact]
    public async Task Sighup_serves_a_new_certificate_to_new_connections_and_keeps_open_ones()
    {
        await using var broker = await MidgeProcess.StartAsync(ServerLines());
        Assert.Equal(_server.Thumbprint, (await ServerCertificateAsync(broker.Port)).Thumbprint);
        string topic = Topic("reload");
        using var sub = await MosquittoClients.SubscribeAsync(broker.Port, "%p", "--cafile", P("ca.pem"), "-t", topic, "-C", "1");

        var renewed = _pki.CreateServer(_ca, "server", commonName: "localhost renewed");
        Assert.True(broker.Signal(Signals.SIGHUP));
        Assert.True(await broker.WaitForLogAsync("Reloaded configuration", TimeSpan.FromSeconds(10)), broker.Log);

        Assert.Equal(renewed.Thumbprint, (await ServerCertificateAsync(broker.Port)).Thumbprint);
        AssertOk(await MosquittoClients.PublishAsync(broker.Port, "--cafile", P("ca.pem"), "-t", topic, "-m", "after reload"));
        var (result, messages) = await sub.WaitAsync();
        AssertOk(result);
        Assert.Equal(["after reload"], messages);
    }

    [Fact]
    public async Task Config_errors_name_file_and_line()
    {
        string conf = P("bad.conf");
        async Task<ProcessResult> Check(params string[] lines)
        {
            File.WriteAllLines(conf, ["listener 8883", .. lines]);
            return await MidgeProcess.RunAsync(TimeSpan.FromSeconds(20), "-c", conf, "--test-config");
        }

        var r = await Check($"certfile {P("server.pem")}");
        Assert.True(r.ExitCode == 3, r.ToString());
        Assert.Contains($"{conf}:2: 'certfile' needs 'keyfile'", r.Stderr, StringComparison.Ordinal);

        r = await Check("psk_hint hint");
        Assert.True(r.ExitCode == 3, r.ToString());
        Assert.Contains($"{conf}:2: option 'psk_hint' is not supported: .NET's TLS stack has no TLS-PSK", r.Stderr, StringComparison.Ordinal);

        r = await Check($"certfile {P("server.pem")}", $"keyfile {P("missing.key")}");
        Assert.True(r.ExitCode == 3, r.ToString());
        Assert.Contains($"{conf}:3: cannot read keyfile", r.Stderr, StringComparison.Ordinal);

        r = await Check($"certfile {P("server.pem")}", $"keyfile {P("server.key")}", "require_certificate true");
        Assert.True(r.ExitCode == 3, r.ToString());
        Assert.Contains($"{conf}:4: 'require_certificate true' needs 'cafile' or 'capath'", r.Stderr, StringComparison.Ordinal);

        r = await Check($"certfile {P("server.pem")}", $"keyfile {P("server.key")}", $"cafile {P("ca.pem")}", "ciphers HIGH:!aNULL");
        Assert.True(r.ExitCode == 3, r.ToString());
        Assert.Contains($"{conf}:5: 'ciphers': cannot map 'HIGH'", r.Stderr, StringComparison.Ordinal);

        r = await Check($"certfile {P("server.pem")}", $"keyfile {P("server.key")}", "ciphers ECDHE-RSA-AES128-GCM-SHA256:!aNULL");
        Assert.True(r.ExitCode == 0, r.ToString());
    }

    /// <summary>Completes a TLS handshake with .NET's SslStream and returns the certificate the broker sent.</summary>
    private static async Task<X509Certificate2> ServerCertificateAsync(int port, SslProtocols protocols = SslProtocols.None)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var tcp = new TcpClient();
        await tcp.ConnectAsync("127.0.0.1", port, cts.Token);
        await using var ssl = new SslStream(tcp.GetStream());
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            EnabledSslProtocols = protocols,
            RemoteCertificateValidationCallback = (_, _, _, _) => true,
        }, cts.Token);
        return new X509Certificate2(ssl.RemoteCertificate!);
    }
}
