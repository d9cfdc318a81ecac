using System.Text;

namespace Midge.Security.Tests;

public class PasswordFileTests
{
    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    private static bool HaveMosquittoPasswd => File.Exists("/usr/bin/mosquitto_passwd");

    [Fact]
    public void Files_made_by_mosquitto_passwd_verify()
    {
        if (!HaveMosquittoPasswd) return;
        using var dir = new TempDir();
        var f = dir.File("pw");
        Assert.Equal(0, Proc.Run("/usr/bin/mosquitto_passwd", "-b", "-c", f, "alice", "s3cret").Code);
        Assert.Equal(0, Proc.Run("/usr/bin/mosquitto_passwd", "-H", "sha512", "-b", f, "bob", "hunter2").Code);
        Assert.Equal(0, Proc.Run("/usr/bin/mosquitto_passwd", "-I", "7", "-b", f, "carol", "pässwörd").Code);
        Assert.Equal(0, Proc.Run("/usr/bin/mosquitto_passwd", "-b", f, "dave", "").Code);

        var pw = PasswordFile.Load(f);
        Assert.Empty(pw.Diagnostics);
        Assert.Equal(4, pw.Count);
        Assert.Equal(PasswordHashKind.Sha512Pbkdf2, pw.GetHash("alice")!.Kind);
        Assert.Equal(101, pw.GetHash("alice")!.Iterations);
        Assert.Equal(PasswordHashKind.Sha512, pw.GetHash("bob")!.Kind);
        Assert.Equal(7, pw.GetHash("carol")!.Iterations);

        Assert.True(pw.Verify("alice", B("s3cret")));
        Assert.False(pw.Verify("alice", B("s3cret ")));
        Assert.False(pw.Verify("alice", B("hunter2")));
        Assert.True(pw.Verify("bob", B("hunter2")));
        Assert.False(pw.Verify("bob", B("s3cret")));
        Assert.True(pw.Verify("carol", B("pässwörd")));
        Assert.True(pw.Verify("dave", B("")));
        Assert.False(pw.Verify("dave", B("x")));
        Assert.False(pw.Verify("mallory", B("s3cret")));
        Assert.False(pw.Verify(null, B("s3cret")));
        Assert.False(pw.Verify("Alice", B("s3cret")));
    }

    [Fact]
    public void Hash_text_round_trips_in_mosquitto_format()
    {
        var h7 = PasswordHash.Create(B("pw"));
        var s7 = h7.ToString();
        Assert.Matches(@"^\$7\$101\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==$", s7);
        Assert.True(PasswordHash.TryParse(s7, out var back, out _));
        Assert.True(back!.Verify(B("pw")));
        var h6 = PasswordHash.Create(B("pw"), PasswordHashKind.Sha512);
        Assert.Matches(@"^\$6\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==$", h6.ToString());
        Assert.Equal(0, h6.Iterations);
    }

    [Fact]
    public void Comments_blank_lines_and_blanks_are_handled_as_mosquitto_does()
    {
        var good = PasswordHash.Create(B("pw")).ToString();
        var text = $"# comment\n\n   \n  alice  :  {good}  \r\nbob:{good}:trailing junk\ncarol::{good}\n";
        var pw = PasswordFile.Parse(text, "pwfile");
        Assert.Empty(pw.Diagnostics);
        Assert.True(pw.Verify("alice", B("pw")));
        Assert.True(pw.Verify("bob", B("pw")));
        Assert.True(pw.Verify("carol", B("pw")));
    }

    [Fact]
    public void Bad_entries_are_dropped_and_reported_with_file_and_line()
    {
        var good = PasswordHash.Create(B("pw")).ToString();
        var text = string.Join('\n',
            $"ok:{good}",
            "plain:textpassword",
            "six:$6$short$abc",
            "seven:$7$0$AAAAAAAAAAAAAAAA$" + new string('A', 86) + "==",
            "nine:$9$x$y",
            "nohash:",
            $":{good}",
            "");
        var pw = PasswordFile.Parse(text, "/etc/mosquitto/pw");
        Assert.Equal(1, pw.Count);
        Assert.True(pw.Verify("ok", B("pw")));
        Assert.Contains(pw.Diagnostics, d => d.StartsWith("/etc/mosquitto/pw:2:", StringComparison.Ordinal) && d.Contains("plain"));
        Assert.Contains(pw.Diagnostics, d => d.StartsWith("/etc/mosquitto/pw:3:", StringComparison.Ordinal));
        Assert.Contains(pw.Diagnostics, d => d.StartsWith("/etc/mosquitto/pw:4:", StringComparison.Ordinal) && d.Contains("iterations"));
        Assert.Contains(pw.Diagnostics, d => d.StartsWith("/etc/mosquitto/pw:5:", StringComparison.Ordinal));
        Assert.Contains(pw.Diagnostics, d => d.StartsWith("/etc/mosquitto/pw:6:", StringComparison.Ordinal));
        Assert.Contains(pw.Diagnostics, d => d.StartsWith("/etc/mosquitto/pw:7:", StringComparison.Ordinal));
        Assert.False(pw.Verify("plain", B("textpassword")));
    }

