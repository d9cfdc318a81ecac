using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Midge.Security.Tests;

internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "midge-sec-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}

internal static class Proc
{
    public static (int Code, string Out, string Err) Run(string exe, params string[] args)
    {
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(30_000))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{exe} did not exit");
        }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    public static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }
}

/// <summary>Debian's mosquitto broker on a free loopback port, killed on dispose.</summary>
internal sealed class MosquittoBroker : IDisposable
{
    private readonly Process _process;

    public MosquittoBroker(TempDir dir, string extraConfig)
    {
        Port = Proc.FreePort();
        var conf = dir.File("mosquitto.conf");
        System.IO.File.WriteAllText(conf, $"listener {Port} 127.0.0.1\nallow_anonymous false\npersistence false\n{extraConfig}\n");
        var exe = System.IO.File.Exists("/usr/sbin/mosquitto") ? "/usr/sbin/mosquitto" : "mosquitto";
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(conf);
        _process = Process.Start(psi)!;
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited) throw new InvalidOperationException("mosquitto exited early");
            try
            {
                using var c = new TcpClient();
                c.Connect(IPAddress.Loopback, Port);
                return;
            }
            catch (SocketException)
            {
                Thread.Sleep(50);
            }
        }
        Dispose();
        throw new TimeoutException("mosquitto did not listen");
    }

    public int Port { get; }

    public static bool Available =>
        System.IO.File.Exists("/usr/sbin/mosquitto") && System.IO.File.Exists("/usr/bin/mosquitto_pub");

    public int Pub(string? user, string? password, string topic)
    {
        var args = new List<string> { "-h", "127.0.0.1", "-p", Port.ToString(), "-t", topic, "-m", "x", "-i", "pub-" + Guid.NewGuid().ToString("N")[..8] };
        if (user is not null) { args.Add("-u"); args.Add(user); }
        if (password is not null) { args.Add("-P"); args.Add(password); }
        return Proc.Run("/usr/bin/mosquitto_pub", args.ToArray()).Code;
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                _process.WaitForExit(5_000);
            }
        }
        catch (InvalidOperationException) { }
        _process.Dispose();
    }
}
