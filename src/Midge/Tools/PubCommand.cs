using System.Text;
using Midge.Client;
using Midge.Protocol;

namespace Midge.Tools;

/// <summary><c>midge pub</c>: mosquitto_pub's options, output and exit codes.</summary>
internal static class PubCommand
{
    public static async Task<int> RunAsync(string[] args)
    {
        if (ClientArguments.ParseOrExit("pub", args, Usage, out int exitCode) is not { } a) return exitCode;

        ReadOnlyMemory<byte> single = default;
        try
        {
            if (a.Message is not null) single = Encoding.UTF8.GetBytes(a.Message);
            else if (a.MessageFile is not null) single = await File.ReadAllBytesAsync(a.MessageFile);
            else if (a.StdinMode)
            {
                using var ms = new MemoryStream();
                await Console.OpenStandardInput().CopyToAsync(ms);
                single = ms.ToArray();
            }
        }
        catch (IOException)
        {
            Console.Error.WriteLine($"Error: Unable to read file \"{a.MessageFile}\".");
            return 1;
        }
        catch (UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"Error: Unable to read file \"{a.MessageFile}\".");
            return 1;
        }

        DebugTrace? trace = null;
        MqttClientOptions options;
        using var stdout = new BufferedStream(Console.OpenStandardOutput(), 4096);
        try
        {
            a.CheckSetup();
            options = a.ToClientOptions();
            trace = DebugTrace.AttachIf(a.Debug, stdout, ref options);
        }
        catch (ClientSetupException ex)
        {
            Console.Error.WriteLine($"Error: {ex.Message}");
            return 1;
        }
        await using var client = new MqttClient(options);
        try
        {
            await client.ConnectAsync();
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            return a.ReportConnectFailure(ex);
        }

        string topic = a.Topics[0];
        var props = a.PropertiesFor("publish");
        using var window = new SemaphoreSlim(a.MaxInflight);
        var inflight = new List<Task>();
        int status = 0;

        async Task Publish(ReadOnlyMemory<byte> payload)
        {
            var result = await client.PublishAsync(topic, payload, a.QoS, a.Retain, props);
            if (!result.IsSuccess && !a.Quiet)
            {
                Console.Error.WriteLine($"Warning: Publish {result.PacketId} failed: {ClientArguments.ReasonString(result.ReasonCode)}.");
            }
        }

        async Task Windowed(ReadOnlyMemory<byte> payload)
        {
            try
            {
                await Publish(payload);
            }
            finally
            {
                window.Release();
            }
        }

        try
        {
            if (a.LineMode)
            {
                // Lines go out as they are read, up to -M unacknowledged at a time.
                using var stdin = new StreamReader(Console.OpenStandardInput(), new UTF8Encoding(false));
                while (await stdin.ReadLineAsync() is { } line)
                {
                    byte[] payload = Encoding.UTF8.GetBytes(line);
                    if (a.QoS == QoS.AtMostOnce)
                    {
                        await Publish(payload);
                        continue;
                    }
                    await window.WaitAsync();
                    inflight.Add(Windowed(payload));
                }
            }
            else
            {
                // As mosquitto_pub: each repeat is sent once the previous one is complete (QoS 1: PUBACK, QoS 2:
                // PUBCOMP), then --repeat-delay is waited.
                for (int n = 0; n < a.Repeat; n++)
                {
                    if (n > 0 && a.RepeatDelay > 0) await Task.Delay(TimeSpan.FromSeconds(a.RepeatDelay));
                    await Publish(single);
                }
            }
            await Task.WhenAll(inflight);
        }
        catch (Exception ex) when (ex is MqttClientException or IOException)
        {
            if (!a.Quiet) Console.Error.WriteLine($"Error: {ex.Message}");
            status = 1;
        }
        await client.DisconnectAsync(ReasonCode.NormalDisconnection, null);
        return status;
    }

    public const string Usage = """
        midge pub is a simple mqtt client that will publish a message on a single topic and exit.
        It takes the options of mosquitto_pub 2.0.

        Usage: midge pub {[-h host] [--unix path] [-p port] [-u username] [-P password] -t topic | -L URL}
                         {-f file | -l | -n | -m message | -s}
                         [-c] [-k keepalive] [-q qos] [-r] [--repeat N] [--repeat-delay time] [-x session-expiry]
                         [-A bind_address] [--nodelay]
                         [-i id] [-I id_prefix]
                         [-d] [--quiet]
                         [-M max_inflight]
                         [-u username [-P password]]
                         [--will-topic [--will-payload payload] [--will-qos qos] [--will-retain]]
                         [{--cafile file | --capath dir} [--cert file] [--key file]
                           [--ciphers ciphers] [--insecure] [--tls-version version]]
                         [--proxy socks-url]
                         [-D command identifier value]
               midge pub --help

         -A : bind the outgoing socket to this host/ip address.
         -d : enable debug messages.
         -c : disable clean session/enable persistent client mode.
         -D : Define MQTT v5 properties, e.g. -D publish user-property name value.
         -f : send the contents of a file as the message.
         -h : mqtt host to connect to. Defaults to localhost.
         -i : id to use for this client. Defaults to midge_pub_ appended with the process id
              when one is needed.
         -I : define the client id as id_prefix appended with the process id.
         -k : keep alive in seconds for this client. Defaults to 60.
         -L : specify user, password, hostname, port and topic as a URL in the form:
              mqtt(s)://[username[:password]@]host[:port]/topic
         -l : read messages from stdin, sending a separate message for each line.
         -m : message payload to send.
         -M : the maximum inflight messages for QoS 1/2.
         -n : send a null (zero length) message.
         -p : network port to connect to. Defaults to 1883 for plain MQTT and 8883 for MQTT over TLS.
         -P : provide a password
         -q : quality of service level to use for all messages. Defaults to 0.
         -r : message should be retained.
         -s : read message from stdin, sending the entire input as a message.
         -t : mqtt topic to publish to.
         -u : provide a username
         -V : specify the version of the MQTT protocol to use when connecting.
              Can be mqttv5, mqttv311 or mqttv31. Defaults to mqttv311.
         -x : Set the session-expiry-interval property on the CONNECT packet (MQTT v5).
         --help : display this message.
         --nodelay : disable Nagle's algorithm.
         --quiet : don't print error messages.
         --repeat : if publish mode is -f, -m, or -s, then repeat the publish N times.
         --repeat-delay : if using --repeat, wait time seconds between publishes. Defaults to 0.
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
