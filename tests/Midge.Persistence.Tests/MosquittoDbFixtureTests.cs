using System.Buffers.Binary;
using System.Text;
using Midge.Core.Sessions;
using Midge.Protocol;

namespace Midge.Persistence.Tests;

/// <summary>
/// <see cref="MosquittoDb"/> on files Mosquitto 2.0.11 wrote, kept in Fixtures/ (so this runs without Mosquitto):
/// <c>mosquitto-2.0.11-sessions.db</c> is what <see cref="MosquittoDbTests.SessionsScenarioAsync"/> left,
/// <c>mosquitto-2.0.11-retained.db</c> one retained MQTT 5 message. Corrupt files are made from them.
/// </summary>
public sealed class MosquittoDbFixtureTests
{
    private const string Sessions = "mosquitto-2.0.11-sessions.db";
    private const string Retained = "mosquitto-2.0.11-retained.db";

    // Times in the sessions fixture: s5's expiry time (disconnection + 3600 s), and b/y's message expiry.
    private static readonly DateTimeOffset S5Disconnected = DateTimeOffset.FromUnixTimeSeconds(1796609656 - 3600);
    private static readonly DateTimeOffset ByExpires = DateTimeOffset.FromUnixTimeSeconds(1796606656);

    private static string FixturePath(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", name);

    private static byte[] Fixture(string name) => File.ReadAllBytes(FixturePath(name));

    [Fact]
    public void Reads_the_sessions_fixture_field_by_field()
    {
        var now = S5Disconnected.AddMinutes(1);
        var contents = MosquittoDb.Read(FixturePath(Sessions), now);
        Assert.Equal(6, contents.Version);
        Assert.Equal(61ul, contents.LastDbId);
        Assert.True(contents.CleanShutdown);
        Assert.Empty(contents.Warnings);
        MosquittoDbTests.AssertSessions(contents, now, S5Disconnected, S5Disconnected.AddSeconds(2));

        var s5 = contents.Sessions.Single(s => s.ClientId == "s5");
        Assert.Equal(S5Disconnected, s5.DisconnectedAt);
        Assert.Equal(ByExpires, s5.Queued[0].Message.ExpiresAt);
        var inf = contents.Sessions.Single(s => s.ClientId == "inf");
        Assert.Equal([(ushort)1, (ushort)2, (ushort)3], inf.Inflight.Select(f => f.PacketId));
        Assert.Equal(["d/1", "d/2", "d/3"], inf.Inflight.Select(f => f.Message.Topic));
        // In this file Mosquitto queued s1's message (state queued, packet id 1).
        Assert.Equal("a/x", Assert.Single(contents.Sessions.Single(s => s.ClientId == "s1").Queued).Message.Topic);
    }

    [Fact]
    public void A_message_expired_by_now_is_dropped_with_the_client_messages_that_name_it()
    {
        var contents = MosquittoDb.Read(FixturePath(Sessions), ByExpires.AddSeconds(1));
        Assert.Empty(contents.Warnings);
        var s5 = contents.Sessions.Single(s => s.ClientId == "s5");
        var left = Assert.Single(s5.Queued);
        Assert.Equal("c/z", left.Message.Topic);
        Assert.Equal(1, left.Sequence);
    }

    [Fact]
    public void Reads_format_5_as_Mosquitto_1_6_writes_it()
    {
        var now = S5Disconnected.AddMinutes(1);
        var contents = MosquittoDb.Read(MosquittoDbFiles.ToVersion5(Fixture(Sessions)), "v5.db", now);
        Assert.Equal(5, contents.Version);
        Assert.Empty(contents.Warnings);
        MosquittoDbTests.AssertSessions(contents, now, S5Disconnected, S5Disconnected.AddSeconds(2));
    }

    [Fact]
    public void Reads_the_retained_fixture()
    {
        var contents = MosquittoDb.Read(FixturePath(Retained), DateTimeOffset.FromUnixTimeSeconds(1796606000));
        Assert.Equal(53ul, contents.LastDbId);
        Assert.Empty(contents.Sessions);
        Assert.Empty(contents.IncomingQoS2);
        Assert.Empty(contents.Warnings);
        var m = Assert.Single(contents.Retained);
        Assert.Equal("only/retained", m.Topic);
        Assert.Equal("kept", Encoding.UTF8.GetString(m.Payload.Span));
        Assert.Equal(QoS.AtLeastOnce, m.QoS);
        Assert.True(m.Retain);
        Assert.StartsWith("auto-", m.OriginClientId, StringComparison.Ordinal);
        Assert.Equal([new UserProperty("a", "b")], m.Properties!.UserProperties);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1796692465), m.ExpiresAt);
    }

    [Fact]
    public void Every_truncation_is_refused_with_its_offset_unless_it_falls_between_chunks()
    {
        var file = Fixture(Sessions);
        var boundaries = MosquittoDbFiles.Chunks(file).Select(c => c.Offset).Append(file.Length).ToHashSet();
        for (int cut = 1; cut < file.Length; cut++)
        {
            var bytes = file[..cut];
            if (boundaries.Contains(cut))
            {
                MosquittoDb.Read(bytes, "cut.db", S5Disconnected); // a shorter, whole file
                continue;
            }
            var e = Assert.Throws<MosquittoDbException>(() => MosquittoDb.Read(bytes, "cut.db", S5Disconnected));
            Assert.StartsWith("cut.db: at byte ", e.Message, StringComparison.Ordinal);
            Assert.InRange(e.Offset, 0, cut);
            Assert.Equal("cut.db", e.Path);
        }
        Assert.Contains("truncated header", Refused(file[..18]).Message, StringComparison.Ordinal);
        Assert.Contains("truncated chunk header", Refused(file[..27]).Message, StringComparison.Ordinal);
        Assert.Contains("declares", Refused(file[..40]).Message, StringComparison.Ordinal);
        var empty = MosquittoDb.Read([], "empty.db", S5Disconnected); // Mosquitto starts with nothing, and says so
        Assert.Empty(empty.Sessions);
        Assert.Single(empty.Warnings);
    }

    [Fact]
    public void A_truncated_file_on_disk_is_named_in_the_error()
    {
        string path = Path.Combine(Path.GetTempPath(), $"midge-truncated-{Guid.NewGuid():N}.db");
        File.WriteAllBytes(path, Fixture(Sessions)[..700]);
        try
        {
            var e = Assert.Throws<MosquittoDbException>(() => MosquittoDb.Read(path, S5Disconnected));
            Assert.StartsWith($"{path}: at byte ", e.Message, StringComparison.Ordinal);
            Assert.Contains("left in the", e.Message, StringComparison.Ordinal);
            Assert.Equal(path, e.Path);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void A_chunk_length_of_2_GiB_is_refused_before_anything_is_allocated()
    {
        var file = Fixture(Sessions);
        foreach (var (offset, type, _) in MosquittoDbFiles.Chunks(file))
        {
            var bytes = (byte[])file.Clone();
            BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(offset + 4), 0x7fffffff);
            long before = GC.GetAllocatedBytesForCurrentThread();
            var e = Refused(bytes);
            Assert.Contains($"at byte {offset}: chunk of type {type} declares 2147483647 bytes but only", e.Message, StringComparison.Ordinal);
            Assert.InRange(GC.GetAllocatedBytesForCurrentThread() - before, 0, 1 << 20);
        }
    }

    [Fact]
    public void A_string_longer_than_its_chunk_is_refused()
    {
        var file = Fixture(Sessions);
        var client = MosquittoDbFiles.Chunks(file).First(c => c.Type == 6);
        BinaryPrimitives.WriteUInt16BigEndian(file.AsSpan(client.Offset + 8 + 14), 0xFFFF); // the client id's length
        var e = Refused(file);
        Assert.Contains("a client id of 65535 bytes needed but only", e.Message, StringComparison.Ordinal);
        Assert.Equal(client.Offset + 8 + 24, e.Offset);
    }

    [Fact]
    public void Wrong_magic_and_unsupported_versions_are_refused()
    {
        var file = Fixture(Retained);
        var bad = (byte[])file.Clone();
        bad[5] = (byte)'X';
        var e = Refused(bad);
        Assert.Equal(0, e.Offset);
        Assert.Contains("not a Mosquitto persistence file (bad magic", e.Message, StringComparison.Ordinal);
        Assert.Contains("bad magic", Refused("SQLite format 3\0 and more"u8.ToArray()).Message, StringComparison.Ordinal);

        var v99 = (byte[])file.Clone();
        BinaryPrimitives.WriteUInt32BigEndian(v99.AsSpan(19), 99);
        e = Refused(v99);
        Assert.Equal(19, e.Offset);
        Assert.Equal("unsupported format version 99, written by a Mosquitto newer than this reader; supported: 5 (Mosquitto 1.6), " +
            "6 (Mosquitto 2.0 and later)", e.Problem);

        var v4 = (byte[])file.Clone();
        BinaryPrimitives.WriteUInt32BigEndian(v4.AsSpan(19), 4);
        Assert.Contains("version 4, written by Mosquitto 1.5 or earlier", Refused(v4).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_client_message_naming_a_missing_store_id_is_skipped_with_a_warning()
    {
        var file = Fixture(Sessions);
        var first = MosquittoDbFiles.Chunks(file).First(c => c.Type == 3 &&
            Encoding.ASCII.GetString(file, c.Offset + 8 + 16, 3) == "inf");
        BinaryPrimitives.WriteUInt64LittleEndian(file.AsSpan(first.Offset + 8), 9999);
        var contents = MosquittoDb.Read(file, "missing.db", S5Disconnected);
        var warning = Assert.Single(contents.Warnings);
        Assert.Contains($"client message of \"inf\" at byte {first.Offset} names store id 9999", warning, StringComparison.Ordinal);
        Assert.Equal(2, contents.Sessions.Single(s => s.ClientId == "inf").Inflight.Count);
    }

    [Fact]
    public void Random_corruption_gives_contents_or_a_MosquittoDbException_never_anything_else()
    {
        var file = Fixture(Sessions);
        var random = new Random(20251207);
        for (int i = 0; i < 3000; i++)
        {
            var bytes = (byte[])file.Clone();
            int flips = random.Next(1, 5);
            for (int f = 0; f < flips; f++) bytes[random.Next(23, bytes.Length)] = (byte)random.Next(256);
            try
            {
                MosquittoDb.Read(bytes, "fuzz.db", S5Disconnected);
            }
            catch (MosquittoDbException)
            {
            }
        }
    }

    private static MosquittoDbException Refused(byte[] bytes) =>
        Assert.Throws<MosquittoDbException>(() => MosquittoDb.Read(bytes, "bad.db", S5Disconnected));
}
