using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Midge.Core.Sessions;
using Midge.Core.Sessions.Store;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.KeyValueStore;

namespace Midge.Cluster;

// One client id, one session, cluster-wide (docs/cluster.md): the owner of each client id is a key of a JetStream
// key-value bucket, changed only by compare-and-set; the node that wins asks the previous owner for the session.
public sealed partial class ClusterNode : ISessionClaims
{
    /// <summary>How long a CONNECT may wait for the cluster (the bucket, the previous owner) before this node serves
    /// the client alone.</summary>
    public static readonly TimeSpan ClaimTimeout = TimeSpan.FromSeconds(3);

    private INatsKVStore? _owners, _sessions;
    private SessionReplica? _replica;
    private INatsSub<byte[]>? _handOvers;
    private Task? _handOverLoop;

    /// <summary>The bucket of client id owners: <c>midge-{cluster}-clients</c>.</summary>
    private string OwnersBucket => $"midge-{Config.Name}-clients";

    /// <summary>The bucket of this cluster's persistent sessions, as their nodes last wrote them:
    /// <c>midge-{cluster}-sessions</c>.</summary>
    private string SessionsBucket => $"midge-{Config.Name}-sessions";

    private string HandOverSubject(string node) => $"{_prefix}.handover.{node}";

    /// <summary>Opens (or makes) the owners' bucket and answers other nodes' hand-over requests; without JetStream
    /// the node runs, but client ids are not claimed across the cluster (logged).</summary>
    private async Task StartSessionsAsync()
    {
        _owners = await OpenBucketAsync(OwnersBucket, "Midge: the node that owns each client id").ConfigureAwait(false);
        if (_owners is null) return;
        _sessions = await OpenBucketAsync(SessionsBucket, "Midge: the persistent sessions, by client id, as their nodes last wrote them").ConfigureAwait(false);
        if (_sessions is not null && _replica is not null) _ = _replica.RunAsync(_nats, _sessions, Config.NodeName, () => IsConnected, _stop.Token);
        _handOvers = await _nats.SubscribeCoreAsync<byte[]>(HandOverSubject(Config.NodeName), cancellationToken: _stop.Token).ConfigureAwait(false);
        _handOverLoop = Task.Run(HandOverLoopAsync);
        _broker.SessionClaims = this;
    }

    /// <summary>How many times a bucket is opened when JetStream does not answer (it is there, but slow: a loaded
    /// server, leaders being elected after a NATS server died) before the node runs as without JetStream.</summary>
    private const int OpenBucketTries = 4;

    /// <summary>Opens (or makes) one of the cluster's JetStream key-value buckets, with <c>cluster_replicas</c> copies
    /// on disk and one value per key (each kept at most <paramref name="maxAge"/>, when given); null, logged, when NATS
    /// has no JetStream, or JetStream did not answer <see cref="OpenBucketTries"/> times.</summary>
    private Task<INatsKVStore?> OpenBucketAsync(string name, string description, TimeSpan maxAge = default) =>
        OpenJetStreamAsync(name, async ct => await new NatsKVContext(new NatsJSContext(_nats)).CreateOrUpdateStoreAsync(new NatsKVConfig(name)
        {
            History = 1,
            Storage = NatsKVStorageType.File,
            NumberOfReplicas = Config.Replicas,
            Description = description,
            MaxAge = maxAge,
        }, ct).ConfigureAwait(false), e => Log.NoJetStream(_log, e));

