using System.Buffers.Binary;
using System.Text;
using Midge.Core.Sessions;
using Midge.Core.Sessions.Store;
using Midge.Protocol;

namespace Midge.Persistence;

/// <summary>What a Mosquitto persistence file holds, in Midge's records.</summary>
/// <param name="Version">The file's format version (5: Mosquitto 1.6; 6: Mosquitto 2.0 and later).</param>
/// <param name="LastDbId">The last message store id Mosquitto handed out.</param>
/// <param name="CleanShutdown">Whether Mosquitto wrote the file as it shut down (not an autosave).</param>
/// <param name="Sessions">The persistent sessions, in the file's order, with their subscriptions and outgoing
/// messages. <see cref="SessionState.IncomingQoS2"/> is empty: those messages are in <paramref name="IncomingQoS2"/>.</param>
/// <param name="IncomingQoS2">QoS 2 messages clients sent that Mosquitto holds until their PUBREL.</param>
/// <param name="Retained">The retained messages.</param>
/// <param name="Warnings">What was skipped, and why (Mosquitto skips the same things, most of them silently).</param>
public sealed record MosquittoDbContents(int Version, ulong LastDbId, bool CleanShutdown, IReadOnlyList<SessionState> Sessions,
    IReadOnlyList<IncomingMessage> IncomingQoS2, IReadOnlyList<StoredMessage> Retained, IReadOnlyList<string> Warnings);

/// <summary>A QoS 2 PUBLISH a client sent that Mosquitto held, waiting for its PUBREL. Mosquitto routes such a message
/// at PUBREL, Midge at PUBLISH: the taker publishes it once and records <paramref name="PacketId"/> as awaiting PUBREL
/// in the client's session, so that the client's PUBREL (or its PUBLISH again, DUP set) completes the flow without a
/// second delivery.</summary>
public sealed record IncomingMessage(string ClientId, ushort PacketId, StoredMessage Message);

/// <summary>
/// Reads Mosquitto's persistence file (<c>mosquitto.db</c>), so that Midge can take over a Mosquitto installation's
/// sessions, queued and in-flight messages and retained messages.
/// </summary>
/// <remarks>
/// <para>The file: a 15-byte magic, a 4-byte CRC (written as 0, never checked), the format version (32-bit big
/// endian), then chunks, each an 8-byte header (type and body length, big endian) and a body. A body is a fixed part
/// written as Mosquitto's C struct (padding included; the 16- and 32-bit fields big endian, the 64-bit ones, store ids
/// and times, in the writer's byte order: little endian, as on every machine Mosquitto is built for today), then
/// strings whose lengths the fixed part gives, then, for messages, MQTT 5 properties with their variable-byte length.
/// Chunks: configuration (1), message store (2: one application message, shared by the clients that hold it), client
/// message (3: one message of a client's queue or flight, naming a stored one by id), retained (4: a stored id),
/// subscription (5), client (6: one persistent session).</para>
/// <para>Every length read from the file is checked against what is left of its chunk, and every chunk's length
/// against what is left of the file, before anything is allocated: a corrupt or hostile file costs at most its own
/// size in memory and is read once, front to back.</para>
/// </remarks>
public static class MosquittoDb
{
    /// <summary>The format versions this reader takes: 5 (Mosquitto 1.6) and 6 (Mosquitto 2.0, 2.1).</summary>
    public static IReadOnlyList<int> SupportedVersions { get; } = [5, 6];

    /// <summary>Reads the file at <paramref name="path"/>. <paramref name="now"/>: the time to count message expiry
    /// from (messages already expired are dropped, as Mosquitto drops them) and the disconnection time of a session
    /// whose file does not give one.</summary>
    /// <exception cref="MosquittoDbException">The file is not a Mosquitto persistence file, has a version this reader
    /// does not take, or is corrupt.</exception>
    public static MosquittoDbContents Read(string path, DateTimeOffset now)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 4096, FileOptions.SequentialScan);
        return new MosquittoDbReader(stream, path, now).Read();
    }

    /// <summary>Reads a persistence file's bytes; <paramref name="name"/> names it in errors.</summary>
    public static MosquittoDbContents Read(byte[] contents, string name, DateTimeOffset now)
    {
        using var stream = new MemoryStream(contents, writable: false);
        return new MosquittoDbReader(stream, name, now).Read();
    }
}

