namespace Midge.Config.Tests;

/// <summary>The cluster on NATS: <c>cluster_*</c> options (docs/cluster.md).</summary>
public class ClusterOptionTests
{
    private static BrokerConfig Parse(string text, string? baseDirectory = null) =>
        ConfigParser.Parse("listener 1883\n" + text, "m.conf", baseDirectory);

    private static string Error(string text, string? baseDirectory = null) =>
        Assert.Throws<ConfigException>(() => Parse(text, baseDirectory)).Message;

    [Fact]
    public void NoClusterUrl_RunsAlone() => Assert.Null(Parse("").Cluster);

    [Fact]
    public void Defaults()
    {
        var c = Parse("cluster_nats_url nats://127.0.0.1:4222\n").Cluster!;
        Assert.Equal([new Uri("nats://127.0.0.1:4222")], c.NatsUrls);
        Assert.Equal("midge", c.Name);
        Assert.False(string.IsNullOrEmpty(c.NodeName));
        Assert.All(c.NodeName, ch => Assert.True(char.IsAsciiLetterOrDigit(ch) || ch is '-' or '_'));
        Assert.Null(c.Username);
        Assert.Null(c.Token);
        Assert.False(c.UsesTls);
        Assert.Equal(1, c.Replicas);
        Assert.Equal(new ConfigSource("m.conf", 2), c.Source);
    }

    [Fact]
    public void EveryOption_IsRead()
    {
        using var dir = new TempDir();
        dir.Write("node.creds", "creds");
        dir.Write("ca.pem", "ca");
        dir.Write("c.pem", "c");
        dir.Write("k.pem", "k");
        var c = Parse("""
            cluster_nats_url nats://n1.example:4222
            cluster_nats_url tls://n2.example
            cluster_name prod-eu
            cluster_node_name node_1
            cluster_nats_username midge
            cluster_nats_password s3cret word
            cluster_nats_credentials node.creds
            cluster_nats_cafile ca.pem
            cluster_nats_certfile c.pem
            cluster_nats_keyfile k.pem
            cluster_nats_insecure true
            cluster_replicas 3

            """, dir.Path).Cluster!;
        Assert.Equal([new Uri("nats://n1.example:4222"), new Uri("tls://n2.example:4222")], c.NatsUrls);
        Assert.Equal(("prod-eu", "node_1", "midge", "s3cret word"), (c.Name, c.NodeName, c.Username, c.Password));
        Assert.Equal(Path.Combine(dir.Path, "node.creds"), c.CredentialsFile);
        Assert.Equal(Path.Combine(dir.Path, "ca.pem"), c.CaFile);
        Assert.Equal(Path.Combine(dir.Path, "c.pem"), c.CertFile);
        Assert.Equal(Path.Combine(dir.Path, "k.pem"), c.KeyFile);
        Assert.True(c.Insecure);
        Assert.True(c.UsesTls);
        Assert.Equal(3, c.Replicas);
    }

    [Fact]
    public void Token_IsRead() => Assert.Equal("t0k", Parse("cluster_nats_url nats://h:1\ncluster_nats_token t0k\n").Cluster!.Token);

    [Theory]
    [InlineData("cluster_nats_url http://h:4222", "m.conf:2: 'cluster_nats_url' must be nats://host:port or tls://host:port, got 'http://h:4222'")]
    [InlineData("cluster_nats_url h:4222", "must be nats://host:port")]
    [InlineData("cluster_nats_url nats://u:p@h:4222", "credentials go in cluster_nats_username")]
    [InlineData("cluster_nats_url nats://h:4222/path", "must be nats://host:port")]
    [InlineData("cluster_nats_url nats://h:0", "m.conf:2: 'cluster_nats_url' port must be between 1 and 65535")]
    [InlineData("cluster_nats_url", "m.conf:2: option 'cluster_nats_url' needs a value")]
    [InlineData("cluster_name eu.west", "m.conf:2: 'cluster_name' must be 1 to 64 letters, digits, '-' or '_', got 'eu.west'")]
    [InlineData("cluster_nats_url nats://h:1\ncluster_node_name a*b", "m.conf:3: 'cluster_node_name' must be")]
    [InlineData("cluster_name a", "m.conf:2: cluster options need at least one 'cluster_nats_url'")]
    [InlineData("cluster_nats_url nats://h:1\ncluster_nats_password p", "m.conf:3: 'cluster_nats_password' needs 'cluster_nats_username'")]
    [InlineData("cluster_nats_url nats://h:1\ncluster_nats_username u", "m.conf:3: 'cluster_nats_username' needs 'cluster_nats_password'")]
    [InlineData("cluster_nats_url nats://h:1\ncluster_nats_username u\ncluster_nats_password p\ncluster_nats_token t",
        "m.conf:5: 'cluster_nats_token' and 'cluster_nats_username' exclude each other")]
    [InlineData("cluster_nats_url nats://h:1\ncluster_nats_credentials /nonexistent/x.creds",
        "m.conf:3: 'cluster_nats_credentials': file '/nonexistent/x.creds' does not exist")]
    [InlineData("cluster_nats_url nats://h:1\ncluster_replicas 7", "m.conf:3: 'cluster_replicas' must be between 1 and 5")]
    [InlineData("cluster_nats_url nats://h:1\ncluster_name a\ncluster_name b", "m.conf:4: duplicate 'cluster_name' (already set at m.conf:3)")]
    [InlineData("cluster_nats_url nats://h:1\ncluster_colour red", "m.conf:3:")]
    public void BadValues_NameTheLine(string text, string expected) => Assert.Contains(expected, Error(text + "\n"));

    [Fact]
    public void CertificateWithoutKey_Fails()
    {
        using var dir = new TempDir();
        dir.Write("c.pem", "c");
        Assert.Contains("m.conf:3: 'cluster_nats_certfile' and 'cluster_nats_keyfile' go together",
            Error("cluster_nats_url nats://h:1\ncluster_nats_certfile c.pem\n", dir.Path));
    }
}
