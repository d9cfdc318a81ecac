using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading.Tasks.Sources;

namespace Midge.Transport.Sockets;

/// <summary>
/// Tells a plain-TCP read loop when its socket has something to read, from epoll loops of Midge's own (Linux;
/// elsewhere <see cref="Register"/> returns null and the loop waits with .NET's zero-byte receive instead).
/// <para>.NET's socket engine answers a zero-byte receive by peeking at the socket: a message to an idle
/// connection cost a peek that finds it, the read, and a peek that finds the socket empty before the next wait,
/// plus the engine's bookkeeping (its per-socket context, operation queue and locks). Here an edge-triggered
/// registration wakes a <see cref="ReadinessWaiter"/>; the loop reads with a plain non-blocking
/// <c>recv</c> until it gets less than it asked for, and waits again: one system call per message to read it.
/// An idle connection still holds no receive buffer, and no .NET asynchronous receive state either.</para>
/// <para>One loop per CPU the process may use (as .NET's engine with inline completions), sockets spread over
/// them in turn. A read loop continues on the epoll thread, like an inline socket completion: it must not wait
/// there: a packet whose answer comes later is awaited (MqttConnection.HandleFrames), which gives the thread back. A registration ends when the socket is closed (the kernel drops it);
/// an event that comes for it after <see cref="ReadinessWaiter.Dispose"/> finds another generation in its slot
/// and is ignored.</para>
/// </summary>
internal static unsafe class SocketReadiness
{
    private const int EpollIn = 0x001, EpollRdHup = 0x2000; // EPOLLERR and EPOLLHUP come unasked
    private const uint EpollEt = 1u << 31;
    private const int EpollCtlAdd = 1;
    private const int EINTR = 4;
    private const int EventsPerWait = 256;

    /// <summary>struct epoll_event is packed on x86-64 (12 bytes, data at 4), naturally aligned elsewhere (16, at 8).</summary>
    private static readonly int s_eventSize = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;
    private static readonly int s_dataOffset = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 4 : 8;

    private static readonly Lock s_lock = new();
    private static int[]? s_epolls; // null until the first registration; empty when epoll is not available
    private static int s_next;
    private static ReadinessWaiter?[] s_slots = new ReadinessWaiter?[64];
    private static readonly Stack<int> s_free = new();
    private static int s_used;
    private static uint s_generation;

    /// <summary>True where epoll loops run (Linux); they start on first use.</summary>
    public static bool IsAvailable => (s_epolls ?? Start()).Length > 0;

    /// <summary>Registers the socket (non-blocking, connected) for readability; null where epoll is not
    /// available or refuses it, and the caller waits with .NET's receive instead.</summary>
    public static ReadinessWaiter? Register(Socket socket)
    {
        int[] epolls = s_epolls ?? Start();
        if (epolls.Length == 0) return null;
        int fd = (int)socket.SafeHandle.DangerousGetHandle();
        ReadinessWaiter waiter;
        lock (s_lock)
        {
            int slot = s_free.Count > 0 ? s_free.Pop() : s_used++;
            if (slot == s_slots.Length) Array.Resize(ref s_slots, s_slots.Length * 2); // readers see old or new, both hold what they need
            waiter = new ReadinessWaiter(slot, ++s_generation);
            Volatile.Write(ref s_slots[slot], waiter);
        }
        byte* ev = stackalloc byte[16];
        *(uint*)ev = EpollIn | EpollRdHup | EpollEt;
        *(ulong*)(ev + s_dataOffset) = waiter.Key;
        int epoll = epolls[(int)((uint)Interlocked.Increment(ref s_next) % (uint)epolls.Length)];
        if (epoll_ctl(epoll, EpollCtlAdd, fd, ev) == 0) return waiter;
        Release(waiter); // out of epoll watches (fs.epoll.max_user_watches), say: this socket uses .NET's engine
        return null;
    }

    internal static void Release(ReadinessWaiter waiter)
    {
        lock (s_lock)
        {
            if (s_slots[waiter.Slot] != waiter) return;
            Volatile.Write(ref s_slots[waiter.Slot], null);
            s_free.Push(waiter.Slot);
        }
    }

