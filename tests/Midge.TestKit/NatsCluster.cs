using System.Globalization;
using System.Text.Json;

namespace Midge.TestKit;

/// <summary>
/// Three of Debian's <c>nats-server</c>s in one NATS cluster with clustered JetStream, on free loopback ports, each with
/// its own store directory: what docs/cluster.md's "Three nodes behind a TCP load balancer" runs, for the failure
/// tests. <see cref="KillAsync"/> (SIGKILL) and <see cref="RestartAsync"/> (same ports, same store) take one server out
/// and bring it back; <see cref="JetStreamReadyAsync"/> says when JetStream has a leader for its metadata and every
/// stream again. Fails (does not skip) when nats-server is missing: run-tests.sh installs it.
/// </summary>
public sealed class NatsCluster : IAsyncDisposable
{
    /// <summary>How many servers: three, so that JetStream keeps a quorum (two) with one of them down.</summary>
    public const int Size = 3;

    /// <summary>How long starting the cluster (and JetStream's first leader) may take.</summary>
    public static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(20);

    private readonly Server[] _servers;

    private NatsCluster(Server[] servers) => _servers = servers;

    /// <summary>The URL of each server, as nodes are configured with them (<c>cluster_nats_url</c>).</summary>
    public IReadOnlyList<string> Urls => [.. _servers.Select(s => s.Url)];

    /// <summary>Each server's <c>server_name</c> (what a client's server info names).</summary>
    public IReadOnlyList<string> Names => [.. _servers.Select(s => s.Name)];

    /// <summary>Whether server <paramref name="index"/> is running (not killed).</summary>
    public bool IsRunning(int index) => !_servers[index].Process.HasExited;

    /// <summary>The index of the server called <paramref name="name"/> (its <c>server_name</c>); -1 when none is.</summary>
    public int IndexOf(string? name) => Array.FindIndex(_servers, s => s.Name == name);

    /// <summary>What server <paramref name="index"/> has logged in its current run.</summary>
    public string Log(int index) => _servers[index].Process.Stderr + _servers[index].Process.Stdout;

