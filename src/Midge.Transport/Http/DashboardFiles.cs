using System.Collections.Frozen;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Http;

namespace Midge.Transport.Http;

/// <summary>
/// The dashboard's static files (<c>Dashboard/</c> beside this file, embedded in the assembly, so the Native AOT
/// binary carries them and nothing is fetched from elsewhere), served under <c>/dashboard/</c> without credentials:
/// the shell holds nothing of the broker's, and every figure it shows comes from the API, which asks for a key.
/// Each answer carries its content type, a strong ETag (If-None-Match gets 304), a Content-Security-Policy that lets
/// the page load only its own files and open WebSockets (the browser MQTT client), and the usual hardening headers.
/// The vendored libraries carry their version in their names, so they are cached for a year; the rest is revalidated.
/// </summary>
internal static class DashboardFiles
{
    public const string Root = "/dashboard/";

    private const string ResourcePrefix = "Midge.Transport.Http.Dashboard/";

    /// <summary>Only the page's own origin, and WebSockets to any broker the MQTT client page is pointed at.</summary>
    public const string ContentSecurityPolicy =
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; " +
        "worker-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

    private sealed record StaticFile(byte[] Content, string ContentType, string ETag, bool Immutable);

    private static readonly Lazy<FrozenDictionary<string, StaticFile>> Files = new(Load);

    private static FrozenDictionary<string, StaticFile> Load()
    {
        var assembly = typeof(DashboardFiles).Assembly;
        var files = new Dictionary<string, StaticFile>(StringComparer.Ordinal);
        foreach (string name in assembly.GetManifestResourceNames())
        {
            if (!name.StartsWith(ResourcePrefix, StringComparison.Ordinal)) continue;
            string path = name[ResourcePrefix.Length..].Replace('\\', '/'); // RecursiveDir's separator where built
            if (ContentTypeOf(path) is not { } type) continue;
            using var stream = assembly.GetManifestResourceStream(name)!;
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            byte[] content = copy.ToArray();
            string etag = "\"" + Convert.ToHexStringLower(SHA256.HashData(content).AsSpan(0, 12)) + "\"";
            files[path] = new StaticFile(content, type, etag, path.StartsWith("vendor/", StringComparison.Ordinal));
        }
        return files.ToFrozenDictionary(StringComparer.Ordinal);
    }

    private static string? ContentTypeOf(string path) => Path.GetExtension(path) switch
    {
        ".html" => "text/html; charset=utf-8",
        ".js" => "text/javascript; charset=utf-8",
        ".css" => "text/css; charset=utf-8",
        ".svg" => "image/svg+xml",
        ".png" => "image/png",
        ".md" or ".LICENSE" => "text/plain; charset=utf-8",
        _ => null,
    };

    /// <summary>Whether <paramref name="path"/> is the dashboard's: <c>/</c> and <c>/dashboard</c> (redirects) or a
    /// path under <c>/dashboard/</c>.</summary>
    public static bool Owns(string path) => path is "/" or "/dashboard" || path.StartsWith(Root, StringComparison.Ordinal);

    /// <summary>Answers a request for one of <see cref="Owns"/>'s paths: the file, 304, a redirect, 404 or 405.</summary>
    public static Task ServeAsync(HttpContext http, string path)
    {
        var response = http.Response;
        response.Headers.XContentTypeOptions = "nosniff";
        response.Headers["Referrer-Policy"] = "no-referrer";
        response.Headers.XFrameOptions = "DENY";
        if (path is "/" or "/dashboard")
        {
            response.StatusCode = 302;
            response.Headers.Location = Root;
            return Task.CompletedTask;
        }
        string method = http.Request.Method;
        if (method is not ("GET" or "HEAD"))
        {
            response.Headers.Allow = "GET, HEAD";
            throw new ApiError(405, "METHOD_NOT_ALLOWED", $"{method} is not allowed here");
        }
        string name = path.Length == Root.Length ? "index.html" : path[Root.Length..];
        if (!Files.Value.TryGetValue(name, out var file)) throw ApiError.NotFound("NOT_FOUND", $"no such file: {path}");
        response.Headers.ETag = file.ETag;
        response.Headers.CacheControl = file.Immutable ? "public, max-age=31536000, immutable" : "no-cache";
        response.Headers.ContentSecurityPolicy = ContentSecurityPolicy;
        if (http.Request.Headers.IfNoneMatch.ToString().Contains(file.ETag, StringComparison.Ordinal))
        {
            response.StatusCode = 304;
            return Task.CompletedTask;
        }
        response.StatusCode = 200;
        response.ContentType = file.ContentType;
        response.ContentLength = file.Content.Length;
        return method == "HEAD" ? Task.CompletedTask : response.Body.WriteAsync(file.Content, http.RequestAborted).AsTask();
    }
}
