using Midge.TestKit;

namespace Midge.Integration.Tests;

/// <summary>
/// A <c>log_dest file</c> the broker cannot open: one clear line naming the file and the reason, a non-zero exit, no
/// stack trace; <c>--test-config</c> finds what it can beforehand and names the line.
/// </summary>
public sealed class LogFileErrorTests
{
    private static readonly TimeSpan Short = TimeSpan.FromSeconds(15);

    private static string Config(string dir, params string[] lines)
    {
        string conf = Path.Combine(dir, "log.conf");
        File.WriteAllLines(conf, [.. MidgeProcess.BaseConfig(FreePort.Next()), .. lines]);
        return conf;
    }

    private static void AssertNoStackTrace(ProcessResult r)
    {
        Assert.DoesNotContain("   at ", r.Stdout + r.Stderr);
        Assert.DoesNotContain("Unhandled exception", r.Stdout + r.Stderr);
    }

    [Fact]
    public async Task A_log_file_in_a_missing_directory_stops_the_start_with_one_line()
    {
        string dir = MidgeProcess.NewDirectory();
        string log = Path.Combine(dir, "missing", "x.log");
        string conf = Config(dir, $"log_dest file {log}");

        var r = await MidgeProcess.RunAsync(Short, "-c", conf);

        Assert.False(r.TimedOut, r.ToString());
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains($"Unable to open log file {log} for writing", r.Stderr);
        Assert.Contains($"{conf}:5", r.Stderr); // found before anything else starts, so the line is known
        Assert.Contains("does not exist", r.Stderr);
        AssertNoStackTrace(r);
    }

    [Fact]
    public async Task Test_config_names_the_line_of_a_log_file_whose_directory_does_not_exist()
    {
        string dir = MidgeProcess.NewDirectory();
        string log = Path.Combine(dir, "missing", "x.log");
        string conf = Config(dir, "log_type error", $"log_dest file {log}");

        var r = await MidgeProcess.RunAsync(Short, "-c", conf, "--test-config");

        Assert.False(r.TimedOut, r.ToString());
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains($"{conf}:6: Unable to open log file {log} for writing: directory {Path.GetDirectoryName(log)} does not exist", r.Stderr);
        Assert.DoesNotContain("Configuration file is valid.", r.Stdout);
        Assert.False(Directory.Exists(Path.GetDirectoryName(log)));
        AssertNoStackTrace(r);
    }

    [Fact]
    public async Task Test_config_does_not_create_the_log_file()
    {
        string dir = MidgeProcess.NewDirectory();
        string log = Path.Combine(dir, "x.log");
        string conf = Config(dir, $"log_dest file {log}");

        var r = await MidgeProcess.RunAsync(Short, "-c", conf, "--test-config");

        Assert.Equal(0, r.ExitCode);
        Assert.Contains("Configuration file is valid.", r.Stdout);
        Assert.False(File.Exists(log));
    }

    [Fact]
    public async Task A_log_file_the_broker_may_not_create_stops_the_start_with_one_line()
    {
        // sysfs refuses new files even to root, so this holds however the tests are run.
        const string Log = "/sys/midge-test-cannot-create.log";
        string conf = Config(MidgeProcess.NewDirectory(), $"log_dest file {Log}");

        var r = await MidgeProcess.RunAsync(Short, "-c", conf);

        Assert.False(r.TimedOut, r.ToString());
        Assert.Equal(1, r.ExitCode);
        Assert.Contains($"Error: {conf}:5: Unable to open log file {Log} for writing: ", r.Stderr);
        AssertNoStackTrace(r);
    }

    [Fact]
    public async Task A_quoted_log_file_path_is_taken_literally_as_Mosquitto_does_and_refused_with_a_hint()
    {
        // Mosquitto 2.0 keeps the quotes too: "Error: Unable to open log file "/tmp/x.log" for writing."
        string dir = MidgeProcess.NewDirectory();
        string quoted = $"\"{Path.Combine(dir, "q.log")}\"";
        string conf = Config(dir, $"log_dest file {quoted}");

        var test = await MidgeProcess.RunAsync(Short, "-c", conf, "--test-config");
        var start = await MidgeProcess.RunAsync(Short, "-c", conf);

        foreach (var r in new[] { test, start })
        {
            Assert.False(r.TimedOut, r.ToString());
            Assert.NotEqual(0, r.ExitCode);
            Assert.Contains($"{conf}:5: Unable to open log file {quoted} for writing", r.Stderr);
            Assert.Contains("quotes are part of the path", r.Stderr);
            AssertNoStackTrace(r);
        }
        Assert.False(File.Exists(Path.Combine(dir, "q.log")));
    }

    [Fact]
    public async Task Sighup_to_a_log_file_that_cannot_be_opened_keeps_the_old_log_and_serving()
    {
        string dir = MidgeProcess.NewDirectory();
        string log = Path.Combine(dir, "first.log");
        await using var broker = await MidgeProcess.StartAsync($"log_dest file {log}");
        string missing = Path.Combine(dir, "missing", "x.log");

        broker.RewriteConfig($"log_dest file {missing}");
        Assert.True(broker.Signal(Signals.SIGHUP));

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (DateTime.UtcNow < deadline && !File.ReadAllText(log).Contains("Error reloading configuration", StringComparison.Ordinal))
        {
            await Task.Delay(50);
        }
        string text = File.ReadAllText(log);
        Assert.Contains("Error reloading configuration: ", text);
        Assert.Contains($"Unable to open log file {missing} for writing", text);
        Assert.False(broker.HasExited, broker.Log);
        await RawMqttClient.AssertRoundTripAsync(broker.Port);
        Assert.DoesNotContain("   at ", broker.Log);
    }

    [Fact]
    public async Task A_pid_file_that_cannot_be_written_stops_the_start_with_one_line()
    {
        string dir = MidgeProcess.NewDirectory();
        string pid = Path.Combine(dir, "missing", "midge.pid");
        var r = await MidgeProcess.RunAsync(Short, "-c", Config(dir, $"pid_file {pid}"));
        Assert.False(r.TimedOut, r.ToString());
        Assert.Equal(1, r.ExitCode);
        Assert.Contains($"unable to write pid file {pid}", r.Stderr);
        AssertNoStackTrace(r);
    }
}
