using System.Globalization;
using System.Text;
using System.Text.Json;
using Midge.Client;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Tools;

/// <summary><c>midge sub</c>: mosquitto_sub's options, output formats and exit codes.</summary>
internal static class SubCommand
{
    /// <summary>MOSQ_ERR_TIMEOUT: what mosquitto_sub returns when -W expires.</summary>
    public const int TimeoutExitCode = 27;

    public static async Task<int> RunAsync(string[] args)
    {
        if (ClientArguments.ParseOrExit("sub", args, Usage, out int exitCode) is not { } a) return exitCode;

        using var stdout = new BufferedStream(Console.OpenStandardOutput(), 64 * 1024);
        MqttClientOptions options;
        DebugTrace? trace = null;
        try
        {
            a.CheckSetup();
            options = a.ToClientOptions() with
            {
                Reconnect = new ReconnectPolicy { Enabled = true, InitialDelay = TimeSpan.FromSeconds(1), MaxDelay = TimeSpan.FromSeconds(1) },
            };
            trace = DebugTrace.AttachIf(a.Debug, stdout, ref options);
        }
        catch (ClientSetupException ex)
        {
            Console.Error.WriteLine($"Error: {ex.Message}");
            return 1;
        }
        await using var client = new MqttClient(options);
        using var stop = new CancellationTokenSource();
        bool timedOut = false;
        if (a.Timeout is { } seconds)
        {
            _ = Task.Delay(TimeSpan.FromSeconds(seconds)).ContinueWith(_ =>
            {
                timedOut = true;
                trace?.Stop();
                try
                {
                    stop.Cancel();
                }
                catch (ObjectDisposedException)
                {
                }
            }, TaskScheduler.Default);
        }
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            trace?.Stop();
            stop.Cancel();
        };

        var printer = new MessagePrinter(a, stdout);
        var handler = new MessageHandler(a, printer, stdout, client) { OutputLock = trace?.Sync };
        if (trace is not null)
        {
            // -d: messages are handled as the log shows them handed out (see DebugTrace), on the read loop.
            trace.SubAcked = subAck =>
            {
                if (!a.Quiet) trace.WriteLine(DebugTrace.Subscribed(subAck));
                if (a.ExitAfterSubscribe || subAck.ReasonCodes.All(ReasonCodes.IsError)) trace.Stop();
            };
            trace.Deliver = message =>
            {
                try
                {
                    if (handler.Handle(message)) return true;
                }
                catch (IOException)
                {
                    // stdout went away: end as the count would.
                }
                _ = Task.Run(stop.Cancel);
                return false;
            };
        }

        try
        {
            await client.ConnectAsync(stop.Token);
        }
        catch (OperationCanceledException) when (timedOut)
        {
            if (!a.Quiet) Console.Error.WriteLine("Timed out");
            return TimeoutExitCode;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            return a.ReportConnectFailure(ex);
        }

