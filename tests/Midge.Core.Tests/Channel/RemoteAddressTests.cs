using System.Net;
using Midge.Core.Channel;

namespace Midge.Core.Tests.Channel;

/// <summary>Client addresses in log lines, as Mosquitto writes them.</summary>
public sealed class RemoteAddressTests
{
    [Theory]
    [InlineData("::ffff:127.0.0.1", 40000, "127.0.0.1:40000", "127.0.0.1")]
    [InlineData("127.0.0.1", 40000, "127.0.0.1:40000", "127.0.0.1")]
    [InlineData("::1", 40001, "::1:40001", "::1")]
    public void Addresses_are_written_as_Mosquitto_writes_them(string address, int port, string expected, string host)
    {
        var endpoint = new IPEndPoint(IPAddress.Parse(address), port);
        Assert.Equal(expected, RemoteAddress.Format(endpoint));
        Assert.Equal(host, RemoteAddress.Host(endpoint));
        Assert.Equal("conn-1", RemoteAddress.Format("conn-1"));
    }
}
