using System.Text;

namespace Midge.Security.Tests;

public class PasswdCommandTests
{
    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    private sealed record Result(int Code, string Out, string Err, List<string> Prompts);

    private static Result Run(string[] args, params string?[] answers)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var queue = new Queue<string?>(answers);
        var prompts = new List<string>();
        int code = PasswdCommand.Run(args, TextReader.Null, stdout, stderr, p =>
        {
            prompts.Add(p);
            return queue.Count > 0 ? queue.Dequeue() : null;
        });
        return new Result(code, stdout.ToString(), stderr.ToString(), prompts);
    }

    [Fact]
    public void Create_in_batch_mode_writes_a_pbkdf2_entry_with_101_iterations()
    {
        using var dir = new TempDir();
        var f = dir.File("pw");
        var r = Run(["-c", "-b", f, "alice", "pw1"]);
        Assert.Equal(0, r.Code);
        Assert.Equal("", r.Err);
        var text = File.ReadAllText(f);
        Assert.Matches(@"^alice:\$7\$101\$[^$]{16}\$[^$]{88}\n$", text);
        Assert.True(PasswordFile.Load(f).Verify("alice", B("pw1")));
        // -c overwrites.
        Assert.Equal(0, Run(["-c", "-b", f, "bob", "pw2"]).Code);
        var pw = PasswordFile.Load(f);
        Assert.False(pw.Contains("alice"));
        Assert.True(pw.Verify("bob", B("pw2")));
    }

    [Fact]
    public void H_and_I_choose_the_hash()
    {
        using var dir = new TempDir();
        var f = dir.File("pw");
        Assert.Equal(0, Run(["-H", "sha512", "-c", "-b", f, "a", "x"]).Code);
        Assert.Equal(0, Run(["-H", "sha512-pbkdf2", "-I", "1000", "-b", f, "b", "y"]).Code);
        var pw = PasswordFile.Load(f);
        Assert.Equal(PasswordHashKind.Sha512, pw.GetHash("a")!.Kind);
        Assert.Equal(1000, pw.GetHash("b")!.Iterations);
        Assert.True(pw.Verify("a", B("x")));
        Assert.True(pw.Verify("b", B("y")));

        var bad = Run(["-H", "md5", "-b", f, "a", "x"]);
        Assert.Equal(1, bad.Code);
        Assert.Equal("Error: Unknown hash type 'md5'\n", bad.Err);
        var zero = Run(["-I", "0", "-b", f, "a", "x"]);
        Assert.Equal(1, zero.Code);
        Assert.Equal("Error: Number of iterations must be > 0.\n", zero.Err);
        Assert.Equal(1, Run(["-I"]).Code);
    }

    [Fact]
    public void Update_keeps_other_users_comments_and_blank_lines()
    {
        using var dir = new TempDir();
        var f = dir.File("pw");
        Assert.Equal(0, Run(["-c", "-b", f, "alice", "a1"]).Code);
        Assert.Equal(0, Run(["-b", f, "bob", "b1"]).Code);
        File.AppendAllText(f, "# a comment\n\n");
        Assert.Equal(0, Run(["-b", f, "carol", "c1"]).Code);
        var aliceLine = File.ReadAllLines(f)[0];
        Assert.Equal(0, Run(["-b", f, "bob", "b2"]).Code);

        var lines = File.ReadAllLines(f);
        Assert.Equal(aliceLine, lines[0]);
        Assert.StartsWith("bob:", lines[1]);
        Assert.Equal("# a comment", lines[2]);
        Assert.Equal("", lines[3]);
        Assert.StartsWith("carol:", lines[4]);
        var pw = PasswordFile.Load(f);
        Assert.True(pw.Verify("alice", B("a1")));
        Assert.True(pw.Verify("bob", B("b2")));
        Assert.False(pw.Verify("bob", B("b1")));
        Assert.True(pw.Verify("carol", B("c1")));
        // No temporary files are left behind.
        Assert.Single(Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void Update_keeps_the_file_mode_and_writes_through_symlinks()
    {
        if (OperatingSystem.IsWindows()) return;
        using var dir = new TempDir();
        var f = dir.File("pw");
        Assert.Equal(0, Run(["-c", "-b", f, "alice", "a1"]).Code);
        File.SetUnixFileMode(f, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);
        var link = dir.File("link");
        File.CreateSymbolicLink(link, f);
        Assert.Equal(0, Run(["-b", link, "bob", "b1"]).Code);
        Assert.NotNull(new FileInfo(link).LinkTarget);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead, File.GetUnixFileMode(f));
        Assert.True(PasswordFile.Load(f).Verify("bob", B("b1")));
    }

    [Fact]
    public void Delete_removes_only_that_user()
    {
        using var dir = new TempDir();
        var f = dir.File("pw");
        Run(["-c", "-b", f, "alice", "a1"]);
        Run(["-b", f, "bob", "b1"]);
        var r = Run(["-D", f, "alice"]);
        Assert.Equal(0, r.Code);
        var pw = PasswordFile.Load(f);
        Assert.False(pw.Contains("alice"));
        Assert.True(pw.Verify("bob", B("b1")));

        var before = File.ReadAllText(f);
        var missing = Run(["-D", f, "nobody"]);
        Assert.Equal(1, missing.Code);
        Assert.Equal("Warning: User nobody not found in password file.\n", missing.Err);
        Assert.Equal(before, File.ReadAllText(f));
    }

    [Fact]
    public void U_hashes_a_plain_text_file_and_leaves_hashes_alone()
    {
        using var dir = new TempDir();
        var f = dir.File("pw");
        var hashed = PasswdCommand.FormatEntry("h", "hpw");
        File.WriteAllText(f, "x:plain1\n# note\ny:plain2\n" + hashed);
        var r = Run(["-U", f]);
        Assert.Equal(0, r.Code);
        var pw = PasswordFile.Load(f);
        Assert.Empty(pw.Diagnostics);
        Assert.True(pw.Verify("x", B("plain1")));
        Assert.True(pw.Verify("y", B("plain2")));
        Assert.True(pw.Verify("h", B("hpw")));
        Assert.Contains(hashed, File.ReadAllText(f));
        Assert.Equal(1, Run(["-U"]).Code);
        Assert.Equal(1, Run(["-U", f, "extra"]).Code);
    }

    [Fact]
    public void Interactive_mode_prompts_twice_and_fails_on_mismatch()
    {
        using var dir = new TempDir();
        var f = dir.File("pw");
        var ok = Run(["-c", f, "alice"], "pw1", "pw1");
        Assert.Equal(0, ok.Code);
        Assert.Equal(["Password: ", "Reenter password: "], ok.Prompts);
        Assert.True(PasswordFile.Load(f).Verify("alice", B("pw1")));

        var before = File.ReadAllText(f);
        var mismatch = Run([f, "alice"], "new1", "new2");
        Assert.Equal(2, mismatch.Code);
        Assert.Equal("Error: Passwords do not match.\n", mismatch.Err);
        Assert.Equal(before, File.ReadAllText(f));

        var empty = Run([f, "bob"], "");
        Assert.Equal(1, empty.Code);
        Assert.Equal("Error: Empty password.\n", empty.Err);
        Assert.Equal(1, Run([f, "bob"]).Code); // end of input

        Assert.Equal(0, Run([f, "bob"], "b", "b").Code);
        Assert.True(PasswordFile.Load(f).Verify("bob", B("b")));

        // The default prompt reads lines from stdin when no prompt function is given.
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = PasswdCommand.Run([f, "carol"], new StringReader("c\nc\n"), stdout, stderr, null);
        Assert.Equal(0, code);
        Assert.Contains("Password: ", stdout.ToString());
        Assert.True(PasswordFile.Load(f).Verify("carol", B("c")));
    }

    [Fact]
    public void Nonexistent_file_without_c_is_an_error()
    {
        using var dir = new TempDir();
        var f = dir.File("missing");
        var r = Run(["-b", f, "alice", "pw"]);
        Assert.Equal(1, r.Code);
        Assert.Equal($"Error: Unable to open password file {f}. No such file or directory.\n", r.Err);
        Assert.False(File.Exists(f));
        Assert.Equal(1, Run(["-D", f, "alice"]).Code);
        Assert.Equal(1, Run(["-U", f]).Code);
    }

    [Fact]
    public void Argument_errors_match_mosquitto_passwd()
    {
        using var dir = new TempDir();
        var f = dir.File("pw");
        Assert.Equal(1, Run([]).Code);
        Assert.Contains("Usage:", Run([]).Out);
        Assert.Equal("Error: -c and -D cannot be used together.\n", Run(["-c", "-D", f, "a"]).Err);
        Assert.Equal("Error: -c and -U cannot be used together.\n", Run(["-c", "-U", f]).Err);
        Assert.Equal("Error: -D and -U cannot be used together.\n", Run(["-D", "-U", f]).Err);
        Assert.Equal("Error: -b and -D cannot be used together.\n", Run(["-b", "-D", f, "a"]).Err);
        Assert.Equal("Error: -c argument given but password file, username, or password missing.\n", Run(["-c", "-b", f, "a"]).Err);
        Assert.Equal("Error: -c argument given but password file or username missing.\n", Run(["-c", f]).Err);
        Assert.Equal("Error: -D argument given but password file or username missing.\n", Run(["-D", f]).Err);
        Assert.Equal("Error: Username must not contain the ':' character.\n", Run(["-c", "-b", f, "a:b", "x"]).Err);
        Assert.Equal("Error: Username must not contain control characters.\n", Run(["-c", "-b", f, "a\nb", "x"]).Err);
        Assert.Equal("Error: Password must be less than 65536 characters long.\n", Run(["-c", "-b", f, "a", new string('x', 70000)]).Err);
        Assert.Equal(1, Run(["-b", f, "a"]).Code);
        Assert.False(File.Exists(f));
    }

    [Fact]
    public void Corrupt_file_is_reported_with_its_line()
    {
        using var dir = new TempDir();
        var f = dir.File("pw");
        File.WriteAllText(f, PasswdCommand.FormatEntry("a", "x") + "garbage line\n");
        var before = File.ReadAllText(f);
        var r = Run(["-b", f, "b", "y"]);
        Assert.Equal(1, r.Code);
        Assert.Equal("Error: Corrupt password file at line 2.\n", r.Err);
        Assert.Equal(before, File.ReadAllText(f));
    }

    [Fact]
    public void Files_made_by_midge_passwd_are_accepted_by_mosquitto()
    {
        Assert.True(MosquittoBroker.Available, "needs Debian's mosquitto and mosquitto-clients");
        using var dir = new TempDir();
        var f = dir.File("pw");
        Assert.Equal(0, Run(["-c", "-b", f, "alice", "s3cret"]).Code);
        Assert.Equal(0, Run(["-H", "sha512", "-b", f, "bob", "hunter2"]).Code);
        Assert.Equal(0, Run(["-I", "2000", "-b", f, "carol", "pässwörd"]).Code);
        using var broker = new MosquittoBroker(dir, $"password_file {f}");
        Assert.Equal(0, broker.Pub("alice", "s3cret", "t"));
        Assert.NotEqual(0, broker.Pub("alice", "wrong", "t"));
        Assert.Equal(0, broker.Pub("bob", "hunter2", "t"));
        Assert.NotEqual(0, broker.Pub("bob", "s3cret", "t"));
        Assert.Equal(0, broker.Pub("carol", "pässwörd", "t"));
        Assert.NotEqual(0, broker.Pub("mallory", "s3cret", "t"));
        Assert.NotEqual(0, broker.Pub(null, null, "t"));
    }
}
