namespace Midge.Config.Tests;

/// <summary>Mosquitto's persistence options and Midge's <c>persistence_mode</c>.</summary>
public class PersistenceOptionTests
{
    [Fact]
    public void DebiansStockConfiguration_Parses()
    {
        // /etc/mosquitto/mosquitto.conf as Debian 12 ships it.
        var c = ConfigParser.Parse("""
            pid_file /run/mosquitto/mosquitto.pid

            persistence true
            persistence_location /var/lib/mosquitto/

            log_dest file /var/log/mosquitto/mosquitto.log
            """, "mosquitto.conf");
        Assert.True(c.Persistence);
        Assert.Equal("/var/lib/mosquitto/mosquitto.db", c.PersistencePath);
        Assert.Equal(PersistenceMode.Durable, c.PersistenceMode);
        Assert.Equal(1800, c.AutosaveInterval);
        Assert.False(c.AutosaveOnChanges);
    }

    [Fact]
    public void Defaults_AreMosquittos()
    {
        var c = ConfigParser.Parse("", "m.conf");
        Assert.False(c.Persistence);
        Assert.Equal("mosquitto.db", c.PersistencePath); // the working directory, as Mosquitto
        Assert.Equal(1800, c.AutosaveInterval);
    }

    [Fact]
    public void EveryOption_IsRead()
    {
        var c = ConfigParser.Parse("""
            persistence 1
            persistence_location data
            persistence_file midge store.db
            autosave_interval 60
            autosave_on_changes true
            persistence_mode snapshot
            """, "m.conf");
        Assert.Equal(Path.Combine("data", "midge store.db"), c.PersistencePath);
        Assert.Equal(60, c.AutosaveInterval);
        Assert.True(c.AutosaveOnChanges);
        Assert.Equal(PersistenceMode.Snapshot, c.PersistenceMode);
    }

    [Fact]
    public void PersistenceFalse_WithTheOtherOptions_IsAccepted()
    {
        // As Mosquitto: the options are read and nothing is stored.
        var c = ConfigParser.Parse("persistence false\npersistence_location /var/lib/mosquitto/\nautosave_interval 10\n", "m.conf");
        Assert.False(c.Persistence);
        Assert.Equal(10, c.AutosaveInterval);
    }

    [Theory]
    [InlineData("persistence maybe", "m.conf:1: 'persistence' must be true or false, got 'maybe'")]
    [InlineData("persistence_mode fast", "m.conf:1: 'persistence_mode' must be durable or snapshot, got 'fast'")]
    [InlineData("autosave_interval -1", "m.conf:1: 'autosave_interval' must be between 0 and 2147483647, got '-1'")]
    [InlineData("autosave_interval soon", "m.conf:1: 'autosave_interval' must be an integer, got 'soon'")]
    [InlineData("persistence_file db/", "m.conf:1: 'persistence_file' is a file name, got the directory 'db/' (the directory is 'persistence_location')")]
    [InlineData("persistence_location", "m.conf:1: option 'persistence_location' needs a value")]
    public void BadValues_NameTheLine(string line, string message)
    {
        var e = Assert.Throws<ConfigException>(() => ConfigParser.Parse(line + "\n", "m.conf"));
        Assert.Equal(message, e.Message);
    }
}
