using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.StaticFiles;
using Microsoft.Extensions.Logging;

namespace Midge.Transport.WebSockets;

/// <summary>
/// <c>http_dir</c>: plain HTTP GET and HEAD requests on a WebSocket listener get the files under one directory, as
/// Mosquitto serves them. A path ending in <c>/</c> gets that directory's <c>index.html</c>; directories are never
/// listed; a path that leads outside the directory (<c>..</c>, or a symbolic link whose target is outside) gets 403
/// and a log line; anything missing gets 404; other methods get 405.
/// </summary>
internal sealed class HttpDirectory(string root, ILogger logger, string listenerName)
{
    private static readonly FileExtensionContentTypeProvider ContentTypes = new();

    private readonly string _root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(root)) + Path.DirectorySeparatorChar;

    public async Task ServeAsync(HttpContext http)
    {
        var request = http.Request;
        var response = http.Response;
        if (!HttpMethods.IsGet(request.Method) && !HttpMethods.IsHead(request.Method))
        {
            response.StatusCode = StatusCodes.Status405MethodNotAllowed;
            response.Headers.Allow = "GET, HEAD";
            return;
        }
        string path = request.Path.Value ?? "/";
        if (path.EndsWith('/')) path += "index.html";
        string? file = Resolve(path);
        if (file is null)
        {
            Log.HttpOutsideDirectory(logger, WebSocketListener.Remote(http), listenerName, path);
            response.StatusCode = StatusCodes.Status403Forbidden;
            return;
        }
        var info = new FileInfo(file);
        if (!info.Exists)
        {
            response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }
        if (info.LinkTarget is not null && (info.ResolveLinkTarget(returnFinalTarget: true) is not FileInfo target || Resolve(target.FullName, rooted: true) is null))
        {
            Log.HttpOutsideDirectory(logger, WebSocketListener.Remote(http), listenerName, path);
            response.StatusCode = StatusCodes.Status403Forbidden;
            return;
        }
        response.ContentType = ContentTypes.TryGetContentType(file, out var type) ? type : "application/octet-stream";
        response.ContentLength = info.Length;
        if (HttpMethods.IsHead(request.Method)) return;
        await response.SendFileAsync(file, http.RequestAborted);
    }

    /// <summary>The full path of <paramref name="path"/> (a request path, or a full path when
    /// <paramref name="rooted"/>), or null when it is not inside the directory.</summary>
    private string? Resolve(string path, bool rooted = false)
    {
        if (path.Contains('\0', StringComparison.Ordinal) || path.Contains('\\', StringComparison.Ordinal)) return null;
        string full = rooted ? Path.GetFullPath(path) : Path.GetFullPath(Path.Join(_root, path.TrimStart('/')));
        return full.StartsWith(_root, StringComparison.Ordinal) ? full : null;
    }
}

internal static partial class Log
{
    [LoggerMessage(133, LogLevel.Warning, "HTTP request from {Remote} on {Listener} refused (403): {Path} is outside http_dir.")]
    public static partial void HttpOutsideDirectory(ILogger logger, string remote, string listener, string path);
}
