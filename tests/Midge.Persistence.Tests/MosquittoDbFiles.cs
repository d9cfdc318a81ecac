using System.Buffers.Binary;
using System.Text;
using Midge.TestKit;

namespace Midge.Persistence.Tests;

/// <summary>
/// Makes real <c>mosquitto.db</c> files: Debian's Mosquitto with persistence on, in its own directory and on its own
/// port, driven by mosquitto_sub, mosquitto_pub and hand-made packets (for what those clients cannot do: subscription
/// options, an unfinished QoS 2 flow), then stopped with SIGTERM, which makes it write the file.
/// </summary>
internal static class MosquittoDbFiles
{
    /// <summary>Starts Mosquitto persisting into <paramref name="directory"/>, runs <paramref name="scenario"/> against
    /// its port, stops it and returns the file it wrote.</summary>
    public static async Task<string> MakeAsync(string directory, Func<int, Task> scenario)
    {
        const string Mosquitto = "/usr/sbin/mosquitto";
        if (!File.Exists(Mosquitto)) throw new InvalidOperationException($"{Mosquitto} is missing: install Debian's mosquitto (run-tests.sh does)");
        int port = FreePort.Next();
        string conf = Path.Combine(directory, "mosquitto.conf");
        // As root Mosquitto would switch to the user "mosquitto", which may not write here; as anyone else "user" is moot.
        await File.WriteAllTextAsync(conf, $"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n" +
            $"persistence_location {directory}/\nuser {Environment.UserName}\n");
        using var process = PeerProcess.Start(Mosquitto, ["-c", conf], directory);
        try
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            while (!await FreePort.AcceptsAsync(port))
            {
                if (process.HasExited || DateTime.UtcNow > deadline)
                {
                    throw new InvalidOperationException($"mosquitto did not listen on {port}: {await process.WaitAsync(TimeSpan.Zero)}");
                }
                await Task.Delay(50);
            }
            await scenario(port);
        }
        finally
        {
            process.Signal(Signals.SIGTERM); // Mosquitto saves as it exits
            var result = await process.WaitAsync(TimeSpan.FromSeconds(10));
            Assert.False(result.TimedOut, $"mosquitto did not exit on SIGTERM: {result}");
        }
        string path = Path.Combine(directory, "mosquitto.db");
        Assert.True(File.Exists(path), $"Mosquitto wrote no {path}");
        return path;
    }

    /// <summary>Chunk starts of a file (after its 23-byte header).</summary>
    public static List<(int Offset, uint Type, int Length)> Chunks(byte[] file)
    {
        var chunks = new List<(int, uint, int)>();
        for (int at = 23; at + 8 <= file.Length;)
        {
            uint type = BinaryPrimitives.ReadUInt32BigEndian(file.AsSpan(at));
            int length = (int)BinaryPrimitives.ReadUInt32BigEndian(file.AsSpan(at + 4));
            chunks.Add((at, type, length));
            at += 8 + length;
        }
        return chunks;
    }

    /// <summary>The same file as Mosquitto 1.6 would write it (format 5): client chunks without the listener port, the
    /// user name length, their padding and the user name.</summary>
    public static byte[] ToVersion5(byte[] file)
    {
        var output = new List<byte>(file[..19]);
        output.AddRange([0, 0, 0, 5]);
        foreach (var (offset, type, length) in Chunks(file))
        {
            var body = file.AsSpan(offset + 8, length);
            if (type != 6)
            {
                output.AddRange(file.AsSpan(offset, 8 + length));
                continue;
            }
            int idLength = BinaryPrimitives.ReadUInt16BigEndian(body[14..]);
            var header = new byte[8];
            BinaryPrimitives.WriteUInt32BigEndian(header, 6);
            BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(4), (uint)(16 + idLength));
            output.AddRange(header);
            output.AddRange(body[..16]);
            output.AddRange(body.Slice(24, idLength));
        }
        return [.. output];
    }

    // ---- hand-made packets ----

    /// <summary>MQTT 5 CONNECT without Clean Start, with a Session Expiry Interval and optionally a user name.</summary>
    public static byte[] ConnectV5(string clientId, uint sessionExpiry, string? userName = null)
    {
        var body = new List<byte>();
        AddString(body, "MQTT");
        body.Add(5);
        body.Add(userName is null ? (byte)0x00 : (byte)0x80);
        body.AddRange([0, 60]);
        body.AddRange([5, 0x11, (byte)(sessionExpiry >> 24), (byte)(sessionExpiry >> 16), (byte)(sessionExpiry >> 8), (byte)sessionExpiry]);
        AddString(body, clientId);
        if (userName is not null) AddString(body, userName);
        return RawMqttClient.Frame(0x10, body);
    }

    /// <summary>MQTT 5 SUBSCRIBE with a Subscription Identifier (below 128) and each filter's options byte.</summary>
    public static byte[] SubscribeV5(ushort packetId, byte subscriptionId, params (string Filter, byte Options)[] filters)
    {
        var body = new List<byte> { (byte)(packetId >> 8), (byte)packetId, 2, 0x0B, subscriptionId };
        foreach (var (filter, options) in filters)
        {
            AddString(body, filter);
            body.Add(options);
        }
        return RawMqttClient.Frame(0x82, body);
    }

    /// <summary>A QoS 1 or 2 PUBLISH (3.1.1).</summary>
    public static byte[] Publish(string topic, string payload, byte qos, ushort packetId)
    {
        var body = new List<byte>();
        AddString(body, topic);
        body.AddRange([(byte)(packetId >> 8), (byte)packetId]);
        body.AddRange(Encoding.UTF8.GetBytes(payload));
        return RawMqttClient.Frame((byte)(0x30 | (qos << 1)), body);
    }

    public static byte[] PubRec(ushort packetId) => [0x50, 2, (byte)(packetId >> 8), (byte)packetId];

    /// <summary>Opens a connection, sends <paramref name="connect"/> and asserts a successful CONNACK.</summary>
    public static async Task<RawMqttClient> ConnectAsync(int port, byte[] connect)
    {
        var client = await RawMqttClient.ConnectTcpAsync(port);
        await client.SendAsync(connect);
        var connack = await client.ReadAsync(TimeSpan.FromSeconds(5));
        Assert.True(connack is { Type: 2 } && connack.Body[1] == 0, $"no successful CONNACK: {connack}");
        return client;
    }

    /// <summary>Reads packets until one of <paramref name="type"/> comes.</summary>
    public static async Task<RawPacket> ExpectAsync(RawMqttClient client, int type)
    {
        for (int i = 0; i < 10; i++)
        {
            var packet = await client.ReadAsync(TimeSpan.FromSeconds(5));
            Assert.NotNull(packet);
            if (packet.Type == type) return packet;
        }
        throw new InvalidOperationException($"no packet of type {type}");
    }

    /// <summary>A received PUBLISH's topic and packet id (3.1.1 layout).</summary>
    public static (string Topic, ushort PacketId) Published(RawPacket publish)
    {
        int topicLength = BinaryPrimitives.ReadUInt16BigEndian(publish.Body);
        string topic = Encoding.UTF8.GetString(publish.Body, 2, topicLength);
        return (topic, BinaryPrimitives.ReadUInt16BigEndian(publish.Body.AsSpan(2 + topicLength)));
    }

    private static void AddString(List<byte> body, string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        body.Add((byte)(bytes.Length >> 8));
        body.Add((byte)bytes.Length);
        body.AddRange(bytes);
    }
}
