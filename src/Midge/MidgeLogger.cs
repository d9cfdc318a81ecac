using System.Buffers;
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
/// <remarks>
/// Logging never holds up the broker. A line is cut to <see cref="MaxLineBytes"/> (Mosquitto's limit), and the
/// thread that logs only puts it in a bounded queue per destination (<see cref="LogWriter"/>); a background thread
/// per destination writes it. When a destination does not keep up (a pipe nobody reads, a stalled disk) its queue
/// fills and further lines for it are dropped and counted; the count is written there once it takes lines again.
/// </remarks>
internal sealed class MidgeLoggerProvider : ILoggerProvider
{
    /// <summary>Longest line in bytes of UTF-8, time stamp included, newline not: Mosquitto's (a 1,000-byte
    /// buffer with its terminating NUL). Longer lines are cut there, between characters.</summary>
    public const int MaxLineBytes = 999;

    /// <summary>Lines waiting for one destination; beyond this they are dropped and counted.</summary>
    public const int QueueLines = 4096;

    /// <summary>How long the broker waits at exit for a destination that no longer takes lines.</summary>
    public static readonly TimeSpan StalledFlushTimeout = TimeSpan.FromSeconds(1);

    private readonly object _sync = new();
    private volatile Targets _targets;
    private LogWriter? _stdout;
    private LogWriter? _stderr;
    private LogWriter? _syslog;
    private bool _disposed;

    /// <summary>Opens the configured log file; throws <see cref="LogFileException"/> when it cannot.</summary>
    public MidgeLoggerProvider(BrokerConfig config)
    {
        _targets = new Targets(new BrokerConfig { LogDestinations = [] }, [], null, null, Topic: false);
        Apply(config);
    }

    /// <summary>Where $SYS/broker/log/... messages go for <c>log_dest topic</c>.</summary>
    public Broker? Broker { get; set; }

    /// <summary>What the logger writes to under one configuration.</summary>
    private sealed record Targets(BrokerConfig Config, LogWriter[] Writers, LogWriter? File, LogWriter? Syslog, bool Topic);

    public void Apply(BrokerConfig config) => Prepare(config)();

    /// <summary>
    /// Opens what <paramref name="config"/> needs (a new log file: a reload reopens it, for log rotation) and returns
    /// the action that switches to it. Throws <see cref="LogFileException"/>, changing nothing, when the file cannot
    /// be opened.
    /// </summary>
    public Action Prepare(BrokerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        FileStream? file = null;
        string? path = null;
        foreach (var dest in config.LogDestinations)
        {
            if (dest.Kind != LogDestinationKind.File || dest.Path is null) continue;
            path = dest.Path;
            try
            {
                file = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
            {
                string where = config.LogFileSource is { } source ? $"{source}: " : "";
                throw new LogFileException(where + LogFiles.CannotOpen(path, LogFiles.Reason(path, e)), e);
            }
        }
        return () => Switch(config, file, path);
    }

    private void Switch(BrokerConfig config, FileStream? file, string? path)
    {
        LogWriter? oldFile;
        lock (_sync)
        {
            if (_disposed)
            {
                file?.Dispose();
                return;
            }
            var writers = new List<LogWriter>();
            LogWriter? fileWriter = null;
            LogWriter? syslog = null;
            bool topic = false;
            foreach (var dest in config.LogDestinations)
            {
                switch (dest.Kind)
                {
                    case LogDestinationKind.Stdout:
                        writers.Add(_stdout ??= LogWriter.ForStream("stdout", StandardStream(1), owned: false, Note));
                        break;
                    case LogDestinationKind.Stderr:
                        writers.Add(_stderr ??= LogWriter.ForStream("stderr", StandardStream(2), owned: false, Note));
                        break;
                    case LogDestinationKind.Syslog:
                        if (_syslog is null && OpenSyslog() is { } socket) _syslog = LogWriter.ForDatagrams("syslog", socket, SyslogNote);
                        if (_syslog is not null) writers.Add(syslog = _syslog);
                        break;
                    case LogDestinationKind.Topic:
                        topic = true;
                        break;
                }
            }
            if (file is not null)
            {
                fileWriter = LogWriter.ForStream(path!, file, owned: true, Note);
                writers.Add(fileWriter);
            }
            oldFile = _targets.File;
            _targets = new Targets(config, [.. writers.Distinct()], fileWriter, syslog, topic);
        }
        oldFile?.Complete(); // writes what it still holds, then closes the old file
    }

    /// <summary>The process's stdout (1) or stderr (2), written directly: not through <see cref="Console"/>, whose
    /// writers share one lock with everything else that prints, and whose streams hold a copy of the descriptor
    /// (which a daemon could then not point at /dev/null).</summary>
    private static FileStream StandardStream(int fd) =>
        new(new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: false), FileAccess.Write, bufferSize: 0);

