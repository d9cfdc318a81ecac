namespace Midge.Core.Sessions;

/// <summary>
/// The exactly-once state of the client's own QoS 2 PUBLISHes: the packet ids of those routed and awaiting PUBREL.
/// A retransmission of one of them is acknowledged and never routed again; PUBREL releases the id. Guarded by the
/// session's connection (only its read loop touches it).
/// </summary>
/// <remarks>
/// A mutable struct embedded in <see cref="Session"/>; keep it in a non-readonly field and never copy it. The set is
/// made on first use and then kept while the session lives: a QoS 2 publisher would otherwise allocate it again for
/// every message.
/// </remarks>
internal struct IncomingQoS2
{
    private HashSet<ushort>? _ids;

    public readonly int Count => _ids?.Count ?? 0;

    public readonly bool Contains(ushort packetId) => _ids?.Contains(packetId) == true;

    /// <summary>Returns false when the id was pending already.</summary>
    public bool Add(ushort packetId) => (_ids ??= []).Add(packetId);

    /// <summary>Returns false when the id was not pending.</summary>
    public bool Remove(ushort packetId) => _ids?.Remove(packetId) == true;

    /// <summary>The pending ids (for a snapshot).</summary>
    public readonly IEnumerable<ushort> Ids => (IEnumerable<ushort>?)_ids ?? [];

    public void Clear() => _ids = null;
}
