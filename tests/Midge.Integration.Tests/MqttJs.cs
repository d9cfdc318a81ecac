using System.Globalization;
using System.Text.Json;
using Midge.TestKit;

namespace Midge.Integration.Tests;

/// <summary>
/// Runs the MQTT.js peer scripts (peers/node/*.mjs) with <c>node</c>. The scripts import the <c>mqtt</c> package
/// from peers/node/node_modules in the source tree (run-tests.sh runs <c>npm ci</c> there), so they are run
/// where they are, not copied next to the tests.
/// </summary>
internal static class MqttJs
{
    public static readonly TimeSpan PeerTimeout = TimeSpan.FromSeconds(30);

    /// <summary>tests/Midge.Integration.Tests/peers/node in the repository the tests were built from.</summary>
    public static string Directory { get; } = FindDirectory();

    /// <summary>Starts a script: node SCRIPT PORT ARGS...; the caller waits for it.</summary>
    public static PeerProcess Start(string script, int port, params string[] arguments) =>
        PeerProcess.Start("node", [Path.Combine(Directory, script), port.ToString(CultureInfo.InvariantCulture), .. arguments], Directory);

    /// <summary>Runs a script to completion and parses the JSON object on its last line.</summary>
    public static async Task<JsonElement> RunAsync(string script, int port, params string[] arguments)
    {
        using var peer = Start(script, port, arguments);
        return Parse(await peer.WaitAsync(PeerTimeout));
    }

    public static JsonElement Parse(ProcessResult r)
    {
        Assert.True(r.ExitCode == 0 && !r.TimedOut && r.Lines.Length > 0, r.ToString());
        using var doc = JsonDocument.Parse(r.Lines.Last());
        return doc.RootElement.Clone();
    }

    public static string[] Strings(JsonElement e) => e.EnumerateArray().Select(x => x.GetString()!).ToArray();

    public static int[] Ints(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt32()).ToArray();

    private static string FindDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (!File.Exists(Path.Combine(dir.FullName, "Midge.slnx"))) continue;
            string peers = Path.Combine(dir.FullName, "tests", "Midge.Integration.Tests", "peers", "node");
            if (!System.IO.Directory.Exists(Path.Combine(peers, "node_modules", "mqtt")))
            {
                throw new InvalidOperationException($"MQTT.js is not installed: run `npm ci` in {peers} (run-tests.sh does)");
            }
            return peers;
        }
        throw new DirectoryNotFoundException("repository root (Midge.slnx) not found above " + AppContext.BaseDirectory);
    }
}
