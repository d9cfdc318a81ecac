namespace Midge.Persistence;

/// <summary>
/// Finds the changes of a batch that undo each other, so that the writer skips them: a message queued and dequeued,
/// sent in flight (and advanced) and completed, an incoming QoS 2 id added and released, all within one batch. When
/// subscribers keep up, a message is usually delivered and acknowledged before its batch is written, and then nothing
/// of it reaches the disk: the acknowledgement its publisher waits for still waits for the batch, which has nothing
/// left to sync. A pair cancels only when no <c>SessionSaved</c> or <c>SessionRemoved</c> of its client id lies
/// between its halves (those rewrite the whole session). Not thread-safe: the writer's.
/// </summary>
internal sealed class BatchCoalescer
{
    private readonly Dictionary<(string Key, ChangeKind Kind, long Number), (int Index, int Generation, bool Skippable)> _open = [];
    private readonly Dictionary<string, int> _generations = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Key, long Number), List<int>> _advances = [];
    private bool[] _skip = [];

    /// <summary>How many changes the last <see cref="Mark"/> found to skip.</summary>
    public int Skipped { get; private set; }

    /// <summary>Marks the changes of <paramref name="changes"/> to skip; read them with <see cref="Skips"/>.</summary>
    public void Mark(List<Change> changes)
    {
        if (_skip.Length < changes.Count) _skip = new bool[Math.Max(changes.Count, _skip.Length * 2)];
        Array.Clear(_skip, 0, changes.Count);
        Skipped = 0;
        for (int i = 0; i < changes.Count; i++)
        {
            var c = changes[i];
            switch (c.Kind)
            {
                case ChangeKind.SessionSaved:
                case ChangeKind.SessionRemoved:
                    string key = c.Kind == ChangeKind.SessionSaved ? ((Core.Sessions.Store.SessionState)c.Record!).ClientId : c.Key;
                    _generations[key] = _generations.GetValueOrDefault(key) + 1;
                    break;
                case ChangeKind.MessageQueued:
                    Open(c.Key, ChangeKind.MessageQueued, ((Core.Sessions.Store.QueuedMessage)c.Record!).Sequence, i);
                    break;
                case ChangeKind.MessageDequeued:
                    Close(c.Key, ChangeKind.MessageQueued, c.Number, i);
                    break;
                case ChangeKind.InflightAdded:
                    var flight = (Core.Sessions.Store.InflightMessage)c.Record!;
                    // A move from the queue removes the queued message too. Queued in this batch: that change is
                    // dropped instead (the row never exists). Queued earlier: this change has a row to remove, so it
                    // must be written even if its completion follows.
                    bool consumed = flight.FromQueue == 0 || Consume(c.Key, flight.FromQueue);
                    Open(c.Key, ChangeKind.InflightAdded, flight.PacketId, i, skippable: consumed);
                    break;
                case ChangeKind.InflightAdvanced:
                    if (_open.ContainsKey((c.Key, ChangeKind.InflightAdded, c.Number)))
                    {
                        if (!_advances.TryGetValue((c.Key, c.Number), out var list)) _advances[(c.Key, c.Number)] = list = [];
                        list.Add(i);
                    }
                    break;
                case ChangeKind.InflightCompleted:
                    Close(c.Key, ChangeKind.InflightAdded, c.Number, i);
                    break;
                case ChangeKind.IncomingQoS2Added:
                    Open(c.Key, ChangeKind.IncomingQoS2Added, c.Number, i);
                    break;
                case ChangeKind.IncomingQoS2Removed:
                    Close(c.Key, ChangeKind.IncomingQoS2Added, c.Number, i);
                    break;
            }
        }
        _open.Clear();
        _generations.Clear();
        foreach (var (_, list) in _advances) list.Clear();
        _advances.Clear();
    }

    /// <summary>The queued message <paramref name="sequence"/> went in flight: when it was queued in this batch, that
    /// change is skipped (and its dequeue, if it follows, deletes nothing). Returns whether it was.</summary>
    private bool Consume(string key, long sequence)
    {
        if (!_open.TryGetValue((key, ChangeKind.MessageQueued, sequence), out var queued) ||
            queued.Generation != _generations.GetValueOrDefault(key))
        {
            return false;
        }
        _open.Remove((key, ChangeKind.MessageQueued, sequence));
        _skip[queued.Index] = true;
        Skipped++;
        return true;
    }

    /// <summary>Whether the change at <paramref name="index"/> of the last marked batch is to be skipped.</summary>
    public bool Skips(int index) => _skip[index];

    private void Open(string key, ChangeKind kind, long number, int index, bool skippable = true)
    {
        _open[(key, kind, number)] = (index, _generations.GetValueOrDefault(key), skippable);
        if (kind == ChangeKind.InflightAdded) _advances.Remove((key, number)); // a new flight: earlier advances are not its
    }

    private void Close(string key, ChangeKind openedBy, long number, int index)
    {
        if (!_open.Remove((key, openedBy, number), out var opened)) return;
        if (opened.Generation != _generations.GetValueOrDefault(key) || !opened.Skippable) return;
        _skip[opened.Index] = true;
        _skip[index] = true;
        Skipped += 2;
        if (openedBy == ChangeKind.InflightAdded && _advances.Remove((key, number), out var advances))
        {
            foreach (int a in advances)
            {
                _skip[a] = true;
                Skipped++;
            }
        }
    }
}
