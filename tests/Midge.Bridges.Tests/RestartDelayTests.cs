using Midge.Config;

namespace Midge.Bridges.Tests;

/// <summary><c>restart_timeout</c>: the constant form, and the base/cap form's "decorrelated jitter" (each wait drawn
/// between the base and three times the previous one, at most the cap, from the base again after a connection).</summary>
public class RestartDelayTests
{
    private static BridgeConfig Bridge(string restartTimeout) =>
        Assert.Single(ConfigParser.Parse($"listener 1883\nconnection up\naddress 10.0.0.1\ntopic #\nrestart_timeout {restartTimeout}\n", "m.conf").Bridges);

    /// <summary>A source of "random" numbers that always draws the same fraction.</summary>
    private sealed class Fixed(double fraction) : Random
    {
        public override double NextDouble() => fraction;
    }

    [Fact]
    public void Constant_WaitsTheSameEachTime_AndResetChangesNothing()
    {
        var delay = new RestartDelay(Bridge("7"), new Fixed(0.99));
        for (int i = 0; i < 10; i++) Assert.Equal(TimeSpan.FromSeconds(7), delay.Next());
        delay.Reset();
        Assert.Equal(TimeSpan.FromSeconds(7), delay.Next());
    }

    [Fact]
    public void Default_IsBackoffFrom5To30()
    {
        var config = Assert.Single(ConfigParser.Parse("listener 1883\nconnection up\naddress 10.0.0.1\ntopic #\n", "m.conf").Bridges);
        var delay = new RestartDelay(config, new Fixed(0.999999));
        Assert.Equal([15.0, 30.0, 30.0], [.. Enumerable.Range(0, 3).Select(_ => Math.Round(delay.Next().TotalSeconds))]);
    }

    [Fact]
    public void Backoff_LowestDraw_StaysAtTheBase()
    {
        var delay = new RestartDelay(Bridge("5 30"), new Fixed(0));
        for (int i = 0; i < 10; i++) Assert.Equal(TimeSpan.FromSeconds(5), delay.Next());
    }

    [Fact]
    public void Backoff_HighestDraw_TriplesUpToTheCap_AndResetStartsFromTheBase()
    {
        var delay = new RestartDelay(Bridge("2 50"), new Fixed(0.999999));
        var waits = Enumerable.Range(0, 5).Select(_ => Math.Round(delay.Next().TotalSeconds, 3)).ToArray();
        Assert.Equal([6.0, 18.0, 50.0, 50.0, 50.0], waits);
        delay.Reset();
        Assert.Equal(6.0, Math.Round(delay.Next().TotalSeconds, 3));
    }

    [Theory]
    [InlineData("5 30", 1)]
    [InlineData("1 10", 2)]
    [InlineData("3 3", 3)]
    [InlineData("10 600", 4)]
    public void Backoff_EveryWait_IsBetweenTheBaseAndThreeTimesTheLast_AtMostTheCap(string setting, int seed)
    {
        var config = Bridge(setting);
        double low = config.RestartTimeoutBase, cap = config.RestartTimeoutCap!.Value;
        var delay = new RestartDelay(config, new Random(seed));
        double last = low, highest = 0;
        for (int i = 0; i < 2000; i++)
        {
            if (i % 100 == 99)
            {
                delay.Reset();
                last = low;
            }
            double wait = delay.Next().TotalSeconds;
            Assert.InRange(wait, low, Math.Min(cap, Math.Max(low, 3 * last)));
            highest = Math.Max(highest, wait);
            last = wait;
        }
        // The jitter spreads the waits: over many draws they reach most of the way to the cap.
        Assert.True(highest >= low + (0.75 * (cap - low)), $"highest wait {highest} s");
    }
}
