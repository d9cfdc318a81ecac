using System.Buffers;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Midge.Config;
using Midge.Core;
using Midge.Core.Messages;
using Midge.Core.Routing;
using NATS.Client.Core;

namespace Midge.Cluster;

/// <summary>
/// This broker as one node of a cluster on NATS (docs/cluster.md). Routing: every message the broker routes comes
/// here once (<see cref="IClusterRoute"/>) and is published once, on the subject of its topic
/// (<see cref="Subjects"/>); every filter this node's clients hold with plain subscriptions is subscribed in NATS with
/// a queue group named after the node, so NATS hands a message to each interested node once, however many of its
/// filters match it, and a node with no interest receives nothing. A message from another node is routed to this
/// node's plain subscribers only (<see cref="Broker.RouteFromCluster"/>), in the order NATS delivered it. Each shared
/// group is subscribed, on a second connection, with a queue group of its own, the same on every node: NATS hands
/// each message to one node holding the group, which gives it to one member (<see cref="Broker.SharedFromCluster"/>).
/// </summary>
/// <remarks>
/// The publishing thread never waits for NATS: messages go through a bounded queue (<see cref="OutboundCapacity"/>)
/// that one loop drains; while NATS is unreachable the queue fills and further messages are counted in
/// <see cref="ClusterCounters.Dropped"/> for the other nodes (this node's subscribers had theirs).
/// </remarks>
public sealed partial class ClusterNode : IClusterRoute, IClusterDirectory, IAsyncDisposable
{
    /// <summary>Messages that may wait for NATS before further ones are dropped for the other nodes.</summary>
    public const int OutboundCapacity = 65_536;

    /// <summary>How long a SUBACK may wait for its new filters to be subscribed in NATS.</summary>
    public static readonly TimeSpan SubscribeWait = TimeSpan.FromSeconds(1);

