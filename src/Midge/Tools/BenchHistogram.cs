using System.Numerics;

namespace Midge.Tools;

/// <summary>
/// A log-linear histogram of non-negative values (HdrHistogram's layout with 64 sub-buckets per power of two,
/// so every recorded value is kept within 1/64 ≈ 1.6 % of itself). One writer; merged at the end.
/// </summary>
internal sealed class BenchHistogram
{
    private const int SubBits = 6;
    private const int Linear = 2 << SubBits; // values below 128 are exact
    private const int Buckets = Linear + (63 - SubBits - 1) * (1 << SubBits);

    private readonly long[] _counts = new long[Buckets];

    public long Count { get; private set; }
    public long Max { get; private set; }
    public long Min { get; private set; } = long.MaxValue;

    public void Record(long value)
    {
        if (value < 0) value = 0;
        _counts[Index(value)]++;
        Count++;
        if (value > Max) Max = value;
        if (value < Min) Min = value;
    }

    public void Add(BenchHistogram other)
    {
        for (int i = 0; i < Buckets; i++) _counts[i] += other._counts[i];
        Count += other.Count;
        if (other.Max > Max) Max = other.Max;
        if (other.Min < Min) Min = other.Min;
    }

    /// <summary>The smallest recorded value v such that at least <paramref name="percentile"/> % are ≤ v
    /// (reported as the upper edge of its bucket, capped at the maximum).</summary>
    public long Percentile(double percentile)
    {
        if (Count == 0) return 0;
        long rank = (long)Math.Ceiling(percentile / 100.0 * Count);
        if (rank < 1) rank = 1;
        long seen = 0;
        for (int i = 0; i < Buckets; i++)
        {
            seen += _counts[i];
            if (seen >= rank) return Math.Min(UpperEdge(i), Max);
        }
        return Max;
    }

    private static int Index(long value)
    {
        if (value < Linear) return (int)value;
        int msb = 63 - BitOperations.LeadingZeroCount((ulong)value);
        int shift = msb - SubBits;
        int top = (int)(value >> shift); // 64..127
        return Linear + (msb - SubBits - 1) * (1 << SubBits) + (top - (1 << SubBits));
    }

    private static long UpperEdge(int index)
    {
        if (index < Linear) return index;
        int rel = index - Linear;
        int msb = rel / (1 << SubBits) + SubBits + 1;
        int top = rel % (1 << SubBits) + (1 << SubBits);
        int shift = msb - SubBits;
        return ((long)(top + 1) << shift) - 1;
    }
}
