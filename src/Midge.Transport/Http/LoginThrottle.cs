using System.Collections.Concurrent;
using System.Net;

namespace Midge.Transport.Http;

/// <summary>
/// Failed HTTP API logins per client address: after <see cref="MaxFailures"/> failures within
/// <see cref="Window"/>, the address is refused (429) for <see cref="BlockTime"/> without its credentials being checked.
/// A success does not reset the count (a guesser with one good key learns nothing from it). At most
/// <see cref="MaxAddresses"/> addresses are tracked; beyond that, entries whose window passed are swept first and,
/// failing that, the address is refused as if blocked, so a flood of addresses cannot grow the table.
/// </summary>
internal sealed class LoginThrottle(TimeProvider time)
{
    public const int MaxFailures = 5;
    public const int MaxAddresses = 10_000;
    public static readonly TimeSpan Window = TimeSpan.FromMinutes(1);
    public static readonly TimeSpan BlockTime = TimeSpan.FromMinutes(1);

    private readonly ConcurrentDictionary<IPAddress, Entry> _entries = new();

    /// <summary>Whether <paramref name="address"/> is refused now; <paramref name="retryAfter"/>: seconds left.</summary>
    public bool IsBlocked(IPAddress? address, out int retryAfter)
    {
        retryAfter = 0;
        if (address is null || _entries.IsEmpty || !_entries.TryGetValue(address, out var entry)) return false;
        var now = time.GetUtcNow();
        lock (entry)
        {
            if (entry.BlockedUntil <= now) return false;
            retryAfter = (int)Math.Ceiling((entry.BlockedUntil - now).TotalSeconds);
            return true;
        }
    }

    /// <summary>Counts a failure; true when this one starts a block.</summary>
    public bool Fail(IPAddress? address)
    {
        if (address is null) return false;
        var now = time.GetUtcNow();
        if (_entries.Count >= MaxAddresses && !_entries.ContainsKey(address)) Sweep(now);
        var entry = _entries.GetOrAdd(address, static (_, at) => new Entry { WindowStart = at }, now);
        lock (entry)
        {
            if (now - entry.WindowStart >= Window)
            {
                entry.WindowStart = now;
                entry.Failures = 0;
            }
            if (++entry.Failures < MaxFailures) return false;
            entry.BlockedUntil = now + BlockTime;
            entry.Failures = 0;
            entry.WindowStart = entry.BlockedUntil;
            return true;
        }
    }

    private void Sweep(DateTimeOffset now)
    {
        foreach (var (address, entry) in _entries)
        {
            lock (entry)
            {
                if (entry.BlockedUntil > now || now - entry.WindowStart < Window) continue;
            }
            _entries.TryRemove(new KeyValuePair<IPAddress, Entry>(address, entry));
        }
    }

    private sealed class Entry
    {
        public DateTimeOffset WindowStart;
        public int Failures;
        public DateTimeOffset BlockedUntil;
    }
}
