using System.Diagnostics;

namespace Midge.Client.Tests;

/// <summary>
/// Runs the same shell script with mosquitto_pub/mosquitto_sub and with <c>midge pub</c>/<c>midge sub</c>
/// against the same mosquitto broker, and compares what they print and how they exit.
/// </summary>
public sealed class ToolCompareTests(BrokersFixture brokers) : IClassFixture<BrokersFixture>
{
    private async Task<string> RunScript(string script, bool midge, string topic)
    {
        string pub = midge ? $"dotnet {BrokerProcess.MidgeDll} pub" : "mosquitto_pub";
        string sub = midge ? $"dotnet {BrokerProcess.MidgeDll} sub" : "mosquitto_sub";
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(script);
        start.Environment["PUB"] = pub;
        start.Environment["SUB"] = sub;
        start.Environment["PORT"] = brokers.Mosquitto.Port.ToString();
        start.Environment["T"] = topic;
        using var p = Process.Start(start)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(40));
        await p.WaitForExitAsync(cts.Token);
        return $"{await stdout}\n--stderr--\n{await stderr}\n--rc {p.ExitCode}";
    }

    private async Task Same(string script)
    {
        string topic = $"cmp/{Guid.NewGuid():N}";
        string expected = await RunScript(script, midge: false, topic + "/mosquitto");
        string actual = await RunScript(script, midge: true, topic + "/midge");
        Assert.Equal(expected.Replace(topic + "/mosquitto", "T"), actual.Replace(topic + "/midge", "T"));
    }

    // $SUB runs in the background; the sleep lets it subscribe before the publishes.
    private const string Bg = "sleep 2.5;";

    [Fact]
    public Task Count_and_verbose() => Same(
        $"$SUB -p $PORT -C 3 -v -t \"$T/#\" & {Bg} for i in 1 2 3; do $PUB -p $PORT -t $T/$i -m m$i -q 1; done; wait $!; echo rc=$?");

    // The QoS 1 message goes first: libmosquitto hands a QoS 2 message to the application only at PUBREL, so a
    // QoS 1 publish right behind a QoS 2 one may overtake it in mosquitto_sub's output on a loaded machine.
    [Fact]
    public Task Format_topic_payload_qos_retain() => Same(
        $"$SUB -p $PORT -C 2 -q 2 -F '%t %p %q %r %l %x|%-6l|%6t|\\\\' -t \"$T/#\" & {Bg} $PUB -p $PORT -t $T/b -m x -q 1; $PUB -p $PORT -t $T/a -m hello -q 2; wait $!; echo rc=$?");

    [Fact]
    public Task Retained_only_then_timeout() => Same(
        "$PUB -p $PORT -t $T/r -m kept -r; $SUB -p $PORT -t \"$T/#\" --retained-only -W 2 -N; echo rc=$?; $PUB -p $PORT -t $T/r -n -r; $SUB -p $PORT -t \"$T/#\" -W 1; echo rc=$?");

    [Fact]
    public Task Timeout_exit_code() => Same("$SUB -p $PORT -t $T -W 1; echo rc=$?");

    [Fact]
    public Task No_eol() => Same($"$SUB -p $PORT -C 2 -N -t $T & {Bg} $PUB -p $PORT -t $T -m a; $PUB -p $PORT -t $T -m b; wait $!");

    [Fact]
    public Task Line_mode() => Same($"$SUB -p $PORT -C 3 -v -t $T & {Bg} printf 'one\\ntwo\\nthree\\n' | $PUB -p $PORT -t $T -l -q 1; wait $!");

    [Fact]
    public Task Null_message_verbose() => Same($"$SUB -p $PORT -C 1 -v -t $T & {Bg} $PUB -p $PORT -t $T -n; wait $!");

    [Fact]
    public Task User_properties_in_mqtt5() => Same(
        $"$SUB -p $PORT -V mqttv5 -C 1 -F '%t %P %p' -t $T & {Bg} $PUB -p $PORT -V 5 -t $T -m v5 -D publish user-property a b -D publish user-property c d; wait $!");

    [Fact]
    public Task Filter_out_and_no_retained() => Same(
        $"$PUB -p $PORT -t $T/old -m stale -r; $SUB -p $PORT -C 1 -R -T $T/skip -v -t \"$T/#\" & {Bg} $PUB -p $PORT -t $T/skip -m no; $PUB -p $PORT -t $T/ok -m yes; wait $!; $PUB -p $PORT -t $T/old -n -r");

    [Fact]
    public Task Connection_refused() => Same("$PUB -p 1 -t a -m b; echo rc=$?; $SUB -p 1 -t a; echo rc=$?");

    [Fact]
    public Task Argument_errors() => Same(
        "$PUB -p $PORT -m x 2>&1 | head -1; $PUB -t a -m b -q 3 2>&1 | head -1; $SUB -p $PORT 2>&1 | head -1; $PUB -t a -m b --bogus 2>&1 | head -1");
}
