using BenchmarkDotNet.Running;
using Midge.Benchmarks;

// `fill-store PATH RETAINED SESSIONS QUEUED`: writes a persistence file as the broker would (bench/restart.sh);
// anything else runs the BenchmarkDotNet benchmarks.
if (args is ["fill-store", var path, var retained, var sessions, var queued])
{
    return StoreFill.Run(path, int.Parse(retained, System.Globalization.CultureInfo.InvariantCulture),
        int.Parse(sessions, System.Globalization.CultureInfo.InvariantCulture), int.Parse(queued, System.Globalization.CultureInfo.InvariantCulture));
}
if (args is ["load-store", var loadPath])
{
    // Wall and CPU seconds of each step (CPU is the whole process's, so it means something on a busy machine too),
    // and the garbage collector's work so far.
    var clock = System.Diagnostics.Stopwatch.StartNew();
    var process = System.Diagnostics.Process.GetCurrentProcess();
    var cpu = process.TotalProcessorTime;
    void Step(string what)
    {
        process.Refresh();
        Console.WriteLine($"{what}: {clock.Elapsed.TotalSeconds:F1} s wall, {(process.TotalProcessorTime - cpu).TotalSeconds:F1} s CPU; " +
            $"so far {GC.CollectionCount(0)}/{GC.CollectionCount(1)}/{GC.CollectionCount(2)} collections, " +
            $"{GC.GetTotalPauseDuration().TotalSeconds:F1} s paused, {GC.GetTotalAllocatedBytes() >> 20} MiB allocated");
        clock.Restart();
        cpu = process.TotalProcessorTime;
    }
    using var store = Midge.Persistence.SqliteSessionStore.Open(loadPath, new Midge.Persistence.SqliteStoreOptions());
    Step("open");
    int sessionCount = store.LoadAll().Count;
    Step($"{sessionCount} sessions read");
    int retainedCount = store.LoadRetained().Count;
    Step($"{retainedCount} retained read");
    var broker = new Midge.Core.Broker(new Midge.Config.BrokerConfig(), null, null, store);
    Step($"broker restored {broker.SessionCount} sessions, {broker.RetainedCount} retained (read again)");
    return 0;
}
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