    private readonly Broker _broker;
    private readonly ILogger _log;
    private readonly NatsConnection _nats;
    private readonly NatsConnection _groupsNats;
    private readonly string _prefix;
    private readonly string _queueGroup;
    private readonly Channel<(Message Message, bool GroupsServed, bool Wanted, Outstanding[]? Numbers)> _outbound = Channel.CreateBounded<(Message, bool, bool, Outstanding[]?)>(
        new BoundedChannelOptions(OutboundCapacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
    // A change of this node's filters: added or removed (Durable false), or a plain filter that persistent sessions
    // hold now, or no longer (Durable true).
    private readonly Channel<(string Filter, string? Group, bool Added, long Seq, bool Durable)> _interest =
        Channel.CreateUnbounded<(string, string?, bool, long, bool)>(
        new UnboundedChannelOptions { SingleReader = true });
    private readonly Dictionary<string, List<RouteSubscription>> _subscriptions = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _joined = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task? _loops;

    private ClusterNode(Broker broker, ClusterConfig config, ILoggerFactory? loggers)
    {
        _broker = broker;
        Config = config;
        _log = (loggers ?? NullLoggerFactory.Instance).CreateLogger("Midge.Cluster");
        _nats = new NatsConnection(NatsOptions.From(config, loggers));
        _groupsNats = new NatsConnection(NatsOptions.ForSharedGroups(config, loggers));
        _prefix = "midge." + config.Name;
        _queueGroup = "midge." + config.Name + ".node." + config.NodeName;
        _nats.ConnectionDisconnected += (_, _) =>
        {
            Log.NatsLost(_log, Config.Name, Config.NodeName);
            return ValueTask.CompletedTask;
        };
        _nats.ConnectionOpened += (_, _) =>
        {
            ForgetEmptyGroups();
            Log.NatsConnected(_log, Config.Name, Config.NodeName, _nats.ServerInfo?.Name ?? "?");
            return ValueTask.CompletedTask;
        };
    }

    /// <summary>The configuration it runs with.</summary>
    public ClusterConfig Config { get; }

    /// <summary>What crossed, and what could not.</summary>
    public ClusterCounters Counters { get; } = new();

    /// <summary>Whether the connection to NATS is up now.</summary>
    public bool IsConnected => _nats.ConnectionState == NatsConnectionState.Open;

    /// <summary>Whether both connections to NATS are up now (the second carries the shared groups' messages).</summary>
    private bool BothConnected => IsConnected && _groupsNats.ConnectionState == NatsConnectionState.Open;

    /// <summary>Completes once the node is connected to NATS and subscribed to the filters its clients held at start.</summary>
    public Task Joined => _joined.Task;

    /// <summary>The NATS connection (for tests and the cluster's own parts).</summary>
    internal NatsConnection Nats => _nats;

    /// <summary>Joins the cluster: becomes a route destination of <paramref name="broker"/> and watches its filters at
    /// once, then connects to NATS in the background (retrying until it can); <see cref="Joined"/> says when it has.</summary>
    public static ClusterNode Start(Broker broker, ClusterConfig config, ILoggerFactory? loggers = null)
    {
        ArgumentNullException.ThrowIfNull(broker);
        ArgumentNullException.ThrowIfNull(config);
        var node = new ClusterNode(broker, config, loggers);
        broker.Router.WatchFilters(node.OnFilterChanged);
        broker.Router.Cluster = node;
        broker.Cluster = node;
        broker.WrapSessionStore(inner => node._replica = new SessionReplica(inner, node._log, node.TakePendingConfirmation, node.OnDurableFilterChanged));
        node._loops = node.RunAsync();
        return node;
    }

    private async Task RunAsync()
    {
        try
        {
            await Task.WhenAll(_nats.ConnectAsync().AsTask(), _groupsNats.ConnectAsync().AsTask()).WaitAsync(_stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            _joined.TrySetCanceled();
            return;
        }
        await StartSessionsAsync().ConfigureAwait(false);
        await StartRetainedAsync().ConfigureAwait(false);
        await StartExclusiveAsync().ConfigureAwait(false);
        await StartWillsAsync().ConfigureAwait(false);
        await StartInterestAsync().ConfigureAwait(false);
        await StartConfirmationsAsync().ConfigureAwait(false);
        await StartSharedQueueAsync().ConfigureAwait(false);
        await StartNodesAsync().ConfigureAwait(false);
        var publish = Task.Run(PublishLoopAsync);
        var interest = Task.Run(InterestLoopAsync);
        var handOffs = Task.Run(HandOffLoopAsync);
        await Task.WhenAll(publish, interest, handOffs).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public void Deliver(Message message, bool groupsServed)
    {
        // $SYS belongs to each node ($SYS/broker/... says what this node did).
        if (message.Topic.StartsWith("$SYS/", StringComparison.Ordinal)) return;
        // Nobody else wants it: it stays here (a retained one still goes to the cluster's bucket).
        bool wanted = IsWanted(message.Topic);
        if (!wanted)
        {
            Counters.OnKeptLocal();
            if (!message.Retain) return;
        }
        Enqueue(message, groupsServed, wanted);
    }

    private async Task PublishLoopAsync()
    {
        var buffer = new ArrayBufferWriter<byte>(1024);
        var reader = _outbound.Reader;
        try
        {
            while (await reader.WaitToReadAsync(_stop.Token).ConfigureAwait(false))
            {
                while (reader.TryRead(out var item))
                {
                    var message = item.Message;
                    var subject = Subjects.ForTopic(_prefix, message.Topic);
                    if (subject is null)
                    {
                        Counters.OnDropped();
                        Log.TopicTooLong(_log, message.Topic.Length);
                        Sent(item.Numbers); // its numbers go again on the nodes' own subjects, and hold none behind them
                        continue;
                    }
                    buffer.ResetWrittenCount();
                    ClusterWire.Write(buffer, message, _broker.NowMs, item.GroupsServed, NumberingOf(item.Numbers));
                    try
                    {
                        if (item.Wanted && (item.Numbers is null || LoseNumberedForTest?.Invoke(message) != true))
                        {
                            await _nats.PublishAsync(subject, buffer.WrittenMemory, cancellationToken: _stop.Token).ConfigureAwait(false);
                            Counters.OnSent();
                        }
                        if (message.Retain) await PutRetainedAsync(buffer.WrittenMemory, message.Topic).ConfigureAwait(false);
                    }
                    catch (NatsException e)
                    {
                        Counters.OnDropped();
                        Log.PublishFailed(_log, e.Message);
                    }
                    finally
                    {
                        Sent(item.Numbers); // sent, or failed: either way it goes again if not confirmed
                    }
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }

    // Filter changes are numbered in the order the routing index made them (its watcher runs under its lock);
    // _interestConfirmed is the last number NATS has confirmed (a PING answered after the SUB or UNSUB).
    private long _interestQueued, _interestConfirmed;
    private TaskCompletionSource _interestSignal = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // The last filter change the current thread made, and on which node (several nodes may share a process).
    [ThreadStatic] private static ClusterNode? t_changedBy;
    [ThreadStatic] private static long t_changeSeq;

    /// <summary>Called by the routing index under its lock, on the subscribing thread: only queues the change.</summary>
    private void OnFilterChanged(string filter, string? group, bool added)
    {
        if (group is not null) OnOwnGroupChanged(filter, group, added);
        QueueInterestChange(filter, group, added, durable: false);
    }

    /// <summary>Called by the session store (<see cref="SessionReplica"/>) on the subscribing thread when a plain filter
    /// gains its first persistent session or loses its last: acknowledgements of messages for it then wait (or no
    /// longer wait) for this node to keep them.</summary>
    internal void OnDurableFilterChanged(string filter, bool durable) => QueueInterestChange(filter, null, durable, durable: true);

    private void QueueInterestChange(string filter, string? group, bool added, bool durable)
    {
        long seq = Interlocked.Increment(ref _interestQueued);
        t_changedBy = this;
        t_changeSeq = seq;
        _interest.Writer.TryWrite((filter, group, added, seq, durable));
    }

    /// <inheritdoc/>
    /// <remarks>Waits for NATS's PONG after the SUB (<see cref="InterestLoopAsync"/>): a nats-server processes a
    /// connection's commands in order, so from then on it hands this node what any node publishes. At once when the
    /// subscriptions added no filter, or NATS is unreachable; at most <see cref="SubscribeWait"/> otherwise.</remarks>
    public ValueTask SubscribedAsync(bool allChanges = false)
    {
        long seq;
        if (allChanges)
        {
            seq = Interlocked.Read(ref _interestQueued);
        }
        else
        {
            if (t_changedBy != this) return default;
            seq = t_changeSeq;
            t_changedBy = null;
        }
        if (Volatile.Read(ref _interestConfirmed) >= seq || !BothConnected) return default;
        Counters.OnSubscribeWait();
        return new ValueTask(ConfirmedAsync(seq, SubscribeWait));
    }

    /// <summary>
    /// Completes once every change of this node's filters made before the call is subscribed (or unsubscribed) in NATS
    /// and NATS has confirmed it: from then on, messages that other nodes publish for those filters reach this node.
    /// </summary>
    public Task InterestSettledAsync(CancellationToken cancellationToken = default) =>
        ConfirmedAsync(Interlocked.Read(ref _interestQueued), Timeout.InfiniteTimeSpan, cancellationToken);

    /// <summary>Waits until change <paramref name="seq"/> is confirmed by NATS, or <paramref name="wait"/> has passed
    /// (then logged, and it completes anyway).</summary>
    private async Task ConfirmedAsync(long seq, TimeSpan wait, CancellationToken cancellationToken = default)
    {
        long deadline = Environment.TickCount64 + (long)wait.TotalMilliseconds;
        while (true)
        {
            var signal = Volatile.Read(ref _interestSignal); // before the check: a confirmation swaps it after its write
            if (Volatile.Read(ref _interestConfirmed) >= seq) return;
            try
            {
                if (wait == Timeout.InfiniteTimeSpan) await signal.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
                else await signal.Task.WaitAsync(TimeSpan.FromMilliseconds(Math.Max(0, deadline - Environment.TickCount64)), cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                Log.SubscribeSlow(_log, wait.TotalMilliseconds);
                return;
            }
        }
    }

    private async Task InterestLoopAsync()
    {
        var reader = _interest.Reader;
        try
        {
            while (true)
            {
                long last = 0;
                var changes = new List<(char Op, string Key)>();
                while (reader.TryRead(out var change))
                {
                    last = change.Seq;
                    if (change.Durable)
                    {
                        changes.Add((change.Added ? DurableOn : DurableOff, change.Filter));
                        continue;
                    }
                    bool changed = change.Added
                        ? await SubscribeAsync(change.Filter, change.Group).ConfigureAwait(false)
                        : await UnsubscribeAsync(change.Filter, change.Group).ConfigureAwait(false);
                    if (changed) changes.Add((change.Added ? Added : Removed, InterestKey(change.Filter, change.Group)));
                }
                if (last > 0) await ConfirmAsync(last, changes).ConfigureAwait(false);
                if (!_joined.Task.IsCompleted)
                {
                    Log.Joined(_log, Config.Name, Config.NodeName, _subscriptions.Count);
                    _joined.TrySetResult();
                }
                if (!await reader.WaitToReadAsync(_stop.Token).ConfigureAwait(false)) return;
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }

    /// <summary>Confirms the changes up to <paramref name="seq"/> once NATS answered a PING sent after them on both
    /// connections and every running node has applied <paramref name="changes"/> (when NATS is reachable: otherwise
    /// NATS.Net subscribes again on reconnecting, the others ask for this node's set, and nobody waits).</summary>
    private async Task ConfirmAsync(long seq, List<(char Op, string Key)> changes)
    {
        var announced = changes.Count > 0 ? AnnounceInterestAsync(changes) : Task.CompletedTask;
        if (BothConnected)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            timeout.CancelAfter(SubscribeWait);
            try
            {
                await Task.WhenAll(_nats.PingAsync(timeout.Token).AsTask(), _groupsNats.PingAsync(timeout.Token).AsTask(), announced).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!_stop.IsCancellationRequested)
            {
            }
            catch (NatsException)
            {
            }
        }
        await announced.ConfigureAwait(false);
        Volatile.Write(ref _interestConfirmed, seq);
        Interlocked.Exchange(ref _interestSignal, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }

    /// <summary>Subscribes in NATS to a filter's plain subscriptions (queue group: this node) or to one of its shared
    /// groups (queue group: the group, cluster-wide, on the second connection).</summary>
    /// <returns>Whether it subscribed (not when it was already, or cannot be).</returns>
    private async Task<bool> SubscribeAsync(string filter, string? group)
    {
        var key = InterestKey(filter, group);
        if (_subscriptions.ContainsKey(key) || filter.StartsWith("$SYS/", StringComparison.Ordinal)) return false;
        var subjects = Subjects.ForFilter(_prefix, filter);
        if (subjects.Count == 0)
        {
            Log.FilterTooLong(_log, filter.Length);
            return false;
        }
        var (nats, queueGroup) = group is null ? (_nats, _queueGroup) : (_groupsNats, SharedQueueGroup(filter, group));
        var subs = new List<RouteSubscription>(subjects.Count + 1);
        foreach (var subject in subjects)
        {
            var sub = new RouteSubscription(this, nats, subject, queueGroup, filter, group, handOff: false);
            await nats.AddSubAsync(sub, _stop.Token).ConfigureAwait(false);
            subs.Add(sub);
        }
        if (group is not null)
        {
            // Messages other nodes hand on (HandOffShared), on the first connection: never this node's own.
            var sub = new RouteSubscription(this, _nats, queueGroup + ".handoff", queueGroup, filter, group, handOff: true);
            await _nats.AddSubAsync(sub, _stop.Token).ConfigureAwait(false);
            subs.Add(sub);
        }
        _subscriptions[key] = subs;
        return true;
    }

    private async Task<bool> UnsubscribeAsync(string filter, string? group)
    {
        if (!_subscriptions.Remove(InterestKey(filter, group), out var subs)) return false;
        foreach (var sub in subs) await sub.DisposeAsync().ConfigureAwait(false);
        return true;
    }

    /// <summary>The key of a filter's plain subscriptions (the filter) or of a shared group (as MQTT writes it).</summary>
    private static string InterestKey(string filter, string? group) => group is null ? filter : $"$share/{group}/{filter}";

    /// <summary>A message another node published (or this node, for its shared groups), in NATS's order (called on
    /// the connection's reader): to this node's plain subscriptions, or to one member of the shared group
    /// <paramref name="group"/> NATS chose this node for.</summary>
    private void OnRemoteMessage(in ReadOnlySequence<byte> payload, string filter, string? group)
    {
        Message message;
        bool groupsServed;
        ClusterWire.Numbering? numbering;
        try
        {
            message = ClusterWire.Read(payload, _broker.NowMs, out groupsServed, out numbering);
        }
        catch (FormatException e)
        {
            Counters.OnMalformed();
            Log.Malformed(_log, e.Message);
            return;
        }
        Counters.OnReceived();
        if (group is null)
        {
            // Numbered for this node: its publisher's acknowledgement waits until this node kept it.
            if (numbering?.For(Config.NodeName) is { } number) AcceptNumbered(numbering, number, message);
            else _broker.RouteFromCluster(message);
        }
        else if (groupsServed) return; // its node's groups had it while NATS was away: no group has it twice
        else if (!_broker.SharedFromCluster(message, filter, group, mayHandOff: true)) Counters.OnDropped(); // the group just went
    }

    /// <summary>How long leaving the cluster may wait for NATS, step by step (draining what waits for it, saying this
    /// node leaves, closing the connection): a node whose NATS is away still stops promptly.</summary>
    private static readonly TimeSpan LeaveWait = TimeSpan.FromSeconds(2);

    /// <summary>Leaves the cluster: stops routing to it, drains what waits for NATS and tells the other nodes (each
    /// briefly), closes the connection.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_broker.Router.Cluster == this) _broker.Router.Cluster = null;
        if (_broker.Cluster == this) _broker.Cluster = null;
        if (_broker.SessionClaims == this) _broker.SessionClaims = null;
        if (_broker.ClusterWills == this) _broker.ClusterWills = null;
        _outbound.Writer.TryComplete();
        _interest.Writer.TryComplete();
        _handOffs.Writer.TryComplete();
        _replica?.Detach();
        await Bounded(_loops ?? Task.CompletedTask).ConfigureAwait(false);
        await Bounded(StopNodesAsync()).ConfigureAwait(false);
        await Bounded(StopWillsAsync()).ConfigureAwait(false);
        await _stop.CancelAsync().ConfigureAwait(false);
        await Bounded(StopSessionsAsync()).ConfigureAwait(false);
        await Bounded(_nats.DisposeAsync().AsTask()).ConfigureAwait(false);
        await Bounded(_groupsNats.DisposeAsync().AsTask()).ConfigureAwait(false);
        _stop.Dispose();

        static async Task Bounded(Task step)
        {
            try
            {
                await step.WaitAsync(LeaveWait).ConfigureAwait(false);
            }
            catch (Exception e) when (e is TimeoutException or OperationCanceledException or NatsException)
            {
            }
        }
    }

    /// <summary>One NATS subscription of a filter's subject: hands each message to the node as the connection's
    /// reader delivers it (no per-subscription queue), so messages keep NATS's order whichever of the node's
    /// subscriptions NATS chose for them.</summary>
    private sealed class RouteSubscription(ClusterNode node, NatsConnection nats, string subject, string queueGroup, string filter,
        string? group, bool handOff)
        : NatsSubBase(nats, ((INatsConnection)nats).SubscriptionManager, subject, queueGroup, opts: null)
    {
        protected override ValueTask ReceiveInternalAsync(string subject, string? replyTo, ReadOnlySequence<byte>? headersBuffer,
            ReadOnlySequence<byte> payloadBuffer)
        {
            if (handOff) node.OnHandedOn(payloadBuffer, replyTo, filter, group!);
            else node.OnRemoteMessage(payloadBuffer, filter, group);
            return ValueTask.CompletedTask;
        }

        protected override void TryComplete()
        {
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1400, Level = LogLevel.Information, Message = "Cluster {Cluster}: node {Node} joined ({Filters} filters subscribed)")]
        public static partial void Joined(ILogger logger, string cluster, string node, int filters);

        [LoggerMessage(EventId = 1401, Level = LogLevel.Information, Message = "Cluster {Cluster}: node {Node} connected to NATS server {Server}")]
        public static partial void NatsConnected(ILogger logger, string cluster, string node, string server);

        [LoggerMessage(EventId = 1402, Level = LogLevel.Warning, Message = "Cluster {Cluster}: node {Node} lost NATS; serving its own clients alone, reconnecting")]
        public static partial void NatsLost(ILogger logger, string cluster, string node);

        [LoggerMessage(EventId = 1403, Level = LogLevel.Warning, Message = "Cluster: a topic of {Length} characters is too long for a NATS subject; the message stays on this node")]
        public static partial void TopicTooLong(ILogger logger, int length);

        [LoggerMessage(EventId = 1404, Level = LogLevel.Warning, Message = "Cluster: a filter of {Length} characters is too long for a NATS subject; it gets this node's messages only")]
        public static partial void FilterTooLong(ILogger logger, int length);

        [LoggerMessage(EventId = 1405, Level = LogLevel.Warning, Message = "Cluster: cannot publish to NATS: {Error}")]
        public static partial void PublishFailed(ILogger logger, string error);

        [LoggerMessage(EventId = 1406, Level = LogLevel.Warning, Message = "Cluster: dropped a malformed message from NATS: {Error}")]
        public static partial void Malformed(ILogger logger, string error);

        [LoggerMessage(EventId = 1407, Level = LogLevel.Warning, Message = "Cluster: a subscription was not confirmed by NATS within {Milliseconds} ms; its SUBACK goes anyway")]
        public static partial void SubscribeSlow(ILogger logger, double milliseconds);
    }
}
