using BenchmarkDotNet.Attributes;
using Midge.Core.Retained;

namespace Midge.Benchmarks;

/// <summary>RetainedStore.Match with 100,000 retained topics.</summary>
[MemoryDiagnoser]
public class RetainedStoreMatchBenchmarks
{
    private readonly RetainedStore<string> _store = new();
    private readonly List<string> _results = new(1024);

    [GlobalSetup]
    public void Setup()
    {
        for (int i = 0; i < 100_000; i++)
        {
            string topic = $"site/{i % 100}/device/{i}/telemetry";
            _store.Set(topic, topic);
        }
    }

    [Benchmark]
    public int ExactFilter()
    {
        _results.Clear();
        _store.Match("site/7/device/12307/telemetry", _results);
        return _results.Count;
    }

    [Benchmark]
    public int PlusFilterOneSite()
    {
        _results.Clear();
        _store.Match("site/7/device/+/telemetry", _results);
        return _results.Count;
    }

    [Benchmark]
    public int HashFilterOneSite()
    {
        _results.Clear();
        _store.Match("site/7/#", _results);
        return _results.Count;
    }

    [Benchmark]
    public int SelectiveFilterMissingBranch()
    {
        _results.Clear();
        _store.Match("other/+/device/#", _results);
        return _results.Count;
    }
}
