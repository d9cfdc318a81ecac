using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Midge.Config;
using Midge.Core;
using Midge.Protocol;
using Midge.Protocol.Packets;
using Midge.Security;
using Midge.Transport.Http;
using Midge.Transport.Sockets;
using Midge.Transport.WebSockets;

namespace Midge.Transport;

/// <summary>Binds every configured MQTT listener on Kestrel.</summary>
public static class MqttListeners
{
    /// <summary>The listeners to open: the configured ones, or local-only mode's loopback listeners.</summary>
    public static IReadOnlyList<ListenerConfig> Effective(BrokerConfig config)
    {
        if (!config.LocalOnlyMode) return config.Listeners;
        var list = new List<ListenerConfig>();
        foreach (int port in config.LocalOnlyPorts)
        {
            list.Add(new ListenerConfig { Port = port, BindAddress = "127.0.0.1", AllowAnonymous = true });
            if (Socket.OSSupportsIPv6) list.Add(new ListenerConfig { Port = port, BindAddress = "::1", AllowAnonymous = true });
        }
        return list;
    }

    /// <summary>Registers the socket transports that MQTT listeners bind through: Midge's own for plain TCP, Kestrel's
    /// with inline scheduling for the others (<see cref="InlineSocketTransportFactory"/>); call it after the host has
    /// added Kestrel (the last registered transport that can bind an endpoint wins).</summary>
    public static void AddSocketTransport(IServiceCollection services)
    {
        services.AddSingleton<IConnectionListenerFactory, SocketTransportFactory>();
        services.AddSingleton<IConnectionListenerFactory, InlineSocketTransportFactory>();
    }

    /// <summary>Adds the MQTT listeners to Kestrel.</summary>
    /// <param name="api">What <c>protocol http</c> listeners (the management API) need from the host; null: defaults (no
    /// reload, no metrics).</param>
    public static void Configure(KestrelServerOptions options, Broker broker, ILogger logger, TlsCertificateStore? tls = null,
        HttpApiSettings? api = null)
    {
        var config = broker.Config;
        foreach (var listener in Effective(config))
        {
            // Address lists, connection rate, pending handshakes: one guard per listener (ConnectionGuard.cs).
            var guard = new ConnectionGuard(listener, logger);
            // enable_proxy_protocol: the header is read first of all, so the guard and everything after it see the
            // client's address (ProxyProtocolGate.cs).
            var proxy = listener.ProxyProtocol == 0 ? null : new ProxyProtocolGate(listener, logger);
            if (listener.UnixSocketPath is { } path)
            {
                ListenUnix(options, broker, logger, tls, listener, proxy, guard, path);
                continue;
            }
            foreach (var endpoint in EndPoints(listener))
            {
                var l = listener;
                bool local = config.LocalOnlyMode;
                var limiter = new ConnectionLimit(l.MaxConnections);
                var secure = l.Tls is null ? null
                    : tls?.For(l) ?? throw new InvalidOperationException($"{l.Source}: TLS listener without loaded certificates");
                if (l.Protocol == ListenerProtocol.Http)
                {
                    ListenHttp(options, new HttpApiListener(broker, l, api ?? new HttpApiSettings(), logger), endpoint, proxy, guard, secure, logger);
                    continue;
                }
                if (l.Protocol == ListenerProtocol.WebSockets)
                {
                    ListenWebSockets(options, new WebSocketListener(broker, l, local, limiter, logger), endpoint, proxy, guard, secure, logger);
                    continue;
                }
                ConnectionDelegate mqtt = context => HandleAsync(context, broker, l, local, limiter);
                if (secure is null)
                {
                    // Plain TCP: Midge's socket transport runs the pipeline itself (Sockets/SocketTransport.cs).
                    var app = guard.IsIdle ? mqtt : guard.Wrap(mqtt);
                    if (proxy is not null) app = proxy.Wrap(app);
                    options.Listen(new MqttTcpEndPoint(endpoint, app, logger), o => o.Run(c => app(c)));
                }
                else
                {
                    options.Listen(new MqttPipeEndPoint(endpoint), o =>
                    {
                        if (proxy is not null) o.Use(proxy.Wrap); // the PROXY header comes in clear, before TLS
                        if (!guard.IsIdle) o.Use(guard.Wrap); // then the guard, so it runs before TLS and MQTT
                        o.UseHttps(secure.HandshakeOptions(logger)); // TLS as middleware in front of MQTT
                        o.Run(c => mqtt(c));
                    });
                }
                // Mosquitto's lines: "Opening ipv4 listen socket on port 1883." for each socket it opens; a listener
                // without an address opens one per family, which the dual-mode [::] socket here stands for.
                bool dual = endpoint.Address.Equals(IPAddress.IPv6Any) && l.SocketDomain == SocketDomain.Any;
                if (dual || endpoint.AddressFamily == AddressFamily.InterNetwork) Log.Listening(logger, "ipv4", endpoint.Port);
                if (endpoint.AddressFamily == AddressFamily.InterNetworkV6) Log.Listening(logger, "ipv6", endpoint.Port);
            }
        }
    }

