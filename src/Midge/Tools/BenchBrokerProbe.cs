using System.Globalization;

namespace Midge.Tools;

/// <summary>Reads a broker process's CPU time and memory from /proc (Linux).</summary>
internal sealed class BenchBrokerProbe(int pid)
{
    /// <summary>Clock ticks per second of /proc/PID/stat (USER_HZ, 100 on every Linux port that matters).</summary>
    private const double TicksPerSecond = 100;

    public int Pid { get; } = pid;

    /// <summary>utime + stime in seconds, or null when the process cannot be read.</summary>
    public double? CpuSeconds()
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{Pid}/stat");
            // The command name is in parentheses and may contain spaces: fields start after the last ')'.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            // fields[0] is field 3 (state); utime is field 14, stime field 15.
            long utime = long.Parse(fields[11], CultureInfo.InvariantCulture);
            long stime = long.Parse(fields[12], CultureInfo.InvariantCulture);
            return (utime + stime) / TicksPerSecond;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }

    /// <summary>VmRSS (resident set) in bytes.</summary>
    public long? RssBytes() => StatusKb("VmRSS:");

    /// <summary>VmHWM (peak resident set) in bytes.</summary>
    public long? PeakRssBytes() => StatusKb("VmHWM:");

    private long? StatusKb(string key)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{Pid}/status"))
            {
                if (!line.StartsWith(key, StringComparison.Ordinal)) continue;
                var value = line[key.Length..].Trim();
                int space = value.IndexOf(' ');
                return long.Parse(space < 0 ? value : value[..space], CultureInfo.InvariantCulture) * 1024;
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException)
        {
        }
        return null;
    }
}
