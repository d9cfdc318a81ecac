using System.Diagnostics;

namespace Midge.Security.Tests;

/// <summary>The same acl_file in Debian's mosquitto and in Midge: which topics reach a subscriber on '#'.</summary>
public class AclMosquittoCrossCheckTests
{
    private const string AclText = """
        user writer
        topic write #

        user carol
        topic read r/#
        topic deny r/secret
        topic read $SYS/broker/x
        pattern read users/%u/#
        pattern read devices/%c/#
        pattern deny users/%u/locked
        """;

    private static readonly string[] Topics =
    [
        "r/a", "r/secret", "r/b/c", "users/carol/a", "users/carol/locked", "users/dave/a",
        "devices/sub1/x", "devices/sub2/x", "other/x", "r",
    ];

    [Fact]
    public async Task Deliveries_agree_with_mosquitto()
    {
        Assert.True(MosquittoBroker.Available, "needs Debian's mosquitto and mosquitto-clients");
        using var dir = new TempDir();
        var pw = dir.File("pw");
        Assert.Equal(0, Proc.Run("/usr/bin/mosquitto_passwd", "-b", "-c", pw, "writer", "w").Code);
        Assert.Equal(0, Proc.Run("/usr/bin/mosquitto_passwd", "-b", pw, "carol", "c").Code);
        var aclPath = dir.File("acl");
        File.WriteAllText(aclPath, AclText + "\n");
        using var broker = new MosquittoBroker(dir, $"password_file {pw}\nacl_file {aclPath}");

        var acl = AclFile.Parse(AclText, "acl").ForClient("carol", "sub1");
        var expected = Topics.Where(acl.CanRead).ToHashSet();

        // Line-buffered (stdbuf), so that the SUBACK is seen when it comes. The subscriber stops after as many
        // messages as should pass: the topics are published in order and the last one passes, so a message
        // that should not have passed would be among them.
        var psi = new ProcessStartInfo("/usr/bin/stdbuf") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "-oL", "/usr/bin/mosquitto_sub", "-h", "127.0.0.1", "-p", broker.Port.ToString(), "-u", "carol", "-P", "c",
                     "-i", "sub1", "-t", "#", "-v", "-d", "-C", expected.Count.ToString(), "-W", "30" })
            psi.ArgumentList.Add(a);
        using var sub = Process.Start(psi)!;
        // -d prints the client's packets among the messages: publish once the SUBACK is in, then keep the rest.
        var subscribed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var lines = new List<string>();
        var reading = Task.Run(async () =>
        {
            while (await sub.StandardOutput.ReadLineAsync() is { } line)
            {
                if (line.Contains("received SUBACK")) subscribed.TrySetResult();
                else if (!line.StartsWith("Client ") && !line.StartsWith("Subscribed")) lines.Add(line);
            }
        });
        await subscribed.Task.WaitAsync(TimeSpan.FromSeconds(10));
        foreach (var t in Topics)
            Assert.Equal(0, Proc.Run("/usr/bin/mosquitto_pub", "-h", "127.0.0.1", "-p", broker.Port.ToString(), "-u", "writer", "-P", "w", "-t", t, "-m", "m").Code);
        if (!sub.WaitForExit(30_000)) sub.Kill();
        await reading;
        var received = lines.Select(l => l.Split(' ')[0]).ToHashSet();

        Assert.Equal(expected.Count, lines.Count);
        Assert.Equal(expected.Order(), received.Order());
        Assert.Contains("users/carol/a", received);
        Assert.DoesNotContain("r/secret", received);
    }
}
