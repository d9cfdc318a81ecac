using BenchmarkDotNet.Attributes;
using Midge.Core.Routing;

namespace Midge.Benchmarks;

/// <summary>SubscriptionIndex.Match over 10,000 exact subscriptions and 1,000 wildcard filters.</summary>
[MemoryDiagnoser]
public class SubscriptionIndexMatchBenchmarks
{
    private readonly SubscriptionIndex<object, int> _index = new();
    private readonly string[] _exactHits = new string[256];
    private readonly string[] _misses = new string[256];
    private int _next;

    private struct Counter : ISubscriptionVisitor<object, int>
    {
        public int Count;

        public void OnSubscription(object subscriber, string filter, int value) => Count++;

        public void OnSharedGroup(SharedGroup<object, int> group) => Count++;
    }

    [GlobalSetup]
    public void Setup()
    {
        var clients = Enumerable.Range(0, 2000).Select(i => new object()).ToArray();
        for (int i = 0; i < 10_000; i++)
            _index.Subscribe($"site/{i % 50}/device/{i}/telemetry", clients[i % clients.Length], i);
        for (int i = 0; i < 1_000; i++)
        {
            string filter = (i % 4) switch
            {
                0 => $"site/{i % 50}/device/+/telemetry",
                1 => $"site/{i % 50}/#",
                2 => $"+/{i % 50}/device/{i}/+",
                _ => $"alerts/{i}/+/#",
            };
            _index.Subscribe(filter, clients[i % clients.Length], i);
        }
        var rng = new Random(42);
        for (int i = 0; i < _exactHits.Length; i++)
        {
            int d = rng.Next(10_000);
            _exactHits[i] = $"site/{d % 50}/device/{d}/telemetry";
            _misses[i] = $"other/{d}/device/{d}/status";
        }
    }

    [Benchmark]
    public int MatchExactAndWildcards()
    {
        var visitor = new Counter();
        _index.Match(_exactHits[_next++ & 255], ref visitor);
        return visitor.Count;
    }

    [Benchmark]
    public int MatchNothing()
    {
        var visitor = new Counter();
        _index.Match(_misses[_next++ & 255], ref visitor);
        return visitor.Count;
    }
}
