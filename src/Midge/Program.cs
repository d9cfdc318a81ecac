using System.Reflection;
using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Midge.Config;
using Midge.Core;
using Midge.Hosting;
using Midge.Persistence;
using Midge.Transport;

namespace Midge;

public static partial class Program
{
    public static string Version { get; } =
        typeof(Program).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    public static async Task<int> Main(string[] args)
    {
        if (args.Length > 0 && args[0] is "pub") return await Tools.PubCommand.RunAsync(args[1..]);
        if (args.Length > 0 && args[0] is "sub") return await Tools.SubCommand.RunAsync(args[1..]);
        if (args.Length > 0 && args[0] == "passwd")
        {
            return Midge.Security.PasswdCommand.Run(args[1..], Console.In, Console.Out, Console.Error,
                Midge.Security.PasswdCommand.ConsolePrompt);
        }
        if (args.Length > 0 && args[0] is "apikey") return Midge.Security.ApiKeyCommand.Run(args[1..], Console.Out, Console.Error);
        if (args.Length > 0 && args[0] is "bench")
        {
            // Receive loops take their timestamp on the socket thread, not behind the publishers' work items.
            InlineSocketCompletions();
            return await Tools.BenchCommand.RunAsync(args[1..]);
        }
        if (args.Length > 0 && args[0] is "ctl")
        {
            Console.Error.WriteLine($"Error: 'midge {args[0]}' is not available in this version yet.");
            return 1;
        }

        InlineSocketCompletions();
        BrokerArguments arguments;
        BrokerConfig config;
        TlsCertificateStore tls;
        try
        {
            arguments = BrokerArguments.Parse(args);
            if (arguments.Help)
            {
                Console.WriteLine(BrokerArguments.Usage);
                return 0;
            }
            if (arguments.Version)
            {
                Console.WriteLine($"midge version {Version}");
                return 0;
            }
            config = arguments.ToBrokerConfig();
            LogFiles.Check(config); // a log file in a missing directory: file:line, before anything starts
            tls = new TlsCertificateStore(config); // certfile, keyfile, cafile, capath, crlfile: errors name the line
        }
        catch (CommandLineException ex)
        {
            Console.Error.WriteLine($"Error: {ex.Message}");
            Console.Error.WriteLine("See 'midge -h' for usage.");
            return 1;
        }
        catch (ConfigException ex)
        {
            Console.Error.WriteLine($"Error: {ex.Message}");
            return 3;
        }

        if (arguments.TestConfig)
        {
            foreach (var notice in config.Notices) Console.Error.WriteLine($"Notice: {notice}");
            Console.WriteLine("Configuration file is valid.");
            return 0;
        }

        if (arguments.Daemon)
        {
            if (!Daemon.IsChild) return await Daemon.StartAsync(args);
            Daemon.BeginChild();
        }

        return await RunAsync(arguments, config, tls);
    }

    /// <summary>
    /// The broker runs socket completions on the socket engine threads (one per core) instead of handing each to
    /// the thread pool: a PUBLISH is read, routed and sent to an idle subscriber on the thread that saw it
    /// arrive, as Mosquitto does, with no thread hand-over in between (docs/benchmarks.md). Work that may be
    /// slow (a CONNECT's password hash, AUTH) moves to the thread pool first (MqttConnection.Socket.cs). It must
    /// be set before the first socket exists; an explicit DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS wins.
    /// </summary>
    private static void InlineSocketCompletions()
    {
        const string Name = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";
        if (Environment.GetEnvironmentVariable(Name) is null) Environment.SetEnvironmentVariable(Name, "1");
    }

    private static async Task<int> RunAsync(BrokerArguments arguments, BrokerConfig config, TlsCertificateStore tls)
    {
        MidgeLoggerProvider loggerProvider;
        try
        {
            loggerProvider = new MidgeLoggerProvider(config);
        }
        catch (LogFileException ex)
        {
            Console.Error.WriteLine($"Error: {ex.Message}");
            return 1;
        }
        try
        {
            return await RunAsync(arguments, config, tls, loggerProvider);
        }
        finally
        {
            // What is still queued is written; a destination that takes nothing any more is given up on.
            loggerProvider.Dispose();
        }
    }

