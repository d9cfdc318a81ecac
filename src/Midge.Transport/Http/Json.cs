using System.Buffers;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Midge.Transport.Http;

/// <summary>JSON in and out without reflection (Native AOT): requests are read as <see cref="JsonDocument"/>s and checked
/// field by field, answers written with <see cref="Utf8JsonWriter"/>.</summary>
internal static class Json
{
    private static readonly JsonDocumentOptions ReadOptions = new() { MaxDepth = 16 };

    /// <summary>Answers go to scripts and JSON parsers, not into HTML: '+', quotes and non-ASCII are written as they are.</summary>
    private static readonly JsonWriterOptions WriteOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Reads the request's body as JSON (its size bounded by the listener); 400 for anything else.</summary>
    public static async Task<JsonDocument> ReadAsync(HttpRequest request, CancellationToken cancel)
    {
        try
        {
            return await JsonDocument.ParseAsync(request.Body, ReadOptions, cancel).ConfigureAwait(false);
        }
        catch (JsonException ex)
        {
            throw ApiError.BadRequest("the body is not valid JSON: " + ex.Message);
        }
    }

    public static JsonElement Object(JsonElement element, string what = "the body")
    {
        if (element.ValueKind != JsonValueKind.Object) throw ApiError.BadRequest($"{what} must be a JSON object");
        return element;
    }

    public static string? String(JsonElement obj, string name, bool required = false)
    {
        if (!obj.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return required ? throw ApiError.BadRequest($"'{name}' is required") : null;
        }
        return value.ValueKind == JsonValueKind.String ? value.GetString() : throw ApiError.BadRequest($"'{name}' must be a string");
    }

    public static long? Integer(JsonElement obj, string name, long min, long max)
    {
        if (!obj.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null) return null;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out long n) || n < min || n > max)
        {
            throw ApiError.BadRequest($"'{name}' must be an integer from {min} to {max}");
        }
        return n;
    }

    public static bool? Bool(JsonElement obj, string name)
    {
        if (!obj.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null) return null;
        return value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw ApiError.BadRequest($"'{name}' must be true or false"),
        };
    }

    /// <summary>Writes a JSON answer with <paramref name="status"/>.</summary>
    public static Task WriteAsync(HttpContext http, int status, Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var writer = new Utf8JsonWriter(buffer, WriteOptions))
        {
            write(writer);
        }
        http.Response.StatusCode = status;
        http.Response.ContentType = "application/json";
        http.Response.ContentLength = buffer.WrittenCount;
        return http.Response.Body.WriteAsync(buffer.WrittenMemory, http.RequestAborted).AsTask();
    }

    public static Task ErrorAsync(HttpContext http, int status, string code, string message) => WriteAsync(http, status, w =>
    {
        w.WriteStartObject();
        w.WriteString("code", code);
        w.WriteString("message", message);
        w.WriteEndObject();
    });

    /// <summary>EMQX's time format: RFC 3339 with the offset, to the millisecond.</summary>
    public static string Time(DateTimeOffset at) => at.ToString("yyyy-MM-dd'T'HH:mm:ss.fffzzz", System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary><c>page</c> and <c>limit</c> of a listing, and EMQX's <c>meta</c> object.</summary>
internal readonly record struct Paging(int Page, int Limit)
{
    public const int DefaultLimit = 100;
    public const int MaxLimit = 1000;

    public static Paging From(HttpRequest request)
    {
        int page = Parse(request, "page", 1, 1, int.MaxValue);
        int limit = Parse(request, "limit", DefaultLimit, 1, MaxLimit);
        return new Paging(page, limit);
    }

    private static int Parse(HttpRequest request, string name, int fallback, int min, int max)
    {
        var text = request.Query[name].ToString();
        if (text.Length == 0) return fallback;
        if (!int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n) ||
            n < min || n > max)
        {
            throw ApiError.BadRequest($"'{name}' must be an integer from {min} to {max}");
        }
        return n;
    }

    /// <summary>Writes <c>{"data": [...], "meta": {...}}</c> for the page of <paramref name="items"/> (already filtered
    /// and in order).</summary>
    public Task WriteAsync<T>(HttpContext http, IReadOnlyList<T> items, Action<Utf8JsonWriter, T> write)
    {
        long start = (long)(Page - 1) * Limit;
        int count = items.Count;
        var paging = this;
        return Json.WriteAsync(http, 200, w =>
        {
            w.WriteStartObject();
            w.WriteStartArray("data");
            for (long i = start; i < Math.Min(count, start + paging.Limit); i++) write(w, items[(int)i]);
            w.WriteEndArray();
            w.WriteStartObject("meta");
            w.WriteNumber("page", paging.Page);
            w.WriteNumber("limit", paging.Limit);
            w.WriteNumber("count", count);
            w.WriteBoolean("hasnext", start + paging.Limit < count);
            w.WriteEndObject();
            w.WriteEndObject();
        });
    }
}