    /// <summary>
    /// <c>protocol websockets</c>: Kestrel serves HTTP/1.1 on the endpoint (behind the connection guard, then TLS for
    /// WSS) through the host's request pipeline, where <see cref="MqttWebSockets.UseMqttWebSockets"/> finds the mark
    /// that <see cref="WebSocketListener.Mark"/> leaves on each connection and hands the request to the listener.
    /// </summary>
    private static void ListenWebSockets(KestrelServerOptions options, WebSocketListener listener, IPEndPoint endpoint,
        ProxyProtocolGate? proxy, ConnectionGuard guard, TlsListener? secure, ILogger logger)
    {
        options.Listen(new MqttPipeEndPoint(endpoint), o =>
        {
            o.Protocols = HttpProtocols.Http1;
            if (proxy is not null) o.Use(proxy.Wrap); // before TLS and the HTTP upgrade
            if (!guard.IsIdle) o.Use(guard.Wrap);
            if (secure is not null) o.UseHttps(secure.HandshakeOptions(logger));
            o.Use(listener.Mark);
        });
        Log.ListeningWebSockets(logger, endpoint.Port);
    }

    /// <summary><c>protocol http</c>: the management API (docs/http-api.md), served as WebSocket listeners are: HTTP/1.1
    /// behind the guard and TLS, each connection marked for <see cref="HttpApiMiddleware.UseMidgeHttpApi"/>.</summary>
    private static void ListenHttp(KestrelServerOptions options, HttpApiListener listener, IPEndPoint endpoint,
        ProxyProtocolGate? proxy, ConnectionGuard guard, TlsListener? secure, ILogger logger)
    {
        options.Listen(endpoint, o =>
        {
            o.Protocols = HttpProtocols.Http1;
            if (proxy is not null) o.Use(proxy.Wrap);
            if (!guard.IsIdle) o.Use(guard.Wrap);
            if (secure is not null) o.UseHttps(secure.HandshakeOptions(logger));
            o.Use(listener.Mark);
        });
        Log.ListeningHttp(logger, secure is null ? "http" : "https", endpoint.Port);
    }

