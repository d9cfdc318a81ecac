using System.Globalization;
using System.Net;

namespace Midge.Core.Channel;

/// <summary>
/// A client's address as Mosquitto writes it in its log: <c>127.0.0.1:40000</c>, <c>::1:40000</c> (no brackets).
/// An IPv4 client of a dual-stack listener, which the socket reports as <c>[::ffff:127.0.0.1]</c>, is written as
/// the IPv4 address it is. Formatted only when a line is written: nothing is kept per connection.
/// </summary>
public static class RemoteAddress
{
    /// <summary>Address and port (<c>127.0.0.1:40000</c>); anything but an <see cref="IPEndPoint"/> as it is.</summary>
    public static string Format(object? remote) => remote is IPEndPoint endpoint
        ? Host(endpoint.Address) + ":" + endpoint.Port.ToString(CultureInfo.InvariantCulture)
        : remote?.ToString() ?? "";

    /// <summary>The address alone (<c>127.0.0.1</c>): what Mosquitto names a client by before it has a client id.</summary>
    public static string Host(object? remote) => remote is IPEndPoint endpoint ? Host(endpoint.Address) : remote?.ToString() ?? "";

    private static string Host(IPAddress address) => (address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address).ToString();
}