    /// <summary>Starts the three servers and waits (within <see cref="StartTimeout"/>) until JetStream has elected a
    /// leader on all of them: before that a bucket with three replicas cannot be made.</summary>
    public static async Task<NatsCluster> StartAsync()
    {
        if (!File.Exists(NatsServer.Executable)) throw new InvalidOperationException($"{NatsServer.Executable} is missing: install Debian's nats-server (run-tests.sh does)");
        var servers = new Server[Size];
        for (int i = 0; i < Size; i++)
        {
            servers[i] = new Server($"s{i + 1}", MidgeProcess.NewDirectory(), FreePort.Next(), FreePort.Next(), FreePort.Next());
        }
        for (int i = 0; i < Size; i++) servers[i].WriteConfig(servers.Where((_, j) => j != i).Select(s => s.RoutePort));
        var cluster = new NatsCluster(servers);
        try
        {
            // All at once: each waits for its client port, and the routes connect whichever came first.
            await Task.WhenAll(servers.Select(s => s.LaunchAsync()));
            if (!await cluster.JetStreamReadyAsync(StartTimeout)) throw new TimeoutException($"JetStream elected no leader within {StartTimeout.TotalSeconds} s:\n{cluster.Log(0)}");
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
        return cluster;
    }

    /// <summary>Kills server <paramref name="index"/> (SIGKILL: no goodbye to its clients or routes) and waits until it is
    /// gone.</summary>
    public async Task KillAsync(int index)
    {
        var process = _servers[index].Process;
        process.Signal(Signals.SIGKILL);
        await process.WaitAsync(TimeSpan.FromSeconds(5));
    }

    /// <summary>Starts server <paramref name="index"/> again (killing it first if it runs) on the same ports with the same
    /// JetStream store; it rejoins the routes by itself (<see cref="JetStreamReadyAsync"/> says when it has caught up).</summary>
    public async Task RestartAsync(int index)
    {
        if (IsRunning(index)) await KillAsync(index);
        _servers[index].Process.Dispose();
        await _servers[index].LaunchAsync();
    }

    /// <summary>
    /// Waits until JetStream is whole on every running server: each says it is healthy (<c>/healthz</c>: it is current
    /// with the metadata and with every stream it holds a copy of), names the same metadata leader, a running one, and
    /// knows a running leader for every stream it holds. After a server holding leaders was killed, this is when
    /// writes to the buckets work again. False after <paramref name="timeout"/>.
    /// </summary>
    public async Task<bool> JetStreamReadyAsync(TimeSpan timeout)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (await ReadyAsync(http)) return true;
            await Task.Delay(100);
        }
        return false;
    }

    private async Task<bool> ReadyAsync(HttpClient http)
    {
        var running = _servers.Where(s => !s.Process.HasExited).ToList();
        var alive = running.Select(s => s.Name).ToHashSet();
        string? metaLeader = null;
        foreach (var server in running)
        {
            try
            {
                using var health = await http.GetAsync(new Uri($"{server.Monitor}/healthz"));
                if (!health.IsSuccessStatusCode) return false;
                using var jsz = JsonDocument.Parse(await http.GetStringAsync(new Uri($"{server.Monitor}/jsz?streams=true")));
                if (!jsz.RootElement.TryGetProperty("meta_cluster", out var meta) || !meta.TryGetProperty("leader", out var leader)) return false;
                var name = leader.GetString();
                if (name is null || !alive.Contains(name) || (metaLeader is not null && metaLeader != name)) return false;
                metaLeader = name;
                if (!jsz.RootElement.TryGetProperty("account_details", out var accounts)) continue;
                foreach (var account in accounts.EnumerateArray())
                {
                    if (!account.TryGetProperty("stream_detail", out var streams)) continue;
                    foreach (var stream in streams.EnumerateArray())
                    {
                        if (!stream.TryGetProperty("cluster", out var c) || !c.TryGetProperty("leader", out var l) || !alive.Contains(l.GetString() ?? "")) return false;
                    }
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException)
            {
                return false;
            }
        }
        return metaLeader is not null;
    }

    /// <summary>The server that leads JetStream stream <paramref name="stream"/> (a bucket <c>B</c> is stream
    /// <c>KV_B</c>), as a running server sees it; null when none knows one.</summary>
    public async Task<string?> StreamLeaderAsync(string stream)
    {
        foreach (var server in _servers.Where(s => !s.Process.HasExited))
        {
            if (await server.StreamAsync(stream) is { } detail && detail.TryGetProperty("cluster", out var c) && c.TryGetProperty("leader", out var l)
                && l.GetString() is { Length: > 0 } leader)
            {
                return leader;
            }
        }
        return null;
    }

    /// <summary>The servers holding the consumers of stream <paramref name="stream"/> (a watch of a bucket is one, held on
    /// one server), one name per consumer, as the running servers see them.</summary>
    public async Task<IReadOnlyList<string>> ConsumerHostsAsync(string stream)
    {
        var hosts = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var server in _servers.Where(s => !s.Process.HasExited))
        {
            if (await server.StreamAsync(stream, consumers: true) is not { } detail || !detail.TryGetProperty("consumer_detail", out var consumers)) continue;
            foreach (var consumer in consumers.EnumerateArray())
            {
                if (consumer.TryGetProperty("cluster", out var c) && c.TryGetProperty("leader", out var l) && l.GetString() is { Length: > 0 } leader)
                {
                    hosts[consumer.GetProperty("name").GetString()!] = leader;
                }
            }
        }
        return [.. hosts.Values];
    }

    /// <summary>The last sequence number of stream <paramref name="stream"/> in server <paramref name="index"/>'s copy of
    /// it; null when that server holds none (or is down).</summary>
    public async Task<ulong?> LastSequenceAsync(int index, string stream) =>
        await _servers[index].StreamAsync(stream) is { } detail && detail.TryGetProperty("state", out var state)
            ? state.GetProperty("last_seq").GetUInt64()
            : null;

    public async ValueTask DisposeAsync()
    {
        foreach (var server in _servers) await server.StopAsync();
    }

    /// <summary>One server: its ports, its directory (configuration, JetStream store) and its current process.</summary>
    private sealed class Server(string name, string directory, int port, int routePort, int monitorPort)
    {
        private PeerProcess? _process;

        public string Name { get; } = name;

        public int RoutePort { get; } = routePort;

        public string Url => $"nats://127.0.0.1:{port}";

        public string Monitor => $"http://127.0.0.1:{monitorPort}";

        public PeerProcess Process => _process ?? throw new InvalidOperationException($"{Name} was not started");

        private string ConfigPath => Path.Combine(directory, "nats-server.conf");

        /// <summary>A configuration as docs/cluster.md gives it: server_name (clustered JetStream needs one), its own
        /// store, the cluster's routes to the two others (quoted: <c>//</c> starts a comment in the format).</summary>
        public void WriteConfig(IEnumerable<int> otherRoutePorts)
        {
            var routes = string.Join(", ", otherRoutePorts.Select(p => $"\"nats-route://127.0.0.1:{p}\""));
            File.WriteAllText(ConfigPath, string.Create(CultureInfo.InvariantCulture, $$"""
                server_name: {{Name}}
                listen: 127.0.0.1:{{port}}
                http: 127.0.0.1:{{monitorPort}}
                jetstream { store_dir: "{{Path.Combine(directory, "jetstream")}}" }
                cluster {
                  name: midge-test
                  listen: 127.0.0.1:{{RoutePort}}
                  routes: [ {{routes}} ]
                }

                """));
        }

        /// <summary>What the server's monitoring says of a stream it holds a copy of (<c>/jsz</c>'s stream detail).</summary>
        public async Task<JsonElement?> StreamAsync(string stream, bool consumers = false)
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
            try
            {
                using var jsz = JsonDocument.Parse(await http.GetStringAsync(new Uri($"{Monitor}/jsz?{(consumers ? "consumers" : "streams")}=true")));
                if (!jsz.RootElement.TryGetProperty("account_details", out var accounts)) return null;
                foreach (var account in accounts.EnumerateArray())
                {
                    if (!account.TryGetProperty("stream_detail", out var streams)) continue;
                    foreach (var detail in streams.EnumerateArray())
                    {
                        if (detail.GetProperty("name").GetString() == stream) return detail.Clone();
                    }
                }
                return null;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException)
            {
                return null;
            }
        }

        public async Task LaunchAsync() =>
            _process = await PeerProcess.StartServerAsync($"nats-server {Name}", NatsServer.Executable, ["-c", ConfigPath], directory, port);

        public async Task StopAsync()
        {
            if (_process is not null) await _process.StopServerAsync(directory);
            else Directory.Delete(directory, recursive: true);
        }
    }
}
