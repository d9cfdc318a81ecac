using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Client.Tests;

/// <summary>A scripted MQTT 5 server (the codec over a socket, optionally TLS) for what real brokers cannot be
/// made to do on demand.</summary>
internal sealed class FakeServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private Stream? _stream;
    private PipeReader? _reader;

    public FakeServer()
    {
        _listener.Start();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public async Task AcceptAsync(CancellationToken ct, X509Certificate2? certificate = null)
    {
        var socket = await _listener.AcceptSocketAsync(ct);
        _stream = new NetworkStream(socket, ownsSocket: true);
        if (certificate is not null)
        {
            var ssl = new SslStream(_stream);
            await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = certificate }, ct);
            _stream = ssl;
        }
        _reader = PipeReader.Create(_stream);
    }

    public async Task<MqttPacket> ReadAsync(CancellationToken ct)
    {
        while (true)
        {
            var result = await _reader!.ReadAsync(ct);
            var buffer = result.Buffer;
            if (FrameReader.TryRead(ref buffer, 0, out byte header, out var body, out _) == FrameStatus.Complete)
            {
                var packet = PacketDecoder.Decode(header, body, ProtocolVersion.V500);
                _reader.AdvanceTo(buffer.Start);
                return packet;
            }
            if (result.IsCompleted) throw new EndOfStreamException();
            _reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }
    }

    public async Task SendAsync(MqttPacket packet, CancellationToken ct)
    {
        var buffer = new ArrayBufferWriter<byte>();
        PacketEncoder.Write(buffer, packet, ProtocolVersion.V500);
        await _stream!.WriteAsync(buffer.WrittenMemory, ct);
        await _stream.FlushAsync(ct);
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Stop();
        if (_stream is not null) await _stream.DisposeAsync();
    }
}

public sealed class FakeServerTests
{
    private static CancellationToken Bounded() => new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token;

    [Fact]
    public async Task Receive_maximum_of_the_server_bounds_unacknowledged_publishes()
    {
        var ct = Bounded();
        await using var server = new FakeServer();
        await using var client = new MqttClient(new MqttClientOptions { Host = "127.0.0.1", Port = server.Port, ProtocolVersion = ProtocolVersion.V500, ClientId = "rm" });
        var accept = server.AcceptAsync(ct);
        var connecting = client.ConnectAsync(ct).AsTask();
        await accept;
        Assert.IsType<ConnectPacket>(await server.ReadAsync(ct));
        await server.SendAsync(new ConnAckPacket { Properties = new MqttProperties { ReceiveMaximum = 2 } }, ct);
        await connecting;

        var publishes = Enumerable.Range(0, 3).Select(i => client.PublishAsync("t", new byte[] { (byte)i }, QoS.AtLeastOnce, ct: ct).AsTask()).ToList();
        var first = (PublishPacket)await server.ReadAsync(ct);
        var second = (PublishPacket)await server.ReadAsync(ct);
        using (var quiet = CancellationTokenSource.CreateLinkedTokenSource(ct))
        {
            quiet.CancelAfter(300);
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => server.ReadAsync(quiet.Token));
        }
        Assert.Equal(2, client.InflightCount);
        await server.SendAsync(new PublishAckPacket(PacketType.PubAck, first.PacketId), ct);
        // A cancelled read may have consumed nothing; the third PUBLISH comes once a slot is free.
        var third = (PublishPacket)await server.ReadAsync(ct);
        Assert.NotEqual(second.PacketId, third.PacketId);
        await server.SendAsync(new PublishAckPacket(PacketType.PubAck, second.PacketId), ct);
        await server.SendAsync(new PublishAckPacket(PacketType.PubAck, third.PacketId), ct);
        await Task.WhenAll(publishes).WaitAsync(ct);
    }

    [Fact]
    public async Task Maximum_packet_size_of_the_server_fails_fast()
    {
        var ct = Bounded();
        await using var server = new FakeServer();
        await using var client = new MqttClient(new MqttClientOptions { Host = "127.0.0.1", Port = server.Port, ProtocolVersion = ProtocolVersion.V500, ClientId = "mps" });
        var accept = server.AcceptAsync(ct);
        var connecting = client.ConnectAsync(ct).AsTask();
        await accept;
        await server.ReadAsync(ct);
        await server.SendAsync(new ConnAckPacket { Properties = new MqttProperties { MaximumPacketSize = 100 } }, ct);
        await connecting;
        await Assert.ThrowsAsync<MqttClientException>(async () => await client.PublishAsync("t", new byte[200], QoS.AtLeastOnce, ct: ct));
    }

    [Fact]
    public async Task Tls_connection_with_a_trusted_ca_file()
    {
        var ct = Bounded();
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        request.CertificateExtensions.Add(san.Build());
        using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        using var serverCert = X509CertificateLoader.LoadPkcs12(cert.Export(X509ContentType.Pfx), null);
        string caFile = Path.GetTempFileName();
        await File.WriteAllTextAsync(caFile, cert.ExportCertificatePem(), ct);
        try
        {
            await using var server = new FakeServer();
            var options = new MqttClientOptions
            {
                Host = "localhost",
                Port = server.Port,
                ProtocolVersion = ProtocolVersion.V500,
                ClientId = "tls",
                Tls = new MqttTlsOptions { CaFile = caFile },
            };
            await using var client = new MqttClient(options);
            var accept = server.AcceptAsync(ct, serverCert);
            var connecting = client.ConnectAsync(ct).AsTask();
            await accept;
            Assert.Equal("tls", ((ConnectPacket)await server.ReadAsync(ct)).ClientId);
            await server.SendAsync(new ConnAckPacket(), ct);
            Assert.True((await connecting).IsSuccess);
        }
        finally
        {
            File.Delete(caFile);
        }
    }
}
