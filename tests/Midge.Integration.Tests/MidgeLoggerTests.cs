using System.Reflection;
using Microsoft.Extensions.Logging;
using Midge.Config;

namespace Midge.Integration.Tests;

/// <summary>The broker's logger says a level is enabled only when a configured log_type can take it.</summary>
public sealed class MidgeLoggerTests
{
    [Fact]
    public void A_level_is_enabled_only_when_a_configured_log_type_takes_it()
    {
        var provider = new MidgeLoggerProvider(new BrokerConfig { LogTypes = LogTypes.Error | LogTypes.Warning });
        var logger = provider.CreateLogger("Midge.Core");
        Assert.False(logger.IsEnabled(LogLevel.Information)); // every connect logs here: nothing is formatted
        Assert.False(logger.IsEnabled(LogLevel.Debug));
        Assert.True(logger.IsEnabled(LogLevel.Warning));
        Assert.True(logger.IsEnabled(LogLevel.Error));

        provider.Apply(new BrokerConfig { LogTypes = LogTypes.Subscribe }); // a reload takes effect at once
        Assert.True(logger.IsEnabled(LogLevel.Debug));
        Assert.False(logger.IsEnabled(LogLevel.Information));

        provider.Apply(new BrokerConfig { LogTypes = LogTypes.Notice });
        Assert.True(logger.IsEnabled(LogLevel.Information));
        Assert.False(logger.IsEnabled(LogLevel.Debug));
    }

    [Fact]
    public void Every_logged_event_maps_to_a_type_its_level_enables()
    {
        var assemblies = typeof(MidgeLoggerProvider).Assembly.GetReferencedAssemblies()
            .Where(a => a.Name!.StartsWith("Midge", StringComparison.Ordinal))
            .Select(Assembly.Load)
            .Append(typeof(MidgeLoggerProvider).Assembly);
        int checkedEvents = 0;
        foreach (var method in assemblies.SelectMany(a => a.GetTypes()).SelectMany(t =>
                     t.GetMethods(BindingFlags.Static | BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly)))
        {
            if (method.GetCustomAttribute<LoggerMessageAttribute>() is not { } a) continue;
            var type = MidgeLoggerProvider.TypeOf(a.Level, new EventId(a.EventId, a.EventName));
            Assert.True(type != LogTypes.None && (type & ~MidgeLoggerProvider.TypesAt(a.Level)) == 0,
                $"{method.DeclaringType}.{method.Name} ({a.Level}, {a.EventName}) maps to {type}, which IsEnabled({a.Level}) does not cover");
            checkedEvents++;
        }
        Assert.True(checkedEvents >= 30, $"only {checkedEvents} [LoggerMessage] methods found");
    }

    [Theory]
    [InlineData("short", 999, "short")]
    [InlineData("abcdef", 4, "abcd")]
    [InlineData("ab\u00e9\u00e9", 4, "ab\u00e9")] // 'é' is two bytes: 2 + 2 fits, the next does not
    [InlineData("ab\u00e9\u00e9", 5, "ab\u00e9")] // never half a character
    [InlineData("a\U0001F600b", 4, "a")] // a four-byte character (a surrogate pair) whole or not at all
    [InlineData("a\U0001F600b", 5, "a\U0001F600")]
    public void Lines_are_cut_between_characters_to_the_byte_limit(string line, int max, string expected)
    {
        Assert.Equal(expected, MidgeLoggerProvider.Truncate(line, max));
    }

    [Theory]
    [InlineData("plain text stays", "plain text stays")]
    [InlineData("\tt (QoS 1)", "\tt (QoS 1)")]
    [InlineData("id\n1796588734: New client connected from 10.0.0.1:1 as admin", "id\\n1796588734: New client connected from 10.0.0.1:1 as admin")]
    [InlineData("a\rb\u001B[31mc\u007Fd", "a\\rb\\x1B[31mc\\x7Fd")]
    [InlineData("x\u2028y\u0085z", "x\\u2028y\\x85z")]
    public void Control_characters_in_a_message_are_escaped(string message, string expected) =>
        Assert.Equal(expected, MidgeLoggerProvider.EscapeControls(message));

    [Fact]
    public void A_65_KB_message_is_cut_to_999_bytes()
    {
        string cut = MidgeLoggerProvider.Truncate("1700000000: c 0 a/" + new string('x', 65_000), MidgeLoggerProvider.MaxLineBytes);
        Assert.Equal(999, System.Text.Encoding.UTF8.GetByteCount(cut));
    }

