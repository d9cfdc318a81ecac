using System.Diagnostics;
using Midge.TestKit;

namespace Midge.Integration.Tests;

/// <summary>The midge executable: --test-config, exit codes, signals, -p.</summary>
public sealed class ProcessTests
{
    private static readonly TimeSpan Short = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task TestConfig_valid_file_exits_0()
    {
        string dir = MidgeProcess.NewDirectory();
        string conf = Path.Combine(dir, "good.conf");
        File.WriteAllLines(conf, [.. MidgeProcess.BaseConfig(FreePort.Next()), "sys_interval 1", "max_inflight_messages 10"]);

        var r = await MidgeProcess.RunAsync(Short, "--test-config", "-c", conf);

        Assert.False(r.TimedOut, r.ToString());
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("Configuration file is valid.", r.Stdout);
    }

    [Fact]
    public async Task TestConfig_unknown_option_fails_with_file_line_and_option()
    {
        string dir = MidgeProcess.NewDirectory();
        string conf = Path.Combine(dir, "bad.conf");
        File.WriteAllLines(conf, ["listener 1883 127.0.0.1", "allow_anonymous true", "", "no_such_option 1"]);

        var r = await MidgeProcess.RunAsync(Short, "--test-config", "-c", conf);

        Assert.False(r.TimedOut, r.ToString());
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains($"{conf}:4", r.Stderr);
        Assert.Contains("no_such_option", r.Stderr);
    }

    [Fact]
    public async Task Start_with_unknown_option_fails_without_listening()
    {
        string dir = MidgeProcess.NewDirectory();
        string conf = Path.Combine(dir, "bad.conf");
        int port = FreePort.Next();
        File.WriteAllLines(conf, [$"listener {port} 127.0.0.1", "bogus_setting yes"]);

        var r = await MidgeProcess.RunAsync(Short, "-c", conf);

        Assert.False(r.TimedOut, r.ToString());
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains($"{conf}:2", r.Stderr);
        Assert.Contains("bogus_setting", r.Stderr);
        Assert.False(await FreePort.AcceptsAsync(port));
    }

    [Fact]
    public async Task Port_in_use_fails_with_one_line_and_no_stack_trace()
    {
        using var holder = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        holder.Start();
        int port = ((System.Net.IPEndPoint)holder.LocalEndpoint).Port;
        string dir = MidgeProcess.NewDirectory();
        string conf = Path.Combine(dir, "busy.conf");
        File.WriteAllLines(conf, MidgeProcess.BaseConfig(port));

        var r = await MidgeProcess.RunAsync(Short, "-c", conf);

        Assert.False(r.TimedOut, r.ToString());
        Assert.Equal(1, r.ExitCode);
        string output = r.Stdout + r.Stderr;
        Assert.Contains("Could not start", output);
        Assert.Contains("address already in use", output);
        Assert.DoesNotContain("   at ", output);
        Assert.DoesNotContain("Hosting failed to start", output);
    }

    [Fact]
    public async Task Pinned_to_one_cpu_the_broker_runs_as_it_was_started()
    {
        // No self-restart with changed runtime variables and no scheduler changes to the runtime's threads: an
        // operator's environment is the broker's environment, on one CPU as on many.
        var (broker, port) = await StartPinnedAsync(e =>
        {
            foreach (var key in e.Keys.Where(k => k.StartsWith("DOTNET_TC_", StringComparison.Ordinal)).ToList()) e.Remove(key);
        });
        using var _ = broker;
        try
        {
            var environment = File.ReadAllText($"/proc/{broker.Id}/environ").Split('\0');
            Assert.DoesNotContain(environment, v => v.StartsWith("DOTNET_TC_", StringComparison.Ordinal));
            var pub = await MosquittoClients.PublishAsync(port, "-t", "t", "-m", "m");
            Assert.Equal(0, pub.ExitCode);
            Assert.False(broker.HasExited);
        }
        finally
        {
            broker.Kill();
            await broker.WaitForExitAsync();
        }
    }