/// <summary>One pass over one file: chunks are read and kept by id, then put together (a client message may come
/// before the stored message it names; Mosquitto's writer never does that, but the format allows it).</summary>
internal sealed class MosquittoDbReader(Stream stream, string path, DateTimeOffset now)
{
    private static ReadOnlySpan<byte> Magic =>
        [0x00, 0xB5, 0x00, (byte)'m', (byte)'o', (byte)'s', (byte)'q', (byte)'u', (byte)'i', (byte)'t', (byte)'t', (byte)'o', (byte)' ', (byte)'d', (byte)'b'];

    private const int HeaderSize = 15 + 4 + 4;
    private const int ChunkHeaderSize = 8;

    private const uint ChunkConfig = 1, ChunkMessage = 2, ChunkClientMessage = 3, ChunkRetain = 4, ChunkSubscription = 5, ChunkClient = 6;

    // Mosquitto's fixed parts (C structs with their padding).
    private const int ConfigSize = 10; // 16 with its padding; the two bytes after the id are all that is read
    private const int ClientSizeV5 = 16, ClientSizeV6 = 24, ClientMessageSize = 16, MessageSize = 32, SubscriptionSize = 12, RetainSize = 8;

    // Mosquitto's message states (enum mosquitto_msg_state) and directions.
    private const byte PublishQoS0 = 1, PublishQoS1 = 2, WaitForPubAck = 3, PublishQoS2 = 4, WaitForPubRec = 5, ResendPubRel = 6,
        WaitForPubRel = 7, WaitForPubComp = 9, SendPubRec = 10, Queued = 11;
    private const byte DirectionIn = 0, DirectionOut = 1;

    private readonly long _length = stream.Length;
    private long _position;
    private long _chunkOffset; // where the chunk being read starts (warnings name it)
    private byte[] _buffer = new byte[256];
    private int _version;
    private ulong _lastDbId;
    private bool _cleanShutdown;

    private readonly Dictionary<ulong, StoredMessage> _messages = [];
    private readonly HashSet<ulong> _expired = [];
    private readonly Dictionary<string, SessionBuilder> _sessions = new(StringComparer.Ordinal);
    private readonly List<SessionBuilder> _sessionOrder = [];
    private readonly List<ClientMessageRecord> _clientMessages = [];
    private readonly List<(ulong StoreId, long Offset)> _retained = [];
    private readonly List<string> _warnings = [];

    public MosquittoDbContents Read()
    {
        if (_length == 0)
        {
            _warnings.Add($"{path}: the file is empty (Mosquitto starts with nothing from it)");
            return new MosquittoDbContents(0, 0, false, [], [], [], _warnings);
        }
        ReadHeader();
        while (_position < _length)
        {
            long chunkOffset = _chunkOffset = _position;
            if (_length - _position < ChunkHeaderSize)
            {
                throw Fail(chunkOffset, $"truncated chunk header: {_length - _position} bytes left, a chunk header takes {ChunkHeaderSize}");
            }
            var header = Fill(ChunkHeaderSize);
            uint type = BinaryPrimitives.ReadUInt32BigEndian(header);
            uint length = BinaryPrimitives.ReadUInt32BigEndian(header[4..]);
            long left = _length - _position;
            if (length > left)
            {
                throw Fail(chunkOffset, $"chunk of type {type} declares {length} bytes but only {left} are left in the file " +
                    "(truncated or corrupt)");
            }
            var body = new ChunkReader(this, Fill((int)length), _position - length);
            switch (type)
            {
                case ChunkConfig: ReadConfig(body); break;
                case ChunkMessage: ReadMessage(body); break;
                case ChunkClientMessage: ReadClientMessage(body); break;
                case ChunkRetain: _retained.Add((body.U64Native(), chunkOffset)); break;
                case ChunkSubscription: ReadSubscription(body); break;
                case ChunkClient: ReadClient(body); break;
                default: _warnings.Add($"chunk of unknown type {type} at byte {chunkOffset} skipped ({length} bytes)"); break;
            }
        }
        return Assemble();
    }

