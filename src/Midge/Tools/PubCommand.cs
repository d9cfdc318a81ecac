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

        var options = a.ToClientOptions();
        await using var client = new MqttClient(options);
        try
        {
            a.DebugLog("sending CONNECT");
            var connack = await client.ConnectAsync();
            a.ClientIdForLog = client.ClientId.Length > 0 ? client.ClientId : "(null)";
            a.DebugLog($"received CONNACK ({(int)connack.ReasonCode})");
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

        async Task Send(ReadOnlyMemory<byte> payload)
        {
            a.DebugLog($"sending PUBLISH (d0, q{(int)a.QoS}, r{(a.Retain ? 1 : 0)}, m?, '{topic}', ... ({payload.Length} bytes))");
            if (a.QoS == QoS.AtMostOnce)
            {
                await client.PublishAsync(topic, payload, a.QoS, a.Retain, props);
                return;
            }
            await window.WaitAsync();
            inflight.Add(Acked(payload));
        }

        async Task Acked(ReadOnlyMemory<byte> payload)
        {
            try
            {
                var result = await client.PublishAsync(topic, payload, a.QoS, a.Retain, props);
                if (!result.IsSuccess && !a.Quiet)
                {
                    Console.Error.WriteLine($"Warning: Publish {result.PacketId} failed: {ClientArguments.ReasonString(result.ReasonCode)}.");
                }
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
                using var stdin = new StreamReader(Console.OpenStandardInput(), new UTF8Encoding(false));
                while (await stdin.ReadLineAsync() is { } line)
                {
                    await Send(Encoding.UTF8.GetBytes(line));
                }
            }
            else
            {
                for (int n = 0; n < a.Repeat; n++)
                {
                    if (n > 0 && a.RepeatDelay > 0) await Task.Delay(TimeSpan.FromSeconds(a.RepeatDelay));
                    await Send(single);
                }
            }
            await Task.WhenAll(inflight);
        }
        catch (Exception ex) when (ex is MqttClientException or IOException)
        {
            if (!a.Quiet) Console.Error.WriteLine($"Error: {ex.Message}");
            status = 1;
        }
        a.DebugLog("sending DISCONNECT");
        await client.DisconnectAsync(ReasonCode.NormalDisconnection, null);
        return status;
    }

    public const string Usage = """
        midge pub is a simple mqtt client that will publish a message on a single topic and exit.
        It takes the options of mosquitto_pub 2.0.

        Usage: midge pub {[-h host] [-p port] [-u username] [-P password] -t topic | -L URL}
                         {-f file | -l | -n | -m message | -s}
                         [-c] [-k keepalive] [-q qos] [-r] [--repeat N] [--repeat-delay time] [-x session-expiry]
                         [-A bind_address] [--nodelay]
                         [-i id] [-I id_prefix]
                         [-d] [--quiet]
                         [-M max_inflight]
                         [-u username [-P password]]
                         [--will-topic [--will-payload payload] [--will-qos qos] [--will-retain]]
                         [{--cafile file | --capath dir} [--cert file] [--key file] [--insecure]]
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
         --cafile : path to a file containing trusted CA certificates to enable encrypted communication.
         --cert : client certificate for authentication, if required by server.
         --key : client private key for authentication, if required by server.
         --insecure : do not check that the server certificate hostname matches the remote hostname.
        """;
}
