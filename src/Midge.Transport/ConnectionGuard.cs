using System.Net;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Midge.Config;
using Midge.Core.Channel;

namespace Midge.Transport;

/// <summary>
/// Socket-level protection of one listener, run as the first connection middleware so it acts before TLS and
/// MQTT: <c>allow_address</c>/<c>deny_address</c>, <c>max_pending_connections</c> (sockets that have not
/// completed CONNECT) and <c>max_connection_rate</c> (new sockets per second). A refused socket is aborted at
/// once and logged. The CONNECT-side half of the rate, and everything per client, is in the channel
/// (Midge.Core/Channel/MqttChannel.Protection.cs).
/// </summary>
/// <remarks>The socket rate uses <see cref="TokenBucketRateLimiter"/> on the system clock (no test clock is
/// needed at this level): burst = one second's worth, refilled in twentieths of a second.</remarks>
internal sealed class ConnectionGuard : IDisposable
{
    private readonly ListenerProtection _protection;
    private readonly TokenBucketRateLimiter? _rate;
    private readonly ILogger _logger;
    private readonly string _name;
    private int _pending;

    public ConnectionGuard(ListenerConfig listener, ILogger logger)
    {
        _protection = listener.Protection;
        _logger = logger;
        _name = listener.UnixSocketPath ?? $"{listener.BindAddress ?? "*"}:{listener.Port}";
        int rate = _protection.MaxConnectionRate;
        if (rate > 0)
        {
            int steps = Math.Min(rate, 20);
            _rate = new TokenBucketRateLimiter(new TokenBucketRateLimiterOptions
            {
                TokenLimit = rate,
                TokensPerPeriod = (rate + steps - 1) / steps,
                ReplenishmentPeriod = TimeSpan.FromSeconds(1.0 / steps),
                QueueLimit = 0,
                AutoReplenishment = true,
            });
        }
    }

    /// <summary>True when the guard has nothing to check on this listener.</summary>
    public bool IsIdle => _rate is null && _protection.MaxPendingConnections <= 0 &&
        _protection.AllowAddresses.Count == 0 && _protection.DenyAddresses.Count == 0;

    /// <summary>The middleware: admits or aborts, and holds a pending slot until CONNECT completes (released by
    /// <see cref="MqttConnection"/>) or the connection ends.</summary>
    public ConnectionDelegate Wrap(ConnectionDelegate next) => async context =>
    {
        if (!TryAdmit(context, out var slot))
        {
            context.Abort();
            return;
        }
        if (slot is null)
        {
            await next(context);
            return;
        }
        context.Features.Set(slot);
        try
        {
            await next(context);
        }
        finally
        {
            slot.Release();
        }
    };

    private bool TryAdmit(ConnectionContext context, out PendingSlot? slot)
    {
        slot = null;
        var remote = context.RemoteEndPoint as IPEndPoint;
        if (remote is not null && !_protection.Admits(remote.Address))
        {
            Log.AddressDenied(_logger, RemoteAddress.Format(remote), _name);
            return false;
        }
        string who = remote is null ? context.ConnectionId : RemoteAddress.Format(remote);
        int maxPending = _protection.MaxPendingConnections;
        if (maxPending > 0)
        {
            if (Interlocked.Increment(ref _pending) > maxPending)
            {
                Interlocked.Decrement(ref _pending);
                Log.TooManyPending(_logger, who, _name, maxPending);
                return false;
            }
            slot = new PendingSlot(this);
        }
        if (_rate is not null)
        {
            using var lease = _rate.AttemptAcquire(1);
            if (!lease.IsAcquired)
            {
                slot?.Release();
                slot = null;
                Log.ConnectionRateExceeded(_logger, who, _name, _protection.MaxConnectionRate);
                return false;
            }
        }
        return true;
    }

    public void Dispose() => _rate?.Dispose();

    /// <summary>One connection counted against max_pending_connections until it is released (once).</summary>
    internal sealed class PendingSlot(ConnectionGuard guard)
    {
        private int _released;

        public void Release()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0) Interlocked.Decrement(ref guard._pending);
        }
    }
}

internal static partial class Log
{
    [LoggerMessage(110, LogLevel.Warning, "Connection from {Remote} on {Listener} refused: address not allowed (allow_address/deny_address).")]
    public static partial void AddressDenied(ILogger logger, string remote, string listener);

    [LoggerMessage(111, LogLevel.Warning, "Connection from {Remote} on {Listener} refused: max_connection_rate {Rate} per second exceeded.")]
    public static partial void ConnectionRateExceeded(ILogger logger, string remote, string listener, int rate);

    [LoggerMessage(112, LogLevel.Warning, "Connection from {Remote} on {Listener} refused: {Max} connections already waiting for CONNECT (max_pending_connections).")]
    public static partial void TooManyPending(ILogger logger, string remote, string listener, int max);
}
