using System.Globalization;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Midge.Config;
using Midge.Core;
using Midge.Core.Channel;

namespace Midge.Transport.WebSockets;

/// <summary>
/// One endpoint of a <c>protocol websockets</c> listener, as the HTTP pipeline sees it. Kestrel serves HTTP/1.1 there
/// (TLS first for WSS); connection middleware marks each of its connections with this object
/// (<see cref="Mark"/>), and <see cref="MqttWebSockets.UseMqttWebSockets"/> sends every request that carries the mark
/// here instead of to the application. A WebSocket request on any path that offers the <c>mqtt</c> or
/// <c>mqttv3.1</c> subprotocol becomes an MQTT connection (<see cref="WebSocketConnection"/> under
/// <see cref="MqttListeners.HandleAsync"/>, with the listener's limits and security); one that offers neither gets 400.
/// Other requests get the files of <c>http_dir</c> (<see cref="HttpDirectory"/>), or 404 without it.
/// </summary>
internal sealed class WebSocketListener
{
    /// <summary>The key of the mark in the connection's items.</summary>
    internal static readonly object Key = typeof(WebSocketListener);

    /// <summary>The subprotocols MQTT clients offer: <c>mqtt</c> (3.1.1 and 5), <c>mqttv3.1</c> (3.1).</summary>
    private static readonly string[] SubProtocols = ["mqtt", "mqttv3.1"];

    private readonly Broker _broker;
    private readonly ListenerConfig _listener;
    private readonly bool _localOnly;
    private readonly ConnectionLimit _limit;
    private readonly ILogger _logger;
    private readonly HttpDirectory? _files;

    public WebSocketListener(Broker broker, ListenerConfig listener, bool localOnly, ConnectionLimit limit, ILogger logger)
    {
        _broker = broker;
        _listener = listener;
        _localOnly = localOnly;
        _limit = limit;
        _logger = logger;
        Name = $"{listener.BindAddress ?? "*"}:{listener.Port}";
        if (listener.HttpDir is { } dir) _files = new HttpDirectory(dir, logger, Name);
    }

    /// <summary>How the log names the listener: <c>*:9001</c>.</summary>
    public string Name { get; }

    /// <summary>Connection middleware: marks the connection as this listener's, with the pending-CONNECT slot the
    /// connection guard gave it (the HTTP request sees the connection's items, not its features).</summary>
    public ConnectionDelegate Mark(ConnectionDelegate next) => context =>
    {
        context.Items[Key] = this;
        if (context.Features.Get<ConnectionGuard.PendingSlot>() is { } slot) context.Items[typeof(ConnectionGuard.PendingSlot)] = slot;
        return next(context);
    };

    /// <summary>The listener that marked the request's connection; null for the application's own endpoints.</summary>
    public static WebSocketListener? Of(HttpContext context) =>
        context.Features.Get<IConnectionItemsFeature>()?.Items.TryGetValue(Key, out var value) == true ? value as WebSocketListener : null;

