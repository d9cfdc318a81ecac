namespace Midge.Persistence;

/// <summary>When the SQLite store writes what it is told (<see cref="SqliteStoreOptions.Mode"/>).</summary>
public enum StoreMode
{
    /// <summary>Every change is written as soon as the writer gets to it, in batches (group commit), each commit
    /// synced to disk (<c>synchronous=FULL</c>): a flush means the changes survive a crash of the machine.</summary>
    Durable,

    /// <summary>Mosquitto's behaviour: changes are written every <see cref="SqliteStoreOptions.AutosaveInterval"/>
    /// (or after <see cref="SqliteStoreOptions.AutosaveOnChanges"/> changes) and when the store is closed, with
    /// <c>synchronous=NORMAL</c>; what came after the last save is lost by a crash.</summary>
    Snapshot,
}

/// <summary>
/// How a <see cref="SqliteSessionStore"/> writes: durable (every change, group-committed) or snapshot (Mosquitto's
/// <c>autosave_interval</c> and <c>autosave_on_changes</c>). The defaults are Mosquitto's, in durable mode.
/// </summary>
public sealed record SqliteStoreOptions
{
    /// <summary>Durable (the default) or snapshot.</summary>
    public StoreMode Mode { get; init; } = StoreMode.Durable;

    /// <summary>Snapshot mode: how often what changed is written (Mosquitto's <c>autosave_interval</c>, 1800 s by
    /// default). <see cref="TimeSpan.Zero"/>: never on a timer, only when the store is closed (and when the pending
    /// changes reach <see cref="MaxPendingChanges"/>).</summary>
    public TimeSpan AutosaveInterval { get; init; } = TimeSpan.FromSeconds(1800);

    /// <summary>Snapshot mode: when above 0, write once this many changes are pending instead of on a timer
    /// (Mosquitto's <c>autosave_on_changes</c>, which counts changes against <c>autosave_interval</c>). 0: off.</summary>
    public long AutosaveOnChanges { get; init; }

    /// <summary>The bound on changes recorded and not yet written (1,000,000 by default; a change is a few dozen bytes
    /// plus the record it holds on to). In durable mode the writer is always writing while changes are pending, so
    /// they reach it only while writing fails. In snapshot mode reaching it makes the writer write at once, whatever
    /// the autosave settings. While writing fails (a full disk, an I/O error) reaching it makes the store stop taking
    /// changes: it logs so once, records nothing more until the broker restarts, and fails every later flush, so that
    /// the broker acknowledges nothing that needs the store; what was recorded before is still written if the disk
    /// comes back.</summary>
    public int MaxPendingChanges { get; init; } = 1_000_000;
}
