using Microsoft.Extensions.Logging;
using Midge.Core.Channel;

namespace Midge.Core.Hooks;

/// <summary>
/// A named place in the broker that code outside the core (a bridge, the rule engine, an authentication backend, an
/// event recorder, an embedding application) can attach to. Handlers are kept in an array that is replaced whole on
/// attach and detach, so invoking reads one field and takes no lock; with nothing attached the broker skips the
/// point after one check (<see cref="IsAttached"/>) and builds no event.
/// </summary>
public abstract class HookPointBase<THandler>(string name)
    where THandler : class
{
    private THandler[] _handlers = [];

    /// <summary>The point's name, as in logs and docs (for example <c>message.publish</c>).</summary>
    public string Name { get; } = name;

    /// <summary>Whether any handler is attached: the broker checks this before it builds an event.</summary>
    public bool IsAttached => Volatile.Read(ref _handlers).Length != 0;

    internal THandler[] Handlers => Volatile.Read(ref _handlers);

    /// <summary>Attaches <paramref name="handler"/>; disposing the result detaches it.</summary>
    public IDisposable Attach(THandler handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        Swap(h => [.. h, handler]);
        return new Detacher(this, handler);
    }

    private void Swap(Func<THandler[], THandler[]> change)
    {
        while (true)
        {
            var current = Volatile.Read(ref _handlers);
            if (Interlocked.CompareExchange(ref _handlers, change(current), current) == current) return;
        }
    }

    private sealed class Detacher(HookPointBase<THandler> point, THandler handler) : IDisposable
    {
        private int _done;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0) point.Swap(h => Array.FindAll(h, x => !ReferenceEquals(x, handler)));
        }
    }
}

/// <summary>
/// A point that tells what happened (a client connected, a message was delivered). Handlers run synchronously on the
/// thread that got there, often an I/O thread inside a session's lock: they must be quick and must not block (hand
/// slow work to a queue or a task). A handler that throws is logged and the others still run; the broker goes on.
/// </summary>
public sealed class HookPoint<TEvent>(string name, ILogger logger) : HookPointBase<Action<TEvent>>(name)
{
    internal void Invoke(in TEvent e)
    {
        foreach (var handler in Handlers)
        {
            try
            {
                handler(e);
            }
            catch (Exception ex)
            {
                Log.HookFailed(logger, Name, ex);
            }
        }
    }
}

/// <summary>
/// A point where the broker awaits an answer (authenticate, authorise). Handlers are asked in the order they were
/// attached; the first that does not answer <see cref="HookVerdict.Defer"/> decides, and when all defer (or none is
/// attached) the broker's own rules decide (password file and <c>allow_anonymous</c>, the ACL file). A handler may
/// complete asynchronously (an HTTP, LDAP or database call): the connection waits, no thread does. A handler that
/// throws counts as <see cref="HookVerdict.Deny"/>, and is logged.
/// </summary>
public sealed class DecisionPoint<TContext>(string name, ILogger logger)
    : HookPointBase<Func<TContext, CancellationToken, ValueTask<HookVerdict>>>(name)
{
    /// <summary>Asks the handlers in order. Completes synchronously when every handler does.</summary>
    internal ValueTask<HookVerdict> DecideAsync(TContext context, CancellationToken cancellationToken = default)
    {
        var handlers = Handlers;
        for (int i = 0; i < handlers.Length; i++)
        {
            ValueTask<HookVerdict> pending;
            try
            {
                pending = handlers[i](context, cancellationToken);
            }
            catch (Exception ex)
            {
                Log.HookFailed(logger, Name, ex);
                return ValueTask.FromResult(HookVerdict.Deny);
            }
            if (!pending.IsCompletedSuccessfully) return ContinueAsync(pending, handlers, i, context, cancellationToken);
            if (pending.Result != HookVerdict.Defer) return pending;
        }
        return ValueTask.FromResult(HookVerdict.Defer);
    }

    private async ValueTask<HookVerdict> ContinueAsync(ValueTask<HookVerdict> pending,
        Func<TContext, CancellationToken, ValueTask<HookVerdict>>[] handlers, int at, TContext context, CancellationToken cancellationToken)
    {
        for (int i = at; i < handlers.Length; i++)
        {
            try
            {
                var verdict = i == at ? await pending.ConfigureAwait(false) : await handlers[i](context, cancellationToken).ConfigureAwait(false);
                if (verdict != HookVerdict.Defer) return verdict;
            }
            catch (Exception ex)
            {
                Log.HookFailed(logger, Name, ex);
                return HookVerdict.Deny;
            }
        }
        return HookVerdict.Defer;
    }
}

/// <summary>A decision hook's answer.</summary>
public enum HookVerdict
{
    /// <summary>No opinion: the next handler, then the broker's own rules, decide.</summary>
    Defer,

    /// <summary>Allowed; later handlers and the broker's own rules are not asked.</summary>
    Allow,

    /// <summary>Refused: the client is told (CONNACK 0x87, PUBACK/PUBREC 0x87, SUBACK 0x87; 3.x: its codes).</summary>
    Deny,
}
