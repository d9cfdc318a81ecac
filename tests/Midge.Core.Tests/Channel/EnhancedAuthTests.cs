using System.Security.Cryptography;
using System.Text;
using Midge.Config;
using Midge.Protocol;
using Midge.Protocol.Packets;
using Midge.Security;

namespace Midge.Core.Tests.Channel;

/// <summary>The client side of SCRAM (RFC 5802), written from the RFC for the tests.</summary>
internal sealed class ScramClient(string mechanism, string user, string password)
{
    private readonly string _nonce = Convert.ToBase64String(RandomNumberGenerator.GetBytes(12));
    private string _clientFirstBare = "";
    private byte[] _serverSignature = [];

    private HashAlgorithmName Hash => mechanism.EndsWith("512", StringComparison.Ordinal) ? HashAlgorithmName.SHA512 : HashAlgorithmName.SHA256;

    private byte[] Hmac(byte[] key, byte[] data) => Hash == HashAlgorithmName.SHA512 ? HMACSHA512.HashData(key, data) : HMACSHA256.HashData(key, data);

    public byte[] First()
    {
        _clientFirstBare = $"n={user},r={_nonce}";
        return Encoding.UTF8.GetBytes("n,," + _clientFirstBare);
    }

    public byte[] Final(byte[] serverFirstBytes)
    {
        var serverFirst = Encoding.UTF8.GetString(serverFirstBytes);
        var attrs = serverFirst.Split(',').ToDictionary(a => a[..1], a => a[2..]);
        Assert.StartsWith(_nonce, attrs["r"]);
        var salted = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), Convert.FromBase64String(attrs["s"]),
            int.Parse(attrs["i"]), Hash, Hash == HashAlgorithmName.SHA512 ? 64 : 32);
        var withoutProof = $"c=biws,r={attrs["r"]}";
        var authMessage = Encoding.UTF8.GetBytes($"{_clientFirstBare},{serverFirst},{withoutProof}");
        var clientKey = Hmac(salted, Encoding.UTF8.GetBytes("Client Key"));
        var storedKey = CryptographicOperations.HashData(Hash, clientKey);
        var signature = Hmac(storedKey, authMessage);
        var proof = clientKey.Zip(signature, (a, b) => (byte)(a ^ b)).ToArray();
        _serverSignature = Hmac(Hmac(salted, Encoding.UTF8.GetBytes("Server Key")), authMessage);
        return Encoding.UTF8.GetBytes($"{withoutProof},p={Convert.ToBase64String(proof)}");
    }

    public bool VerifyServer(byte[]? serverFinal) =>
        serverFinal is not null && Encoding.UTF8.GetString(serverFinal) == "v=" + Convert.ToBase64String(_serverSignature);
}