    /// <summary>Answers one request on this listener.</summary>
    public async Task HandleAsync(HttpContext http)
    {
        int maxHeaders = _broker.Config.WebSocketsHeadersSize;
        if (maxHeaders > 0 && HeadersSize(http.Request) > maxHeaders)
        {
            Log.HeadersTooLarge(_logger, Remote(http), Name, maxHeaders);
            http.Response.StatusCode = StatusCodes.Status431RequestHeaderFieldsTooLarge;
            return;
        }
        if (!http.WebSockets.IsWebSocketRequest)
        {
            if (_files is null) http.Response.StatusCode = StatusCodes.Status404NotFound;
            else await _files.ServeAsync(http);
            return;
        }
        string? subProtocol = ChooseSubProtocol(http.WebSockets.WebSocketRequestedProtocols);
        if (subProtocol is null)
        {
            var offered = http.WebSockets.WebSocketRequestedProtocols;
            Log.NoSubProtocol(_logger, Remote(http), Name, offered.Count == 0 ? "none" : string.Join(", ", offered));
            http.Response.StatusCode = StatusCodes.Status400BadRequest;
            return;
        }
        var peer = EndPoint(http.Connection.RemoteIpAddress, http.Connection.RemotePort);
        var remote = ClientOf(http, peer, _listener.Protection);
        if (!ReferenceEquals(remote, peer) && !_listener.Protection.Admits(remote!.Address))
        {
            // The guard checked the peer (a trusted proxy) when it connected; the client it forwards is checked here.
            Transport.Log.AddressDenied(_logger, RemoteAddress.Format(remote), Name);
            http.Response.StatusCode = StatusCodes.Status403Forbidden;
            return;
        }
        using var socket = await http.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext { SubProtocol = subProtocol });
        string who = RemoteAddress.Format(remote);
        Log.WebSocketOpened(_logger, who, Name, http.Request.Path.Value ?? "/", subProtocol);
        var features = new FeatureCollection();
        if (http.Features.Get<ITlsConnectionFeature>() is { } tls) features.Set(tls);
        var items = http.Features.Get<IConnectionItemsFeature>()?.Items;
        if (items?.TryGetValue(typeof(ConnectionGuard.PendingSlot), out var slot) == true && slot is ConnectionGuard.PendingSlot pending)
        {
            features.Set(pending);
            items.Remove(typeof(ConnectionGuard.PendingSlot));
        }
        var connection = new WebSocketConnection(socket, http.Connection.Id, EndPoint(http.Connection.LocalIpAddress, http.Connection.LocalPort),
            remote, features, http.Abort, _logger, Name);
        await connection.RunAsync(context => MqttListeners.HandleAsync(context, _broker, _listener, _localOnly, _limit));
        Log.WebSocketClosed(_logger, who, Name, socket.CloseStatus is { } status ? ((int)status).ToString(CultureInfo.InvariantCulture) : "none",
            socket.State.ToString());
    }

    /// <summary>
    /// The client behind the request: the TCP peer (or the client its PROXY header named), unless that peer is one of
    /// <c>websockets_trusted_proxies</c> and the request has <c>X-Forwarded-For</c>. Then the list is read from the right
    /// (each proxy appends the address it got the request from): trusted proxies are passed over, and the first address
    /// that is not one is the client; if all are trusted, the left-most is. An entry that is not an address stops the
    /// walk at the last good one. The header carries no port: the client's is given as 0.
    /// </summary>
    internal static IPEndPoint? ClientOf(HttpContext http, IPEndPoint? peer, ListenerProtection protection)
    {
        if (peer is null || protection.TrustedProxies.Count == 0 || !protection.Trusts(peer.Address)) return peer;
        var forwarded = http.Request.Headers["X-Forwarded-For"];
        if (forwarded.Count == 0) return peer;
        IPAddress? client = null;
        for (int h = forwarded.Count - 1; h >= 0; h--)
        {
            var entries = (forwarded[h] ?? "").Split(',', StringSplitOptions.TrimEntries);
            for (int i = entries.Length - 1; i >= 0; i--)
            {
                if (!TryParseForwarded(entries[i], out var address)) return client is null ? peer : new IPEndPoint(client, 0);
                client = address;
                if (!protection.Trusts(address)) return new IPEndPoint(address, 0);
            }
        }
        return client is null ? peer : new IPEndPoint(client, 0);
    }

    /// <summary>One entry of X-Forwarded-For: an address, or one with a port (<c>1.2.3.4:80</c>, <c>[::1]:80</c>).</summary>
    private static bool TryParseForwarded(string entry, out IPAddress address)
    {
        if (IPAddress.TryParse(entry, out address!) && (entry.Contains(':', StringComparison.Ordinal) || entry.Count(c => c == '.') == 3)) return true;
        if (IPEndPoint.TryParse(entry, out var endpoint) && entry.Contains(':', StringComparison.Ordinal))
        {
            address = endpoint.Address;
            return true;
        }
        address = IPAddress.None;
        return false;
    }

    /// <summary>The first subprotocol the client offers that is MQTT's, as the client spelled it; null when none is.</summary>
    private static string? ChooseSubProtocol(IList<string> offered)
    {
        foreach (var protocol in offered)
        {
            foreach (var mqtt in SubProtocols)
            {
                if (string.Equals(protocol, mqtt, StringComparison.OrdinalIgnoreCase)) return protocol;
            }
        }
        return null;
    }

    /// <summary>The request line and headers as they came, near enough (name, value, ": " and CRLF each).</summary>
    private static long HeadersSize(HttpRequest request)
    {
        long size = request.Method.Length + request.PathBase.Value!.Length + request.Path.Value!.Length
            + request.QueryString.Value!.Length + request.Protocol.Length + 4;
        foreach (var (name, values) in request.Headers)
        {
            foreach (var value in values) size += name.Length + (value?.Length ?? 0) + 4;
        }
        return size;
    }

    private static IPEndPoint? EndPoint(IPAddress? address, int port) => address is null ? null : new IPEndPoint(address, port);

    internal static string Remote(HttpContext http) => RemoteAddress.Format(EndPoint(http.Connection.RemoteIpAddress, http.Connection.RemotePort));
}

/// <summary>The HTTP side of <c>protocol websockets</c> listeners.</summary>
public static class MqttWebSockets
{
    /// <summary>
    /// Sends every request that arrives on a WebSocket listener of the broker to the broker (MQTT over WebSocket, the
    /// listener's <c>http_dir</c>, or 404); requests on the application's own endpoints go on down the pipeline.
    /// <c>AddMidge</c> puts this at the front of the host's pipeline itself.
    /// </summary>
    public static IApplicationBuilder UseMqttWebSockets(this IApplicationBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        return app.MapWhen(context => WebSocketListener.Of(context) is not null, branch =>
        {
            // MQTT has its own keep-alive; no WebSocket pings on top.
            branch.UseWebSockets(new WebSocketOptions { KeepAliveInterval = TimeSpan.Zero });
            branch.Run(context => WebSocketListener.Of(context)!.HandleAsync(context));
        });
    }
}

internal static partial class Log
{
    [LoggerMessage(130, LogLevel.Warning, "WebSocket handshake from {Remote} on {Listener} refused (400): no MQTT subprotocol offered (mqtt or mqttv3.1; offered: {Offered}).")]
    public static partial void NoSubProtocol(ILogger logger, string remote, string listener, string offered);

    [LoggerMessage(134, LogLevel.Information, "WebSocket connection from {Remote} on {Listener}: path {Path}, subprotocol {SubProtocol}.", EventName = "WebSockets.Opened")]
    public static partial void WebSocketOpened(ILogger logger, string remote, string listener, string path, string subProtocol);

    [LoggerMessage(135, LogLevel.Information, "WebSocket connection from {Remote} on {Listener} closed (close code {Code}, {State}).", EventName = "WebSockets.Closed")]
    public static partial void WebSocketClosed(ILogger logger, string remote, string listener, string code, string state);

    [LoggerMessage(132, LogLevel.Warning, "HTTP request from {Remote} on {Listener} refused (431): headers larger than websockets_headers_size {Max}.")]
    public static partial void HeadersTooLarge(ILogger logger, string remote, string listener, int max);
}
