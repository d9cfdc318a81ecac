using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Midge.Core;
using NATS.Client.Core;

namespace Midge.Cluster;

// The nodes of the cluster (docs/cluster.md): each node says every second, on midge.{cluster}.nodes.{node}, that it is
// up and what it holds; every node listens to all of them. A node not heard from for HeartbeatTimeout is shown as
// stopped. This is a view for operators ($SYS, the HTTP API), not membership: nothing decides anything on it.
public sealed partial class ClusterNode
{
    /// <summary>How often a node says it is up.</summary>
    public static readonly TimeSpan HeartbeatInterval = TimeSpan.FromSeconds(1);

    /// <summary>How long a node may stay silent before the others show it as stopped.</summary>
    public static readonly TimeSpan HeartbeatTimeout = TimeSpan.FromSeconds(5);

    private readonly ConcurrentDictionary<string, ClusterNodeStatus> _peers = new(StringComparer.Ordinal);
    private INatsSub<byte[]>? _heartbeats;

    private string NodesSubject(string node) => $"{_prefix}.nodes.{node}";

    private async Task StartNodesAsync()
    {
        _heartbeats = await _nats.SubscribeCoreAsync<byte[]>(NodesSubject("*"), cancellationToken: _stop.Token).ConfigureAwait(false);
        _ = Task.Run(ListenNodesAsync);
        _ = Task.Run(HeartbeatLoopAsync);
    }

    private async Task HeartbeatLoopAsync()
    {
        using var timer = new PeriodicTimer(HeartbeatInterval);
        int sysEvery = _broker.Config.SysInterval;
        long beats = 0;
        try
        {
            do
            {
                await SayAsync(running: true).ConfigureAwait(false);
                if (sysEvery > 0 && beats++ % sysEvery == 0) PublishSys();
            }
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false));
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }

    /// <summary>Tells the other nodes this node's state: a line of numbers (running, connections, sessions, sent,
    /// received, dropped).</summary>
    private async ValueTask SayAsync(bool running)
    {
        var self = Self();
        var text = string.Join(' ', running ? 1 : 0, self.Connections, self.Sessions, self.MessagesSent, self.MessagesReceived, self.MessagesDropped);
        try
        {
            await _nats.PublishAsync(NodesSubject(Config.NodeName), Encoding.ASCII.GetBytes(text), cancellationToken: _stop.Token).ConfigureAwait(false);
        }
        catch (NatsException)
        {
            // NATS is away: the others will show this node as stopped, which is what they can tell.
        }
    }

    private async Task ListenNodesAsync()
    {
        try
        {
            await foreach (var msg in _heartbeats!.Msgs.ReadAllAsync(_stop.Token).ConfigureAwait(false))
            {
                var name = msg.Subject[(msg.Subject.LastIndexOf('.') + 1)..];
                if (name == Config.NodeName || msg.Data is null) continue;
                var parts = Encoding.ASCII.GetString(msg.Data).Split(' ');
                if (parts.Length < 6 || !parts.All(p => long.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out _))) continue;
                var n = Array.ConvertAll(parts, p => long.Parse(p, CultureInfo.InvariantCulture));
                OnPeerHeartbeat(name, running: n[0] == 1);
                _peers[name] = new ClusterNodeStatus(name, IsSelf: false, Running: n[0] == 1, (int)n[1], (int)n[2], _broker.UtcNow)
                {
                    MessagesSent = n[3],
                    MessagesReceived = n[4],
                    MessagesDropped = n[5],
                };
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }

    /// <summary>Whether <paramref name="peer"/> said it runs and was heard from within <see cref="HeartbeatTimeout"/>.</summary>
    private static bool RunsNow(ClusterNodeStatus peer, DateTimeOffset now) => peer.Running && now - peer.LastSeen <= HeartbeatTimeout;

    /// <inheritdoc/>
    public IReadOnlyList<ClusterNodeStatus> Nodes()
    {
        var now = _broker.UtcNow;
        var list = new List<ClusterNodeStatus> { Self() };
        foreach (var (_, peer) in _peers.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            list.Add(peer.Running && !RunsNow(peer, now) ? peer with { Running = false } : peer);
        }
        return list;
    }

    private ClusterNodeStatus Self() => new(Config.NodeName, IsSelf: true, IsConnected, _broker.ConnectedCount, _broker.SessionCount,
        _broker.UtcNow)
    {
        MessagesSent = Counters.Sent,
        MessagesReceived = Counters.Received,
        MessagesDropped = Counters.Dropped,
    };

    /// <summary>Publishes this node's view of the cluster under <c>$SYS/broker/cluster/</c> (retained): its own state
    /// and counters, and the totals of the running nodes.</summary>
    public void PublishSys()
    {
        var nodes = Nodes();
        var running = nodes.Where(n => n.Running).ToList();
        Set("name", Config.Name);
        Set("node", Config.NodeName);
        Set("state", IsConnected ? "connected" : "disconnected");
        Set("nodes/running", running.Count);
        Set("nodes/stopped", nodes.Count - running.Count);
        Set("messages/sent", Counters.Sent);
        Set("messages/received", Counters.Received);
        Set("messages/dropped", Counters.Dropped);
        Set("messages/local", Counters.KeptLocal);
        Set("messages/resent", Counters.Resent);
        Set("messages/duplicates", Counters.Duplicates);
        Set("messages/gaps", Counters.GapsSkipped);
        Set("messages/confirm_slow", Counters.ConfirmSlow);
        Set("shared/queued", Counters.SharedQueued);
        Set("shared/dequeued", Counters.SharedDequeued);
        Set("takeovers", Counters.Takeovers);
        Set("total/clients/connected", running.Sum(n => (long)n.Connections));
        Set("total/sessions", running.Sum(n => (long)n.Sessions));
        Set("total/messages/sent", running.Sum(n => n.MessagesSent));
        Set("total/messages/dropped", running.Sum(n => n.MessagesDropped));
    }

    private void Set(string topic, long value) => Set(topic, value.ToString(CultureInfo.InvariantCulture));

    private void Set(string topic, string value) =>
        _broker.PublishFromBroker("$SYS/broker/cluster/" + topic, Encoding.UTF8.GetBytes(value), retain: true);

    private async Task StopNodesAsync()
    {
        if (_heartbeats is null) return;
        await SayAsync(running: false).ConfigureAwait(false);
        await _heartbeats.DisposeAsync().ConfigureAwait(false);
    }
}