    private void ReadHeader()
    {
        int magicLength = (int)Math.Min(_length, Magic.Length);
        if (!Fill(magicLength).SequenceEqual(Magic[..magicLength]))
        {
            throw Fail(0, "not a Mosquitto persistence file (bad magic: it does not start with 00 B5 00 \"mosquitto db\")");
        }
        if (_length < HeaderSize) throw Fail(_position, $"truncated header: the file ends after {_length} bytes, the header takes {HeaderSize}");
        var rest = Fill(8); // CRC (always written as 0, never checked by Mosquitto), then the version
        _version = (int)BinaryPrimitives.ReadUInt32BigEndian(rest[4..]);
        if (!MosquittoDb.SupportedVersions.Contains(_version))
        {
            string writer = _version switch
            {
                2 or 3 or 4 => "Mosquitto 1.5 or earlier",
                > 6 => "a Mosquitto newer than this reader",
                _ => "no known Mosquitto",
            };
            throw Fail(_position - 4, $"unsupported format version {_version}, written by {writer}; supported: 5 (Mosquitto 1.6), " +
                "6 (Mosquitto 2.0 and later)");
        }
    }

    private void ReadConfig(ChunkReader body)
    {
        _lastDbId = body.U64Native();
        _cleanShutdown = body.U8() != 0;
        int idSize = body.U8();
        if (idSize != 8) throw Fail(body.Offset - 1, $"message store ids of {idSize} bytes; Mosquitto writes 8");
    }

    private void ReadClient(ChunkReader body)
    {
        long offset = _chunkOffset;
        body.Need(_version == 6 ? ClientSizeV6 : ClientSizeV5, "client");
        long expiryTime = body.I64Native();
        uint interval = body.U32();
        body.Skip(2); // the last packet id Mosquitto used: Midge picks its own
        int idLength = body.U16();
        int userNameLength = 0;
        if (_version == 6)
        {
            body.Skip(2); // the listener's port (per_listener_settings)
            userNameLength = body.U16();
            body.Skip(4); // padding
        }
        string clientId = body.String(idLength, "client id");
        if (userNameLength > 0) body.Skip(userNameLength); // known again when the client connects
        if (clientId.Length == 0)
        {
            _warnings.Add($"client at byte {offset} without a client id skipped");
            return;
        }
        var session = Session(clientId, offset, fromClientChunk: true);
        session.Described = true;
        session.ExpiryInterval = interval;
        // Mosquitto writes when the session expires (disconnection + interval); a 3.x session never does.
        session.DisconnectedAt = expiryTime > 0 && interval != uint.MaxValue
            ? UnixTime(expiryTime - interval, offset + ChunkHeaderSize, "session expiry time")
            : now;
    }

    private void ReadMessage(ChunkReader body)
    {
        long offset = body.Offset;
        long chunkOffset = _chunkOffset;
        body.Need(MessageSize, "stored message");
        ulong storeId = body.U64Native();
        long expiryTime = body.I64Native();
        uint payloadLength = body.U32();
        body.Skip(2); // the publisher's packet id
        int sourceIdLength = body.U16();
        int sourceUserNameLength = body.U16();
        int topicLength = body.U16();
        body.Skip(2); // the publisher's listener port
        int qos = body.U8();
        bool retain = body.U8() != 0;
        if (qos > 2) throw Fail(offset + 30, $"stored message {storeId} has QoS {qos}");
        string? sourceId = sourceIdLength > 0 ? body.String(sourceIdLength, "source client id") : null;
        string? sourceUserName = sourceUserNameLength > 0 ? body.String(sourceUserNameLength, "source user name") : null;
        string topic = body.String(topicLength, "topic");
        if (payloadLength > body.Left)
        {
            throw Fail(body.Offset, $"payload of {payloadLength} bytes but only {body.Left} are left in the chunk");
        }
        byte[] payload = body.Bytes((int)payloadLength).ToArray();
        var properties = body.Left > 0 ? ReadPublishProperties(body) : null;
        if (expiryTime > 0 && expiryTime < now.ToUnixTimeSeconds())
        {
            _expired.Add(storeId); // Mosquitto drops it as it loads, and the client messages that name it
            return;
        }
        var message = new StoredMessage(topic, payload, (QoS)qos, retain)
        {
            Properties = properties,
            OriginClientId = sourceId,
            OriginUserName = sourceUserName,
            ExpiresAt = expiryTime > 0 ? UnixTime(expiryTime, offset + 8, "message expiry time") : null,
        };
        if (!_messages.TryAdd(storeId, message)) _warnings.Add($"stored message at byte {chunkOffset} repeats store id {storeId}: the first kept");
    }

