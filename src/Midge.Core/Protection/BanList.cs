using System.Collections.Concurrent;
using System.Net;

namespace Midge.Core.Protection;

/// <summary>What a ban matches: EMQX's <c>as</c> (<c>clientid</c>, <c>username</c>, <c>peerhost</c>).</summary>
public enum BanKind
{
    ClientId,
    Username,
    PeerHost,
}

/// <summary>One ban: who, by whom, why, since when and until when (null: until removed).</summary>
public sealed record Ban(BanKind As, string Who, string By, string Reason, DateTimeOffset At, DateTimeOffset? Until)
{
    /// <summary>EMQX's name for <see cref="As"/>.</summary>
    public string AsName => Name(As);

    public static string Name(BanKind kind) => kind switch
    {
        BanKind.ClientId => "clientid",
        BanKind.Username => "username",
        _ => "peerhost",
    };

    /// <summary>Reads EMQX's name of a kind; false for anything else.</summary>
    public static bool TryParseKind(string? text, out BanKind kind)
    {
        switch (text)
        {
            case "clientid": kind = BanKind.ClientId; return true;
            case "username": kind = BanKind.Username; return true;
            case "peerhost": kind = BanKind.PeerHost; return true;
            default: kind = default; return false;
        }
    }
}

/// <summary>
/// The banned client ids, user names and addresses, checked at every CONNECT (refused with 0x8A Banned; 3.x: not
/// authorised). The flapping detector's bans are entries here too (<c>by</c> <c>flapping_detect</c>), so the HTTP
/// API lists and lifts them like any other. Expired bans stop matching at once and are swept every second.
/// Empty (the usual case), a check is one read.
/// </summary>
public sealed class BanList
{
    /// <summary>At most this many bans are kept; adding beyond refuses (the HTTP API answers 400).</summary>
    public const int MaxBans = 100_000;

    private readonly ConcurrentDictionary<(BanKind, string), Ban> _bans = new();

    public int Count => _bans.Count;

    /// <summary>A snapshot of the bans, oldest first.</summary>
    public IReadOnlyList<Ban> All()
    {
        var list = _bans.Values.ToList();
        list.Sort((a, b) => a.At.CompareTo(b.At));
        return list;
    }

    /// <summary>Adds or replaces a ban; false when the list is full.</summary>
    public bool Set(Ban ban)
    {
        ArgumentNullException.ThrowIfNull(ban);
        var key = (ban.As, Normalise(ban.As, ban.Who));
        if (_bans.Count >= MaxBans && !_bans.ContainsKey(key)) return false;
        _bans[key] = ban with { Who = key.Item2 };
        return true;
    }

    public bool Remove(BanKind kind, string who) => _bans.TryRemove((kind, Normalise(kind, who)), out _);

    public Ban? Get(BanKind kind, string who) => _bans.TryGetValue((kind, Normalise(kind, who)), out var ban) ? ban : null;

    /// <summary>The ban that refuses a client with this id, user name and address now; null when none does.</summary>
    public Ban? Find(string clientId, string? username, IPAddress? address, DateTimeOffset now)
    {
        if (_bans.IsEmpty) return null;
        if (Live(BanKind.ClientId, clientId, now) is { } byId) return byId;
        if (username is not null && Live(BanKind.Username, username, now) is { } byName) return byName;
        if (address is not null && Live(BanKind.PeerHost, Host(address), now) is { } byHost) return byHost;
        return null;
    }

    /// <summary>Drops bans whose time has passed (from the broker's tick).</summary>
    public void Sweep(DateTimeOffset now)
    {
        if (_bans.IsEmpty) return;
        foreach (var (key, ban) in _bans)
        {
            if (ban.Until is { } until && until <= now) _bans.TryRemove(new KeyValuePair<(BanKind, string), Ban>(key, ban));
        }
    }

    private Ban? Live(BanKind kind, string who, DateTimeOffset now) =>
        _bans.TryGetValue((kind, who), out var ban) && (ban.Until is not { } until || until > now) ? ban : null;

    /// <summary>An address as bans hold it: IPv4-mapped IPv6 written as IPv4.</summary>
    public static string Host(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        return (address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address).ToString();
    }

    private static string Normalise(BanKind kind, string who) =>
        kind == BanKind.PeerHost && IPAddress.TryParse(who, out var ip) ? Host(ip) : who;
}
