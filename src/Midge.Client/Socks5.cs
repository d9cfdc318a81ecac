using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Midge.Client;

/// <summary>A SOCKS5 proxy refused, or could not make, the connection to the server.</summary>
public sealed class Socks5Exception : MqttClientException
{
    public Socks5Exception(string message) : base(message) { }
}

/// <summary>
/// The client side of SOCKS5 (RFC 1928) over a stream already connected to the proxy: no authentication or
/// user name and password (RFC 1929), then CONNECT to the server by name (the proxy resolves it) or address.
/// </summary>
internal static class Socks5
{
    private const byte Version = 5;
    private const byte NoAuthentication = 0;
    private const byte UserNamePassword = 2;
    private const byte NoAcceptableMethod = 0xFF;

    public static async Task ConnectAsync(Stream stream, string host, int port, Socks5Proxy proxy, CancellationToken ct)
    {
        bool credentials = proxy.UserName is not null;
        byte[] greeting = credentials ? [Version, 2, NoAuthentication, UserNamePassword] : [Version, 1, NoAuthentication];
        await stream.WriteAsync(greeting, ct).ConfigureAwait(false);
        var choice = new byte[2];
        await stream.ReadExactlyAsync(choice, ct).ConfigureAwait(false);
        if (choice[0] != Version) throw new Socks5Exception("the proxy does not speak SOCKS5");
        switch (choice[1])
        {
            case NoAuthentication:
                break;
            case UserNamePassword when credentials:
                await AuthenticateAsync(stream, proxy.UserName!, proxy.Password ?? "", ct).ConfigureAwait(false);
                break;
            case NoAcceptableMethod:
                throw new Socks5Exception(credentials
                    ? "the proxy accepts neither no authentication nor a user name and password"
                    : "the proxy requires authentication");
            default:
                throw new Socks5Exception($"the proxy chose an authentication method we did not offer ({choice[1]})");
        }

        await stream.WriteAsync(ConnectRequest(host, port), ct).ConfigureAwait(false);
        var head = new byte[4];
        await stream.ReadExactlyAsync(head, ct).ConfigureAwait(false);
        if (head[0] != Version) throw new Socks5Exception("the proxy does not speak SOCKS5");
        if (head[1] != 0) throw new Socks5Exception(ReplyText(head[1]));
        int addressLength = head[3] switch
        {
            1 => 4,
            4 => 16,
            3 => await ReadByteAsync(stream, ct).ConfigureAwait(false),
            _ => throw new Socks5Exception($"the proxy answered with an unknown address type ({head[3]})"),
        };
        // The address and port the proxy bound for us: read and passed over.
        await stream.ReadExactlyAsync(new byte[addressLength + 2], ct).ConfigureAwait(false);
    }

    private static async Task AuthenticateAsync(Stream stream, string userName, string password, CancellationToken ct)
    {
        byte[] user = Encoding.UTF8.GetBytes(userName);
        byte[] pass = Encoding.UTF8.GetBytes(password);
        if (user.Length is 0 or > 255 || pass.Length > 255)
            throw new Socks5Exception("a SOCKS5 user name must be 1 to 255 bytes and a password at most 255");
        var request = new byte[3 + user.Length + pass.Length];
        request[0] = 1;
        request[1] = (byte)user.Length;
        user.CopyTo(request, 2);
        request[2 + user.Length] = (byte)pass.Length;
        pass.CopyTo(request, 3 + user.Length);
        await stream.WriteAsync(request, ct).ConfigureAwait(false);
        var status = new byte[2];
        await stream.ReadExactlyAsync(status, ct).ConfigureAwait(false);
        if (status[1] != 0) throw new Socks5Exception("the proxy refused the user name or password");
    }

    /// <summary>CONNECT to an IPv4 or IPv6 literal as such, to any other host by name.</summary>
    internal static byte[] ConnectRequest(string host, int port)
    {
        byte[] address;
        byte type;
        if (IPAddress.TryParse(host, out var ip))
        {
            address = ip.GetAddressBytes();
            type = ip.AddressFamily == AddressFamily.InterNetwork ? (byte)1 : (byte)4;
        }
        else
        {
            byte[] name = Encoding.ASCII.GetBytes(host);
            if (name.Length is 0 or > 255) throw new Socks5Exception($"the host name '{host}' is too long for SOCKS5");
            address = [(byte)name.Length, .. name];
            type = 3;
        }
        var request = new byte[4 + address.Length + 2];
        request[0] = Version;
        request[1] = 1; // CONNECT
        request[3] = type;
        address.CopyTo(request, 4);
        BinaryPrimitives.WriteUInt16BigEndian(request.AsSpan(4 + address.Length), (ushort)port);
        return request;
    }

    private static async Task<int> ReadByteAsync(Stream stream, CancellationToken ct)
    {
        var one = new byte[1];
        await stream.ReadExactlyAsync(one, ct).ConfigureAwait(false);
        return one[0];
    }

    private static string ReplyText(byte reply) => reply switch
    {
        1 => "the proxy failed (general SOCKS server failure)",
        2 => "the proxy's rules do not allow the connection",
        3 => "the proxy cannot reach the network",
        4 => "the proxy cannot reach the host",
        5 => "the server refused the proxy's connection",
        6 => "the proxy's connection timed out",
        7 => "the proxy does not support CONNECT",
        8 => "the proxy does not support the address type",
        _ => $"the proxy refused the connection ({reply})",
    };
}
