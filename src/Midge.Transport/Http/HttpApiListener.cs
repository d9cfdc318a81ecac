using System.Net;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Midge.Config;
using Midge.Core;
using Midge.Core.Channel;
using Midge.Security;

namespace Midge.Transport.Http;

/// <summary>What the HTTP API needs from whoever hosts the broker.</summary>
public sealed class HttpApiSettings
{
    /// <summary>The version <c>/nodes</c> reports.</summary>
    public string Version { get; init; } = "0.0.0";

    /// <summary>Re-reads the configuration and applies it, as SIGHUP does (<c>POST /api/v5/configs/reload</c>); returns
    /// null when it was applied, or why it was not. Null: the API answers 501 (an embedding application that has no
    /// file to re-read).</summary>
    public Func<string?>? Reload { get; init; }

    /// <summary>The broker's instruments (<see cref="BrokerMetrics"/>), read for the Prometheus text.</summary>
    public BrokerMetrics? Metrics { get; init; }
}

/// <summary>
/// One endpoint of a <c>protocol http</c> listener: the management API (docs/http-api.md). Kestrel serves HTTP/1.1
/// there (TLS first with the listener's certificates); connection middleware marks each connection with this object
/// (<see cref="Mark"/>), and <see cref="HttpApiMiddleware.UseMidgeHttpApi"/> sends every request that carries the mark
/// here, so an embedding application's own endpoints never see them. Every request needs an API key from
/// <c>api_key_file</c> as HTTP Basic credentials (unless the listener has <c>api_allow_anonymous true</c>), but those
/// for <c>/api-docs</c> and for the dashboard's static files (<see cref="DashboardFiles"/>, under <c>/dashboard/</c>),
/// which hold nothing of the broker's: the dashboard's every data call comes back through the API with a key. Other
/// paths get a JSON 404.
/// </summary>
internal sealed partial class HttpApiListener
{
    internal static readonly object Key = typeof(HttpApiListener);

    /// <summary>The most bytes of request body read (a bulk publish included); 413 beyond.</summary>
    public const long MaxBodyBytes = 4 * 1024 * 1024;

    private readonly Broker _broker;
    private readonly ListenerConfig _listener;
    private readonly HttpApiSettings _settings;
    private readonly ILogger _logger;
    private readonly LoginThrottle _throttle;
    private ApiKeyFile _keys;
    private BrokerConfig _keysConfig;

    public HttpApiListener(Broker broker, ListenerConfig listener, HttpApiSettings settings, ILogger logger)
    {
        _broker = broker;
        _listener = listener;
        _settings = settings;
        _logger = logger;
        _throttle = new LoginThrottle(TimeProvider.System);
        Name = Broker.ListenerName(listener);
        _keysConfig = broker.Config;
        _keys = LoadKeys(_keysConfig);
        foreach (var note in _keys.Diagnostics) Log.ApiKeyDropped(logger, note);
        if (_keys.Count == 0 && !listener.ApiAllowAnonymous) Log.NoApiKeys(logger, Name);
    }

    public string Name { get; }

    public ConnectionDelegate Mark(ConnectionDelegate next) => context =>
    {
        context.Items[Key] = this;
        return next(context);
    };

    public static HttpApiListener? Of(HttpContext context) =>
        context.Features.Get<IConnectionItemsFeature>()?.Items.TryGetValue(Key, out var value) == true ? value as HttpApiListener : null;

    private static ApiKeyFile LoadKeys(BrokerConfig config)
    {
        if (config.ApiKeyFile is not { } path) return ApiKeyFile.Empty;
        try
        {
            return ApiKeyFile.Load(path);
        }
        catch (SecurityFileException ex)
        {
            throw new InvalidOperationException($"{config.ApiKeyFileSource}: {ex.Message}", ex);
        }
    }

