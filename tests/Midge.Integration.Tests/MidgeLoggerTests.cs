using System.Reflection;
using Microsoft.Extensions.Logging;
using Midge.Config;

namespace Midge.Integration.Tests;

/// <summary>The broker's logger says a level is enabled only when a configured log_type can take it.</summary>
public sealed class MidgeLoggerTests
{
    [Fact]
    public void A_level_is_enabled_only_when_a_configured_log_type_takes_it()
    {
        var provider = new MidgeLoggerProvider(new BrokerConfig { LogTypes = LogTypes.Error | LogTypes.Warning });
        var logger = provider.CreateLogger("Midge.Core");
        Assert.False(logger.IsEnabled(LogLevel.Information)); // every connect logs here: nothing is formatted
        Assert.False(logger.IsEnabled(LogLevel.Debug));
        Assert.True(logger.IsEnabled(LogLevel.Warning));
        Assert.True(logger.IsEnabled(LogLevel.Error));

        provider.Apply(new BrokerConfig { LogTypes = LogTypes.Subscribe }); // a reload takes effect at once
        Assert.True(logger.IsEnabled(LogLevel.Debug));
        Assert.False(logger.IsEnabled(LogLevel.Information));

        provider.Apply(new BrokerConfig { LogTypes = LogTypes.Notice });
        Assert.True(logger.IsEnabled(LogLevel.Information));
        Assert.False(logger.IsEnabled(LogLevel.Debug));
    }

    [Fact]
    public void Every_logged_event_maps_to_a_type_its_level_enables()
    {
        var assemblies = typeof(MidgeLoggerProvider).Assembly.GetReferencedAssemblies()
            .Where(a => a.Name!.StartsWith("Midge", StringComparison.Ordinal))
            .Select(Assembly.Load)
            .Append(typeof(MidgeLoggerProvider).Assembly);
        int checkedEvents = 0;
        foreach (var method in assemblies.SelectMany(a => a.GetTypes()).SelectMany(t =>
                     t.GetMethods(BindingFlags.Static | BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly)))
        {
            if (method.GetCustomAttribute<LoggerMessageAttribute>() is not { } a) continue;
            var type = MidgeLoggerProvider.TypeOf(a.Level, new EventId(a.EventId, a.EventName));
            Assert.True(type != LogTypes.None && (type & ~MidgeLoggerProvider.TypesAt(a.Level)) == 0,
                $"{method.DeclaringType}.{method.Name} ({a.Level}, {a.EventName}) maps to {type}, which IsEnabled({a.Level}) does not cover");
            checkedEvents++;
        }
        Assert.True(checkedEvents >= 30, $"only {checkedEvents} [LoggerMessage] methods found");
    }
}
