using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;
using Midge.Config;
using Midge.Core;

namespace Midge;

/// <summary>
/// Mosquitto-style logging: <c>log_dest</c> (stdout, stderr, file, syslog, topic, none), <c>log_type</c>
/// filtering, and the "<c>1700000000: message</c>" line format (or <c>log_timestamp_format</c>).
/// </summary>
internal sealed class MidgeLoggerProvider : ILoggerProvider
{
    private readonly object _sync = new();
    private readonly List<StreamWriter> _files = [];
    private BrokerConfig _config = new();
    private Socket? _syslog;

    public MidgeLoggerProvider(BrokerConfig config) => Apply(config);

    /// <summary>Where $SYS/broker/log/... messages go for <c>log_dest topic</c>.</summary>
    public Broker? Broker { get; set; }

    public void Apply(BrokerConfig config)
    {
        lock (_sync)
        {
            foreach (var f in _files) f.Dispose();
            _files.Clear();
            _config = config;
            foreach (var dest in config.LogDestinations)
            {
                if (dest.Kind == LogDestinationKind.File && dest.Path is { } path)
                {
                    var stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite);
                    _files.Add(new StreamWriter(stream, new UTF8Encoding(false)) { AutoFlush = true });
                }
                if (dest.Kind == LogDestinationKind.Syslog && _syslog is null && File.Exists("/dev/log"))
                {
                    try
                    {
                        _syslog = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
                        _syslog.Connect(new UnixDomainSocketEndPoint("/dev/log"));
                    }
                    catch (SocketException)
                    {
                        _syslog = null;
                    }
                }
            }
        }
    }

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
        lock (_sync)
        {
            foreach (var f in _files) f.Dispose();
            _files.Clear();
            _syslog?.Dispose();
        }
    }

    internal static LogTypes TypeOf(LogLevel level, EventId eventId) => eventId.Name switch
    {
        "Subscribe" => LogTypes.Subscribe,
        "Unsubscribe" => LogTypes.Unsubscribe,
        { } name when name.StartsWith("Notice.", StringComparison.Ordinal) => LogTypes.Notice,
        _ => level switch
        {
            LogLevel.Trace or LogLevel.Debug => LogTypes.Debug,
            LogLevel.Information => LogTypes.Information | LogTypes.Notice,
            LogLevel.Warning => LogTypes.Warning,
            LogLevel.Error or LogLevel.Critical => LogTypes.Error,
            _ => LogTypes.None,
        },
    };

    /// <summary>
    /// Every type <see cref="TypeOf"/> gives a message of this level. Named events keep to their level: Subscribe and
    /// Unsubscribe are Debug, Notice.* are Information (a test checks every [LoggerMessage] in Midge's assemblies).
    /// </summary>
    internal static LogTypes TypesAt(LogLevel level) => level switch
    {
        LogLevel.Trace or LogLevel.Debug => LogTypes.Debug | LogTypes.Subscribe | LogTypes.Unsubscribe,
        LogLevel.Information => LogTypes.Information | LogTypes.Notice,
        LogLevel.Warning => LogTypes.Warning,
        LogLevel.Error or LogLevel.Critical => LogTypes.Error,
        _ => LogTypes.None,
    };

    private void Write(LogTypes type, string message)
    {
        var config = _config;
        if ((config.LogTypes & type) == 0) return;
        string line = config.LogTimestamp ? Timestamp(config.LogTimestampFormat) + ": " + message : message;
        lock (_sync)
        {
            foreach (var dest in config.LogDestinations)
            {
                switch (dest.Kind)
                {
                    case LogDestinationKind.Stdout: Console.Out.WriteLine(line); break;
                    case LogDestinationKind.Stderr: Console.Error.WriteLine(line); break;
                    case LogDestinationKind.Syslog: Syslog(type, message, config.LogFacility ?? 0); break;
                    case LogDestinationKind.Topic:
                        Broker?.PublishFromBroker("$SYS/broker/log/" + TopicLetter(type), Encoding.UTF8.GetBytes(line));
                        break;
                }
            }
            foreach (var f in _files) f.WriteLine(line);
        }
    }

    private static string TopicLetter(LogTypes type) =>
        (type & LogTypes.Error) != 0 ? "E" : (type & LogTypes.Warning) != 0 ? "W" : (type & LogTypes.Notice) != 0 ? "N" :
        (type & LogTypes.Information) != 0 ? "I" : (type & LogTypes.Subscribe) != 0 ? "M" :
        (type & LogTypes.Unsubscribe) != 0 ? "M" : "D";

    private void Syslog(LogTypes type, string message, int facility)
    {
        if (_syslog is null) return;
        int severity = (type & LogTypes.Error) != 0 ? 3 : (type & LogTypes.Warning) != 0 ? 4 :
            (type & LogTypes.Notice) != 0 ? 5 : (type & LogTypes.Information) != 0 ? 6 : 7;
        int pri = ((16 + facility) * 8) + severity; // local0..local7
        try
        {
            _syslog.Send(Encoding.UTF8.GetBytes($"<{pri}>midge[{Environment.ProcessId}]: {message}"));
        }
        catch (SocketException)
        {
        }
    }

    /// <summary>Seconds since the epoch, or a strftime-style format as Mosquitto's log_timestamp_format.</summary>
    internal static string Timestamp(string? format, DateTimeOffset? at = null)
    {
        var now = at ?? DateTimeOffset.Now;
        if (format is null) return now.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        var sb = new StringBuilder();
        for (int i = 0; i < format.Length; i++)
        {
            char c = format[i];
            if (c != '%' || i + 1 == format.Length)
            {
                sb.Append(c);
                continue;
            }
            char f = format[++i];
            sb.Append(f == '%' ? "%" : TimeFormat.Conversion(f, now) ?? "%" + f);
        }
        return sb.ToString();
    }

    private sealed class Logger(MidgeLoggerProvider provider, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        /// <summary>
        /// False when no configured log_type could take a message of this level, so that callers skip formatting
        /// it: every connect and disconnect logs at Information and Debug, which the bench's and many production
        /// configurations (log_type error, warning) never write.
        /// </summary>
        public bool IsEnabled(LogLevel logLevel)
        {
            if (category.StartsWith("Microsoft.", StringComparison.Ordinal) && logLevel < LogLevel.Warning) return false;
            return (provider._config.LogTypes & TypesAt(logLevel)) != 0;
        }

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            var type = TypeOf(logLevel, eventId);
            if ((provider._config.LogTypes & type) == 0) return;
            string message = formatter(state, exception);
            if (exception is not null && logLevel >= LogLevel.Error) message += " " + exception;
            provider.Write(type, message);
        }
    }
}