        try
        {
            // SUBSCRIBE and UNSUBSCRIBE go out together, as mosquitto_sub sends them; only the SUBACK is waited for.
            var subscribed = client.SubscribeAsync(a.Topics.Select(t => new TopicSubscription(t, a.QoS)), a.PropertiesFor("subscribe"), stop.Token).AsTask();
            if (a.Unsubscribe.Count > 0)
            {
                _ = client.UnsubscribeAsync(a.Unsubscribe, a.PropertiesFor("unsubscribe"), stop.Token).AsTask()
                    .ContinueWith(t => t.Exception, TaskContinuationOptions.OnlyOnFaulted);
            }
            var result = await subscribed;
            if (result.ReasonCodes.All(ReasonCodes.IsError))
            {
                // mosquitto_sub disconnects and exits 0 when the broker refused every filter.
                trace?.Stop();
                await client.DisconnectAsync();
                if (!a.Quiet) Console.Error.WriteLine("All subscription requests were denied.");
                return 0;
            }
            if (a.ExitAfterSubscribe)
            {
                await client.DisconnectAsync();
                return 0;
            }

            if (trace is not null)
            {
                // The read loop hands the messages to the handler; what the buffer gets is passed over.
                await foreach (var _ in client.ReadMessagesAsync(stop.Token))
                {
                }
            }
            else
            {
                await foreach (var message in client.ReadMessagesAsync(stop.Token))
                {
                    if (!handler.Handle(message)) break;
                }
            }
        }
        catch (OperationCanceledException) when (timedOut)
        {
            await client.DisconnectAsync();
            if (!a.Quiet) Console.Error.WriteLine("Timed out");
            return TimeoutExitCode;
        }
        catch (OperationCanceledException)
        {
        }
        catch (MqttClientException ex)
        {
            if (!a.Quiet) Console.Error.WriteLine($"Error: {ex.Message}");
            return 1;
        }
        trace?.Stop();
        await client.DisconnectAsync();
        return 0;
    }

    public const string Usage = """
        midge sub is a simple mqtt client that will subscribe to a set of topics and print all messages it receives.
        It takes the options of mosquitto_sub 2.0.

        Usage: midge sub {[-h host] [--unix path] [-p port] [-u username] [-P password] -t topic | -L URL [-t topic]}
                         [-c] [-k keepalive] [-q qos] [-x session-expiry-interval]
                         [-C msg_count] [-E] [-R] [--retained-only] [--remove-retained] [-T filter_out] [-U topic ...]
                         [-F format]
                         [-W timeout_secs]
                         [-A bind_address] [--nodelay]
                         [-i id] [-I id_prefix]
                         [-d] [-N] [--quiet] [-v]
                         [--will-topic [--will-payload payload] [--will-qos qos] [--will-retain]]
                         [{--cafile file | --capath dir} [--cert file] [--key file]
                           [--ciphers ciphers] [--insecure] [--tls-version version]]
                         [--proxy socks-url]
                         [-D command identifier value]
               midge sub --help

         -A : bind the outgoing socket to this host/ip address.
         -c : disable clean session/enable persistent client mode.
         -C : disconnect and exit after receiving the 'msg_count' messages.
         -d : enable debug messages.
         -D : Define MQTT v5 properties.
         -E : Exit once all subscriptions have been acknowledged by the broker.
         -F : output format.
         -h : mqtt host to connect to. Defaults to localhost.
         -i : id to use for this client.
         -I : define the client id as id_prefix appended with the process id.
         -k : keep alive in seconds for this client. Defaults to 60.
         -L : specify user, password, hostname, port and topic as a URL in the form:
              mqtt(s)://[username[:password]@]host[:port]/topic
         -N : do not add an end of line character when printing the payload.
         -p : network port to connect to. Defaults to 1883 for plain MQTT and 8883 for MQTT over TLS.
         -P : provide a password
         -q : quality of service level to use for the subscription. Defaults to 0.
         -R : do not print stale messages (those with retain set).
         -t : mqtt topic to subscribe to. May be repeated multiple times.
         -T : topic string to filter out of results. May be repeated.
         -u : provide a username
         -U : unsubscribe from a topic. May be repeated.
         -v : print published messages verbosely.
         -V : specify the version of the MQTT protocol to use when connecting.
              Can be mqttv5, mqttv311 or mqttv31. Defaults to mqttv311.
         -W : Specifies a timeout in seconds how long to process incoming MQTT messages.
         -x : Set the session-expiry-interval property on the CONNECT packet (MQTT v5).
         --help : display this message.
         --nodelay : disable Nagle's algorithm.
         --pretty : print formatted output rather than minimised output with the JSON output format.
         --quiet : don't print error messages.
         --retained-only : only handle messages with the retained flag set, and exit when the
                           first non-retained message is received.
         --remove-retained : send a message to the server to clear any received retained messages.
         --will-payload : payload for the client Will.
         --will-qos : QoS level for the client Will.
         --will-retain : if given, make the client Will retained.
         --will-topic : the topic on which to publish the client Will.
         --unix : connect to a broker through a unix domain socket instead of a TCP socket,
                  e.g. /tmp/mosquitto.sock
         --cafile : path to a file containing trusted CA certificates to enable encrypted communication.
         --capath : path to a directory containing trusted CA certificates to enable encrypted
                    communication; as with OpenSSL, only the hashed names that openssl rehash or
                    c_rehash make are read.
         --cert : client certificate for authentication, if required by server.
         --key : client private key for authentication, if required by server.
         --ciphers : TLS cipher suites to offer, OpenSSL or IANA names separated by ':'
                     (e.g. ECDHE-RSA-AES128-GCM-SHA256). OpenSSL keywords such as HIGH are not taken.
                     Unless TLS 1.3 suites are named, TLS 1.3 keeps its default suites.
         --tls-version : lowest TLS protocol version, one of tlsv1.3, tlsv1.2 or tlsv1.1.
                         Defaults to tlsv1.2.
         --insecure : do not check that the server certificate hostname matches the remote hostname.
         --proxy : SOCKS5 proxy URL of the form:
                   socks5h://[username[:password]@]hostname[:port]
                   Only "none" and "username" authentication is supported.
        """;
}

/// <summary>What mosquitto_sub does with each message: -R, -T, --retained-only, --remove-retained, print, -C.</summary>
internal sealed class MessageHandler(ClientArguments a, MessagePrinter printer, Stream stdout, MqttClient client)
{
    /// <summary>-d: the log's lock, so that a message and a log line from another thread never mix.</summary>
    public Lock? OutputLock { get; init; }

    private int _count;

