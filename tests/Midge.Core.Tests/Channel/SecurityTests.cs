using System.Text;
using Midge.Config;
using Midge.Protocol;
using Midge.Protocol.Packets;
using Midge.Security;

namespace Midge.Core.Tests.Channel;

/// <summary>password_file, allow_anonymous and acl_file as the channel applies them.</summary>
public sealed class SecurityTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("midge-sec-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    private ChannelHarness Harness(bool allowAnonymous, string? acl = null, bool checkRetainSource = false)
    {
        var pw = Write("pw", PasswdCommand.FormatEntry("alice", "secret") + "\n" + PasswdCommand.FormatEntry("bob", "hunter2") + "\n");
        var aclPath = acl is null ? null : Write("acl", acl);
        var listener = new ListenerConfig { AllowAnonymous = allowAnonymous, PasswordFile = pw, AclFile = aclPath };
        var config = new BrokerConfig { Listeners = [listener], PasswordFile = pw, AclFile = aclPath, CheckRetainSource = checkRetainSource };
        return new ChannelHarness(config, listener);
    }

    private static Action<ConnectPacket> As(string user, string password) => c =>
    {
        c.UserName = user;
        c.Password = Encoding.UTF8.GetBytes(password);
    };

    [Fact]
    public void RightPassword_IsAccepted()
    {
        var h = Harness(allowAnonymous: false);
        Assert.Equal(ReasonCode.Success, h.Connect("c", configure: As("alice", "secret")).ConnAck.ReasonCode);
    }

    [Fact]
    public void WrongPassword_V5Gets0x87_V311GetsNotAuthorised_AsMosquittoAnswers()
    {
        var h = Harness(allowAnonymous: true);
        Assert.Equal(ReasonCode.NotAuthorized, h.Connect("c", configure: As("alice", "wrong")).ConnAck.ReasonCode);
        var v3 = h.Connect("d", ProtocolVersion.V311, configure: As("alice", "wrong")).ConnAck;
        Assert.Equal(ConnectReturnCode.NotAuthorized, v3.V3ReturnCode ?? ReasonCodes.ToV3ConnAck(v3.ReasonCode));
    }

    [Fact]
    public void UnknownUser_IsRefused()
    {
        var h = Harness(allowAnonymous: true);
        Assert.Equal(ReasonCode.NotAuthorized, h.Connect("c", configure: As("mallory", "secret")).ConnAck.ReasonCode);
    }

    [Fact]
    public void Anonymous_FollowsAllowAnonymous()
    {
        Assert.Equal(ReasonCode.NotAuthorized, Harness(allowAnonymous: false).Connect("c").ConnAck.ReasonCode);
        Assert.Equal(ReasonCode.Success, Harness(allowAnonymous: true).Connect("c").ConnAck.ReasonCode);
    }

    private const string Acl = """
        topic read public/#
        user alice
        topic readwrite alice/#
        topic write sensors/#
        user bob
        topic read sensors/#
        pattern readwrite clients/%c/#
        """;

    [Fact]
    public void Publish_DeniedTopic_V5Gets0x87AndIsNotRouted()
    {
        var h = Harness(allowAnonymous: true, Acl);
        var (bob, bobOut, _) = h.Connect("bob", configure: As("bob", "hunter2"));
        bob.Handle(ChannelHarness.Subscribe(1, ("sensors/#", QoS.AtMostOnce)));
        bobOut.Take();
        var (alice, aliceOut, _) = h.Connect("alice", configure: As("alice", "secret"));
        alice.Handle(ChannelHarness.Publish("public/x", "no", QoS.AtLeastOnce, id: 1));
        Assert.Equal(ReasonCode.NotAuthorized, Assert.IsType<PublishAckPacket>(Assert.Single(aliceOut.Take())).ReasonCode);
        alice.Handle(ChannelHarness.Publish("sensors/t", "yes", QoS.AtLeastOnce, id: 2));
        Assert.Equal("yes", Assert.Single(bobOut.Publishes()).Payload);
    }

    [Fact]
    public void Subscribe_ToFilterNeverReadable_IsRefused()
    {
        var h = Harness(allowAnonymous: true, Acl);
        var (alice, output, _) = h.Connect("alice", ProtocolVersion.V311, configure: As("alice", "secret"));
        alice.Handle(ChannelHarness.Subscribe(1, ("bob/secret", QoS.AtMostOnce), ("alice/+", QoS.AtMostOnce)));
        var suback = Assert.IsType<SubAckPacket>(Assert.Single(output.Take()));
        Assert.Equal(ReasonCode.NotAuthorized, suback.ReasonCodes[0]); // written as 0x80 for 3.x by the encoder
        Assert.Equal(ReasonCode.GrantedQoS0, suback.ReasonCodes[1]);
    }

    [Fact]
    public void Delivery_ChecksReadRights_OnWildcardSubscriptions()
    {
        var h = Harness(allowAnonymous: true, Acl);
        var (bob, bobOut, _) = h.Connect("bob", configure: As("bob", "hunter2"));
        bob.Handle(ChannelHarness.Subscribe(1, ("#", QoS.AtMostOnce)));
        bobOut.Take();
        var (alice, _, _) = h.Connect("alice", configure: As("alice", "secret"));
        alice.Handle(ChannelHarness.Publish("alice/diary", "private"));
        alice.Handle(ChannelHarness.Publish("sensors/t", "shared"));
        Assert.Equal(["shared"], bobOut.Publishes().Select(p => p.Payload));
    }

    [Fact]
    public void Pattern_PercentC_GivesEachClientItsOwnTree()
    {
        var h = Harness(allowAnonymous: true, Acl);
        var (c, output, _) = h.Connect("dev1", configure: As("bob", "hunter2"));
        c.Handle(ChannelHarness.Subscribe(1, ("clients/dev1/#", QoS.AtMostOnce), ("clients/dev2/#", QoS.AtMostOnce)));
        var suback = Assert.IsType<SubAckPacket>(Assert.Single(output.Take()));
        Assert.Equal([ReasonCode.GrantedQoS0, ReasonCode.NotAuthorized], suback.ReasonCodes);
    }

    [Fact]
    public void Will_ToForbiddenTopic_IsRefusedAtConnect()
    {
        var h = Harness(allowAnonymous: true, Acl);
        var connack = h.Connect("alice", configure: c =>
        {
            As("alice", "secret")(c);
            c.Will = new WillMessage { Topic = "bob/x", Payload = "gone"u8.ToArray() };
        }).ConnAck;
        Assert.Equal(ReasonCode.NotAuthorized, connack.ReasonCode);
    }

    [Fact]
    public void Reload_RevokesSubscriptions_AndDisconnectsClientsWhoseCredentialsNoLongerHold()
    {
        var h = Harness(allowAnonymous: false, Acl);
        var (alice, aliceOut, _) = h.Connect("alice", configure: As("alice", "secret"));
        var (bob, bobOut, _) = h.Connect("bob", configure: As("bob", "hunter2"));
        bob.Handle(ChannelHarness.Subscribe(1, ("sensors/#", QoS.AtMostOnce)));
        Assert.Equal(1, h.Broker.SubscriptionCount);

        // bob keeps his password but loses read access to sensors; alice's password changes.
        File.WriteAllText(Path.Combine(_dir, "pw"),
            PasswdCommand.FormatEntry("alice", "changed") + "\n" + PasswdCommand.FormatEntry("bob", "hunter2") + "\n");
        File.WriteAllText(Path.Combine(_dir, "acl"), "user alice\ntopic readwrite alice/#\nuser bob\ntopic read other/#\n");
        h.Broker.Reload(h.Broker.Config);

        Assert.Equal(ReasonCode.NotAuthorized, Assert.IsType<DisconnectPacket>(aliceOut.FinalPacket).ReasonCode);
        Assert.False(bobOut.Closed);
        Assert.Equal(0, h.Broker.SubscriptionCount);
        _ = alice;
    }

    [Fact]
    public void Reload_ReachesMessagesQueuedForAnOfflineSession()
    {
        var h = Harness(allowAnonymous: true, Acl);
        var persistent = (ConnectPacket c) => { As("bob", "hunter2")(c); c.GetOrCreateProperties().SessionExpiryInterval = 600; };
        var (bob, bobOut, _) = h.Connect("bob", cleanStart: false, configure: persistent);
        bob.Handle(ChannelHarness.Subscribe(1, ("sensors/#", QoS.AtLeastOnce)));
        bob.OnConnectionClosed();
        var (alice, _, _) = h.Connect("alice", configure: As("alice", "secret"));
        alice.Handle(ChannelHarness.Publish("sensors/private/t", "revoked", QoS.AtLeastOnce, id: 1));
        alice.Handle(ChannelHarness.Publish("sensors/public/t", "still readable", QoS.AtLeastOnce, id: 2));

        // bob may now read only sensors/public: the subscription stays (it can still match), the queued message
        // he may no longer read does not go out when he comes back.
        File.WriteAllText(Path.Combine(_dir, "acl"), "user alice\ntopic write sensors/#\nuser bob\ntopic read sensors/public/#\n");
        h.Broker.Reload(h.Broker.Config);
        var (_, output, connack) = h.Connect("bob", cleanStart: false, configure: persistent);
        Assert.True(connack.SessionPresent);
        Assert.Equal(["still readable"], output.Publishes().Select(p => p.Payload));
    }

    [Fact]
    public void PasswordFileEntryForTheEmptyPassword_LetsNobodyIn()
    {
        // Mosquitto refuses an empty or absent password even against such an entry; accepting them would open
        // accounts nobody could use under Mosquitto.
        var pw = Write("pw-empty", PasswdCommand.FormatEntry("alice", "secret") + "\n" + PasswdCommand.FormatEntry("nopass", "") + "\n");
        var listener = new ListenerConfig { AllowAnonymous = false, PasswordFile = pw };
        var h = new ChannelHarness(new BrokerConfig { Listeners = [listener], PasswordFile = pw }, listener);
        Assert.Equal(ReasonCode.NotAuthorized, h.Connect("a", configure: As("nopass", "")).ConnAck.ReasonCode);
        Assert.Equal(ReasonCode.NotAuthorized, h.Connect("b", configure: c => c.UserName = "nopass").ConnAck.ReasonCode);
        Assert.Equal(ReasonCode.Success, h.Connect("c", configure: As("alice", "secret")).ConnAck.ReasonCode);
    }

    [Fact]
    public void CheckRetainSource_DropsRetainedWhoseAuthorLostWriteAccess()
    {
        var h = Harness(allowAnonymous: true, Acl, checkRetainSource: true);
        var (alice, _, _) = h.Connect("alice", configure: As("alice", "secret"));
        alice.Handle(ChannelHarness.Publish("sensors/t", "kept", retain: true));
        File.WriteAllText(Path.Combine(_dir, "acl"), "user alice\ntopic readwrite alice/#\nuser bob\ntopic read sensors/#\n");
        h.Broker.Reload(h.Broker.Config);
        var (bob, output, _) = h.Connect("bob", configure: As("bob", "hunter2"));
        bob.Handle(ChannelHarness.Subscribe(1, ("sensors/#", QoS.AtMostOnce)));
        Assert.Empty(output.Publishes());
    }
}
