using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Midge.Config;
using Midge.Core;
using Midge.Persistence;
using Midge.Transport;
using Midge.Transport.Http;

namespace Midge.Hosting;

/// <summary>Adds a Midge broker to an ASP.NET Core (Kestrel) application.</summary>
public static class MidgeServiceCollectionExtensions
{
    /// <summary>
    /// Adds the broker: its MQTT listeners join the application's Kestrel server next to its HTTP endpoints, a
    /// background service ticks it (keep-alive, expiry, delayed wills, <c>$SYS</c>), and the application's shutdown
    /// disconnects its clients (MQTT 5: DISCONNECT 0x8B). The <see cref="Broker"/> and <see cref="MidgeBroker"/> are
    /// services: resolve either to publish, subscribe in process, or attach hooks. Call after the host added Kestrel
    /// (<c>WebApplication.CreateBuilder</c> and <c>CreateSlimBuilder</c> have).
    /// </summary>
    public static IServiceCollection AddMidge(this IServiceCollection services, Action<MidgeOptions>? configure = null)
    {
        var options = new MidgeOptions();
        configure?.Invoke(options);
        services.AddSingleton<OwnedStore>();
        return services.AddMidge(options, sp =>
        {
            // persistence true: the store is opened (a Mosquitto database taken over) before the broker restores from it;
            // a StoreException names the file and what to do. The heartbeat closes it at stop; the container lets go
            // of its lock file when the host is disposed.
            var loggers = sp.GetService<ILoggerFactory>();
            var persistent = options.Config.Persistence ? PersistentStore.Open(options.Config, loggers) : null;
            sp.GetRequiredService<OwnedStore>().Value = persistent;
            var broker = new Broker(options.Config, loggers, null, persistent?.Store);
            persistent?.RouteTakenOver(broker);
            return broker;
        });
    }

    /// <summary>
    /// Adds a broker the caller made (to catch a bad password or ACL file before the host starts, say), with
    /// <paramref name="options"/>' version and hooks; <paramref name="broker"/>'s configuration is the one used.
    /// <paramref name="tls"/>: the listeners' certificates, when the caller loaded them (to reload them later). A session
    /// store the broker was given is the host's from now on: when the host stops, after the clients are gone, the
    /// running totals are saved and the store is disposed (if it is <see cref="IDisposable"/>).
    /// </summary>
    public static IServiceCollection AddMidge(this IServiceCollection services, Broker broker, MidgeOptions? options = null,
        TlsCertificateStore? tls = null)
    {
        options ??= new MidgeOptions();
        options.Config = broker.Config;
        return services.AddMidge(options, _ => broker, tls);
    }

    private static IServiceCollection AddMidge(this IServiceCollection services, MidgeOptions options, Func<IServiceProvider, Broker> create,
        TlsCertificateStore? tls = null)
    {
        tls ??= new TlsCertificateStore(options.Config); // certificate errors name their line, before anything starts
        services.AddSingleton(options);
        services.AddSingleton(tls);
        services.AddSingleton(sp =>
        {
            var broker = create(sp);
            options.ConfigureHooks?.Invoke(broker.Hooks);
            options.ConfigureBroker?.Invoke(broker);
            return broker;
        });
        services.AddSingleton(sp => new MidgeBroker(sp.GetRequiredService<Broker>()));
        services.AddSingleton(sp => new BrokerMetrics(sp.GetRequiredService<Broker>(), options.Version));
        MqttListeners.AddSocketTransport(services);
        if (MqttListeners.Effective(options.Config).Any(l => l.Protocol is ListenerProtocol.WebSockets or ListenerProtocol.Http))
        {
            services.AddTransient<IStartupFilter, WebSocketStartupFilter>();
        }
        services.AddSingleton<IConfigureOptions<KestrelServerOptions>>(sp => new ConfigureOptions<KestrelServerOptions>(o =>
        {
            var logger = sp.GetService<ILoggerFactory>()?.CreateLogger("Midge") ?? NullLogger.Instance;
            var api = new HttpApiSettings
            {
                Version = options.Version,
                Reload = options.Reload,
                Metrics = sp.GetRequiredService<BrokerMetrics>(),
            };
            MqttListeners.Configure(o, sp.GetRequiredService<Broker>(), logger, tls, api);
        }));
        services.AddHostedService(sp => new BrokerHeartbeat(sp.GetRequiredService<Broker>(), options.Version,
            sp.GetRequiredService<IHostApplicationLifetime>()));
        if (options.Config.Bridges.Count > 0)
        {
            // Registered after the heartbeat, so stopped before it: the bridges' local sessions end before the broker
            // disconnects its clients and closes its store.
            services.AddHostedService(sp => new BridgeService(sp.GetRequiredService<Broker>(), sp.GetService<ILoggerFactory>()));
        }
        if (options.Config.Cluster is { } cluster)
        {
            // After the heartbeat too: the node leaves the cluster before the broker disconnects its clients.
            services.AddHostedService(sp => new ClusterService(sp.GetRequiredService<Broker>(), cluster, sp.GetService<ILoggerFactory>()));
        }
        return services;
    }
}

/// <summary>The persistence store <see cref="MidgeServiceCollectionExtensions.AddMidge(IServiceCollection, Action{MidgeOptions}?)"/>
/// opened, disposed with the host's services.</summary>
internal sealed class OwnedStore : IDisposable
{
    public PersistentStore? Value { get; set; }

    public void Dispose() => Value?.Dispose();
}