    /// <summary>The keys of the configuration in force: read again after a reload changed the configuration (a file that
    /// cannot be read then leaves the old keys, and says so).</summary>
    private ApiKeyFile Keys()
    {
        var config = _broker.Config;
        if (ReferenceEquals(config, Volatile.Read(ref _keysConfig))) return _keys;
        lock (_throttle)
        {
            if (ReferenceEquals(config, _keysConfig)) return _keys;
            try
            {
                _keys = LoadKeys(config);
                foreach (var note in _keys.Diagnostics) Log.ApiKeyDropped(_logger, note);
            }
            catch (InvalidOperationException ex)
            {
                Log.ApiKeysNotReloaded(_logger, ex.Message);
            }
            Volatile.Write(ref _keysConfig, config);
            return _keys;
        }
    }

    /// <summary>Answers one request: credentials, then the route; every failure is a JSON error, never a stack trace.</summary>
    public async Task HandleAsync(HttpContext http)
    {
        var path = http.Request.Path.Value ?? "/";
        try
        {
            if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } body) body.MaxRequestBodySize = MaxBodyBytes;
            if (path is "/api-docs" or "/api-docs/" or "/api-docs/openapi.json" or "/api/v5/openapi.json")
            {
                await OpenApi.WriteAsync(http).ConfigureAwait(false);
                return;
            }
            if (DashboardFiles.Owns(path))
            {
                await DashboardFiles.ServeAsync(http, path).ConfigureAwait(false);
                return;
            }
            if (!await AuthenticateAsync(http).ConfigureAwait(false)) return;
            await RouteAsync(http, path).ConfigureAwait(false);
        }
        catch (ApiError error)
        {
            if (!http.Response.HasStarted) await Json.ErrorAsync(http, error.Status, error.Code, error.Message).ConfigureAwait(false);
        }
        catch (Microsoft.AspNetCore.Http.BadHttpRequestException ex)
        {
            int status = ex.StatusCode == StatusCodes.Status413PayloadTooLarge ? 413 : 400;
            string code = status == 413 ? "PAYLOAD_TOO_LARGE" : "BAD_REQUEST";
            string message = status == 413 ? $"the body is larger than {MaxBodyBytes} bytes" : ex.Message;
            if (!http.Response.HasStarted) await Json.ErrorAsync(http, status, code, message).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            Log.RequestFailed(_logger, http.Request.Method, path, Remote(http), ex);
            if (!http.Response.HasStarted) await Json.ErrorAsync(http, 500, "INTERNAL_ERROR", "the request failed; the broker's log says why").ConfigureAwait(false);
        }
    }

    /// <summary>HTTP Basic with a key and its secret. Failures are logged and counted per address; an address with too
    /// many is answered 429 for a while without its credentials being looked at.</summary>
    private async Task<bool> AuthenticateAsync(HttpContext http)
    {
        string header = http.Request.Headers.Authorization.ToString();
        if (header.Length == 0 && _listener.ApiAllowAnonymous)
        {
            http.Items[KeyItem] = "(anonymous)";
            return true;
        }
        var address = http.Connection.RemoteIpAddress;
        if (_throttle.IsBlocked(address, out int retry))
        {
            http.Response.Headers.RetryAfter = retry.ToString(System.Globalization.CultureInfo.InvariantCulture);
            await Json.ErrorAsync(http, 429, "TOO_MANY_REQUESTS", "too many failed logins from this address; try again later").ConfigureAwait(false);
            return false;
        }
        string? key = null;
        bool ok = false;
        if (header.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase) && header.Length <= 4096)
        {
            var encoded = header.AsSpan(6).Trim();
            var bytes = new byte[(encoded.Length * 3 / 4) + 3];
            if (Convert.TryFromBase64Chars(encoded, bytes, out int length))
            {
                string text = Encoding.UTF8.GetString(bytes, 0, length);
                int colon = text.IndexOf(':', StringComparison.Ordinal);
                if (colon > 0)
                {
                    key = text[..colon];
                    ok = Keys().Verify(key, text[(colon + 1)..]);
                }
            }
        }
        if (ok)
        {
            http.Items[KeyItem] = key;
            return true;
        }
        string who = Remote(http);
        if (header.Length == 0)
        {
            Log.LoginMissing(_logger, who, Name, http.Request.Method, http.Request.Path.Value ?? "/");
        }
        else
        {
            Log.LoginFailed(_logger, key is null ? "(unreadable credentials)" : $"key '{Printable(key)}'", who, Name);
        }
        if (_throttle.Fail(address)) Log.LoginBlocked(_logger, who, Name, LoginThrottle.MaxFailures, (int)LoginThrottle.BlockTime.TotalSeconds);
        // A script that asks for itself (the dashboard sends X-Requested-With) gets no challenge, so that the browser
        // shows no login dialog of its own over the page's.
        if (http.Request.Headers.XRequestedWith.Count == 0) http.Response.Headers.WWWAuthenticate = "Basic realm=\"midge\"";
        await Json.ErrorAsync(http, 401, "BAD_API_KEY_OR_SECRET", "a valid API key and secret are required (HTTP Basic)").ConfigureAwait(false);
        return false;
    }

    /// <summary>Where the request's key is kept, for the log lines of what it changes.</summary>
    private static readonly object KeyItem = new();

    private void LogAction(HttpContext http, string action) =>
        Log.Action(_logger, action, http.Items[KeyItem] as string ?? "?", Remote(http));

    private static string Printable(string key) => key.Length > 64 ? key[..64] + "..." : key.Replace('\n', '?').Replace('\r', '?');

    private static string Remote(HttpContext http) =>
        http.Connection.RemoteIpAddress is { } ip ? RemoteAddress.Format(new IPEndPoint(ip, http.Connection.RemotePort)) : http.Connection.Id;

    private static partial class Log
    {
        [LoggerMessage(160, LogLevel.Warning, "HTTP API on {Listener}: failed login with {Key} from {Remote}.")]
        public static partial void LoginFailed(ILogger logger, string key, string remote, string listener);

        [LoggerMessage(161, LogLevel.Warning, "HTTP API on {Listener}: request without credentials from {Remote} refused (401): {Method} {Path}.")]
        public static partial void LoginMissing(ILogger logger, string remote, string listener, string method, string path);

        [LoggerMessage(162, LogLevel.Warning, "HTTP API on {Listener}: {Remote} failed to log in {Max} times; refused (429) for {Seconds} s.")]
        public static partial void LoginBlocked(ILogger logger, string remote, string listener, int max, int seconds);

        [LoggerMessage(163, LogLevel.Warning, "{Note}")]
        public static partial void ApiKeyDropped(ILogger logger, string note);

        [LoggerMessage(164, LogLevel.Warning, "HTTP API on {Listener}: no API keys (api_key_file missing or empty) and api_allow_anonymous is false: every request will be refused.")]
        public static partial void NoApiKeys(ILogger logger, string listener);

        [LoggerMessage(165, LogLevel.Error, "HTTP API: the API keys were not reloaded, the old ones stay: {Message}")]
        public static partial void ApiKeysNotReloaded(ILogger logger, string message);

        [LoggerMessage(166, LogLevel.Error, "HTTP API: {Method} {Path} from {Remote} failed.")]
        public static partial void RequestFailed(ILogger logger, string method, string path, string remote, Exception exception);

        [LoggerMessage(167, LogLevel.Information, "HTTP API: {Action} by key '{Key}' from {Remote}.", EventName = "Notice.HttpApi")]
        public static partial void Action(ILogger logger, string action, string key, string remote);
    }
}

/// <summary>Puts the broker's HTTP API listeners in front of the host's request pipeline.</summary>
public static class HttpApiMiddleware
{
    /// <summary>Sends every request that arrives on a <c>protocol http</c> listener of the broker to its API; the
    /// application's own requests pass by. <c>AddMidge</c> puts this at the front of the host's pipeline itself.</summary>
    public static IApplicationBuilder UseMidgeHttpApi(this IApplicationBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        return app.MapWhen(context => HttpApiListener.Of(context) is not null,
            branch => branch.Run(context => HttpApiListener.Of(context)!.HandleAsync(context)));
    }
}
