using System.Globalization;

namespace Midge.TestKit;

/// <summary>Debian's mosquitto_pub and mosquitto_sub against a broker on 127.0.0.1.</summary>
public static class MosquittoClients
{
    /// <summary>Prefix of every message line a <see cref="SubscribeAsync"/> subscriber prints.</summary>
    public const string Marker = "MSG|";

    /// <summary>Runs mosquitto_pub; the caller asserts the exit code.</summary>
    public static Task<ProcessResult> PublishAsync(int port, params string[] arguments) =>
        PeerProcess.RunAsync("mosquitto_pub", ["-h", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture), .. arguments],
            TimeSpan.FromSeconds(10));

    /// <summary>
    /// Starts mosquitto_sub with debug output, waits for its SUBACK, and returns it running. Messages are printed
    /// as <c>MSG|</c> followed by <paramref name="format"/> (mosquitto_sub's <c>-F</c> specifiers).
    /// </summary>
    public static async Task<Subscriber> SubscribeAsync(int port, string format, params string[] arguments)
    {
        // stdbuf: mosquitto_sub block-buffers stdout into a pipe, which would hide the SUBACK line.
        var process = PeerProcess.Start("stdbuf",
            ["-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture), "-d", "-W", "10", "-F", Marker + format, .. arguments]);
        if (!await process.WaitForOutputAsync("received SUBACK", TimeSpan.FromSeconds(5)))
        {
            var r = await process.WaitAsync(TimeSpan.Zero);
            process.Dispose();
            throw new InvalidOperationException($"mosquitto_sub got no SUBACK: {r}");
        }
        return new Subscriber(process);
    }

    /// <summary>A running mosquitto_sub.</summary>
    public sealed class Subscriber(PeerProcess process) : IDisposable
    {
        /// <summary>Waits for it to exit (-C count reached, -W timeout, --retained-only) and returns its messages.</summary>
        public async Task<(ProcessResult Result, string[] Messages)> WaitAsync(TimeSpan? timeout = null)
        {
            var r = await process.WaitAsync(timeout ?? TimeSpan.FromSeconds(15));
            var messages = r.Lines.Where(l => l.StartsWith(Marker, StringComparison.Ordinal)).Select(l => l[Marker.Length..]).ToArray();
            return (r, messages);
        }

        /// <summary>Waits until it has printed <paramref name="message"/> (in its <c>-F</c> format); false on timeout.</summary>
        /// <summary>What it printed so far (message lines start with <see cref="Marker"/>).</summary>
        public string Output => process.Stdout;

        public Task<bool> WaitForMessageAsync(string message, TimeSpan timeout) => process.WaitForOutputAsync(Marker + message, timeout);

        public void Dispose() => process.Dispose();
    }
}
