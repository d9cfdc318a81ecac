using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Midge;

/// <summary>
/// On one CPU the runtime's background recompilation thread (".NET Tiered Com") shares the core with the socket
/// thread, and one tier-1 compile takes 3-9 ms of it in one piece. The kernel's scheduler (EEVDF, Linux 6.6 and
/// later) lets a running thread go on to the end of its slice before a thread that wakes up gets the core, so a
/// message that arrived meanwhile waited for the compile: that was the broker's p99 latency (docs/benchmarks.md).
/// This gives the compilation thread a slice longer than anyone else's (<c>sched_setattr</c>, <c>sched_runtime</c>:
/// Linux 6.12 and later; older kernels ignore it). A thread with a shorter slice that wakes up preempts it at once,
/// and its weight, so its share of the CPU and how soon the broker runs optimised code, stays what it was.
/// While the broker's own threads keep the core busy (a flood) they seldom sleep and wake, so the preemption
/// buys nothing and the long slices only make them wait longer: then the thread has the ordinary slice, until
/// the core has been calm for a second. Each tick reads two CPU clocks, nothing else, so that watching adds no
/// code to compile. Linux with one CPU only, like <see cref="SingleCpuTiering"/>, which also keeps the thread
/// alive between bursts of work so that it is found once.
/// </summary>
internal sealed class TieringWorkerSlice
{
    /// <summary>The thread's name as the kernel keeps it (15 bytes of ".NET Tiered Compilation Worker").</summary>
    internal const string ThreadName = ".NET Tiered Com";

    /// <summary>The compilation thread's slice while it gives way: longer than an ordinary one (0.75-3 ms).</summary>
    internal const ulong LongSliceNs = 20_000_000;

    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan Search = TimeSpan.FromMilliseconds(500);
    internal const int CalmTicks = 10; // a second with a calm core before giving way again

    private static TieringWorkerSlice? s_running; // a timer nobody references is collected

    private readonly Timer _timer;
    private int _tid;
    private bool _long;
    private int _calm;
    private long _checked;
    private long _process;
    private long _worker;

    private TieringWorkerSlice()
    {
        _timer = new Timer(_ => OnTick(), null, Timeout.Infinite, Timeout.Infinite);
    }

    /// <summary>Starts watching for the compilation thread, once, where there is one CPU.</summary>
    public static void StartIfNeeded()
    {
        if (!OperatingSystem.IsLinux() || Environment.ProcessorCount != 1 || s_running is not null) return;
        if (!RuntimeFeature.IsDynamicCodeCompiled) return; // Native AOT: there is no compilation thread
        if (RuntimeInformation.ProcessArchitecture is not (Architecture.X64 or Architecture.Arm64)) return;
        s_running = new TieringWorkerSlice();
        s_running._timer.Change(TimeSpan.Zero, Timeout.InfiniteTimeSpan);
    }

    private void OnTick()
    {
        var next = Tick;
        try
        {
            if (_tid == 0 && !Find())
            {
                next = Search;
            }
            else if (!Control())
            {
                _tid = 0; // the thread is gone (it ends after idling unless kept alive): look for the next one
                next = Search;
            }
        }
        catch (Exception ex) when (ex is UnsupportedException or IOException or UnauthorizedAccessException)
        {
            return; // no sched_setattr (an old kernel, a seccomp filter) or no /proc here: stop trying
        }
        _timer.Change(next, Timeout.InfiniteTimeSpan);
    }