    private void ReadClientMessage(ChunkReader body)
    {
        long offset = _chunkOffset;
        body.Need(ClientMessageSize, "client message");
        ulong storeId = body.U64Native();
        ushort packetId = (ushort)body.U16();
        int idLength = body.U16();
        int qos = body.U8();
        byte state = (byte)body.U8();
        int retainDup = body.U8();
        byte direction = (byte)body.U8();
        string clientId = body.String(idLength, "client id");
        uint[]? subscriptionIds = null;
        if (body.Left > 0) subscriptionIds = ReadSubscriptionIds(body);
        _clientMessages.Add(new ClientMessageRecord(offset, storeId, packetId, clientId, qos, state, (retainDup & 0xF0) != 0, direction,
            subscriptionIds));
    }

    private void ReadSubscription(ChunkReader body)
    {
        long offset = _chunkOffset;
        body.Need(SubscriptionSize, "subscription");
        uint identifier = body.U32();
        int idLength = body.U16();
        int topicLength = body.U16();
        int qos = body.U8() & 0x03;
        int options = body.U8();
        body.Skip(2); // padding
        string clientId = body.String(idLength, "client id");
        string filter = body.String(topicLength, "topic filter");
        if (clientId.Length == 0 || filter.Length == 0)
        {
            _warnings.Add($"subscription at byte {offset} without a client id or a filter skipped");
            return;
        }
        bool shared = Topics.TryParseShared(filter, out _, out _);
        if (qos > 2 || (!shared && (Topics.IsShared(filter) || !Topics.IsValidTopicFilter(filter))))
        {
            _warnings.Add($"subscription of {clientId} at byte {offset} to \"{filter}\" (QoS {qos}) is not valid: skipped");
            return;
        }
        // The options byte is SUBSCRIBE's: bit 2 No Local, bit 3 Retain As Published, bits 4-5 Retain Handling (Mosquitto
        // 2.0 writes the first two). A shared filter stays whole, as Midge's channel keeps it (without a mount point:
        // Mosquitto's filters already carry theirs).
        var subscription = new Subscription(filter, (QoS)qos)
        {
            NoLocal = !shared && (options & 0x04) != 0,
            RetainAsPublished = (options & 0x08) != 0,
            RetainHandling = (RetainHandling)Math.Min((options >> 4) & 0x03, 2),
            SubscriptionId = identifier,
        };
        var session = Session(clientId, offset, fromClientChunk: false);
        session.Subscriptions.RemoveAll(s => s.Filter == filter);
        session.Subscriptions.Add(subscription);
    }

