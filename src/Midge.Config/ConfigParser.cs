namespace Midge.Config;

/// <summary>Reads a mosquitto.conf (Mosquitto 2.0 grammar) into a <see cref="BrokerConfig"/>.</summary>
public static class ConfigParser
{
    /// <summary>Parses the file, following include_dir. Throws <see cref="ConfigException"/> with file:line.</summary>
    public static BrokerConfig ParseFile(string path) => throw new NotImplementedException();

    /// <summary>Parses text as if read from <paramref name="fileName"/> (relative include_dir paths resolve
    /// against <paramref name="baseDirectory"/>).</summary>
    public static BrokerConfig Parse(string text, string fileName = "<config>", string? baseDirectory = null) =>
        throw new NotImplementedException();
}