    private static async Task<int> RunAsync(BrokerArguments arguments, BrokerConfig config, TlsCertificateStore tls,
        MidgeLoggerProvider loggerProvider)
    {
        using var loggerFactory = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Trace).AddProvider(loggerProvider));
        var log = loggerFactory.CreateLogger("Midge");
        Broker broker;
        PersistentStore? persistent = null;
        try
        {
            // persistence true: the file is opened (Mosquitto's mosquitto.db converted first) and the broker restores
            // its sessions and retained messages from it; the hosting closes it when the broker stops.
            if (config.Persistence) persistent = PersistentStore.Open(config, loggerFactory);
            broker = new Broker(config, loggerFactory, null, persistent?.Store);
            persistent?.RouteTakenOver(broker);
        }
        catch (Exception ex) when (ex is Midge.Security.SecurityFileException or Midge.Security.AclFileException or StoreException)
        {
            persistent?.Dispose();
            StartFailed(config, log, ex.Message);
            return 1;
        }
        foreach (var note in broker.Security.Diagnostics) Log.ConfigNotice(log, note);
        loggerProvider.Broker = broker;

        Log.Starting(log, Version);
        if (arguments.ConfigFile is { } file) Log.ConfigLoaded(log, file);
        foreach (var notice in config.Notices) Log.ConfigNotice(log, notice.ToString());
        if (config.LocalOnlyMode) Log.LocalOnly(log);

        // The broker is configured by its own file only. The host would otherwise read appsettings.json from the
        // working directory and watch that directory for it, recursively: inotify watches on every directory
        // below (30,000 when started from /) and work on the broker's threads whenever a file there changed.
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = ["--hostBuilder:reloadConfigOnChange=false"],
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(loggerProvider);
        // The host logs a failed start (a port in use) with the whole stack trace before StartAsync throws;
        // the catch below says it in one line. Its Critical events (a faulted heartbeat stopping the host) stay.
        builder.Logging.AddFilter("Microsoft.Extensions.Hosting.Internal.Host", LogLevel.Critical);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(5));
        // The same hosting as an application that embeds Midge (src/Midge.Hosting, docs/embedding.md).
        builder.Services.AddMidge(broker, new MidgeOptions
        {
            Version = Version,
            // POST /api/v5/configs/reload (docs/http-api.md) does what SIGHUP does.
            Reload = () => Reload(arguments, broker, tls, loggerProvider, log),
        }, tls);
        builder.WebHost.ConfigureKestrel(o => o.AddServerHeader = false);
        await using var app = builder.Build();

        var lifetime = app.Services.GetRequiredService<IHostApplicationLifetime>();
        lifetime.ApplicationStopping.Register(() => Log.Stopping(log)); // the hosting disconnects every client
        using var hup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, ctx =>
        {
            ctx.Cancel = true;
            Reload(arguments, broker, tls, loggerProvider, log);
        });

        try
        {
            await app.StartAsync();
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or System.Net.Sockets.SocketException)
        {
            StartFailed(config, log, ex.Message);
            return 1;
        }
        if (config.PidFile is { } pidFile)
        {
            try
            {
                // Written beside it, then moved over it: whoever reads the file sees the whole pid or no file.
                string partial = pidFile + ".new";
                File.WriteAllText(partial, Environment.ProcessId + "\n");
                File.Move(partial, pidFile, overwrite: true);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // As Mosquitto: a pid file that cannot be written stops the start, in one line.
                StartFailed(config, log, $"unable to write pid file {pidFile}: {ex.Message}");
                await app.StopAsync();
                return 1;
            }
        }
        if (arguments.Daemon && Daemon.IsChild) Daemon.Detach();
        if (config.OtlpEndpoint is { } otlpEndpoint)
        {
            app.Services.GetRequiredService<BrokerMetrics>(); // the instruments exist from now on, HTTP listener or not
            Log.OtlpExport(log, otlpEndpoint.ToString(), config.OtlpProtocol == OtlpProtocol.Grpc ? "grpc" : "http/protobuf",
                config.OtlpIntervalSeconds);
        }
        using var otlp = OtlpMetrics.Start(config, Version);
        SettleStartupHeap();
        await app.WaitForShutdownAsync();
        OtlpMetrics.Stop(otlp);
        persistent?.Dispose(); // the hosting wrote and closed the store after the clients; this lets go of its lock
        if (config.PidFile is { } pid)
        {
            try
            {
                File.Delete(pid);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                Log.PidFileNotRemoved(log, pid, ex.Message);
            }
        }
        Log.Stopped(log);
        return 0;
    }

    /// <summary>A start that fails says why in the log and, when the log does not go to stderr (Debian's
    /// <c>log_dest file</c>), on stderr too: the service manager shows it where an administrator looks first.</summary>
    private static void StartFailed(BrokerConfig config, ILogger log, string message)
    {
        Log.StartFailed(log, message);
        if (!config.LogDestinations.Any(d => d.Kind == LogDestinationKind.Stderr)) Console.Error.WriteLine($"Error: {message}");
    }

    /// <summary>
    /// Everything the start left on the heap (configuration, the host and its services, listeners) is compacted
    /// into the oldest generation now, in one pause before the first clients are served. Otherwise the first
    /// collections under traffic copied it: a 7 ms pause 1.5 s after start in the bench's latency scenario, every
    /// message that arrived meanwhile waiting for it (docs/benchmarks.md). A heap that a large store filled (a million
    /// retained messages: above <see cref="SettleWholeHeapBelow"/>) is in the oldest generation already, and
    /// compacting all of it would hold the first clients for seconds: only the young generations are promoted then.
    /// </summary>
    private static void SettleStartupHeap()
    {
        if (GC.GetTotalMemory(forceFullCollection: false) < SettleWholeHeapBelow)
        {
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
            return;
        }
        GC.Collect(1, GCCollectionMode.Forced, blocking: true); // generation 0 into 1, 1 into 2
        GC.Collect(1, GCCollectionMode.Forced, blocking: true); // and what was in 0 into 2
    }

    /// <summary>The heap size up to which <see cref="SettleStartupHeap"/> compacts the whole heap.</summary>
    private const long SettleWholeHeapBelow = 256L * 1024 * 1024;

    /// <summary>SIGHUP: re-read the configuration; limits and logging change at once, listeners stay bound, TLS
    /// certificates are re-read for new handshakes (open connections keep theirs).</summary>
    private static string? Reload(BrokerArguments arguments, Broker broker, TlsCertificateStore tls, MidgeLoggerProvider logger, ILogger log)
    {
        if (arguments.ConfigFile is null) return "the broker was started without a configuration file (-c)";
        lock (ReloadLock) // SIGHUP and the HTTP API may ask at once
        {
            return ReloadLocked(arguments, broker, tls, logger, log);
        }
    }

    private static readonly object ReloadLock = new();

    private static string? ReloadLocked(BrokerArguments arguments, Broker broker, TlsCertificateStore tls, MidgeLoggerProvider logger, ILogger log)
    {
        try
        {
            var config = arguments.ToBrokerConfig();
            LogFiles.Check(config);
            var running = broker.Config;
            var applyTls = tls.Prepare(config);
            var applyLog = logger.Prepare(config); // reopens the log file (rotation); the old one stays if it fails
            broker.Reload(config);
            applyTls();
            applyLog();
            Log.Reloaded(log, arguments.ConfigFile!);
            if (running.OtlpEndpoint != config.OtlpEndpoint || running.OtlpProtocol != config.OtlpProtocol
                || running.OtlpIntervalSeconds != config.OtlpIntervalSeconds)
            {
                Log.OtlpNeedsRestart(log);
            }
            return null;
        }
        catch (Exception ex) when (ex is ConfigException or LogFileException or Midge.Security.SecurityFileException or Midge.Security.AclFileException)
        {
            Log.ReloadFailed(log, ex.Message);
            return ex.Message;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "midge version {Version} starting", EventName = "Notice.Starting")]
        public static partial void Starting(ILogger logger, string version);

        [LoggerMessage(2, LogLevel.Information, "Config loaded from {File}.", EventName = "Notice.ConfigLoaded")]
        public static partial void ConfigLoaded(ILogger logger, string file);

        [LoggerMessage(3, LogLevel.Information, "Starting in local only mode. Connections will only be possible from clients running on this machine. Create a configuration file which defines a listener to allow remote access.", EventName = "Notice.LocalOnly")]
        public static partial void LocalOnly(ILogger logger);

        [LoggerMessage(4, LogLevel.Warning, "{Notice}")]
        public static partial void ConfigNotice(ILogger logger, string notice);

        [LoggerMessage(5, LogLevel.Information, "midge version {Version} running", EventName = "Notice.Running")]
        public static partial void Running(ILogger logger, string version);

        [LoggerMessage(6, LogLevel.Information, "midge received SIGTERM/SIGINT, stopping.", EventName = "Notice.Stopping")]
        public static partial void Stopping(ILogger logger);

        [LoggerMessage(7, LogLevel.Information, "midge version {Version} terminating", EventName = "Notice.Terminating")]
        public static partial void Terminating(ILogger logger, string version);

        [LoggerMessage(12, LogLevel.Warning, "Unable to remove pid file {Path}: {Message}")]
        public static partial void PidFileNotRemoved(ILogger logger, string path, string message);

        [LoggerMessage(8, LogLevel.Error, "Could not start: {Message}")]
        public static partial void StartFailed(ILogger logger, string message);

        [LoggerMessage(9, LogLevel.Information, "Reloaded configuration from {File}.", EventName = "Notice.Reloaded")]
        public static partial void Reloaded(ILogger logger, string file);

        [LoggerMessage(10, LogLevel.Error, "Error reloading configuration: {Message}")]
        public static partial void ReloadFailed(ILogger logger, string message);

        [LoggerMessage(11, LogLevel.Information, "midge stopped.", EventName = "Notice.Stopped")]
        public static partial void Stopped(ILogger logger);

        [LoggerMessage(13, LogLevel.Information, "Exporting metrics with OTLP ({Protocol}) to {Endpoint} every {Interval} s.", EventName = "Notice.OtlpExport")]
        public static partial void OtlpExport(ILogger logger, string endpoint, string protocol, int interval);

        [LoggerMessage(14, LogLevel.Warning, "otlp_endpoint, otlp_protocol and otlp_interval take effect at the next start; the export goes on as started.")]
        public static partial void OtlpNeedsRestart(ILogger logger);
    }
}