    private MqttProperties? ReadPublishProperties(ChunkReader body)
    {
        long start = body.Offset;
        var block = PropertyBlock(body);
        MqttProperties? properties = null;
        while (block.Left > 0)
        {
            long at = block.Offset;
            int id = block.U8();
            switch (id)
            {
                case 0x01: (properties ??= new()).PayloadFormatIndicator = (byte)block.U8(); break;
                case 0x02: block.Skip(4); break; // Message Expiry Interval: Mosquitto keeps the expiry time in the fixed part
                case 0x03: (properties ??= new()).ContentType = block.String(block.U16(), "content type"); break;
                case 0x08: (properties ??= new()).ResponseTopic = block.String(block.U16(), "response topic"); break;
                case 0x09: (properties ??= new()).CorrelationData = block.Bytes(block.U16()).ToArray(); break;
                case 0x0B: block.VarInt(); break; // a Subscription Identifier belongs to the delivery, not the message
                case 0x23: block.Skip(2); break; // a Topic Alias belongs to a connection
                case 0x26:
                    string name = block.String(block.U16(), "user property name");
                    (properties ??= new()).AddUserProperty(name, block.String(block.U16(), "user property value"));
                    break;
                default: throw Fail(at, $"property 0x{id:X2} is not a PUBLISH property (properties start at byte {start})");
            }
        }
        return properties;
    }

    private uint[]? ReadSubscriptionIds(ChunkReader body)
    {
        var block = PropertyBlock(body);
        List<uint>? ids = null;
        while (block.Left > 0)
        {
            long at = block.Offset;
            int id = block.U8();
            if (id != 0x0B) throw Fail(at, $"property 0x{id:X2} in a client message (only Subscription Identifier is written there)");
            uint value = block.VarInt();
            if (value != 0) (ids ??= []).Add(value);
        }
        return ids?.ToArray();
    }

    /// <summary>The properties that end a chunk: their variable-byte length, which must be what is left of it.</summary>
    private ChunkReader PropertyBlock(ChunkReader body)
    {
        long start = body.Offset;
        uint length = body.VarInt();
        if (length != body.Left)
        {
            throw Fail(start, $"properties of {length} bytes but {body.Left} bytes are left in the chunk after their length");
        }
        return body.Sub((int)length);
    }

    private SessionBuilder Session(string clientId, long offset, bool fromClientChunk)
    {
        if (!_sessions.TryGetValue(clientId, out var session))
        {
            session = new SessionBuilder(clientId, offset);
            _sessions.Add(clientId, session);
            _sessionOrder.Add(session);
        }
        else if (fromClientChunk && session.Described)
        {
            _warnings.Add($"client \"{clientId}\" at byte {offset} appears a second time: the later one's expiry kept");
        }
        return session;
    }

    private MosquittoDbContents Assemble()
    {
        var incoming = new List<IncomingMessage>();
        foreach (var record in _clientMessages)
        {
            if (!_messages.TryGetValue(record.StoreId, out var message))
            {
                if (!_expired.Contains(record.StoreId))
                {
                    _warnings.Add($"client message of \"{record.ClientId}\" at byte {record.Offset} names store id {record.StoreId}, " +
                        "which the file does not hold: skipped");
                }
                continue;
            }
            if (record.ClientId.Length == 0)
            {
                _warnings.Add($"client message at byte {record.Offset} without a client id skipped");
                continue;
            }
            if (record.Qos > 2)
            {
                _warnings.Add($"client message of \"{record.ClientId}\" at byte {record.Offset} with QoS {record.Qos} skipped");
                continue;
            }
            var session = Session(record.ClientId, record.Offset, fromClientChunk: false);
            if (record.Direction == DirectionIn) AddIncoming(record, message, incoming);
            else if (record.Direction == DirectionOut) AddOutgoing(session, record, message);
            else _warnings.Add($"client message of \"{record.ClientId}\" at byte {record.Offset} with direction {record.Direction} skipped");
        }

        var sessions = new List<SessionState>(_sessionOrder.Count);
        foreach (var session in _sessionOrder)
        {
            if (!session.Described)
            {
                _warnings.Add($"\"{session.ClientId}\" has subscriptions or messages (from byte {session.FirstOffset}) but no client " +
                    "chunk: restored as a session that never expires, as Mosquitto does");
                session.ExpiryInterval = uint.MaxValue;
                session.DisconnectedAt = now;
            }
            if (session.ExpiryInterval == 0)
            {
                _warnings.Add($"session \"{session.ClientId}\" has a Session Expiry Interval of 0 (it ended with its connection): skipped");
                continue;
            }
            sessions.Add(session.ToState());
        }

        var retained = new List<StoredMessage>(_retained.Count);
        foreach (var (storeId, offset) in _retained)
        {
            if (_messages.TryGetValue(storeId, out var message)) retained.Add(message.Retain ? message : message with { Retain = true });
            else if (!_expired.Contains(storeId)) _warnings.Add($"retained chunk at byte {offset} names store id {storeId}, which the file does not hold: skipped");
        }
        return new MosquittoDbContents(_version, _lastDbId, _cleanShutdown, sessions, incoming, retained, _warnings);
    }

