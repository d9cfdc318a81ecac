using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Midge.Tools;

/// <summary>
/// `midge bench --rx-time kernel`: reads a socket with <c>recvmsg</c> and takes the kernel's arrival timestamp of
/// the data (<c>SO_TIMESTAMPNS</c>, CLOCK_REALTIME) as the receive time, converted to <see cref="Stopwatch"/>
/// ticks. A message's latency then ends when it reached the subscriber's socket, not when the generator, busy
/// with the messages before it, got round to reading it. Linux only.
/// </summary>
internal static unsafe class KernelReceiveTime
{
    private const int SolSocket = 1;
    private const int SoTimestampNs = 35; // SO_TIMESTAMPNS (SO_TIMESTAMPNS_OLD): 64-bit timespec on x64 and arm64
    private const int MsgDontWait = 0x40;
    private const int EAgain = 11;
    private const int EIntr = 4;

    /// <summary>A Stopwatch reading and a CLOCK_REALTIME reading (ns) of one instant, taken once.</summary>
    private static readonly (long Ticks, long RealtimeNs) Anchor = MeasureAnchor();

    public static void Enable(Socket socket) => socket.SetRawSocketOption(SolSocket, SoTimestampNs, BitConverter.GetBytes(1));

    /// <summary>
    /// Reads what is there without waiting. Returns the bytes read (0: the peer closed), or -1 when there was
    /// nothing to read. <paramref name="stampTicks"/> is the kernel's arrival time of the data read, or now when
    /// the kernel gave none.
    /// </summary>
    public static int TryReceive(Socket socket, Span<byte> buffer, out long stampTicks)
    {
        const int ControlSize = 64; // CMSG_SPACE(sizeof(timespec)) is 32
        byte* control = stackalloc byte[ControlSize];
        fixed (byte* data = buffer)
        {
            var iov = new IoVec { Base = data, Length = (nuint)buffer.Length };
            var msg = new MsgHdr { Iov = &iov, IovLength = 1, Control = control, ControlLength = ControlSize };
            int fd = (int)socket.SafeHandle.DangerousGetHandle();
            nint n;
            while ((n = RecvMsg(fd, &msg, MsgDontWait)) < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == EIntr) continue;
                stampTicks = 0;
                if (errno == EAgain) return -1;
                throw new SocketException(errno);
            }
            stampTicks = Stopwatch.GetTimestamp();
            for (var c = (CmsgHdr*)control; (byte*)c + sizeof(CmsgHdr) <= control + (int)msg.ControlLength;)
            {
                if (c->Level == SolSocket && c->Type == SoTimestampNs)
                {
                    var ts = (TimeSpec*)((byte*)c + sizeof(CmsgHdr));
                    stampTicks = ToStopwatchTicks(ts->Seconds * 1_000_000_000L + ts->Nanoseconds);
                    break;
                }
                nuint step = (c->Length + 7) & ~(nuint)7;
                if (step == 0) break;
                c = (CmsgHdr*)((byte*)c + step);
            }
            return (int)n;
        }
    }

    private static long ToStopwatchTicks(long realtimeNs) =>
        Anchor.Ticks + (long)((realtimeNs - Anchor.RealtimeNs) * (Stopwatch.Frequency / 1e9));

    /// <summary>Reads both clocks a few times and keeps the pair read closest together.</summary>
    private static (long, long) MeasureAnchor()
    {
        (long, long) best = default;
        long bestSpan = long.MaxValue;
        for (int i = 0; i < 16; i++)
        {
            long before = Stopwatch.GetTimestamp();
            long realtimeNs = (DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100;
            long after = Stopwatch.GetTimestamp();
            if (after - before < bestSpan)
            {
                bestSpan = after - before;
                best = (before + (after - before) / 2, realtimeNs);
            }
        }
        return best;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct IoVec
    {
        public byte* Base;
        public nuint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct MsgHdr
    {
        public void* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct CmsgHdr
    {
        public nuint Length;
        public int Level;
        public int Type;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [DllImport("libc", EntryPoint = "recvmsg", SetLastError = true)]
    private static extern nint RecvMsg(int fd, MsgHdr* msg, int flags);
}
