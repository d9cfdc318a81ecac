namespace Midge.Core;

/// <summary>
/// Counters behind $SYS and metrics. Increments are striped per thread so the publish path of many
/// connections does not fight over one cache line; reads sum the stripes.
/// </summary>
public sealed class BrokerStats
{
    private const int Stripes = 32;
    private readonly Stripe[] _stripes = new Stripe[Stripes];
    private long _clientsConnected;
    private long _clientsMaximum;
    private long _clientsExpired;
    private long _connectsTotal;
    private long _authenticationFailures;

    public BrokerStats()
    {
        for (int i = 0; i < Stripes; i++) _stripes[i] = new Stripe();
    }

    public long MessagesReceived => Sum(static s => s.MessagesReceived);
    public long MessagesSent => Sum(static s => s.MessagesSent);
    public long PublishReceived => Sum(static s => s.PublishReceived);
    public long PublishSent => Sum(static s => s.PublishSent);
    public long BytesReceived => Sum(static s => s.BytesReceived);
    public long BytesSent => Sum(static s => s.BytesSent);
    public long PublishDropped => Sum(static s => s.PublishDropped);
    public long ClientsConnected => Volatile.Read(ref _clientsConnected);
    public long ClientsMaximum => Volatile.Read(ref _clientsMaximum);
    public long ClientsExpired => Volatile.Read(ref _clientsExpired);
    public long ConnectsTotal => Volatile.Read(ref _connectsTotal);
    /// <summary>CONNECTs refused for their credentials (0x87 Not authorized, 3.x: 5).</summary>
    public long AuthenticationFailures => Volatile.Read(ref _authenticationFailures);

    /// <summary>A control or PUBLISH packet arrived.</summary>
    public void OnPacketReceived(int bytes)
    {
        var s = Mine();
        Interlocked.Increment(ref s.MessagesReceived);
        Interlocked.Add(ref s.BytesReceived, bytes);
    }

    /// <summary>A batch of packets was written.</summary>
    public void OnPacketsSent(int packets, long bytes)
    {
        var s = Mine();
        Interlocked.Add(ref s.MessagesSent, packets);
        Interlocked.Add(ref s.BytesSent, bytes);
    }

    public void OnPublishReceived() => Interlocked.Increment(ref Mine().PublishReceived);

    public void OnMessageSent(int payloadBytes) => Interlocked.Increment(ref Mine().PublishSent);

    public void OnDropped() => Interlocked.Increment(ref Mine().PublishDropped);

    public void OnClientConnected()
    {
        Interlocked.Increment(ref _connectsTotal);
        long now = Interlocked.Increment(ref _clientsConnected);
        long max;
        while (now > (max = Volatile.Read(ref _clientsMaximum)) &&
               Interlocked.CompareExchange(ref _clientsMaximum, now, max) != max)
        {
        }
    }

    public void OnClientDisconnected() => Interlocked.Decrement(ref _clientsConnected);

    public void OnSessionExpired() => Interlocked.Increment(ref _clientsExpired);

    public void OnAuthenticationFailed() => Interlocked.Increment(ref _authenticationFailures);

    /// <summary>Starts from totals a store kept (before any client connects): the counters go on from where the last
    /// run of the broker left them, as <c>$SYS</c> reports them.</summary>
    public void Restore(Sessions.Store.StoredTotals totals)
    {
        ArgumentNullException.ThrowIfNull(totals);
        var s = _stripes[0];
        Interlocked.Add(ref s.MessagesReceived, totals.MessagesReceived);
        Interlocked.Add(ref s.MessagesSent, totals.MessagesSent);
        Interlocked.Add(ref s.PublishReceived, totals.PublishReceived);
        Interlocked.Add(ref s.PublishSent, totals.PublishSent);
        Interlocked.Add(ref s.PublishDropped, totals.PublishDropped);
        Interlocked.Add(ref s.BytesReceived, totals.BytesReceived);
        Interlocked.Add(ref s.BytesSent, totals.BytesSent);
        Interlocked.Add(ref _connectsTotal, totals.ConnectsTotal);
        Interlocked.Add(ref _clientsExpired, totals.ClientsExpired);
        long max;
        while (totals.ClientsMaximum > (max = Volatile.Read(ref _clientsMaximum)) &&
               Interlocked.CompareExchange(ref _clientsMaximum, totals.ClientsMaximum, max) != max)
        {
        }
    }

    /// <summary>The totals as a store keeps them.</summary>
    public Sessions.Store.StoredTotals ToStored() => new()
    {
        MessagesReceived = MessagesReceived,
        MessagesSent = MessagesSent,
        PublishReceived = PublishReceived,
        PublishSent = PublishSent,
        PublishDropped = PublishDropped,
        BytesReceived = BytesReceived,
        BytesSent = BytesSent,
        ConnectsTotal = ConnectsTotal,
        ClientsMaximum = ClientsMaximum,
        ClientsExpired = ClientsExpired,
    };

    private Stripe Mine() => _stripes[Environment.CurrentManagedThreadId & (Stripes - 1)];

    private long Sum(Func<Stripe, long> field)
    {
        long total = 0;
        foreach (var s in _stripes) total += field(s);
        return total;
    }

    private sealed class Stripe
    {
        public long MessagesReceived;
        public long MessagesSent;
        public long PublishReceived;
        public long PublishSent;
        public long BytesReceived;
        public long BytesSent;
        public long PublishDropped;
#pragma warning disable CS0169 // padding against false sharing
        private long _pad0, _pad1, _pad2, _pad3, _pad4, _pad5, _pad6, _pad7;
#pragma warning restore CS0169
    }
}
