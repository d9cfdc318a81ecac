namespace Midge.Config;

/// <summary>A configuration error, with the file and line it came from.</summary>
public sealed class ConfigException(ConfigSource source, string message) : Exception($"{source}: {message}")
{
    public ConfigSource Location { get; } = source;
    public string Reason { get; } = message;
}
