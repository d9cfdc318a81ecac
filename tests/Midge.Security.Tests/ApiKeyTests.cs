namespace Midge.Security.Tests;

/// <summary><c>api_key_file</c> (plain and hashed secrets) and <c>midge apikey</c>.</summary>
public class ApiKeyTests
{
    [Fact]
    public void Plain_and_hashed_secrets_verify_and_nothing_else_does()
    {
        var hash = PasswordHash.Create("hashed-secret"u8).ToString();
        var keys = ApiKeyFile.Parse($"# comment\nplain:secret\nhashed:{hash}\nrole:s2:administrator\n\nbroken\nbad:$7$x\n", "k");
        Assert.Equal(3, keys.Count);
        Assert.True(keys.Verify("plain", "secret"));
        Assert.True(keys.Verify("hashed", "hashed-secret"));
        Assert.True(keys.Verify("role", "s2")); // EMQX's third field, the role, is ignored
        Assert.False(keys.Verify("plain", "Secret"));
        Assert.False(keys.Verify("hashed", hash)); // the hash is not the secret
        Assert.False(keys.Verify("nobody", "secret"));
        Assert.Equal(2, keys.Diagnostics.Count);
        Assert.StartsWith("k:6: ", keys.Diagnostics[0], StringComparison.Ordinal);
    }

    [Fact]
    public void Apikey_adds_with_a_random_secret_prints_it_once_and_stores_only_its_hash()
    {
        using var dir = new TempDir();
        var file = dir.File("keys");
        var stdout = new StringWriter();
        Assert.Equal(0, ApiKeyCommand.Run(["-c", file, "ops"], stdout, new StringWriter()));
        string printed = stdout.ToString().Trim();
        Assert.StartsWith("ops:", printed, StringComparison.Ordinal);
        string secret = printed[4..];
        Assert.Equal(48, secret.Length);
        string stored = File.ReadAllText(file);
        Assert.DoesNotContain(secret, stored, StringComparison.Ordinal);
        Assert.True(ApiKeyFile.Load(file).Verify("ops", secret));

        Assert.Equal(0, ApiKeyCommand.Run([file, "second", "given"], new StringWriter(), new StringWriter()));
        var keys = ApiKeyFile.Load(file);
        Assert.True(keys.Verify("second", "given"));
        Assert.True(keys.Verify("ops", secret));

        Assert.Equal(0, ApiKeyCommand.Run(["-D", file, "ops"], new StringWriter(), new StringWriter()));
        Assert.False(ApiKeyFile.Load(file).Verify("ops", secret));
        Assert.Equal(1, ApiKeyCommand.Run([file, "a:b"], new StringWriter(), new StringWriter()));
        Assert.Equal(1, ApiKeyCommand.Run([file], new StringWriter(), new StringWriter()));
    }
}
