namespace Midge.Config.Tests;

/// <summary>password_file and acl_file: global by default, per listener with per_listener_settings.</summary>
public class SecurityFileOptionTests
{
    private static BrokerConfig P(string text) => ConfigParser.Parse(text, "m.conf");

    [Fact]
    public void Global_AppliesToEveryListener()
    {
        var c = P("listener 1883\nlistener 1884\npassword_file /etc/mosquitto/pw\nacl_file /etc/mosquitto/acl\n");
        Assert.Equal("/etc/mosquitto/pw", c.PasswordFile);
        Assert.All(c.Listeners, l =>
        {
            Assert.Equal("/etc/mosquitto/pw", l.PasswordFile);
            Assert.Equal("/etc/mosquitto/acl", l.AclFile);
        });
    }

    [Fact]
    public void PerListener_EachListenerItsOwn()
    {
        var c = P("per_listener_settings true\nlistener 1883\npassword_file /a\nlistener 1884\nacl_file /b\n");
        Assert.Equal("/a", c.Listeners[0].PasswordFile);
        Assert.Null(c.Listeners[0].AclFile);
        Assert.Null(c.Listeners[1].PasswordFile);
        Assert.Equal("/b", c.Listeners[1].AclFile);
    }

    [Fact]
    public void PathWithSpaces_IsKept()
    {
        var c = P("listener 1883\npassword_file /etc/my files/pw\n");
        Assert.Equal("/etc/my files/pw", c.PasswordFile);
    }

    [Theory]
    [InlineData("password_file")]
    [InlineData("acl_file")]
    public void SetTwice_IsAnError(string option)
    {
        var ex = Assert.Throws<ConfigException>(() => P($"listener 1883\n{option} /a\n{option} /b\n"));
        Assert.StartsWith("m.conf:3:", ex.Message);
    }

    [Fact]
    public void MissingValue_IsAnError()
    {
        var ex = Assert.Throws<ConfigException>(() => P("listener 1883\npassword_file\n"));
        Assert.Contains("needs a value", ex.Message);
    }
}
