using System.Globalization;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Midge.TestKit;

namespace Midge.Integration.Tests;

/// <summary>
/// How listeners and client addresses are logged, against Mosquitto's lines: a listener without an address opens
/// an IPv4 and an IPv6 socket ("Opening ipv4 listen socket on port 1883."), and an IPv4 client of that dual-stack
/// listener is "127.0.0.1:40000", not "[::ffff:127.0.0.1]:40000".
/// </summary>
public sealed partial class ListenerLogTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Listener_without_address_logs_both_sockets_and_its_clients_as_Mosquitto()
    {
        string dir = MidgeProcess.NewDirectory();
        int port = FreePort.Next();
        string conf = Path.Combine(dir, "midge.conf");
        File.WriteAllLines(conf, [$"listener {port}", "allow_anonymous true", "log_dest stderr", "log_type all"]);
        await using var midge = await MidgeProcess.StartWithArgumentsAsync(port, "-c", conf);

        using (await RawMqttClient.ConnectMqttAsync(port, "v4"))
        {
            Assert.True(await midge.WaitForLogAsync("as v4 (", Wait), midge.Log);
        }
        Assert.Matches(new Regex(@"\n\d+: New client connected from 127\.0\.0\.1:\d+ as v4 \(p2, c1, k60\)\.\n"), midge.Log);
        if (Socket.OSSupportsIPv6)
        {
            var r = await PeerProcess.RunAsync("mosquitto_pub",
                ["-h", "::1", "-p", port.ToString(CultureInfo.InvariantCulture), "-i", "v6", "-t", "t", "-m", "x"], Wait);
            Assert.True(r.ExitCode == 0, r.ToString());
            Assert.True(await midge.WaitForLogAsync("as v6 (", Wait), midge.Log);
            Assert.Matches(new Regex(@"\n\d+: New client connected from ::1:\d+ as v6 \(p2, c1, k60\)\.\n"), midge.Log);
        }
        Assert.DoesNotContain("::ffff:", midge.Log);

        // Mosquitto, same listener: the same "Opening ..." lines.
        int mosquittoPort = FreePort.Next();
        string mosquittoConf = Path.Combine(dir, "mosquitto.conf");
        File.WriteAllLines(mosquittoConf, [$"listener {mosquittoPort}", "allow_anonymous true", "log_dest stderr", "log_type all"]);
        using var mosquitto = PeerProcess.Start("/usr/sbin/mosquitto", ["-c", mosquittoConf]);
        Assert.True(await mosquitto.WaitForOutputAsync("running", Wait), mosquitto.Stderr);

        string[] expected = [$"Opening ipv4 listen socket on port {port}.", $"Opening ipv6 listen socket on port {port}."];
        Assert.Equal(expected, Opening(mosquitto.Stderr).Select(l => l.Replace(mosquittoPort.ToString(CultureInfo.InvariantCulture),
            port.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal)));
        Assert.Equal(expected, Opening(midge.Log));
    }

    [Fact]
    public async Task Socket_domain_ipv6_without_an_address_serves_IPv6_clients_only()
    {
        string dir = MidgeProcess.NewDirectory();
        int port = FreePort.Next();
        string conf = Path.Combine(dir, "midge.conf");
        File.WriteAllLines(conf, [$"listener {port}", "socket_domain ipv6", "allow_anonymous true", "log_dest stderr"]);
        // The dual-stack socket still completes an IPv4 TCP handshake (which is all the start waits for); MQTT over
        // it is refused at once.
        await using var midge = await MidgeProcess.StartWithArgumentsAsync(port, "-c", conf);
        var v6 = await PeerProcess.RunAsync("mosquitto_pub", ["-h", "::1", "-p", port.ToString(CultureInfo.InvariantCulture), "-i", "v6", "-t", "t", "-m", "x"], Wait);
        Assert.True(v6.ExitCode == 0, v6.ToString());
        var v4 = await PeerProcess.RunAsync("mosquitto_pub", ["-h", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture), "-i", "v4", "-t", "t", "-m", "x"], Wait);
        Assert.False(v4.ExitCode == 0, v4.ToString());
        Assert.Equal(["Opening ipv6 listen socket on port " + port.ToString(CultureInfo.InvariantCulture) + "."], Opening(midge.Log));
    }

    [Fact]
    public async Task Listeners_with_an_address_log_their_family_and_port()
    {
        int port = FreePort.Next();
        await using var midge = await MidgeProcess.StartAsync();
        // MidgeProcess's listener is 127.0.0.1; local-only mode (-p) opens 127.0.0.1 and ::1 on one port.
        Assert.Equal([$"Opening ipv4 listen socket on port {midge.Port}."], Opening(midge.Log));

        await using var local = await MidgeProcess.StartWithArgumentsAsync(port, "-p", port.ToString(CultureInfo.InvariantCulture));
        string[] expected = Socket.OSSupportsIPv6
            ? [$"Opening ipv4 listen socket on port {port}.", $"Opening ipv6 listen socket on port {port}."]
            : [$"Opening ipv4 listen socket on port {port}."];
        Assert.Equal(expected, Opening(local.Log));
    }

    private static string[] Opening(string log) =>
        [.. log.Split('\n').Select(l => TimestampPrefix().Replace(l, "", 1)).Where(l => l.StartsWith("Opening ", StringComparison.Ordinal))];

    [GeneratedRegex(@"^\d+: ")]
    private static partial Regex TimestampPrefix();
}
