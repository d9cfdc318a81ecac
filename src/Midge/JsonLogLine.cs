using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Midge.Config;

namespace Midge;

/// <summary>
/// One log line as a JSON object (<c>log_format json</c>), for log shippers:
/// <c>{"time":"2026-12-07T04:30:00.123Z","level":"warning","type":"warning","event":"WebSockets.Opened","event_id":134,
/// "category":"Midge.Transport","message":"...","fields":{"Remote":"127.0.0.1:40312",...}}</c>. <c>time</c> is UTC with
/// milliseconds (or <c>log_timestamp_format</c>'s text when one is set; absent with <c>log_timestamp false</c>);
/// <c>level</c> is the message's severity (trace, debug, info, warning, error, critical), <c>type</c> its
/// <c>log_type</c>; <c>fields</c> holds the named values of the message's template, numbers and booleans as such.
/// The encoder escapes control characters, so a client's text can no more forge a line here than in the text format.
/// </summary>
internal static class JsonLogLine
{
    private static readonly JsonWriterOptions Options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>The template's own entry among a message's values (its format string), not a field.</summary>
    private const string OriginalFormat = "{OriginalFormat}";

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_buffer;

    public static string Format(BrokerConfig config, LogTypes type, LogLevel level, EventId eventId, string? category,
        string message, IReadOnlyList<KeyValuePair<string, object?>>? fields, Exception? exception, DateTimeOffset? at = null)
    {
        var buffer = t_buffer ??= new ArrayBufferWriter<byte>(512);
        buffer.ResetWrittenCount();
        using (var w = new Utf8JsonWriter(buffer, Options))
        {
            w.WriteStartObject();
            if (config.LogTimestamp)
            {
                var now = at ?? DateTimeOffset.Now;
                w.WriteString("time", config.LogTimestampFormat is null
                    ? now.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture)
                    : MidgeLoggerProvider.Timestamp(config.LogTimestampFormat, now));
            }
            w.WriteString("level", LevelName(level));
            w.WriteString("type", TypeName(type));
            if (eventId.Name is { } name) w.WriteString("event", name);
            if (eventId.Id != 0) w.WriteNumber("event_id", eventId.Id);
            if (category is not null) w.WriteString("category", category);
            w.WriteString("message", MidgeLoggerProvider.Truncate(message, MidgeLoggerProvider.MaxLineBytes));
            if (fields is { Count: > 0 } && (fields.Count > 1 || fields[0].Key != OriginalFormat))
            {
                w.WriteStartObject("fields");
                foreach (var (key, value) in fields)
                {
                    if (key != OriginalFormat) WriteValue(w, key, value);
                }
                w.WriteEndObject();
            }
            if (exception is not null) w.WriteString("exception", exception.ToString());
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static void WriteValue(Utf8JsonWriter w, string key, object? value)
    {
        switch (value)
        {
            case null: w.WriteNull(key); break;
            case bool b: w.WriteBoolean(key, b); break;
            case int i: w.WriteNumber(key, i); break;
            case long l: w.WriteNumber(key, l); break;
            case uint u: w.WriteNumber(key, u); break;
            case ulong u: w.WriteNumber(key, u); break;
            case ushort u: w.WriteNumber(key, u); break;
            case byte u: w.WriteNumber(key, u); break;
            case double d when double.IsFinite(d): w.WriteNumber(key, d); break;
            case float f when float.IsFinite(f): w.WriteNumber(key, f); break;
            case decimal m: w.WriteNumber(key, m); break;
            default: w.WriteString(key, Convert.ToString(value, CultureInfo.InvariantCulture)); break;
        }
    }

    private static string LevelName(LogLevel level) => level switch
    {
        LogLevel.Trace => "trace",
        LogLevel.Debug => "debug",
        LogLevel.Information => "info",
        LogLevel.Warning => "warning",
        LogLevel.Error => "error",
        LogLevel.Critical => "critical",
        _ => "none",
    };

    /// <summary>The <c>log_type</c> name of a message's type (the first, when it has several).</summary>
    private static string TypeName(LogTypes type) =>
        (type & LogTypes.Error) != 0 ? "error" : (type & LogTypes.Warning) != 0 ? "warning" :
        (type & LogTypes.Notice) != 0 ? "notice" : (type & LogTypes.Information) != 0 ? "information" :
        (type & LogTypes.Subscribe) != 0 ? "subscribe" : (type & LogTypes.Unsubscribe) != 0 ? "unsubscribe" :
        (type & LogTypes.WebSockets) != 0 ? "websockets" : "debug";
}
