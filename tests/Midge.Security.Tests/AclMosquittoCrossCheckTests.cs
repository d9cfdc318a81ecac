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
        if (!MosquittoBroker.Available) return;
        using var dir = new TempDir();
        var pw = dir.File("pw");
        Assert.Equal(0, Proc.Run("/usr/bin/mosquitto_passwd", "-b", "-c", pw, "writer", "w").Code);
        Assert.Equal(0, Proc.Run("/usr/bin/mosquitto_passwd", "-b", pw, "carol", "c").Code);
        var aclPath = dir.File("acl");
        File.WriteAllText(aclPath, AclText + "\n");
        using var broker = new MosquittoBroker(dir, $"password_file {pw}\nacl_file {aclPath}");

        var psi = new ProcessStartInfo("/usr/bin/mosquitto_sub") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "-h", "127.0.0.1", "-p", broker.Port.ToString(), "-u", "carol", "-P", "c", "-i", "sub1", "-t", "#", "-v", "-W", "4" })
            psi.ArgumentList.Add(a);
        using var sub = Process.Start(psi)!;
        var output = sub.StandardOutput.ReadToEndAsync();
        await Task.Delay(700);
        foreach (var t in Topics)
            Assert.Equal(0, Proc.Run("/usr/bin/mosquitto_pub", "-h", "127.0.0.1", "-p", broker.Port.ToString(), "-u", "writer", "-P", "w", "-t", t, "-m", "m").Code);
        if (!sub.WaitForExit(10_000)) sub.Kill();
        var received = (await output).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ')[0]).ToHashSet();

        var acl = AclFile.Parse(AclText, "acl").ForClient("carol", "sub1");
        var expected = Topics.Where(acl.CanRead).ToHashSet();
        Assert.Equal(expected.Order(), received.Order());
        Assert.Contains("users/carol/a", received);
        Assert.DoesNotContain("r/secret", received);
    }
}