    /// <summary>Starts the broker pinned to CPU 0 with <c>taskset</c> and waits until it accepts connections.</summary>
    private static async Task<(Process Broker, int Port)> StartPinnedAsync(Action<IDictionary<string, string?>> environment)
    {
        int port = FreePort.Next();
        string conf = Path.Combine(MidgeProcess.NewDirectory(), "pinned.conf");
        File.WriteAllLines(conf, MidgeProcess.BaseConfig(port));
        var start = new ProcessStartInfo("taskset") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in (string[])["-c", "0", MidgeProcess.Program, .. MidgeProcess.Arguments("-c", conf)]) start.ArgumentList.Add(a);
        environment(start.Environment);
        var broker = Process.Start(start)!;
        var deadline = DateTime.UtcNow + MidgeProcess.StartTimeout;
        while (true)
        {
            try
            {
                using var probe = new System.Net.Sockets.TcpClient();
                await probe.ConnectAsync(System.Net.IPAddress.Loopback, port);
                return (broker, port);
            }
            catch (System.Net.Sockets.SocketException) when (DateTime.UtcNow < deadline && !broker.HasExited)
            {
                await Task.Delay(50);
            }
            catch
            {
                broker.Kill();
                broker.Dispose();
                throw;
            }
        }
    }

    [Fact]
    public async Task The_working_directory_is_neither_read_nor_watched()
    {
        string dir = MidgeProcess.NewDirectory();
        for (int i = 0; i < 5; i++) Directory.CreateDirectory(Path.Combine(dir, $"data{i}", "nested"));
        int stray = FreePort.Next();
        File.WriteAllText(Path.Combine(dir, "appsettings.json"),
            $$"""{ "Kestrel": { "Endpoints": { "Stray": { "Url": "http://127.0.0.1:{{stray}}" } } } }""");
        await using var broker = await MidgeProcess.StartInAsync(dir);

        // No inotify watch anywhere in the process (the host watched the working directory, recursively).
        int watches = 0;
        foreach (var fd in Directory.GetFiles($"/proc/{broker.ProcessId}/fd"))
        {
            string? target = new FileInfo(fd).LinkTarget;
            if (target != "anon_inode:inotify") continue;
            string info = File.ReadAllText($"/proc/{broker.ProcessId}/fdinfo/{Path.GetFileName(fd)}");
            watches += info.Split('\n').Count(line => line.StartsWith("inotify wd:", StringComparison.Ordinal));
        }
        Assert.Equal(0, watches);
        // An appsettings.json that happens to be there does not open ports: the broker's file configures it.
        Assert.False(await FreePort.AcceptsAsync(stray));
        Assert.True(await FreePort.AcceptsAsync(broker.Port));
    }

    [Fact]
    public async Task Cafile_without_certfile_is_refused_naming_the_line()
    {
        string dir = MidgeProcess.NewDirectory();
        string conf = Path.Combine(dir, "tls.conf");
        File.WriteAllLines(conf, [$"listener {FreePort.Next()} 127.0.0.1", "cafile x"]);

        var r = await MidgeProcess.RunAsync(Short, "--test-config", "-c", conf);

        Assert.False(r.TimedOut, r.ToString());
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains($"{conf}:2: TLS options on listener", r.Stderr);
        Assert.Contains("need 'certfile' and 'keyfile'", r.Stderr);
    }

    [Fact]
    public async Task Sigterm_stops_within_seconds_with_exit_code_0()
    {
        var broker = await MidgeProcess.StartAsync();
        await using (broker)
        {
            await RawMqttClient.AssertRoundTripAsync(broker.Port);
            var clock = Stopwatch.StartNew();
            var r = await broker.StopAsync(TimeSpan.FromSeconds(10));

            Assert.False(r.TimedOut, r.ToString());
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"stopped after {clock.Elapsed}");
            Assert.Equal(0, r.ExitCode);
            Assert.Contains("midge received SIGTERM/SIGINT, stopping.", broker.Log);
            Assert.False(await FreePort.AcceptsAsync(broker.Port));
        }
    }

    [Fact]
    public async Task Sigterm_with_a_connected_client_still_stops_cleanly()
    {
        var broker = await MidgeProcess.StartAsync();
        await using (broker)
        {
            using var client = await RawMqttClient.ConnectMqttAsync(broker.Port, "stays-connected");
            var r = await broker.StopAsync(TimeSpan.FromSeconds(10));

            Assert.False(r.TimedOut, r.ToString());
            Assert.Equal(0, r.ExitCode);
            Assert.Empty(await client.ReadUntilClosedAsync(TimeSpan.FromSeconds(5)));
        }
    }

    [Fact]
    public async Task Port_option_without_config_listens_on_that_port()
    {
        int port = FreePort.Next();
        await using var broker = await MidgeProcess.StartWithArgumentsAsync(port, "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture));

        await RawMqttClient.AssertRoundTripAsync(port);
        await RawMqttClient.AssertRoundTripAsync(port, RawMqttClient.V5);
    }

    [Fact]
    public async Task Sighup_reloads_changed_configuration_and_keeps_serving()
    {
        await using var broker = await MidgeProcess.StartAsync("max_inflight_messages 20");
        using var before = await RawMqttClient.ConnectMqttAsync(broker.Port, "connected-before-reload");

        broker.RewriteConfig("max_inflight_messages 5", "log_type error", "log_type warning", "log_type notice");
        Assert.True(broker.Signal(Signals.SIGHUP));

        Assert.True(await broker.WaitForLogAsync("Reloaded configuration from " + broker.ConfigPath, TimeSpan.FromSeconds(5)), broker.Log);
        Assert.False(broker.HasExited);
        await RawMqttClient.AssertRoundTripAsync(broker.Port);
        // The connection opened before the reload is still served: PINGREQ gets PINGRESP.
        await before.SendAsync([0xC0, 0x00]);
        var pong = await before.ReadAsync(TimeSpan.FromSeconds(5));
        Assert.Equal((byte)0xD0, pong?.Header);
    }

    [Fact]
    public async Task Sighup_with_a_broken_file_logs_the_error_and_keeps_serving()
    {
        await using var broker = await MidgeProcess.StartAsync();

        broker.RewriteConfig("not_an_option 1");
        Assert.True(broker.Signal(Signals.SIGHUP));

        Assert.True(await broker.WaitForLogAsync("Error reloading configuration", TimeSpan.FromSeconds(5)), broker.Log);
        Assert.Contains("not_an_option", broker.Log);
        Assert.False(broker.HasExited);
        await RawMqttClient.AssertRoundTripAsync(broker.Port);
    }
}

