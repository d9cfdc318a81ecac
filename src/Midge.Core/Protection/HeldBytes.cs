namespace Midge.Core.Protection;

/// <summary>
/// The payload bytes the broker holds for its clients (queued for them, in flight to them, retained), for
/// <c>memory_limit</c>: what the broker keeps, not what the collector has yet to free, so that the limit lets new
/// messages in again as soon as what is held falls. Striped by processor so that deliveries on different cores
/// do not contend on one counter; the total is read only when a limit is checked.
/// </summary>
internal sealed class HeldBytes
{
    private const int Stride = 8; // one 64-byte cache line per stripe
    private readonly long[] _stripes;
    private readonly int _mask;

    public HeldBytes()
    {
        int stripes = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Clamp(Environment.ProcessorCount, 1, 64));
        _stripes = new long[stripes * Stride];
        _mask = stripes - 1;
    }

    public void Add(long delta)
    {
        if (delta != 0) Interlocked.Add(ref _stripes[(Thread.GetCurrentProcessorId() & _mask) * Stride], delta);
    }

    public long Total
    {
        get
        {
            long total = 0;
            for (int i = 0; i < _stripes.Length; i += Stride) total += Volatile.Read(ref _stripes[i]);
            return total;
        }
    }
}