    /// <summary>Opens (or makes) a JetStream bucket or stream <paramref name="name"/>, trying again when JetStream does
    /// not answer (<see cref="OpenBucketTries"/> times in all); null, with <paramref name="unavailable"/> told why, when
    /// NATS has no JetStream or it never answered.</summary>
    private async Task<T?> OpenJetStreamAsync<T>(string name, Func<CancellationToken, Task<T>> open, Action<string> unavailable) where T : class
    {
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                return await open(_stop.Token).ConfigureAwait(false);
            }
            catch (NatsJSApiNoResponseException e) when (attempt < OpenBucketTries && !_stop.IsCancellationRequested)
            {
                Log.BucketSlow(_log, name, e.Message);
            }
            catch (NatsException e)
            {
                unavailable(e.Message);
                return null;
            }
        }
    }

    /// <summary>The bucket's key of a client id: its UTF-8 in base64url (what keys allow), or for a very long one a
    /// SHA-256 of it.</summary>
    internal static string OwnerKey(string clientId)
    {
        var utf8 = Encoding.UTF8.GetBytes(clientId);
        if (utf8.Length > 600) return "h_" + Base64Url(SHA256.HashData(utf8));
        return "c_" + Base64Url(utf8);

        static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
    }

    /// <inheritdoc/>
    public async ValueTask<SessionState?> ClaimAsync(string clientId, bool cleanStart)
    {
        if (_owners is not { } owners) return null;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        timeout.CancelAfter(ClaimTimeout);
        var key = OwnerKey(clientId);
        var self = Encoding.UTF8.GetBytes(Config.NodeName);
        try
        {
            for (int attempt = 0; attempt < 8; attempt++)
            {
                NatsKVEntry<byte[]> entry;
                try
                {
                    entry = await owners.GetEntryAsync<byte[]>(key, cancellationToken: timeout.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is NatsKVKeyNotFoundException or NatsKVKeyDeletedException)
                {
                    try
                    {
                        await owners.CreateAsync(key, self, cancellationToken: timeout.Token).ConfigureAwait(false);
                        return null; // nobody had it
                    }
                    catch (NatsKVCreateException)
                    {
                        continue; // another node made it meanwhile: look again
                    }
                }
                var owner = entry.Value is { } v ? Encoding.UTF8.GetString(v) : "";
                if (owner == Config.NodeName) return null; // ours: this node's registry decides the rest
                try
                {
                    await owners.UpdateAsync(key, self, entry.Revision, cancellationToken: timeout.Token).ConfigureAwait(false);
                }
                catch (NatsKVWrongLastRevisionException)
                {
                    continue; // another node took it meanwhile: take it from that one
                }
                Counters.OnTakeover();
                _ = CancelDelayedWillAsync(clientId, owner);
                return await RequestHandOverAsync(owner, clientId, cleanStart, timeout.Token).ConfigureAwait(false);
            }
            Log.ClaimContended(_log, clientId);
            return null;
        }
        catch (OperationCanceledException)
        {
            // Too slow, or the node is leaving the cluster: the client is served here alone.
            if (!_stop.IsCancellationRequested) Log.ClaimTimedOut(_log, clientId, ClaimTimeout.TotalSeconds);
            return null;
        }
        catch (NatsException e)
        {
            Log.ClaimFailed(_log, clientId, e.Message);
            return null;
        }
    }

    /// <summary>Asks <paramref name="owner"/> to give up <paramref name="clientId"/>: it disconnects the client there and
    /// answers with the session (empty: none). A node that is gone (no responders) has nothing to give.</summary>
    private async Task<SessionState?> RequestHandOverAsync(string owner, string clientId, bool cleanStart, CancellationToken cancellationToken)
    {
        var request = new byte[1 + Encoding.UTF8.GetByteCount(clientId)];
        request[0] = cleanStart ? (byte)1 : (byte)0;
        Encoding.UTF8.GetBytes(clientId, request.AsSpan(1));
        try
        {
            var reply = await _nats.RequestAsync<byte[], byte[]>(HandOverSubject(owner), request, cancellationToken: cancellationToken)
                .ConfigureAwait(false);
            Log.TookOver(_log, clientId, owner);
            if (reply.Data is not { Length: > 0 } data) return null;
            return SessionStateCodec.Decode(new ReadOnlySequence<byte>(data), _broker.UtcNow);
        }
        catch (NatsNoRespondersException)
        {
            Log.OwnerGone(_log, clientId, owner);
            return cleanStart ? null : await LoadReplicatedAsync(clientId, owner, cancellationToken).ConfigureAwait(false);
        }
        catch (FormatException e)
        {
            Counters.OnMalformed();
            Log.Malformed(_log, e.Message);
            return null;
        }
    }

    /// <summary>The session of <paramref name="clientId"/> as the sessions bucket has it: what its node, gone, last
    /// wrote (null: none, expired, or no bucket).</summary>
    private async Task<SessionState?> LoadReplicatedAsync(string clientId, string owner, CancellationToken cancellationToken)
    {
        if (_sessions is not { } sessions) return null;
        try
        {
            var key = OwnerKey(clientId);
            var entry = await sessions.GetEntryAsync<byte[]>(key, cancellationToken: cancellationToken).ConfigureAwait(false);
            if (entry.Value is not { Length: > 0 } value) return null;
            var state = await SessionReplica.ReadAsync(_nats, sessions, key, value, _broker.UtcNow, cancellationToken).ConfigureAwait(false);
            if (state is not null) Log.Resumed(_log, clientId, owner, state.Subscriptions.Count, state.Queued.Count + state.Inflight.Count);
            return state;
        }
        catch (Exception e) when (e is NatsKVKeyNotFoundException or NatsKVKeyDeletedException)
        {
            return null;
        }
        catch (FormatException e)
        {
            Counters.OnMalformed();
            Log.Malformed(_log, e.Message);
            return null;
        }
    }

    /// <summary>The node that last wrote <paramref name="clientId"/>'s session to the sessions bucket, and the session
    /// (for tests); null when the bucket has none.</summary>
    internal async Task<(string Node, SessionState? State)?> ReplicatedSessionAsync(string clientId)
    {
        if (_sessions is not { } sessions) return null;
        try
        {
            var key = OwnerKey(clientId);
            var entry = await sessions.GetEntryAsync<byte[]>(key).ConfigureAwait(false);
            if (entry.Value is not { Length: > 0 } value) return null;
            var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(value));
            return (ClusterWire.ReadString(ref reader) ?? "", await SessionReplica.ReadAsync(_nats, sessions, key, value, _broker.UtcNow, default).ConfigureAwait(false));
        }
        catch (Exception e) when (e is NatsKVKeyNotFoundException or NatsKVKeyDeletedException)
        {
            return null;
        }
    }

    /// <summary>Answers the hand-over requests of nodes that claimed a client id this node held.</summary>
    private async Task HandOverLoopAsync()
    {
        try
        {
            await foreach (var msg in _handOvers!.Msgs.ReadAllAsync(_stop.Token).ConfigureAwait(false))
            {
                byte[] answer = [];
                if (msg.Data is { Length: > 0 } data)
                {
                    bool cleanStart = data[0] == 1;
                    var clientId = Encoding.UTF8.GetString(data.AsSpan(1));
                    var state = _broker.HandOverSession(clientId);
                    if (state is not null && !cleanStart) answer = SessionStateCodec.Encode(state, _broker.UtcNow);
                    Log.HandedOver(_log, clientId, state is not null);
                }
                try
                {
                    await msg.ReplyAsync(answer, cancellationToken: _stop.Token).ConfigureAwait(false);
                }
                catch (NatsException e)
                {
                    Log.PublishFailed(_log, e.Message);
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }

    private async Task StopSessionsAsync()
    {
        if (_handOvers is { } subscription) await subscription.DisposeAsync().ConfigureAwait(false);
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1410, Level = LogLevel.Warning, Message = "Cluster: no JetStream on NATS ({Error}): client ids are not claimed across the cluster; start nats-server with -js")]
        public static partial void NoJetStream(ILogger logger, string error);

        [LoggerMessage(EventId = 1433, Level = LogLevel.Warning, Message = "Cluster: JetStream did not answer opening bucket {Bucket} ({Error}); trying again")]
        public static partial void BucketSlow(ILogger logger, string bucket, string error);

        [LoggerMessage(EventId = 1411, Level = LogLevel.Information, Message = "Cluster: client {ClientId} taken over from node {Node}")]
        public static partial void TookOver(ILogger logger, string clientId, string node);

        [LoggerMessage(EventId = 1412, Level = LogLevel.Information, Message = "Cluster: client {ClientId} handed over to another node (session moved: {Moved})")]
        public static partial void HandedOver(ILogger logger, string clientId, bool moved);

        [LoggerMessage(EventId = 1413, Level = LogLevel.Warning, Message = "Cluster: client {ClientId} belonged to node {Node}, which does not answer; it resumes the session that node replicated, if any")]
        public static partial void OwnerGone(ILogger logger, string clientId, string node);

        [LoggerMessage(EventId = 1414, Level = LogLevel.Warning, Message = "Cluster: claiming client {ClientId} took longer than {Seconds} s; serving it on this node alone")]
        public static partial void ClaimTimedOut(ILogger logger, string clientId, double seconds);

        [LoggerMessage(EventId = 1415, Level = LogLevel.Warning, Message = "Cluster: cannot claim client {ClientId}: {Error}; serving it on this node alone")]
        public static partial void ClaimFailed(ILogger logger, string clientId, string error);

        [LoggerMessage(EventId = 1417, Level = LogLevel.Information, Message = "Cluster: client {ClientId} resumes the session node {Node} replicated ({Subscriptions} subscriptions, {Messages} messages)")]
        public static partial void Resumed(ILogger logger, string clientId, string node, int subscriptions, int messages);

        [LoggerMessage(EventId = 1416, Level = LogLevel.Warning, Message = "Cluster: client {ClientId} is claimed by other nodes again and again; serving it on this node")]
        public static partial void ClaimContended(ILogger logger, string clientId);
    }
}