/// <summary>Startup latency is measured alone, not while other test classes load the machine.</summary>
[CollectionDefinition(nameof(Timing), DisableParallelization = true)]
public sealed class Timing;

[Collection(nameof(Timing))]
public sealed class StartupTimeTests
{
    [Fact]
    public async Task Broker_accepts_a_client_in_under_2_seconds()
    {
        int port = FreePort.Next();
        string dir = MidgeProcess.NewDirectory();
        string conf = Path.Combine(dir, "mosquitto.conf");
        File.WriteAllLines(conf, MidgeProcess.BaseConfig(port));

        var clock = Stopwatch.StartNew();
        using var process = PeerProcess.Start(MidgeProcess.Program, MidgeProcess.Arguments("-c", conf), dir);
        RawMqttClient? client = null;
        try
        {
            while (client is null && clock.Elapsed < TimeSpan.FromSeconds(10) && !process.HasExited)
            {
                try
                {
                    client = await RawMqttClient.ConnectMqttAsync(port, "first");
                }
                catch (System.Net.Sockets.SocketException)
                {
                    await Task.Delay(10);
                }
            }
            var elapsed = clock.Elapsed;
            Assert.NotNull(client);
            Assert.True(elapsed < TimeSpan.FromSeconds(2), $"first CONNACK after {elapsed.TotalMilliseconds:F0} ms");
        }
        finally
        {
            client?.Dispose();
            process.Signal(Signals.SIGTERM);
            await process.WaitAsync(TimeSpan.FromSeconds(5));
        }
    }
}
