using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Midge.Client.Tests;

/// <summary>A broker process on a free loopback port: Midge (the built midge.dll) or Debian's mosquitto.</summary>
public sealed class BrokerProcess : IDisposable
{
    private Process? _process;

    private BrokerProcess(string kind, int port)
    {
        Kind = kind;
        Port = port;
    }

    public string Kind { get; }
    public int Port { get; }

    public static BrokerProcess Start(string kind, int? port = null)
    {
        var broker = new BrokerProcess(kind, port ?? FreePort());
        broker.Restart();
        return broker;
    }

    public static string RepoRoot { get; } = FindRoot();

    public static string MidgeDll => Path.Combine(RepoRoot, "src", "Midge", "bin",
#if DEBUG
        "Debug",
#else
        "Release",
#endif
        "net10.0", "midge.dll");

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Midge.slnx"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("Midge.slnx not found");
    }

    public static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    public void Restart()
    {
        var start = Kind == "midge"
            ? new ProcessStartInfo("dotnet") { ArgumentList = { MidgeDll, "-p", Port.ToString() } }
            : new ProcessStartInfo("mosquitto") { ArgumentList = { "-p", Port.ToString() } };
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.UseShellExecute = false;
        _process = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {Kind}");
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                using var probe = new TcpClient();
                probe.Connect(IPAddress.Loopback, Port);
                return;
            }
            catch (SocketException)
            {
                if (_process.HasExited) throw new InvalidOperationException($"{Kind} exited with {_process.ExitCode}");
                Thread.Sleep(100);
            }
        }
        throw new TimeoutException($"{Kind} did not listen on {Port}");
    }

    /// <summary>Kills the broker (SIGKILL) and waits for it to exit.</summary>
    public void Kill()
    {
        if (_process is { HasExited: false } p)
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit(10_000);
        }
        _process?.Dispose();
        _process = null;
    }

    public void Dispose() => Kill();
}
