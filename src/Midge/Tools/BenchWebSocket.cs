using System.Buffers.Binary;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace Midge.Tools;

/// <summary>
/// The client side of MQTT over WebSocket (RFC 6455) for <c>midge bench --ws</c>, on the generator's own socket: the
/// upgrade handshake (subprotocol <c>mqtt</c>), every MQTT packet sent as one masked binary frame (as MQTT.js and
/// Paho send them), and the server's frames taken apart in place, so that the counting parser reads the same MQTT
/// byte stream as over plain TCP. Ping frames are dropped unanswered (neither Midge nor Mosquitto sends them: MQTT
/// has its own keep-alive); a close frame ends the stream.
/// </summary>
internal sealed class BenchWebSocket
{
    private const string AcceptGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    private const int MaxHeader = 14; // 2 + 8 (64-bit length) + 4 (mask key)

    private byte[] _frames = new byte[1024];
    private uint _mask = (uint)Random.Shared.Next() | 1; // xorshift state: a fresh key per frame, cheaply

    // What is left of the frame being received, and whether its payload is MQTT's (binary or continuation).
    private long _payloadLeft;
    private bool _keep;
    private readonly byte[] _header = new byte[MaxHeader];
    private int _headerCount;

    /// <summary>The server sent a close frame: nothing more will come.</summary>
    public bool Closed { get; private set; }