    /// <summary>
    /// <c>listener 0 PATH</c>: MQTT on a Unix socket, over Kestrel's pipes (the same connection code as TLS), with the
    /// listener's TLS, limits and security. A socket file left by a broker that did not stop cleanly is replaced, as
    /// Mosquitto does; one that a running process still listens on is an error. The file gets the permissions the
    /// process's umask leaves (connecting needs write permission on it).
    /// </summary>
    private static void ListenUnix(KestrelServerOptions options, Broker broker, ILogger logger, TlsCertificateStore? tls,
        ListenerConfig listener, ProxyProtocolGate? proxy, ConnectionGuard guard, string path)
    {
        RemoveStaleSocket(listener, path);
        var limiter = new ConnectionLimit(listener.MaxConnections);
        var secure = listener.Tls is null ? null
            : tls?.For(listener) ?? throw new InvalidOperationException($"{listener.Source}: TLS listener without loaded certificates");
        bool local = broker.Config.LocalOnlyMode;
        options.Listen(new MqttPipeEndPoint(new UnixDomainSocketEndPoint(path)), o =>
        {
            if (proxy is not null) o.Use(proxy.Wrap);
            if (!guard.IsIdle) o.Use(guard.Wrap);
            if (secure is not null) o.UseHttps(secure.HandshakeOptions(logger));
            o.Run(c => HandleAsync(c, broker, listener, local, limiter));
        });
        Log.ListeningUnix(logger, path);
    }

    private static void RemoveStaleSocket(ListenerConfig listener, string path)
    {
        if (!File.Exists(path)) return;
        using (var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            try
            {
                probe.Connect(new UnixDomainSocketEndPoint(path));
                throw new InvalidOperationException($"{listener.Source}: Unix socket {path} is in use by another process");
            }
            catch (SocketException)
            {
                // Nobody listens: a stale file.
            }
        }
        File.Delete(path);
    }

    /// <summary>Runs one connection. Not an async method: an idle connection keeps no state machine for it.</summary>
    internal static Task HandleAsync(ConnectionContext context, Broker broker, ListenerConfig listener, bool localOnly, ConnectionLimit limit)
    {
        // socket_domain ipv6 without an address: the [::] socket is dual-stack, so IPv4 clients (::ffff:a.b.c.d) are
        // turned away here, as Mosquitto's IPv6-only socket never accepts them.
        if (listener.SocketDomain == SocketDomain.IPv6 && context.RemoteEndPoint is IPEndPoint { Address.IsIPv4MappedToIPv6: true })
        {
            context.Abort();
            return Task.CompletedTask;
        }
        if (!limit.TryEnter()) return RefuseBusyAsync(context);
        MqttConnection connection;
        try
        {
            connection = new MqttConnection(context, broker, listener, localOnly,
                context.Features.Get<ConnectionGuard.PendingSlot>(), CertificateUserName(context, listener), limit);
        }
        catch
        {
            limit.Exit();
            throw;
        }
        return connection.RunAsync(); // gives the slot back when it ends
    }

    /// <summary>The user name the client certificate gives on a listener with use_identity_as_username or
    /// use_subject_as_username; null when there is no certificate (or no CN in it).</summary>
    private static string? CertificateUserName(ConnectionContext context, ListenerConfig listener)
    {
        if (listener.Tls is not { UsesCertificateIdentity: true } tls) return null;
        if (context.Features.Get<ITlsConnectionFeature>()?.ClientCertificate is not { } certificate) return null;
        return tls.UseIdentityAsUsername ? CertificateIdentity.CommonName(certificate) : CertificateIdentity.Subject(certificate);
    }

