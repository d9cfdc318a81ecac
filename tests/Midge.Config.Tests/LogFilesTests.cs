namespace Midge.Config.Tests;

/// <summary>LogFiles.Check: a log file that certainly cannot be opened is an error naming the log_dest line.</summary>
public class LogFilesTests
{
    [Fact]
    public void A_log_file_in_a_missing_directory_is_an_error_at_its_line()
    {
        using var dir = new TempDir();
        string log = Path.Combine(dir.Path, "missing", "x.log");
        var config = ConfigParser.Parse($"log_type all\nlog_dest stdout\nlog_dest file {log}\n", "/etc/m.conf");

        var ex = Assert.Throws<ConfigException>(() => LogFiles.Check(config));
        Assert.Equal(new ConfigSource("/etc/m.conf", 3), ex.Location);
        Assert.Equal($"Unable to open log file {log} for writing: directory {Path.Combine(dir.Path, "missing")} does not exist.", ex.Reason);
        Assert.False(Directory.Exists(Path.Combine(dir.Path, "missing")));
    }

    [Fact]
    public void A_writable_place_passes_and_nothing_is_created()
    {
        using var dir = new TempDir();
        string log = Path.Combine(dir.Path, "x.log");
        LogFiles.Check(ConfigParser.Parse($"log_dest file {log}\n"));
        Assert.False(File.Exists(log));
        Assert.Null(LogFiles.Problem(log));
    }

    [Fact]
    public void A_directory_or_a_file_in_place_of_a_directory_is_an_error()
    {
        using var dir = new TempDir();
        string file = dir.Write("plain", "x");
        Assert.Equal("it is a directory", LogFiles.Problem(dir.Path));
        Assert.Equal($"{file} is not a directory", LogFiles.Problem(Path.Combine(file, "x.log")));
    }

    [Fact]
    public void Quotes_are_part_of_the_path_as_in_Mosquitto_and_the_message_says_so()
    {
        using var dir = new TempDir();
        string quoted = $"\"{Path.Combine(dir.Path, "x.log")}\"";
        var config = ConfigParser.Parse($"log_dest file {quoted}\n", "/etc/m.conf");
        Assert.Equal(quoted, config.LogDestinations.Single().Path);

        var ex = Assert.Throws<ConfigException>(() => LogFiles.Check(config));
        Assert.StartsWith($"Unable to open log file {quoted} for writing: directory ", ex.Reason);
        Assert.EndsWith(" (the quotes are part of the path, as in Mosquitto: write the path without them).", ex.Reason);
    }

    [Fact]
    public void No_log_file_no_source()
    {
        Assert.Null(ConfigParser.Parse("log_dest stdout\n").LogFileSource);
        Assert.Null(ConfigParser.Parse("log_dest file /x.log\nlog_dest none\n").LogFileSource);
        Assert.Equal(new ConfigSource("<config>", 2), ConfigParser.Parse("log_dest stdout\nlog_dest file /x.log\n").LogFileSource);
    }
}
