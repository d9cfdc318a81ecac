using System.Collections.Concurrent;
using Midge.Config;

namespace Midge.Core.Protection;

/// <summary>
/// <c>flapping_detect</c>: a client id that connects more than <c>flapping_max_connects</c> times within
/// <c>flapping_window</c> seconds is banned for <c>flapping_ban_time</c> seconds (EMQX's rule, counted on
/// connects). The window is fixed: it starts at the first connect counted and restarts once it has passed.
/// </summary>
internal sealed class FlappingDetector
{
    private readonly ConcurrentDictionary<string, Entry> _clients = new(StringComparer.Ordinal);

    public int Count => _clients.Count;

    /// <summary>Counts a connect. False when the id is banned, or gets banned by this connect
    /// (<paramref name="banStarted"/>).</summary>
    public bool Admit(string clientId, long nowMs, ClientProtection p, out bool banStarted, out long bannedUntilMs)
    {
        banStarted = false;
        var entry = _clients.GetOrAdd(clientId, static (_, now) => new Entry { WindowStartMs = now }, nowMs);
        lock (entry)
        {
            bannedUntilMs = entry.BannedUntilMs;
            if (entry.BannedUntilMs > nowMs) return false;
            if (nowMs - entry.WindowStartMs >= p.FlappingWindowSeconds * 1000L)
            {
                entry.WindowStartMs = nowMs;
                entry.Count = 0;
            }
            entry.Count++;
            if (entry.Count <= p.FlappingMaxConnects) return true;
            entry.BannedUntilMs = bannedUntilMs = nowMs + p.FlappingBanTimeSeconds * 1000L;
            entry.Count = 0;
            entry.WindowStartMs = entry.BannedUntilMs;
            banStarted = true;
            return false;
        }
    }

    /// <summary>Forgets what was counted for <paramref name="clientId"/>, its ban included (a ban lifted by hand).</summary>
    public void Forgive(string clientId) => _clients.TryRemove(clientId, out _);

    /// <summary>Forgets ids whose ban and window have both passed (from the broker's once-a-second tick).</summary>
    public void Sweep(long nowMs, ClientProtection p)
    {
        long windowMs = p.FlappingWindowSeconds * 1000L;
        foreach (var (id, entry) in _clients)
        {
            lock (entry)
            {
                if (entry.BannedUntilMs > nowMs || nowMs - entry.WindowStartMs < windowMs) continue;
            }
            _clients.TryRemove(new KeyValuePair<string, Entry>(id, entry));
        }
    }

    private sealed class Entry
    {
        public long WindowStartMs;
        public int Count;
        public long BannedUntilMs;
    }
}