    /// <summary>
    /// max_connections reached: rather than drop the socket unexplained, read the CONNECT (at most one small frame,
    /// at most two seconds) and answer it: MQTT 5 gets CONNACK 0x89 Server busy, 3.x CONNACK 3 (server
    /// unavailable). Anything else, or nothing in time, is simply closed.
    /// </summary>
    private static async Task RefuseBusyAsync(ConnectionContext context)
    {
        const int MaxConnectFrame = 4096;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        var input = context.Transport.Input;
        try
        {
            while (true)
            {
                var result = await input.ReadAsync(timeout.Token);
                var buffer = result.Buffer;
                var status = FrameReader.TryRead(ref buffer, MaxConnectFrame, out byte header, out var body, out _);
                if (status == FrameStatus.Complete)
                {
                    if (PacketDecoder.Decode(header, body, ProtocolVersion.V311) is ConnectPacket connect)
                    {
                        var connack = new ConnAckPacket
                        {
                            ReasonCode = connect.ProtocolVersion == ProtocolVersion.V500 ? ReasonCode.ServerBusy : ReasonCode.ServerUnavailable,
                        };
                        PacketEncoder.Write(context.Transport.Output, connack, connect.ProtocolVersion);
                        await context.Transport.Output.FlushAsync(timeout.Token);
                    }
                    break;
                }
                input.AdvanceTo(buffer.Start, buffer.End);
                if (status != FrameStatus.Incomplete || result.IsCompleted) break;
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or MqttProtocolException or IOException or ConnectionResetException)
        {
        }
        await context.Transport.Output.CompleteAsync();
        if (context is SocketConnection socket) await socket.DisposeAsync(); // Kestrel closes only its own
    }

    /// <summary>Resolves a listener's bind address (address, host name, interface or all) into endpoints.</summary>
    public static IEnumerable<IPEndPoint> EndPoints(ListenerConfig listener)
    {
        if (listener.BindInterface is { } iface)
        {
            var ni = NetworkInterface.GetAllNetworkInterfaces().FirstOrDefault(n => n.Name == iface)
                ?? throw new InvalidOperationException($"{listener.Source}: bind_interface '{iface}' does not exist");
            foreach (var a in ni.GetIPProperties().UnicastAddresses)
            {
                if (Accepts(listener.SocketDomain, a.Address.AddressFamily)) yield return new IPEndPoint(a.Address, listener.Port);
            }
            yield break;
        }
        if (listener.BindAddress is { } bind)
        {
            if (IPAddress.TryParse(bind, out var ip))
            {
                yield return new IPEndPoint(ip, listener.Port);
                yield break;
            }
            foreach (var a in Dns.GetHostAddresses(bind))
            {
                if (Accepts(listener.SocketDomain, a.AddressFamily)) yield return new IPEndPoint(a, listener.Port);
            }
            yield break;
        }
        switch (listener.SocketDomain)
        {
            case SocketDomain.IPv4: yield return new IPEndPoint(IPAddress.Any, listener.Port); break;
            case SocketDomain.IPv6: yield return new IPEndPoint(IPAddress.IPv6Any, listener.Port); break;
            default:
                // Kestrel binds [::] dual-mode where the OS supports it, which covers IPv4 too.
                yield return new IPEndPoint(Socket.OSSupportsIPv6 ? IPAddress.IPv6Any : IPAddress.Any, listener.Port);
                break;
        }
    }

    private static bool Accepts(SocketDomain domain, AddressFamily family) => domain switch
    {
        SocketDomain.IPv4 => family == AddressFamily.InterNetwork,
        SocketDomain.IPv6 => family == AddressFamily.InterNetworkV6,
        _ => family is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6,
    };
}

/// <summary>max_connections of one listener.</summary>
internal sealed class ConnectionLimit(int max)
{
    private int _count;

    public bool TryEnter()
    {
        if (max < 0)
        {
            return true;
        }
        if (Interlocked.Increment(ref _count) <= max) return true;
        Interlocked.Decrement(ref _count);
        return false;
    }

    public void Exit()
    {
        if (max >= 0) Interlocked.Decrement(ref _count);
    }
}

internal static partial class Log
{
    [LoggerMessage(120, LogLevel.Error, "Connection from {Remote} failed.")]
    public static partial void ConnectionFailed(ILogger logger, string remote, Exception exception);

    [LoggerMessage(100, LogLevel.Information, "Opening {Family} listen socket on port {Port}.")]
    public static partial void Listening(ILogger logger, string family, int port);

    [LoggerMessage(102, LogLevel.Information, "Opening websockets listen socket on port {Port}.")]
    public static partial void ListeningWebSockets(ILogger logger, int port);

    [LoggerMessage(103, LogLevel.Information, "Opening {Scheme} API listen socket on port {Port}.")]
    public static partial void ListeningHttp(ILogger logger, string scheme, int port);

    [LoggerMessage(101, LogLevel.Information, "Opening unix listen socket on path {Path}.")]
    public static partial void ListeningUnix(ILogger logger, string path);
}