    private static int[] Start()
    {
        lock (s_lock)
        {
            if (s_epolls is { } started) return started;
            var epolls = new List<int>();
            if (OperatingSystem.IsLinux())
            {
                for (int i = 0; i < Environment.ProcessorCount; i++)
                {
                    int epoll;
                    try
                    {
                        epoll = epoll_create1(0x80000); // EPOLL_CLOEXEC
                    }
                    catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
                    {
                        break; // a C library without epoll under that name: .NET's engine waits instead
                    }
                    if (epoll < 0) break;
                    epolls.Add(epoll);
                    new Thread(() => Run(epoll)) { IsBackground = true, Name = "midge epoll " + i }.UnsafeStart();
                }
            }
            s_epolls = [.. epolls];
            return s_epolls;
        }
    }

    private static void Run(int epoll)
    {
        int size = s_eventSize, dataOffset = s_dataOffset;
        byte* events = (byte*)NativeMemory.Alloc((nuint)(EventsPerWait * size));
        while (true)
        {
            int n = epoll_wait(epoll, events, EventsPerWait, -1);
            if (n < 0)
            {
                if (Marshal.GetLastPInvokeError() == EINTR) continue;
                Environment.FailFast("epoll_wait failed: errno " + Marshal.GetLastPInvokeError());
            }
            for (int i = 0; i < n; i++)
            {
                ulong key = *(ulong*)(events + i * size + dataOffset);
                var slots = Volatile.Read(ref s_slots);
                int slot = (int)(uint)key;
                if (slot >= slots.Length) continue;
                var waiter = Volatile.Read(ref slots[slot]);
                if (waiter is not null && waiter.Key == key) waiter.Signal();
            }
        }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int epoll_create1(int flags);

    [DllImport("libc", SetLastError = true)]
    private static extern int epoll_ctl(int epfd, int op, int fd, byte* ev);

    [DllImport("libc", SetLastError = true)]
    private static extern int epoll_wait(int epfd, byte* events, int maxevents, int timeout);
}

/// <summary>
/// One socket's readiness: <see cref="WaitAsync"/> completes when the socket's epoll registration fires (on the
/// epoll thread, inline), or at once when it fired since the last wait. A wake may be spurious (the data it
/// announced was already read); the reader then finds the socket empty and waits again.
/// </summary>
internal sealed class ReadinessWaiter : IValueTaskSource, IDisposable
{
    private const int Idle = 0, Waiting = 1, Fired = 2;

    private ManualResetValueTaskSourceCore<bool> _core; // continuations run inline: on the epoll thread
    private int _state;

    public ReadinessWaiter(int slot, uint generation)
    {
        Slot = slot;
        Key = (uint)slot | (ulong)generation << 32;
    }

    public int Slot { get; }

    /// <summary>What the epoll registration carries: the slot and this registration's generation.</summary>
    public ulong Key { get; }

    public ValueTask WaitAsync()
    {
        if (Interlocked.CompareExchange(ref _state, Idle, Fired) == Fired) return ValueTask.CompletedTask;
        _core.Reset();
        if (Interlocked.CompareExchange(ref _state, Waiting, Idle) == Fired)
        {
            _state = Idle;
            return ValueTask.CompletedTask;
        }
        return new ValueTask(this, _core.Version);
    }

    /// <summary>The registration fired: wakes the reader, or leaves word for its next wait.</summary>
    public void Signal()
    {
        while (true)
        {
            int state = Volatile.Read(ref _state);
            if (state == Fired) return;
            if (state == Waiting)
            {
                if (Interlocked.CompareExchange(ref _state, Idle, Waiting) != Waiting) continue;
                _core.SetResult(true);
                return;
            }
            if (Interlocked.CompareExchange(ref _state, Fired, Idle) == Idle) return;
        }
    }

    public void Dispose() => SocketReadiness.Release(this);

    void IValueTaskSource.GetResult(short token) => _core.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token,
        ValueTaskSourceOnCompletedFlags flags) => _core.OnCompleted(continuation, state, token, flags);
}