public sealed class EnhancedAuthTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("midge-scram-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private ChannelHarness Harness()
    {
        var pw = Path.Combine(_dir, "pw");
        File.WriteAllText(pw, PasswdCommand.FormatEntry("alice", "secret") +
            PasswdCommand.FormatEntry("bob", "hunter2", PasswordHashKind.Sha256Pbkdf2, 4096));
        var listener = new ListenerConfig { AllowAnonymous = false, PasswordFile = pw };
        return new ChannelHarness(new BrokerConfig { Listeners = [listener], PasswordFile = pw }, listener);
    }

    private static (Midge.Core.Channel.MqttChannel, RecordingOutput, ConnAckPacket?) Login(ChannelHarness h, string mechanism, string user, string password, ScramClient? client = null)
    {
        client ??= new ScramClient(mechanism, user, password);
        var (channel, output) = h.Open();
        var connect = new ConnectPacket { ClientId = "c-" + user, ProtocolVersion = ProtocolVersion.V500 };
        connect.GetOrCreateProperties().AuthenticationMethod = mechanism;
        connect.Properties!.AuthenticationData = client.First();
        channel.Handle(connect);
        if (output.FinalPacket is ConnAckPacket early) return (channel, output, early);
        var challenge = Assert.IsType<AuthPacket>(Assert.Single(output.Take()));
        Assert.Equal(ReasonCode.ContinueAuthentication, challenge.ReasonCode);
        Assert.Equal(mechanism, challenge.Properties?.AuthenticationMethod);
        var reply = new AuthPacket { ReasonCode = ReasonCode.ContinueAuthentication };
        reply.GetOrCreateProperties().AuthenticationMethod = mechanism;
        reply.Properties!.AuthenticationData = client.Final(challenge.Properties!.AuthenticationData!);
        channel.Handle(reply);
        var connack = output.FinalPacket as ConnAckPacket ?? output.Take().OfType<ConnAckPacket>().FirstOrDefault();
        return (channel, output, connack);
    }

    [Theory]
    [InlineData("SCRAM-SHA-512", "alice", "secret")]
    [InlineData("SCRAM-SHA-256", "bob", "hunter2")]
    public void Scram_RightPassword_ConnectsAndServerProvesItself(string mechanism, string user, string password)
    {
        var h = Harness();
        var client = new ScramClient(mechanism, user, password);
        var (channel, _, connack) = Login(h, mechanism, user, password, client);
        Assert.Equal(ReasonCode.Success, connack!.ReasonCode);
        Assert.Equal(mechanism, connack.Properties?.AuthenticationMethod);
        Assert.True(client.VerifyServer(connack.Properties?.AuthenticationData));
        Assert.Equal(user, channel.UserName);
        Assert.True(channel.IsConnected);
    }

    [Theory]
    [InlineData("SCRAM-SHA-512", "alice", "wrong")]
    [InlineData("SCRAM-SHA-512", "nobody", "secret")]
    [InlineData("SCRAM-SHA-512", "bob", "hunter2")] // bob has only a SHA-256 credential
    public void Scram_WrongPasswordOrUnknownUser_GetsBadUserNameOrPassword(string mechanism, string user, string password)
    {
        var (_, output, connack) = Login(Harness(), mechanism, user, password);
        Assert.Equal(ReasonCode.BadUserNameOrPassword, connack!.ReasonCode);
        Assert.True(output.Closed);
    }

    [Fact]
    public void UnsupportedMethod_Gets0x8C()
    {
        var (_, _, connack) = Login(Harness(), "PLAIN", "alice", "secret");
        Assert.Equal(ReasonCode.BadAuthenticationMethod, connack!.ReasonCode);
    }

    [Fact]
    public void OtherPacketDuringAuthentication_IsProtocolError()
    {
        var h = Harness();
        var (channel, output) = h.Open();
        var connect = new ConnectPacket { ClientId = "c", ProtocolVersion = ProtocolVersion.V500 };
        connect.GetOrCreateProperties().AuthenticationMethod = "SCRAM-SHA-512";
        connect.Properties!.AuthenticationData = new ScramClient("SCRAM-SHA-512", "alice", "secret").First();
        channel.Handle(connect);
        output.Take();
        channel.Handle(PingReqPacket.Instance);
        Assert.Equal(ReasonCode.ProtocolError, Assert.IsType<ConnAckPacket>(output.FinalPacket).ReasonCode);
    }

    [Fact]
    public void ReAuthentication_SucceedsWithAuth0x00_AndFailsWithDisconnect0x87()
    {
        var h = Harness();
        var (channel, output, connack) = Login(h, "SCRAM-SHA-512", "alice", "secret");
        Assert.Equal(ReasonCode.Success, connack!.ReasonCode);

        var again = new ScramClient("SCRAM-SHA-512", "alice", "secret");
        channel.Handle(Auth(ReasonCode.ReAuthenticate, again.First()));
        var challenge = Assert.IsType<AuthPacket>(Assert.Single(output.Take()));
        channel.Handle(Auth(ReasonCode.ContinueAuthentication, again.Final(challenge.Properties!.AuthenticationData!)));
        var done = Assert.IsType<AuthPacket>(Assert.Single(output.Take()));
        Assert.Equal(ReasonCode.Success, done.ReasonCode);
        Assert.True(again.VerifyServer(done.Properties?.AuthenticationData));

        var wrong = new ScramClient("SCRAM-SHA-512", "alice", "nope");
        channel.Handle(Auth(ReasonCode.ReAuthenticate, wrong.First()));
        challenge = Assert.IsType<AuthPacket>(Assert.Single(output.Take()));
        channel.Handle(Auth(ReasonCode.ContinueAuthentication, wrong.Final(challenge.Properties!.AuthenticationData!)));
        Assert.Equal(ReasonCode.NotAuthorized, Assert.IsType<DisconnectPacket>(output.FinalPacket).ReasonCode);
    }

    [Fact]
    public void AuthWithADifferentMethod_IsProtocolError()
    {
        var h = Harness();
        var (channel, output, _) = Login(h, "SCRAM-SHA-512", "alice", "secret");
        var auth = new AuthPacket { ReasonCode = ReasonCode.ReAuthenticate };
        auth.GetOrCreateProperties().AuthenticationMethod = "SCRAM-SHA-256";
        channel.Handle(auth);
        Assert.Equal(ReasonCode.ProtocolError, Assert.IsType<DisconnectPacket>(output.FinalPacket).ReasonCode);
    }

    private static AuthPacket Auth(ReasonCode reason, byte[] data)
    {
        var auth = new AuthPacket { ReasonCode = reason };
        auth.GetOrCreateProperties().AuthenticationMethod = "SCRAM-SHA-512";
        auth.Properties!.AuthenticationData = data;
        return auth;
    }
}