    private bool Find()
    {
        Span<byte> comm = stackalloc byte[32];
        foreach (var dir in Directory.EnumerateDirectories("/proc/self/task"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var tid)) continue;
            int length;
            try
            {
                using SafeFileHandle file = File.OpenHandle(dir + "/comm");
                length = RandomAccess.Read(file, comm, 0);
            }
            catch (IOException)
            {
                continue; // that thread ended meanwhile
            }
            if (!comm[..length].TrimEnd((byte)'\n').SequenceEqual(ThreadNameBytes)) continue;
            if (!SetSlice(tid, LongSliceNs)) return false;
            (_tid, _long, _checked) = (tid, true, Stopwatch.GetTimestamp());
            _process = CpuNs(ProcessCpuClock);
            _worker = CpuNs(ThreadCpuClock(tid));
            return true;
        }
        return false;
    }

    private static readonly byte[] ThreadNameBytes = System.Text.Encoding.ASCII.GetBytes(ThreadName);

    /// <summary>One tick with the thread known; false when it no longer exists.</summary>
    private bool Control()
    {
        var worker = CpuNs(ThreadCpuClock(_tid));
        if (worker < 0) return false;
        var now = Stopwatch.GetTimestamp();
        var process = CpuNs(ProcessCpuClock);
        var tick = (long)Stopwatch.GetElapsedTime(_checked, now).TotalNanoseconds; // later than planned on a busy core
        var others = process - _process - (worker - _worker); // the broker's own work, compilation left out
        (_checked, _process, _worker) = (now, process, worker);

        var wasLong = _long;
        (_long, _calm) = Decide(_long, _calm, tick, others);
        return _long == wasLong || SetSlice(_tid, _long ? LongSliceNs : 0);
    }

    /// <summary>
    /// One tick's decision: whether the compilation thread should have the long slice, and how many calm ticks in a
    /// row there have been. A tick is busy when the broker's own threads (the compilation left out) kept the core
    /// for more than 80 % of it; one busy tick takes the long slice away, <see cref="CalmTicks"/> calm ones give
    /// it back.
    /// </summary>
    internal static (bool Long, int Calm) Decide(bool isLong, int calm, long tickNs, long othersNs)
    {
        var busy = othersNs > tickNs * 8 / 10;
        if (isLong) return (!busy, 0);
        if (busy) return (false, 0);
        return calm + 1 >= CalmTicks ? (true, 0) : (false, calm + 1);
    }

    /// <summary>A clock's CPU time in nanoseconds; -1 when it cannot be read (the thread has ended).</summary>
    private static long CpuNs(int clock) =>
        ClockGetTime(clock, out var t) == 0 ? t.Seconds * 1_000_000_000 + t.Nanoseconds : -1;

    private const int ProcessCpuClock = 2; // CLOCK_PROCESS_CPUTIME_ID

    /// <summary>The CPU clock of one thread of this process (the kernel's MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED)).</summary>
    private static int ThreadCpuClock(int tid) => (~tid << 3) | 4 | 2;

    /// <summary>Sets the thread's slice (0: the kernel's default), keeping its policy SCHED_OTHER and its nice
    /// value; false when the thread no longer exists.</summary>
    private static bool SetSlice(int tid, ulong sliceNs)
    {
        Marshal.SetLastPInvokeError(0);
        var nice = GetPriority(PrioProcess, tid);
        if (nice == -1 && Marshal.GetLastPInvokeError() != 0) return false;
        var attr = new SchedAttr { Size = (uint)Marshal.SizeOf<SchedAttr>(), Policy = SchedOther, Nice = nice, Runtime = sliceNs };
        var number = RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? 274 : 314; // SYS_sched_setattr
        if (SchedSetAttr(number, tid, ref attr, 0) == 0) return true;
        if (Marshal.GetLastPInvokeError() == Esrch) return false;
        throw new UnsupportedException();
    }

    private sealed class UnsupportedException : Exception;

    private const int PrioProcess = 0;
    private const uint SchedOther = 0;
    private const int Esrch = 3;

    /// <summary>struct sched_attr, first version (48 bytes).</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct SchedAttr
    {
        public uint Size;
        public uint Policy;
        public ulong Flags;
        public int Nice;
        public uint Priority;
        public ulong Runtime;
        public ulong Deadline;
        public ulong Period;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, out TimeSpec time);

    [DllImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static extern long SchedSetAttr(long number, int tid, ref SchedAttr attr, uint flags);

    [DllImport("libc", EntryPoint = "getpriority", SetLastError = true)]
    private static extern int GetPriority(int which, int who);
}
