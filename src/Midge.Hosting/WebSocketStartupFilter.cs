using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Midge.Transport.Http;
using Midge.Transport.WebSockets;

namespace Midge.Hosting;

/// <summary>Puts the broker's WebSocket and HTTP API listeners in front of the host's request pipeline (the <c>midge</c>
/// executable's, which has nothing else, or an application's): their requests never reach the application's
/// endpoints, and the application's requests pass by.</summary>
internal sealed class WebSocketStartupFilter : IStartupFilter
{
    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
    {
        app.UseMqttWebSockets();
        app.UseMidgeHttpApi();
        next(app);
    };
}
