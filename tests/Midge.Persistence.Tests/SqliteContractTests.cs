using Midge.Core.Protection;
using Midge.Core.Sessions;
using Midge.Core.Sessions.Store;
using Midge.Core.Tests.Sessions;

namespace Midge.Persistence.Tests;

/// <summary>
/// The session store contract against the SQLite store in durable mode. Every state the contract reads back goes
/// through <see cref="SessionStoreContract.Reopen"/>, which closes the store and opens its file again: each contract
/// test also proves that what it checks survives a restart.
/// </summary>
public class SqliteContractTests : SessionStoreContract, IDisposable
{
    private readonly TempDirectory _directory = new();
    private readonly List<ReopeningStore> _stores = [];

    protected virtual SqliteStoreOptions Options => new() { Mode = StoreMode.Durable };

    /// <summary>Whether <see cref="ISessionStore.FlushAsync"/> is passed on (in snapshot mode only closing writes).</summary>
    protected virtual bool Flushes => true;

    protected override ISessionStore CreateStore()
    {
        var store = new ReopeningStore(_directory.File($"store{_stores.Count}.db"), Options, Flushes);
        _stores.Add(store);
        return store;
    }

    protected override ISessionStore Reopen(ISessionStore store)
    {
        ((ReopeningStore)store).Reopen();
        return store;
    }

    public void Dispose()
    {
        foreach (var store in _stores) store.Dispose();
        _directory.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>The contract in snapshot mode (autosave every 30 minutes): nothing is flushed, closing the store writes
/// everything.</summary>
public sealed class SqliteSnapshotContractTests : SqliteContractTests
{
    protected override SqliteStoreOptions Options => new() { Mode = StoreMode.Snapshot };

    protected override bool Flushes => false;
}

/// <summary>
/// A <see cref="SqliteSessionStore"/> that can be closed and opened again under the same object, as a restarted
/// broker would open its file: the contract keeps using the store it made after reading it back.
/// </summary>
public sealed class ReopeningStore(string path, SqliteStoreOptions options, bool flushes) : ISessionStore, IDisposable
{
    public SqliteSessionStore Inner { get; private set; } = SqliteSessionStore.Open(path, options);

    public void Reopen()
    {
        Inner.Dispose();
        Inner = SqliteSessionStore.Open(path, options);
    }

    public void Dispose() => Inner.Dispose();

    public IReadOnlyList<SessionState> LoadAll() => Inner.LoadAll();
    public void BeginGroup() => Inner.BeginGroup();
    public void EndGroup() => Inner.EndGroup();
    public void SessionSaved(SessionState state) => Inner.SessionSaved(state);
    public void SessionRemoved(string clientId) => Inner.SessionRemoved(clientId);
    public void SessionUpdated(string clientId, uint expiryInterval, DateTimeOffset? disconnectedAt) =>
        Inner.SessionUpdated(clientId, expiryInterval, disconnectedAt);
    public void SubscriptionSet(string clientId, Subscription subscription) => Inner.SubscriptionSet(clientId, subscription);
    public void SubscriptionRemoved(string clientId, string filter) => Inner.SubscriptionRemoved(clientId, filter);
    public void MessageQueued(string clientId, QueuedMessage message) => Inner.MessageQueued(clientId, message);
    public void MessageDequeued(string clientId, long sequence) => Inner.MessageDequeued(clientId, sequence);
    public void InflightAdded(string clientId, InflightMessage message) => Inner.InflightAdded(clientId, message);
    public void InflightAdvanced(string clientId, ushort packetId, InflightState state) => Inner.InflightAdvanced(clientId, packetId, state);
    public void InflightCompleted(string clientId, ushort packetId) => Inner.InflightCompleted(clientId, packetId);
    public void IncomingQoS2Added(string clientId, ushort packetId) => Inner.IncomingQoS2Added(clientId, packetId);
    public void IncomingQoS2Removed(string clientId, ushort packetId) => Inner.IncomingQoS2Removed(clientId, packetId);
    public void WillChanged(string clientId, StoredWill? will) => Inner.WillChanged(clientId, will);
    public IReadOnlyList<StoredMessage> LoadRetained() => Inner.LoadRetained();
    public void RetainedSet(StoredMessage message) => Inner.RetainedSet(message);
    public void RetainedRemoved(string topic) => Inner.RetainedRemoved(topic);
    public StoredTotals? LoadTotals() => Inner.LoadTotals();
    public void TotalsSaved(StoredTotals totals) => Inner.TotalsSaved(totals);
    public IReadOnlyList<Ban> LoadBans() => Inner.LoadBans();
    public void BanSet(Ban ban) => Inner.BanSet(ban);
    public void BanRemoved(BanKind kind, string who) => Inner.BanRemoved(kind, who);

    public ValueTask FlushAsync(CancellationToken cancellationToken = default) =>
        flushes ? Inner.FlushAsync(cancellationToken) : ValueTask.CompletedTask;
}