    [Fact]
    public void Last_entry_for_a_user_wins()
    {
        var a = PasswordHash.Create(B("one")).ToString();
        var b = PasswordHash.Create(B("two")).ToString();
        var pw = PasswordFile.Parse($"u:{a}\nu:{b}\n", "f");
        Assert.False(pw.Verify("u", B("one")));
        Assert.True(pw.Verify("u", B("two")));
    }

    [Fact]
    public void Bad_inputs_never_throw_and_are_rejected()
    {
        var good = PasswordHash.Create(B("pw")).ToString();
        var pw = PasswordFile.Parse($"alice:{good}\n", "f");
        Assert.False(pw.Verify("alice", default));
        Assert.False(pw.Verify("", B("pw")));
        Assert.False(pw.Verify("alice", new byte[1 << 20]));
        Assert.False(pw.Verify(new string('a', 1 << 20), B("pw")));
        Assert.False(pw.Verify("alice", new byte[] { 0xff, 0xfe, 0xc3, 0x28 }));
        Assert.False(pw.Verify("\uD800alice", B("pw")));
        Assert.False(pw.Verify("alice\0", B("pw")));

        // Non-UTF-8 user names in the file are dropped, never decoded to U+FFFD.
        var bytes = new List<byte>();
        bytes.AddRange(new byte[] { 0xe9, (byte)'x' });
        bytes.AddRange(B($":{good}\n"));
        var f2 = PasswordFile.Parse(bytes.ToArray(), "latin1");
        Assert.Equal(0, f2.Count);
        Assert.Single(f2.Diagnostics);
        Assert.False(f2.Verify("\uFFFDx", B("pw")));

        Assert.Equal(0, PasswordFile.Parse("", "empty").Count);
        Assert.False(PasswordFile.Parse("", "empty").Verify("a", B("")));
        var huge = PasswordFile.Parse(new string('x', 1 << 20) + ":" + new string('$', 1 << 20), "huge");
        Assert.Equal(0, huge.Count);
        var garbage = new byte[1 << 20];
        new Random(1).NextBytes(garbage);
        var g = PasswordFile.Parse(garbage, "garbage");
        Assert.False(g.Verify("a", B("b")));
        Assert.Throws<SecurityFileException>(() => PasswordFile.Load("/nonexistent/midge/pw"));
    }

    // An unknown user is checked against a hash of the same kind and iteration count as most of the file's
    // users, so a failed login costs the same work whether or not the user exists (checked by shape, not by
    // timing: a stopwatch on a shared CI machine proves nothing).
    [Fact]
    public void Unknown_users_are_checked_against_a_hash_of_the_files_usual_cost()
    {
        string Hash(int iterations) => PasswordHash.Create(B("pw"), iterations: iterations).ToString();
        var pw = PasswordFile.Parse($"alice:{Hash(20_000)}\nbob:{Hash(20_000)}\ncarol:{Hash(1_000)}\n", "f");
        Assert.Equal(PasswordHashKind.Sha512Pbkdf2, pw.UnknownUserHash.Kind);
        Assert.Equal(20_000, pw.UnknownUserHash.Iterations);
        Assert.False(pw.Verify("nobody", B("pw")));

        var sha256 = PasswordHash.Create(B("pw"), PasswordHashKind.Sha256Pbkdf2, 5_000).ToString();
        var other = PasswordFile.Parse($"dave:{sha256}\n", "f");
        Assert.Equal(PasswordHashKind.Sha256Pbkdf2, other.UnknownUserHash.Kind);
        Assert.Equal(5_000, other.UnknownUserHash.Iterations);
    }

    [Fact]
    public async Task Authenticator_allows_denies_and_defers()
    {
        var good = PasswordHash.Create(B("pw")).ToString();
        var auth = new PasswordFileAuthenticator(PasswordFile.Parse($"alice:{good}\n", "f"));
        Assert.Equal(AuthOutcome.Allow, (await auth.AuthenticateAsync(new AuthRequest("c", "alice", B("pw")), default)).Outcome);
        Assert.Equal(AuthOutcome.Deny, (await auth.AuthenticateAsync(new AuthRequest("c", "alice", B("no")), default)).Outcome);
        Assert.Equal(AuthOutcome.Deny, (await auth.AuthenticateAsync(new AuthRequest("c", "alice", null), default)).Outcome);
        Assert.Equal(AuthOutcome.Deny, (await auth.AuthenticateAsync(new AuthRequest("c", "bob", B("pw")), default)).Outcome);
        Assert.Equal(AuthOutcome.Defer, (await auth.AuthenticateAsync(new AuthRequest("c", null, null), default)).Outcome);

        auth.Reload(PasswordFile.Parse($"bob:{good}\n", "f"));
        Assert.Equal(AuthOutcome.Deny, (await auth.AuthenticateAsync(new AuthRequest("c", "alice", B("pw")), default)).Outcome);
        Assert.Equal(AuthOutcome.Allow, (await auth.AuthenticateAsync(new AuthRequest("c", "bob", B("pw")), default)).Outcome);
    }
}
