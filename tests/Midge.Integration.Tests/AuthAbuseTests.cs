using System.Text;
using Midge.TestKit;

namespace Midge.Integration.Tests;

/// <summary>A broker with a password file (made by `midge passwd`) and anonymous clients allowed.</summary>
public sealed class PasswordBrokerFixture : IAsyncLifetime
{
    private MidgeProcess? _broker;

    public MidgeProcess Broker => _broker ?? throw new InvalidOperationException("broker not started");

    public async Task InitializeAsync()
    {
        string file = Path.Combine(MidgeProcess.NewDirectory(), "passwd");
        var made = await MidgeProcess.RunAsync(TimeSpan.FromSeconds(20), "passwd", "-b", "-c", file, "alice", "s3cret");
        if (made.ExitCode != 0) throw new InvalidOperationException(made.ToString());
        _broker = await MidgeProcess.StartAsync($"password_file {file}");
    }

    public async Task DisposeAsync()
    {
        if (_broker is not null) await _broker.DisposeAsync();
    }
}

/// <summary>
/// Bad input at the authentication layer: empty, huge and non-UTF-8 user names and passwords, wrong versions and
/// a burst of failed logins. Each is refused with the right answer, and a client connected beforehand, new
/// clients and the right password keep working.
/// </summary>
public sealed class AuthAbuseTests(PasswordBrokerFixture fixture) : IClassFixture<PasswordBrokerFixture>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    private int Port => fixture.Broker.Port;

    /// <summary>CONNECT with user name and password as raw bytes (so tests can send what no client library would).</summary>
    private static byte[] ConnectWith(byte[] user, byte[] password, byte version, byte level = 0)
    {
        var body = new List<byte>();
        AddBytes(body, Encoding.ASCII.GetBytes(version == RawMqttClient.V31 ? "MQIsdp" : "MQTT"));
        body.Add(level == 0 ? version : level);
        body.Add(0xC2); // user name, password, clean session
        body.Add(0);
        body.Add(60);
        if (version == RawMqttClient.V5) body.Add(0);
        AddBytes(body, Encoding.ASCII.GetBytes("abuser-" + Guid.NewGuid().ToString("N")[..8]));
        AddBytes(body, user);
        AddBytes(body, password);
        return RawMqttClient.Frame(0x10, body);
    }

    private static void AddBytes(List<byte> body, byte[] bytes)
    {
        body.Add((byte)(bytes.Length >> 8));
        body.Add((byte)bytes.Length);
        body.AddRange(bytes);
    }

    private async Task<List<RawPacket>> TryAsync(byte[] connect)
    {
        using var c = await RawMqttClient.ConnectTcpAsync(Port);
        await c.SendAsync(connect);
        return await c.ReadUntilClosedAsync(Timeout);
    }

    /// <summary>The connection ended refused: a CONNACK with a non-zero code and then the close, or just the close.</summary>
    private static void AssertRefused(List<RawPacket> packets, byte? expectedCode = null)
    {
        Assert.True(packets.Count <= 1, string.Join(", ", packets));
        if (packets.Count == 0)
        {
            Assert.Null(expectedCode);
            return;
        }
        Assert.Equal(2, packets[0].Type);
        Assert.NotEqual(0, packets[0].Body[1]);
        if (expectedCode is { } code) Assert.Equal(code, packets[0].Body[1]);
    }

    private async Task WithBystanderAsync(Func<Task> abuse)
    {
        string topic = "auth-bystander/" + Guid.NewGuid().ToString("N")[..8];
        using var bystander = await RawMqttClient.ConnectMqttAsync(Port, "by-" + Guid.NewGuid().ToString("N")[..8], RawMqttClient.V5);
        await bystander.SendAsync(RawMqttClient.Subscribe(1, topic, 0, RawMqttClient.V5));
        Assert.Equal(9, (await bystander.ReadAsync(Timeout))?.Type);

        await abuse();

        using (var pub = await RawMqttClient.ConnectMqttAsync(Port, "pub-" + Guid.NewGuid().ToString("N")[..8]))
        {
            await pub.SendAsync(RawMqttClient.Publish(topic, "still here"u8.ToArray()));
        }
        var delivered = await bystander.ReadAsync(Timeout);
        Assert.Equal(3, delivered?.Type);
        // And the right password still opens the door.
        var ok = await TryConnectAsync(ConnectWith("alice"u8.ToArray(), "s3cret"u8.ToArray(), RawMqttClient.V311));
        Assert.Equal(0, ok);
    }

    private async Task<int> TryConnectAsync(byte[] connect)
    {
        using var c = await RawMqttClient.ConnectTcpAsync(Port);
        await c.SendAsync(connect);
        var p = await c.ReadAsync(Timeout);
        Assert.Equal(2, p?.Type);
        return p!.Body[1];
    }

    [Theory]
    [InlineData(RawMqttClient.V311, 5)]   // 3.1.1: "not authorised", as Mosquitto answers a failed login
    [InlineData(RawMqttClient.V5, 0x87)]  // MQTT 5: Not authorized, as Mosquitto answers
    public Task WrongPassword_IsRefused(byte version, byte code) => WithBystanderAsync(async () =>
        AssertRefused(await TryAsync(ConnectWith("alice"u8.ToArray(), "wrong"u8.ToArray(), version)), code));

    [Theory]
    [InlineData(RawMqttClient.V311)]
    [InlineData(RawMqttClient.V5)]
    public Task EmptyUserAndPassword_AreRefused(byte version) => WithBystanderAsync(async () =>
    {
        AssertRefused(await TryAsync(ConnectWith([], "s3cret"u8.ToArray(), version)));
        AssertRefused(await TryAsync(ConnectWith("alice"u8.ToArray(), [], version)));
    });

    [Fact]
    public Task HugeUserNameAndPassword_AreRefused() => WithBystanderAsync(async () =>
    {
        var huge = Enumerable.Repeat((byte)'a', 65_000).ToArray();
        AssertRefused(await TryAsync(ConnectWith(huge, "s3cret"u8.ToArray(), RawMqttClient.V5)), 0x87);
        AssertRefused(await TryAsync(ConnectWith("alice"u8.ToArray(), huge, RawMqttClient.V5)), 0x87);
    });

    [Theory]
    [InlineData(RawMqttClient.V311, null)]      // malformed UTF-8: 3.x is closed
    [InlineData(RawMqttClient.V5, (byte)0x81)]  // MQTT 5: CONNACK Malformed Packet
    public Task NonUtf8UserName_IsMalformed(byte version, byte? code) => WithBystanderAsync(async () =>
    {
        AssertRefused(await TryAsync(ConnectWith([0xC3, 0x28, 0xFF], "s3cret"u8.ToArray(), version)), code);
        AssertRefused(await TryAsync(ConnectWith([(byte)'a', 0x00, (byte)'b'], "s3cret"u8.ToArray(), version)), code); // U+0000
    });

    [Fact]
    public Task BinaryPassword_IsJustWrong() => WithBystanderAsync(async () =>
        AssertRefused(await TryAsync(ConnectWith("alice"u8.ToArray(), [0xFF, 0x00, 0xFE, 0x80], RawMqttClient.V5)), 0x87));

    [Fact]
    public Task UnknownProtocolLevel_WithCredentials_GetsUnacceptableVersion() => WithBystanderAsync(async () =>
        AssertRefused(await TryAsync(ConnectWith("alice"u8.ToArray(), "s3cret"u8.ToArray(), RawMqttClient.V311, level: 9)), 1));

    [Fact]
    public Task BurstOfFailedLogins_DoesNotStopTheBroker() => WithBystanderAsync(async () =>
    {
        var attempts = Enumerable.Range(0, 100).Select(i =>
            TryAsync(ConnectWith(Encoding.UTF8.GetBytes("user" + i), "guess"u8.ToArray(), RawMqttClient.V5)));
        foreach (var result in await Task.WhenAll(attempts)) AssertRefused(result, 0x87);
    });
}