    /// <summary>Handles one message; false when the session ends here (count reached, --retained-only).</summary>
    public bool Handle(ReceivedMessage message)
    {
        if (a.RetainedOnly && !message.Retain) return false;
        if (a.NoRetained && message.Retain) return true;
        if (a.FilterOut.Any(f => Topics.Matches(f, message.Topic))) return true;
        if (a.RemoveRetained && message.Retain)
        {
            try
            {
                _ = client.PublishAsync(message.Topic, default, QoS.AtLeastOnce, retain: true).AsTask()
                    .ContinueWith(t => t.Exception, TaskContinuationOptions.OnlyOnFaulted);
            }
            catch (MqttClientException)
            {
            }
        }
        if (OutputLock is { } sync)
        {
            lock (sync) Print(message);
        }
        else
        {
            Print(message);
        }
        return a.Count is not { } max || ++_count < max;
    }

    private void Print(ReceivedMessage message)
    {
        printer.Print(message);
        stdout.Flush();
    }
}

/// <summary>mosquitto_sub's output: payload, -v, or -F format.</summary>
internal sealed class MessagePrinter(ClientArguments a, Stream output)
{
    private static readonly byte[] Newline = "\n"u8.ToArray();

    public void Print(ReceivedMessage m)
    {
        if (a.Format is { } format)
        {
            Format(format, m, DateTimeOffset.Now);
        }
        else
        {
            if (a.Verbose)
            {
                Write(m.Topic);
                if (m.Payload.Length > 0)
                {
                    output.WriteByte((byte)' ');
                    output.Write(m.Payload.Span);
                }
                else if (a.Version != ProtocolVersion.V500 || true)
                {
                    Write(" (null)");
                }
            }
            else
            {
                output.Write(m.Payload.Span);
            }
        }
        if (!a.NoEol) output.Write(Newline);
    }

    private void Write(string s) => output.Write(Encoding.UTF8.GetBytes(s));

    private void Pad(string s, bool left, bool zero, int width, int precision)
    {
        if (precision >= 0 && s.Length > precision) s = s[..precision];
        if (s.Length < width)
        {
            s = left ? s.PadRight(width) : s.PadLeft(width, zero ? '0' : ' ');
        }
        Write(s);
    }

    public void Format(string f, ReceivedMessage m, DateTimeOffset now)
    {
        var p = m.Properties;
        for (int i = 0; i < f.Length; i++)
        {
            char c = f[i];
            if (c == '%' && i + 1 < f.Length)
            {
                bool left = false, zero = false;
                int width = 0, precision = -1;
                i++;
                while (i < f.Length && (f[i] == '-' || f[i] == '0'))
                {
                    if (f[i] == '-') left = true; else zero = true;
                    i++;
                }
                while (i < f.Length && char.IsAsciiDigit(f[i])) width = width * 10 + (f[i++] - '0');
                if (i < f.Length && f[i] == '.')
                {
                    precision = 0;
                    i++;
                    while (i < f.Length && char.IsAsciiDigit(f[i])) precision = precision * 10 + (f[i++] - '0');
                }
                if (i >= f.Length) break;
                if (left) zero = false;
                switch (f[i])
                {
                    case '%': output.WriteByte((byte)'%'); break;
                    case 't': Pad(m.Topic, left, false, width, precision); break;
                    case 'p': output.Write(m.Payload.Span); break;
                    case 'x': Pad(Convert.ToHexStringLower(m.Payload.Span), left, zero, width, -1); break;
                    case 'X': Pad(Convert.ToHexString(m.Payload.Span), left, zero, width, -1); break;
                    case 'q': Write(((int)m.QoS).ToString(CultureInfo.InvariantCulture)); break;
                    case 'r': Write(m.Retain ? "1" : "0"); break;
                    case 'm': Pad(m.PacketId.ToString(CultureInfo.InvariantCulture), left, zero, width, -1); break;
                    case 'l': Pad(m.Payload.Length.ToString(CultureInfo.InvariantCulture), left, zero, width, -1); break;
                    case 'I': Pad(Iso8601(now), left, false, width, precision); break;
                    case 'U': Write(UnixNanos(now)); break;
                    case 'j': WriteJson(m, now, escapedPayload: true); break;
                    case 'J': WriteJson(m, now, escapedPayload: false); break;
                    case 'A': if (p?.TopicAlias is { } ta) Pad(ta.ToString(CultureInfo.InvariantCulture), left, zero, width, -1); break;
                    case 'C': if (p?.ContentType is { } ct) Pad(ct, left, false, width, precision); break;
                    case 'D': if (p?.CorrelationData is { } cd) output.Write(cd); break;
                    case 'E': if (p?.MessageExpiryInterval is { } e) Pad(e.ToString(CultureInfo.InvariantCulture), left, zero, width, -1); break;
                    case 'F': if (p?.PayloadFormatIndicator is { } pf) Pad(pf.ToString(CultureInfo.InvariantCulture), left, zero, width, -1); break;
                    case 'P':
                        if (p?.UserProperties is { } ups)
                        {
                            for (int k = 0; k < ups.Count; k++)
                            {
                                if (k > 0) output.WriteByte((byte)' ');
                                Write($"{ups[k].Name}:{ups[k].Value}");
                            }
                        }
                        break;
                    case 'R': if (p?.ResponseTopic is { } rt) Pad(rt, left, false, width, precision); break;
                    case 'S':
                        if (p?.SubscriptionIdentifiers is { Count: > 0 } ids) Pad(ids[0].ToString(CultureInfo.InvariantCulture), left, zero, width, -1);
                        break;
                    default:
                        output.WriteByte((byte)'%');
                        Write(f[i].ToString());
                        break;
                }
            }
            else if (c == '@' && i + 1 < f.Length)
            {
                char t = f[++i];
                if (t == '@') output.WriteByte((byte)'@');
                else if (t == 'N') Write(((now.Ticks % TimeSpan.TicksPerSecond) * 100).ToString("D9", CultureInfo.InvariantCulture));
                else Write(Strftime(t, now));
            }
            else if (c == '\\' && i + 1 < f.Length)
            {
                char e = f[++i];
                switch (e)
                {
                    case '\\': output.WriteByte((byte)'\\'); break;
                    case '0': output.WriteByte(0); break;
                    case 'a': output.WriteByte(7); break;
                    case 'e': output.WriteByte(0x1B); break;
                    case 'n': output.WriteByte((byte)'\n'); break;
                    case 'r': output.WriteByte((byte)'\r'); break;
                    case 't': output.WriteByte((byte)'\t'); break;
                    case 'v': output.WriteByte(0x0B); break;
                    default:
                        output.WriteByte((byte)'\\');
                        Write(e.ToString());
                        break;
                }
            }
            else
            {
                Write(c.ToString());
            }
        }
    }

