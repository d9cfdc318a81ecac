namespace Midge.Integration.Tests;

/// <summary>When the runtime's compilation thread gives way (a long slice) and when it competes as usual.</summary>
public sealed class TieringWorkerSliceTests
{
    private const long Tick = 100_000_000; // 0.1 s

    [Fact]
    public void A_calm_core_keeps_the_long_slice()
    {
        Assert.Equal((true, 0), TieringWorkerSlice.Decide(true, 0, Tick, Tick / 10));
        Assert.Equal((true, 0), TieringWorkerSlice.Decide(true, 0, Tick, Tick * 8 / 10)); // 80 % is still calm
    }

    [Fact]
    public void One_busy_tick_takes_the_long_slice_away()
    {
        Assert.Equal((false, 0), TieringWorkerSlice.Decide(true, 0, Tick, Tick * 9 / 10));
        // A late tick is judged by its real length: 90 ms of work in a tick that took 200 ms is calm.
        Assert.Equal((true, 0), TieringWorkerSlice.Decide(true, 0, 2 * Tick, Tick * 9 / 10));
    }

    [Fact]
    public void The_long_slice_comes_back_after_a_second_of_calm_ticks_in_a_row()
    {
        var state = (Long: false, Calm: 0);
        for (int i = 1; i < TieringWorkerSlice.CalmTicks; i++)
        {
            state = TieringWorkerSlice.Decide(state.Long, state.Calm, Tick, Tick / 10);
            Assert.Equal((false, i), state);
        }
        // A busy tick on the way starts the count again.
        Assert.Equal((false, 0), TieringWorkerSlice.Decide(false, TieringWorkerSlice.CalmTicks - 1, Tick, Tick));
        Assert.Equal((true, 0), TieringWorkerSlice.Decide(state.Long, state.Calm, Tick, Tick / 10));
        Assert.Equal(TieringWorkerSlice.CalmTicks * Tick, 1_000_000_000);
    }
}
