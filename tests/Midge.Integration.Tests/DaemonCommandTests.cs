namespace Midge.Integration.Tests;

/// <summary>-d starts the broker again as this process was started (Daemon.ChildCommand).</summary>
public sealed class DaemonCommandTests
{
    private static readonly string[] Args = ["-c", "/etc/m.conf", "-d"];

    [Fact]
    public void Under_the_dotnet_host_the_dll_and_the_hosts_options_are_kept()
    {
        var (file, arguments) = Daemon.ChildCommand("/usr/share/dotnet/dotnet",
            ["dotnet", "exec", "--roll-forward", "Major", "/opt/midge/midge.dll", .. Args], "/opt/midge/midge.dll", Args);
        Assert.Equal("/usr/share/dotnet/dotnet", file);
        Assert.Equal(["exec", "--roll-forward", "Major", "/opt/midge/midge.dll", .. Args], arguments);
    }

    [Fact]
    public void Under_the_apphost_the_dll_is_not_passed_on()
    {
        // dotnet run starts bin/Release/net10.0/midge, whose GetCommandLineArgs()[0] is still midge.dll.
        var (file, arguments) = Daemon.ChildCommand("/src/bin/midge", ["/src/bin/midge", .. Args], "/src/bin/midge.dll", Args);
        Assert.Equal("/src/bin/midge", file);
        Assert.Equal(Args, arguments);
    }

    [Theory]
    [InlineData("/usr/share/dotnet/dotnet", "/opt/midge/midge.dll", true)]
    [InlineData("/opt/midge/midge", "/opt/midge/midge.dll", false)]
    [InlineData("/opt/midge/midge", "/opt/midge/midge", false)] // Native AOT
    public void Without_proc_the_dll_is_added_for_the_dotnet_host_only(string processPath, string entry, bool withDll)
    {
        var (file, arguments) = Daemon.ChildCommand(processPath, null, entry, Args);
        Assert.Equal(processPath, file);
        Assert.Equal(withDll ? [entry, .. Args] : Args, arguments);
    }
}
