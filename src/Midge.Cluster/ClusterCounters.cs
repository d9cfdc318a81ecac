namespace Midge.Cluster;

/// <summary>What crossed between this node and the others (<c>$SYS/broker/cluster/</c>).</summary>
public sealed class ClusterCounters
{
    private long _sent, _received, _dropped, _malformed, _takeovers, _subscribeWaits, _handedOff, _keptLocal, _confirmSlow, _resent, _duplicates, _gapsSkipped, _sharedQueued, _sharedDequeued;

    /// <summary>Messages published to the other nodes.</summary>
    public long Sent => Interlocked.Read(ref _sent);

    /// <summary>Messages received from other nodes.</summary>
    public long Received => Interlocked.Read(ref _received);

    /// <summary>Messages that could not go to the other nodes (NATS unreachable for too long, a topic too long for a
    /// subject).</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Messages from NATS that were not a node's.</summary>
    public long Malformed => Interlocked.Read(ref _malformed);

    /// <summary>Client ids this node took from another node.</summary>
    public long Takeovers => Interlocked.Read(ref _takeovers);

    /// <summary>SUBACKs that waited for NATS to confirm a filter new to this node (a filter it had cost none).</summary>
    public long SubscribeWaits => Interlocked.Read(ref _subscribeWaits);

    /// <summary>Messages of shared groups this node handed on to another node of the group (none of its members was
    /// online).</summary>
    public long HandedOff => Interlocked.Read(ref _handedOff);

    /// <summary>Messages no other node wanted (no filter or shared group of theirs matched, nor a group of this node's):
    /// not published to NATS.</summary>
    public long KeptLocal => Interlocked.Read(ref _keptLocal);

    /// <summary>Acknowledgements that went without every other node's confirmation (it did not come within
    /// <see cref="ClusterNode.ConfirmWait"/>).</summary>
    public long ConfirmSlow => Interlocked.Read(ref _confirmSlow);

    /// <summary>Numbered messages sent again to a node that had not confirmed them (a message lost between nodes, or a
    /// confirmation late or lost).</summary>
    public long Resent => Interlocked.Read(ref _resent);

    /// <summary>Numbered messages that arrived here a second time (sent again): not routed again.</summary>
    public long Duplicates => Interlocked.Read(ref _duplicates);

    /// <summary>Gaps in another node's numbered messages this node stopped waiting for (what was missing had been let go
    /// by its node, or did not come within the gap's wait): the messages after them were routed without them.</summary>
    public long GapsSkipped => Interlocked.Read(ref _gapsSkipped);

    /// <summary>Messages of shared groups this node put in the cluster's queue of their group (no member online
    /// anywhere NATS found one).</summary>
    public long SharedQueued => Interlocked.Read(ref _sharedQueued);

    /// <summary>Messages this node took from the cluster's queues of shared groups (given to a member online here, or
    /// expired).</summary>
    public long SharedDequeued => Interlocked.Read(ref _sharedDequeued);

    internal void OnSharedQueued() => Interlocked.Increment(ref _sharedQueued);

    internal void OnSharedDequeued() => Interlocked.Increment(ref _sharedDequeued);

    internal void OnResent() => Interlocked.Increment(ref _resent);

    internal void OnDuplicate() => Interlocked.Increment(ref _duplicates);

    internal void OnGapSkipped() => Interlocked.Increment(ref _gapsSkipped);

    internal void OnConfirmSlow() => Interlocked.Increment(ref _confirmSlow);

    internal void OnKeptLocal() => Interlocked.Increment(ref _keptLocal);

    internal void OnHandedOff() => Interlocked.Increment(ref _handedOff);

    internal void OnSubscribeWait() => Interlocked.Increment(ref _subscribeWaits);

    internal void OnTakeover() => Interlocked.Increment(ref _takeovers);

    internal void OnSent() => Interlocked.Increment(ref _sent);

    internal void OnReceived() => Interlocked.Increment(ref _received);

    internal void OnDropped() => Interlocked.Increment(ref _dropped);

    internal void OnMalformed() => Interlocked.Increment(ref _malformed);
}