    /// <summary>A destination that takes nothing until released: a pipe nobody reads.</summary>
    private sealed class BlockedStream : MemoryStream
    {
        public ManualResetEventSlim Released { get; } = new();

        public override void Write(byte[] buffer, int offset, int count)
        {
            Released.Wait();
            lock (this) base.Write(buffer, offset, count);
        }

        public string Text()
        {
            lock (this) return System.Text.Encoding.UTF8.GetString(ToArray());
        }
    }

    [Fact]
    public void A_blocked_destination_never_blocks_the_caller_and_what_it_dropped_is_counted_once_it_drains()
    {
        var stream = new BlockedStream();
        var writer = LogWriter.ForStream("test", stream, owned: false, text => "note: " + text, capacity: 100);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        writer.Enqueue("first"); // taken by the writer thread, which then blocks writing it
        Thread.Sleep(100);
        for (int i = 0; i < 1000; i++) writer.Enqueue($"line {i}");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"enqueueing took {clock.Elapsed}");
        Assert.False(writer.Flush(TimeSpan.FromMilliseconds(200))); // stalled: gives up rather than waiting forever
        Assert.Equal(900, writer.Dropped);

        stream.Released.Set();
        Assert.True(writer.Flush(TimeSpan.FromSeconds(5)));
        var lines = stream.Text().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["first", .. Enumerable.Range(0, 100).Select(i => $"line {i}"), "note: 900 log lines dropped (test was not keeping up)"], lines);

        writer.Enqueue("after"); // and on it goes
        Assert.True(writer.Flush(TimeSpan.FromSeconds(5)));
        Assert.EndsWith("after\n", stream.Text());
    }

    [Fact]
    public void The_drop_count_comes_before_the_next_line_that_found_room()
    {
        var stream = new BlockedStream();
        var writer = LogWriter.ForStream("test", stream, owned: false, text => "note: " + text, capacity: 2);
        writer.Enqueue("a");
        Thread.Sleep(100); // "a" is being written (blocked); "b" and "c" fill the queue
        writer.Enqueue("b");
        writer.Enqueue("c");
        writer.Enqueue("lost");
        stream.Released.Set();
        Assert.True(writer.Flush(TimeSpan.FromSeconds(5)));
        writer.Enqueue("d");
        Assert.True(writer.Flush(TimeSpan.FromSeconds(5)));
        Assert.Equal("a\nb\nc\nnote: 1 log lines dropped (test was not keeping up)\nd\n", stream.Text());
    }

    /// <summary>A logger writing every type to a file in a new directory.</summary>
    private static (MidgeLoggerProvider Provider, string Dir, string File) FileLogger(LogFormat format, bool timestamp)
    {
        string dir = Directory.CreateTempSubdirectory("midge-logger-").FullName;
        string file = Path.Combine(dir, "m.log");
        var provider = new MidgeLoggerProvider(new BrokerConfig
        {
            LogDestinations = [new LogDestination(LogDestinationKind.File, file)],
            LogTypes = LogTypes.All,
            LogTimestamp = timestamp,
            LogFormat = format,
        });
        return (provider, dir, file);
    }

    [Fact]
    public void Lines_reach_the_log_file_through_the_queue_and_dispose_writes_them_all()
    {
        var (provider, dir, file) = FileLogger(LogFormat.Text, timestamp: false);
        var logger = provider.CreateLogger("Midge.Core");
        for (int i = 0; i < 1000; i++) logger.LogInformation("line {I}", i);
        logger.LogInformation("{Long}", new string('y', 5000));
        provider.Dispose();
        var lines = File.ReadAllLines(file);
        Assert.Equal(1001, lines.Length);
        Assert.Equal("line 999", lines[999]);
        Assert.Equal(new string('y', 999), lines[1000]);
        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public void Log_format_json_writes_one_object_per_line_with_the_message_fields()
    {
        var (provider, dir, file) = FileLogger(LogFormat.Json, timestamp: true);
        var logger = provider.CreateLogger("Midge.Core");
        // A client's text with a newline and an escape sequence stays inside its field, on the one line.
        logger.LogWarning(new EventId(42, "Test.Event"), "Client {ClientId} sent {Count} bytes ({Retained})", "a\nb\u001b[2J", 1234, true);
        logger.LogError(new InvalidOperationException("boom"), "failed");
        provider.Dispose();

        var lines = File.ReadAllLines(file);
        Assert.Equal(2, lines.Length);
        using (var first = System.Text.Json.JsonDocument.Parse(lines[0]))
        {
            var root = first.RootElement;
            Assert.True(DateTimeOffset.TryParse(root.GetProperty("time").GetString(), System.Globalization.CultureInfo.InvariantCulture,
                System.Globalization.DateTimeStyles.AssumeUniversal, out var time));
            Assert.True(Math.Abs((DateTimeOffset.UtcNow - time).TotalMinutes) < 5, $"time {time}");
            Assert.Equal("warning", root.GetProperty("level").GetString());
            Assert.Equal("warning", root.GetProperty("type").GetString());
            Assert.Equal("Test.Event", root.GetProperty("event").GetString());
            Assert.Equal(42, root.GetProperty("event_id").GetInt32());
            Assert.Equal("Midge.Core", root.GetProperty("category").GetString());
            Assert.Equal("Client a\nb\u001b[2J sent 1234 bytes (True)", root.GetProperty("message").GetString());
            var fields = root.GetProperty("fields");
            Assert.Equal("a\nb\u001b[2J", fields.GetProperty("ClientId").GetString());
            Assert.Equal(1234, fields.GetProperty("Count").GetInt32());
            Assert.True(fields.GetProperty("Retained").GetBoolean());
            Assert.False(fields.TryGetProperty("{OriginalFormat}", out _));
        }
        using (var second = System.Text.Json.JsonDocument.Parse(lines[1]))
        {
            var root = second.RootElement;
            Assert.Equal("error", root.GetProperty("level").GetString());
            Assert.Equal("failed", root.GetProperty("message").GetString());
            Assert.False(root.TryGetProperty("fields", out _));
            Assert.Contains("InvalidOperationException: boom", root.GetProperty("exception").GetString(), StringComparison.Ordinal);
        }
        Directory.Delete(dir, recursive: true);
    }

    [Theory]
    [InlineData(false, null, null)]
    [InlineData(true, "%Y", "2026")]
    [InlineData(true, null, "2026-12-07T04:30:00.123Z")]
    public void A_json_line_s_time_follows_log_timestamp_and_its_format(bool timestamp, string? format, string? expected)
    {
        var config = new BrokerConfig { LogTimestamp = timestamp, LogTimestampFormat = format, LogFormat = LogFormat.Json };
        var at = new DateTimeOffset(2026, 12, 7, 4, 30, 0, 123, TimeSpan.Zero);
        string line = JsonLogLine.Format(config, LogTypes.Information, LogLevel.Information, default, null, "m", null, null, at);
        using var json = System.Text.Json.JsonDocument.Parse(line);
        Assert.Equal(expected, json.RootElement.TryGetProperty("time", out var t) ? t.GetString() : null);
        Assert.Equal("info", json.RootElement.GetProperty("level").GetString());
        Assert.False(json.RootElement.TryGetProperty("event", out _));
    }

    [Fact]
    public void A_log_file_that_cannot_be_opened_throws_one_line_naming_it_and_a_reload_changes_nothing()
    {
        string dir = Directory.CreateTempSubdirectory("midge-logger-").FullName;
        string missing = Path.Combine(dir, "missing", "m.log");
        var bad = new BrokerConfig { LogDestinations = [new LogDestination(LogDestinationKind.File, missing)] };

        var ex = Assert.Throws<LogFileException>(() => new MidgeLoggerProvider(bad));
        Assert.Equal($"Unable to open log file {missing} for writing: directory {Path.GetDirectoryName(missing)} does not exist.", ex.Message);

        string good = Path.Combine(dir, "m.log");
        var provider = new MidgeLoggerProvider(new BrokerConfig
        {
            LogDestinations = [new LogDestination(LogDestinationKind.File, good)],
            LogTimestamp = false,
        });
        Assert.Throws<LogFileException>(() => provider.Prepare(bad));
        provider.CreateLogger("Midge").LogError("still here");
        provider.Dispose();
        Assert.Equal(["still here"], File.ReadAllLines(good));
        Directory.Delete(dir, recursive: true);
    }
}
