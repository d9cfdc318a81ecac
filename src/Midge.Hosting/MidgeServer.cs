using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Midge.Core;

namespace Midge.Hosting;

/// <summary>
/// A broker running inside the calling process, for applications that are not ASP.NET Core applications (those call
/// <see cref="MidgeServiceCollectionExtensions.AddMidge(IServiceCollection, Action{MidgeOptions}?)"/>) and for tests:
/// <c>await using var server = await MidgeServer.StartAsync(o => o.UseConfig("listener 1883"));</c>. Disposing it stops
/// the listeners and disconnects every client.
/// </summary>
public sealed class MidgeServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private MidgeServer(WebApplication app)
    {
        _app = app;
        Midge = app.Services.GetRequiredService<MidgeBroker>();
    }

    /// <summary>Publish, subscribe in process, hooks.</summary>
    public MidgeBroker Midge { get; }

    /// <summary>The broker itself.</summary>
    public Broker Broker => Midge.Broker;

    /// <summary>
    /// Starts a broker with <paramref name="configure"/>'s options; returns once every listener is bound. Throws
    /// <see cref="Config.ConfigException"/> for a bad configuration (file and line named), and the bind's exception
    /// when a port is taken. <paramref name="logging"/> chooses where its log goes (default: nowhere).
    /// </summary>
    public static async Task<MidgeServer> StartAsync(Action<MidgeOptions>? configure = null, Action<ILoggingBuilder>? logging = null,
        CancellationToken cancellationToken = default)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = ["--hostBuilder:reloadConfigOnChange=false"],
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.Logging.ClearProviders();
        logging?.Invoke(builder.Logging);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(5));
        builder.WebHost.ConfigureKestrel(o => o.AddServerHeader = false);
        builder.Services.AddMidge(configure);
        var app = builder.Build();
        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await app.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        return new MidgeServer(app);
    }

    /// <summary>Disconnects every client (MQTT 5: DISCONNECT 0x8B) and closes the listeners.</summary>
    public Task StopAsync(CancellationToken cancellationToken = default) => _app.StopAsync(cancellationToken);

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }
}