    private static string Offset(DateTimeOffset now, bool colon) => TimeFormat.Offset(now, colon);

    private static string Iso8601(DateTimeOffset now) =>
        now.ToString("yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture) + Offset(now, false);

    private static string UnixNanos(DateTimeOffset now)
    {
        long ticks = now.UtcTicks - DateTime.UnixEpoch.Ticks;
        return $"{ticks / TimeSpan.TicksPerSecond}.{(ticks % TimeSpan.TicksPerSecond) * 100:D9}";
    }

    private static string Strftime(char c, DateTimeOffset t) => c == '%' ? "%" : TimeFormat.Conversion(c, t) ?? "@" + c;

    private void WriteJson(ReceivedMessage m, DateTimeOffset now, bool escapedPayload)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = a.Pretty, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("tst", now.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture) + Offset(now, false));
            w.WriteString("topic", m.Topic);
            w.WriteNumber("qos", (int)m.QoS);
            w.WriteNumber("retain", m.Retain ? 1 : 0);
            w.WriteNumber("payloadlen", m.Payload.Length);
            if (m.QoS > 0) w.WriteNumber("mid", m.PacketId);
            if (m.Properties is { } p) WriteProperties(w, p);
            if (escapedPayload)
            {
                w.WriteString("payload", Encoding.UTF8.GetString(m.Payload.Span));
            }
            else
            {
                w.WritePropertyName("payload");
                try
                {
                    using var doc = JsonDocument.Parse(m.Payload);
                    doc.WriteTo(w);
                }
                catch (JsonException)
                {
                    Console.Error.WriteLine($"Error: Message payload is not valid JSON on topic {m.Topic}");
                    w.WriteNullValue();
                }
            }
            w.WriteEndObject();
        }
        output.Write(ms.GetBuffer().AsSpan(0, (int)ms.Length));
    }

    private static void WriteProperties(Utf8JsonWriter w, MqttProperties p)
    {
        w.WriteStartObject("properties");
        if (p.PayloadFormatIndicator is { } pf) w.WriteNumber("payload-format-indicator", pf);
        if (p.MessageExpiryInterval is { } me) w.WriteNumber("message-expiry-interval", me);
        if (p.ContentType is { } ct) w.WriteString("content-type", ct);
        if (p.ResponseTopic is { } rt) w.WriteString("response-topic", rt);
        if (p.CorrelationData is { } cd) w.WriteString("correlation-data", Encoding.UTF8.GetString(cd));
        if (p.SubscriptionIdentifiers is { Count: > 0 } ids) w.WriteNumber("subscription-identifier", ids[0]);
        if (p.TopicAlias is { } ta) w.WriteNumber("topic-alias", ta);
        if (p.UserProperties is { Count: > 0 } ups)
        {
            w.WriteStartArray("user-properties");
            foreach (var up in ups)
            {
                w.WriteStartObject();
                w.WriteString(up.Name, up.Value);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        w.WriteEndObject();
    }
}
