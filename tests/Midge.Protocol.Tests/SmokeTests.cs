using Midge.Protocol;

namespace Midge.Protocol.Tests;

public class SmokeTests
{
    [Fact]
    public void V3ConnAckMapping_BadCredentials()
    {
        Assert.Equal(ConnectReturnCode.BadUserNameOrPassword, ReasonCodes.ToV3ConnAck(ReasonCode.BadUserNameOrPassword));
    }
}