    /// <summary>A client's QoS 2 PUBLISH held for its PUBREL: PUBREC sent or due (wait_for_pubrel, send_pubrec), or
    /// queued behind the client's receive maximum.</summary>
    private void AddIncoming(ClientMessageRecord record, StoredMessage message, List<IncomingMessage> incoming)
    {
        if (record.Qos == 2 && record.PacketId != 0 && record.State is WaitForPubRel or SendPubRec or Queued or PublishQoS2)
        {
            incoming.Add(new IncomingMessage(record.ClientId, record.PacketId, message));
            return;
        }
        _warnings.Add($"incoming message of \"{record.ClientId}\" at byte {record.Offset} (QoS {record.Qos}, state {record.State}) skipped");
    }

    /// <summary>A message for the client: queued, or in flight with the packet id Mosquitto gave it.</summary>
    private void AddOutgoing(SessionBuilder session, ClientMessageRecord record, StoredMessage message)
    {
        var qos = (QoS)record.Qos;
        InflightState? flight;
        switch (record.State)
        {
            case Queued or PublishQoS0:
                flight = null;
                break;
            // publish_qos1/2: in the window, not yet (or, since a reconnection, not again) sent; Mosquitto sends it with
            // this packet id, which the client may already hold for a QoS 2 message: kept in flight, resent.
            case PublishQoS1 or WaitForPubAck when qos == QoS.AtLeastOnce:
                flight = InflightState.AwaitingPubAck;
                break;
            case PublishQoS2 or WaitForPubRec when qos == QoS.ExactlyOnce:
                flight = InflightState.AwaitingPubRec;
                break;
            case ResendPubRel or WaitForPubComp when qos == QoS.ExactlyOnce:
                flight = InflightState.AwaitingPubComp;
                break;
            default:
                _warnings.Add($"outgoing message of \"{record.ClientId}\" at byte {record.Offset} in state {record.State} with QoS " +
                    $"{record.Qos} skipped");
                return;
        }
        if (flight is { } state && record.PacketId != 0 && session.InflightIds.Add(record.PacketId))
        {
            session.Inflight.Add(new InflightMessage(record.PacketId, session.Inflight.Count + 1, message, qos, record.Retain,
                record.SubscriptionIds, state));
            return;
        }
        if (flight is not null && qos == QoS.ExactlyOnce && record.State != PublishQoS2)
        {
            // Sent (or half through its flow) without a usable packet id: a fresh delivery could duplicate it.
            _warnings.Add($"outgoing QoS 2 message of \"{record.ClientId}\" at byte {record.Offset} in flight with packet id " +
                $"{record.PacketId}, which is 0 or repeated: queued again");
        }
        session.Queued.Add(new QueuedMessage(session.Queued.Count + 1, message, qos, record.Retain, record.SubscriptionIds));
    }

    /// <summary>Reads <paramref name="count"/> bytes (no more than the file has left, which the caller checked) into the
    /// shared buffer.</summary>
    private Span<byte> Fill(int count)
    {
        if (_buffer.Length < count) _buffer = new byte[Math.Max(count, Math.Min(_buffer.Length * 2L, _length))];
        var span = _buffer.AsSpan(0, count);
        try
        {
            stream.ReadExactly(span);
        }
        catch (EndOfStreamException e)
        {
            throw new MosquittoDbException(path, _position, "the file ended sooner than its length said (changed while read?)", e);
        }
        _position += count;
        return span;
    }

    public MosquittoDbException Fail(long offset, string problem) => new(path, offset, problem);