    /// <summary>
    /// Sends the upgrade request for <paramref name="path"/> and reads the answer, which must be
    /// <c>101</c> with the right <c>Sec-WebSocket-Accept</c>. Bytes after the answer are taken apart into
    /// <paramref name="rx"/>; returns how many MQTT bytes that left there.
    /// </summary>
    public async Task<int> HandshakeAsync(Socket socket, string host, int port, string path, byte[] rx, CancellationToken ct)
    {
        string key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
        string request = $"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + $"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n";
        await socket.SendAsync(Encoding.ASCII.GetBytes(request), SocketFlags.None, ct);

        var answer = new byte[4096];
        int count = 0, end;
        while ((end = answer.AsSpan(0, count).IndexOf("\r\n\r\n"u8)) < 0)
        {
            if (count == answer.Length) throw new IOException("WebSocket handshake: the answer's headers exceed 4 KiB");
            int n = await socket.ReceiveAsync(answer.AsMemory(count), SocketFlags.None, ct);
            if (n == 0) throw new IOException("WebSocket handshake: the server closed the connection");
            count += n;
        }
        string head = Encoding.ASCII.GetString(answer, 0, end);
        var lines = head.Split("\r\n");
        if (!lines[0].StartsWith("HTTP/1.1 101", StringComparison.Ordinal))
            throw new IOException($"WebSocket handshake refused: {lines[0]}");
        string expected = Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + AcceptGuid)));
        if (!lines.Any(l => l.StartsWith("Sec-WebSocket-Accept:", StringComparison.OrdinalIgnoreCase)
                && l["Sec-WebSocket-Accept:".Length..].Trim() == expected))
            throw new IOException("WebSocket handshake: missing or wrong Sec-WebSocket-Accept");

        int rest = count - end - 4;
        answer.AsSpan(end + 4, rest).CopyTo(rx);
        return Unframe(rx.AsSpan(0, rest));
    }

    /// <summary>
    /// Wraps each whole MQTT packet of <paramref name="packets"/> in a masked binary frame (bytes that do not end a
    /// packet go in one last frame). The result is valid until the next call.
    /// </summary>
    public ReadOnlyMemory<byte> Frame(ReadOnlySpan<byte> packets)
    {
        int frames = 0;
        for (int pos = 0; pos < packets.Length; pos += PacketLength(packets[pos..])) frames++;
        int size = packets.Length + frames * MaxHeader;
        if (_frames.Length < size) _frames = new byte[Math.Max(size, _frames.Length * 2)];

        var output = _frames.AsSpan();
        int written = 0;
        while (!packets.IsEmpty)
        {
            int length = PacketLength(packets);
            output[written++] = 0x82; // FIN, binary
            if (length < 126)
            {
                output[written++] = (byte)(0x80 | length);
            }
            else if (length <= ushort.MaxValue)
            {
                output[written++] = 0x80 | 126;
                BinaryPrimitives.WriteUInt16BigEndian(output[written..], (ushort)length);
                written += 2;
            }
            else
            {
                output[written++] = 0x80 | 127;
                BinaryPrimitives.WriteUInt64BigEndian(output[written..], (ulong)length);
                written += 8;
            }
            uint key = NextMask();
            BinaryPrimitives.WriteUInt32LittleEndian(output[written..], key);
            written += 4;
            Mask(packets[..length], output.Slice(written, length), key);
            written += length;
            packets = packets[length..];
        }
        return _frames.AsMemory(0, written);
    }

    /// <summary>The length of the MQTT packet at the start of <paramref name="data"/>, or all of it when that does not
    /// hold a whole one.</summary>
    private static int PacketLength(ReadOnlySpan<byte> data)
    {
        int remaining = 0;
        for (int i = 1; i <= 4 && i < data.Length; i++)
        {
            remaining |= (data[i] & 0x7F) << (7 * (i - 1));
            if ((data[i] & 0x80) == 0) return Math.Min(data.Length, 1 + i + remaining);
        }
        return data.Length;
    }

    private uint NextMask()
    {
        uint x = _mask;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        return _mask = x;
    }

    /// <summary>Copies <paramref name="source"/> XORed with the 4-byte <paramref name="key"/> (as it lies in the
    /// frame, little-endian here) into <paramref name="destination"/>, 8 bytes at a time.</summary>
    private static void Mask(ReadOnlySpan<byte> source, Span<byte> destination, uint key)
    {
        ulong wide = key | ((ulong)key << 32);
        if (!BitConverter.IsLittleEndian) wide = BinaryPrimitives.ReverseEndianness(wide);
        int i = 0;
        var from = MemoryMarshal.Cast<byte, ulong>(source);
        var to = MemoryMarshal.Cast<byte, ulong>(destination[..(from.Length * 8)]);
        for (; i < from.Length; i++) to[i] = from[i] ^ wide;
        for (i *= 8; i < source.Length; i++) destination[i] = (byte)(source[i] ^ (key >> (8 * (i & 3))));
    }

    /// <summary>
    /// Takes the frame headers and non-MQTT payloads (ping, pong, close) out of <paramref name="data"/>, just received,
    /// moving the MQTT bytes down; returns how many are left. A header split across receives is kept for the next call.
    /// </summary>
    public int Unframe(Span<byte> data)
    {
        int read = 0, write = 0;
        while (read < data.Length)
        {
            if (_payloadLeft > 0)
            {
                int take = (int)Math.Min(_payloadLeft, data.Length - read);
                if (_keep)
                {
                    if (write != read) data.Slice(read, take).CopyTo(data[write..]);
                    write += take;
                }
                read += take;
                _payloadLeft -= take;
                continue;
            }
            _header[_headerCount++] = data[read++];
            if (!TryReadHeader(out long length, out int opcode)) continue;
            _headerCount = 0;
            switch (opcode)
            {
                case 0 or 2: _keep = true; break;
                case 8: Closed = true; _keep = false; break;
                case 9 or 10: _keep = false; break;
                default: throw new IOException($"WebSocket: unexpected frame opcode {opcode} from the server");
            }
            _payloadLeft = length;
        }
        return write;
    }

    /// <summary>Whether the header gathered so far is whole; if so, its payload length and opcode.</summary>
    private bool TryReadHeader(out long length, out int opcode)
    {
        length = 0;
        opcode = _header[0] & 0x0F;
        if (_headerCount < 2) return false;
        if ((_header[1] & 0x80) != 0) throw new IOException("WebSocket: the server masked a frame");
        int code = _header[1] & 0x7F;
        int need = code == 126 ? 4 : code == 127 ? 10 : 2;
        if (_headerCount < need) return false;
        length = code == 126 ? BinaryPrimitives.ReadUInt16BigEndian(_header.AsSpan(2))
            : code == 127 ? (long)BinaryPrimitives.ReadUInt64BigEndian(_header.AsSpan(2)) : code;
        return true;
    }
}