    private static Socket? OpenSyslog()
    {
        if (!File.Exists("/dev/log")) return null;
        var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint("/dev/log"));
            return socket;
        }
        catch (SocketException)
        {
            socket.Dispose();
            return null;
        }
    }

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    /// <summary>Writes what is queued (giving up on a destination stalled for <see cref="StalledFlushTimeout"/>),
    /// then closes the log file.</summary>
    public void Dispose()
    {
        LogWriter[] writers;
        lock (_sync)
        {
            if (_disposed) return;
            _disposed = true;
            writers = AllWriters();
        }
        foreach (var w in writers) w.Complete();
        // Side by side, so that two blocked destinations cost one timeout, not two.
        Task.WaitAll([.. writers.Select(w => Task.Factory.StartNew(() => w.Flush(StalledFlushTimeout),
            CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default))]);
    }

    private LogWriter[] AllWriters()
    {
        lock (_sync)
        {
            return [.. new[] { _stdout, _stderr, _syslog, _targets.File }.OfType<LogWriter>()];
        }
    }

    internal static LogTypes TypeOf(LogLevel level, EventId eventId) => eventId.Name switch
    {
        "Subscribe" => LogTypes.Subscribe,
        "Unsubscribe" => LogTypes.Unsubscribe,
        { } name when name.StartsWith("Notice.", StringComparison.Ordinal) => LogTypes.Notice,
        { } name when name.StartsWith("WebSockets.", StringComparison.Ordinal) => LogTypes.WebSockets,
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
    /// Unsubscribe are Debug, Notice.* and WebSockets.* (log_type websockets: WebSocket connections opening and closing)
    /// are Information (a test checks every [LoggerMessage] in Midge's assemblies).
    /// </summary>
    internal static LogTypes TypesAt(LogLevel level) => level switch
    {
        LogLevel.Trace or LogLevel.Debug => LogTypes.Debug | LogTypes.Subscribe | LogTypes.Unsubscribe,
        LogLevel.Information => LogTypes.Information | LogTypes.Notice | LogTypes.WebSockets,
        LogLevel.Warning => LogTypes.Warning,
        LogLevel.Error or LogLevel.Critical => LogTypes.Error,
        _ => LogTypes.None,
    };

    /// <summary>Writes one message: in the text format with control characters escaped, the exception's text
    /// appended for errors, and the whole line cut to <see cref="MaxLineBytes"/>; or as a JSON object (<c>log_format
    /// json</c>, <see cref="JsonLogLine"/>) with the message's <paramref name="fields"/>.</summary>
    private void Write(LogTypes type, LogLevel level, EventId eventId, string category, string message,
        IReadOnlyList<KeyValuePair<string, object?>>? fields, Exception? exception)
    {
        var targets = _targets;
        var config = targets.Config;
        if ((config.LogTypes & type) == 0) return;
        string line, body;
        if (config.LogFormat == LogFormat.Json)
        {
            line = body = JsonLogLine.Format(config, type, level, eventId, category, message, fields,
                level >= LogLevel.Error ? exception : null);
        }
        else
        {
            // Client ids, user names and topics are the client's own text: a newline or an escape sequence in one
            // must not forge a line of the log or drive a terminal, so control characters are written escaped.
            message = EscapeControls(message);
            if (exception is not null && level >= LogLevel.Error) message += " " + exception;
            string prefix = config.LogTimestamp ? Timestamp(config.LogTimestampFormat) + ": " : "";
            line = Truncate(prefix + message, MaxLineBytes);
            body = line.Length > prefix.Length ? line[prefix.Length..] : "";
        }
        foreach (var w in targets.Writers)
        {
            w.Enqueue(w == targets.Syslog ? SyslogDatagram(type, body, config) : line);
        }
        if (targets.Topic) Broker?.PublishFromBroker("$SYS/broker/log/" + TopicLetter(type), Encoding.UTF8.GetBytes(line));
    }

    /// <summary>
    /// <paramref name="text"/> with its control characters written as escapes (<c>\n</c>, <c>\r</c>, <c>\x1B</c>;
    /// the Unicode line and paragraph separators and C1 controls as <c>\u2028</c> and the like), so that one log
    /// call is always one line. A tab stays (Mosquitto's per-packet lines start with one); a backslash stays too.
    /// </summary>
    internal static string EscapeControls(string text)
    {
        int first = text.AsSpan().IndexOfAny(ControlCharacters);
        if (first < 0) return text;
        var sb = new StringBuilder(text.Length + 16).Append(text, 0, first);
        foreach (char c in text.AsSpan(first))
        {
            if (!ControlCharacters.Contains(c)) sb.Append(c);
            else if (c == '\n') sb.Append("\\n");
            else if (c == '\r') sb.Append("\\r");
            else if (c < 0x100) sb.Append("\\x").Append(((int)c).ToString("X2", CultureInfo.InvariantCulture));
            else sb.Append("\\u").Append(((int)c).ToString("X4", CultureInfo.InvariantCulture));
        }
        return sb.ToString();
    }

    /// <summary>C0 controls but the tab, DEL, C1 controls, and U+2028/U+2029.</summary>
    private static readonly SearchValues<char> ControlCharacters = SearchValues.Create(
        [.. Enumerable.Range(0, 0x20).Where(c => c != '\t').Select(c => (char)c), .. Enumerable.Range(0x7F, 0x21).Select(c => (char)c), '\u2028', '\u2029']);

    /// <summary><paramref name="line"/> cut to at most <paramref name="maxBytes"/> bytes of UTF-8, between
    /// characters (Mosquitto cuts between bytes, which can leave half a character).</summary>
    internal static string Truncate(string line, int maxBytes)
    {
        if (line.Length * 3 <= maxBytes) return line; // no character takes more than 3 bytes per UTF-16 unit
        int bytes = 0;
        int i = 0;
        while (i < line.Length)
        {
            Rune.DecodeFromUtf16(line.AsSpan(i), out var rune, out int used); // a lone surrogate: U+FFFD, as encoded
            if (bytes + rune.Utf8SequenceLength > maxBytes) return line[..i];
            bytes += rune.Utf8SequenceLength;
            i += used;
        }
        return line;
    }

    /// <summary>The line a destination gets after it dropped lines (Information, with the current time stamp).</summary>
    private string Note(string text)
    {
        var config = _targets.Config;
        if (config.LogFormat == LogFormat.Json) return JsonNote(config, text);
        return Truncate(config.LogTimestamp ? Timestamp(config.LogTimestampFormat) + ": " + text : text, MaxLineBytes);
    }

    private string SyslogNote(string text)
    {
        var config = _targets.Config;
        return SyslogDatagram(LogTypes.Warning, config.LogFormat == LogFormat.Json ? JsonNote(config, text) : text, config);
    }

    private static string JsonNote(BrokerConfig config, string text) =>
        JsonLogLine.Format(config, LogTypes.Information, LogLevel.Information, default, null, text, null, null);

    private static string TopicLetter(LogTypes type) =>
        (type & LogTypes.Error) != 0 ? "E" : (type & LogTypes.Warning) != 0 ? "W" : (type & LogTypes.Notice) != 0 ? "N" :
        (type & LogTypes.Information) != 0 ? "I" : (type & LogTypes.Subscribe) != 0 ? "M" :
        (type & LogTypes.Unsubscribe) != 0 ? "M" : "D";

    /// <summary>One syslog datagram: <c>&lt;PRI&gt;midge[PID]: message</c>, facility local0..local7.</summary>
    private static string SyslogDatagram(LogTypes type, string message, BrokerConfig config)
    {
        int severity = (type & LogTypes.Error) != 0 ? 3 : (type & LogTypes.Warning) != 0 ? 4 :
            (type & LogTypes.Notice) != 0 ? 5 : (type & LogTypes.Information) != 0 ? 6 : 7;
        int pri = ((16 + (config.LogFacility ?? 0)) * 8) + severity; // local0..local7
        return $"<{pri}>midge[{Environment.ProcessId}]: {message}";
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

    private const string HostingDiagnostics = "Microsoft.AspNetCore.Hosting.Diagnostics";

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
            // ASP.NET Core's per-request log (request starting and finished, Information) is never written, and
            // its hosting starts an Activity for every request while this says Critical is enabled: a WebSocket
            // connection held it (and its tags) for as long as it stayed open.
            if (category == HostingDiagnostics) return false;
            if (category.StartsWith("Microsoft.", StringComparison.Ordinal) && logLevel < LogLevel.Warning) return false;
            return (provider._targets.Config.LogTypes & TypesAt(logLevel)) != 0;
        }

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            var type = TypeOf(logLevel, eventId);
            if ((provider._targets.Config.LogTypes & type) == 0) return;
            provider.Write(type, logLevel, eventId, category, formatter(state, exception),
                state as IReadOnlyList<KeyValuePair<string, object?>>, exception);
        }
    }
}