    private DateTimeOffset UnixTime(long seconds, long offset, string what)
    {
        const long Min = -62135596800, Max = 253402300799; // what DateTimeOffset holds
        if (seconds is < Min or > Max) throw Fail(offset, $"{what} of {seconds} s since 1970 is out of range");
        return DateTimeOffset.FromUnixTimeSeconds(seconds);
    }

    private sealed class SessionBuilder(string clientId, long firstOffset)
    {
        public string ClientId { get; } = clientId;
        public long FirstOffset { get; } = firstOffset;
        public bool Described { get; set; }
        public uint ExpiryInterval { get; set; }
        public DateTimeOffset DisconnectedAt { get; set; }
        public List<Subscription> Subscriptions { get; } = [];
        public List<QueuedMessage> Queued { get; } = [];
        public List<InflightMessage> Inflight { get; } = [];
        public HashSet<ushort> InflightIds { get; } = [];

        public SessionState ToState() => new(ClientId)
        {
            ExpiryInterval = ExpiryInterval,
            DisconnectedAt = DisconnectedAt,
            Subscriptions = Subscriptions,
            Queued = Queued,
            Inflight = Inflight,
        };
    }

    private sealed record ClientMessageRecord(long Offset, ulong StoreId, ushort PacketId, string ClientId, int Qos, byte State, bool Retain,
        byte Direction, uint[]? SubscriptionIds);

    /// <summary>Fields of one chunk's body, each checked against what is left of it.</summary>
    private ref struct ChunkReader(MosquittoDbReader owner, Span<byte> data, long offset)
    {
        private readonly MosquittoDbReader _owner = owner;
        private readonly Span<byte> _data = data;
        private readonly long _start = offset;
        private int _at;

        /// <summary>The file offset of the next byte.</summary>
        public readonly long Offset => _start + _at;

        public readonly int Left => _data.Length - _at;

        public readonly void Need(int size, string what)
        {
            if (Left < size) throw _owner.Fail(Offset, $"{what} chunk of {Left} bytes, shorter than its fixed part ({size} bytes)");
        }

        public int U8() => Take(1, "a byte")[0];

        public int U16() => BinaryPrimitives.ReadUInt16BigEndian(Take(2, "a 16-bit field"));

        public uint U32() => BinaryPrimitives.ReadUInt32BigEndian(Take(4, "a 32-bit field"));

        /// <summary>A 64-bit field Mosquitto writes in its machine's order (little endian).</summary>
        public ulong U64Native() => BinaryPrimitives.ReadUInt64LittleEndian(Take(8, "a 64-bit field"));

        public long I64Native() => BinaryPrimitives.ReadInt64LittleEndian(Take(8, "a 64-bit field"));

        public void Skip(int count) => Take(count, $"{count} bytes");

        public ReadOnlySpan<byte> Bytes(int count) => Take(count, $"{count} bytes");

        public string String(int length, string what)
        {
            var bytes = Take(length, $"a {what} of {length} bytes");
            return Encoding.UTF8.GetString(bytes);
        }

        /// <summary>An MQTT variable-byte integer (at most 4 bytes).</summary>
        public uint VarInt()
        {
            long at = Offset;
            uint value = 0;
            for (int shift = 0; shift < 28; shift += 7)
            {
                int b = U8();
                value |= (uint)(b & 0x7F) << shift;
                if ((b & 0x80) == 0) return value;
            }
            throw _owner.Fail(at, "variable-byte integer longer than 4 bytes");
        }

        /// <summary>The next <paramref name="length"/> bytes as a reader of their own.</summary>
        public ChunkReader Sub(int length)
        {
            long at = Offset;
            return new ChunkReader(_owner, Take(length, $"{length} bytes"), at);
        }

        private Span<byte> Take(int count, string what)
        {
            if (count > Left)
            {
                throw _owner.Fail(Offset, $"{what} needed but only {Left} bytes are left in the chunk (it ends at byte {_start + _data.Length})");
            }
            var span = _data.Slice(_at, count);
            _at += count;
            return span;
        }
    }
}
