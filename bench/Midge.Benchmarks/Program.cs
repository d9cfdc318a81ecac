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
    var clock = System.Diagnostics.Stopwatch.StartNew();
    using var store = Midge.Persistence.SqliteSessionStore.Open(loadPath, new Midge.Persistence.SqliteStoreOptions());
    Console.WriteLine($"open {clock.Elapsed.TotalSeconds:F1} s");
    int sessionCount = store.LoadAll().Count;
    Console.WriteLine($"sessions {sessionCount} {clock.Elapsed.TotalSeconds:F1} s");
    int retainedCount = store.LoadRetained().Count;
    Console.WriteLine($"retained {retainedCount} {clock.Elapsed.TotalSeconds:F1} s");
    clock.Restart();
    var broker = new Midge.Core.Broker(new Midge.Config.BrokerConfig(), null, null, store);
    Console.WriteLine($"broker restored {broker.SessionCount} sessions, {broker.RetainedCount} retained in {clock.Elapsed.TotalSeconds:F1} s");
    return 0;
}
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
