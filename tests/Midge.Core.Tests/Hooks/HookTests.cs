using Midge.Config;
using Midge.Core.Hooks;
using Midge.Core.Tests.Channel;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Core.Tests.Hooks;

public class HookTests
{
    [Fact]
    public void Nothing_is_attached_by_default()
    {
        var h = new ChannelHarness();
        Assert.False(h.Broker.Hooks.Authenticate.IsAttached);
        Assert.False(h.Broker.Hooks.MessagePublish.IsAttached);
        Assert.Equal("message.publish", h.Broker.Hooks.MessagePublish.Name);
    }

    [Fact]
    public async Task An_authenticate_hook_that_answers_later_holds_the_CONNACK_until_it_answers()
    {
        var h = new ChannelHarness();
        var answer = new TaskCompletionSource<HookVerdict>(TaskCreationOptions.RunContinuationsAsynchronously);
        AuthenticateContext? seen = null;
        h.Broker.Hooks.Authenticate.Attach((context, _) =>
        {
            seen = context;
            return new ValueTask<HookVerdict>(answer.Task);
        });
        var (channel, output) = h.Open();
        var pending = channel.Handle(Connect("slow", user: "ann", password: "pw"));
        Assert.False(pending.IsCompleted);
        Assert.Empty(output.Take());
        Assert.Equal("ann", seen!.Username);
        Assert.Equal("pw", System.Text.Encoding.UTF8.GetString(seen.Password!.Value.Span));
        answer.SetResult(HookVerdict.Allow);
        await pending;
        Assert.Equal(ReasonCode.Success, output.TakeFirst<ConnAckPacket>().ReasonCode);
        Assert.True(channel.IsConnected);
    }

    [Fact]
    public async Task An_authenticate_hook_that_denies_later_refuses_with_0x87()
    {
        var h = new ChannelHarness();
        h.Broker.Hooks.Authenticate.Attach(async (_, ct) =>
        {
            await Task.Delay(20, ct);
            return HookVerdict.Deny;
        });
        var (channel, output) = h.Open();
        await channel.Handle(Connect("c"));
        Assert.Equal(ReasonCode.NotAuthorized, Assert.IsType<ConnAckPacket>(output.FinalPacket).ReasonCode);
        Assert.False(channel.IsConnected);
    }

    [Fact]
    public void An_authenticate_hook_that_defers_leaves_it_to_allow_anonymous_and_one_that_allows_overrides_it()
    {
        var h = new ChannelHarness(listener: new ListenerConfig { AllowAnonymous = false });
        using (h.Broker.Hooks.Authenticate.Attach((_, _) => ValueTask.FromResult(HookVerdict.Defer)))
        {
            Assert.Equal(ReasonCode.NotAuthorized, h.Connect("anon").ConnAck.ReasonCode);
        }
        using (h.Broker.Hooks.Authenticate.Attach((c, _) =>
                   ValueTask.FromResult(c.ClientId == "device-1" ? HookVerdict.Allow : HookVerdict.Defer)))
        {
            Assert.Equal(ReasonCode.Success, h.Connect("device-1").ConnAck.ReasonCode);
            Assert.Equal(ReasonCode.NotAuthorized, h.Connect("device-2").ConnAck.ReasonCode);
        }
    }

    [Fact]
    public void An_authenticate_hook_that_throws_refuses_that_client_only()
    {
        var h = new ChannelHarness();
        h.Broker.Hooks.Authenticate.Attach((c, _) =>
            c.ClientId == "bad" ? throw new InvalidOperationException("backend down") : ValueTask.FromResult(HookVerdict.Defer));
        Assert.Equal(ReasonCode.NotAuthorized, h.Connect("bad").ConnAck.ReasonCode);
        Assert.Equal(ReasonCode.Success, h.Connect("good").ConnAck.ReasonCode);
    }

    [Fact]
    public async Task A_CONNECT_closed_while_its_hook_is_out_gets_no_session()
    {
        var h = new ChannelHarness();
        var answer = new TaskCompletionSource<HookVerdict>();
        h.Broker.Hooks.Authenticate.Attach((_, _) => new ValueTask<HookVerdict>(answer.Task));
        var (channel, output) = h.Open();
        var pending = channel.Handle(Connect("late"));
        channel.OnConnectionClosed();
        answer.SetResult(HookVerdict.Allow);
        await pending.AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Empty(output.Take());
        Assert.Equal(0, h.Broker.SessionCount);
    }

    [Fact]
    public async Task An_authenticate_hook_that_never_answers_holds_the_CONNECT_no_longer_than_connect_timeout()
    {
        var listener = new ListenerConfig { AllowAnonymous = true, Protection = new ListenerProtection { ConnectTimeoutSeconds = 1 } };
        var h = new ChannelHarness(listener: listener);
        h.Broker.Hooks.Authenticate.Attach((_, _) => new ValueTask<HookVerdict>(new TaskCompletionSource<HookVerdict>().Task));
        var (channel, output) = h.Open();
        var started = System.Diagnostics.Stopwatch.StartNew();
        await channel.Handle(Connect("hung")).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.InRange(started.Elapsed, TimeSpan.FromSeconds(0.9), TimeSpan.FromSeconds(9));
        Assert.Equal(ReasonCode.NotAuthorized, Assert.IsType<ConnAckPacket>(output.FinalPacket).ReasonCode);
    }

    [Fact]
    public async Task An_authorize_hook_refuses_a_topic_to_publishers_and_subscribers()
    {
        var h = new ChannelHarness();
        h.Broker.Hooks.Authorize.Attach(async (c, _) =>
        {
            await Task.Yield();
            return c.Topic.StartsWith("secret/", StringComparison.Ordinal) ? HookVerdict.Deny : HookVerdict.Defer;
        });
        var (sub, subOut, _) = h.Connect("sub");
        await sub.Handle(ChannelHarness.Subscribe(1, ("secret/#", QoS.AtLeastOnce), ("open/#", QoS.AtLeastOnce)));
        var suback = subOut.TakeFirst<SubAckPacket>();
        Assert.Equal([ReasonCode.NotAuthorized, ReasonCode.GrantedQoS1], suback.ReasonCodes);

        var (pub, pubOut, _) = h.Connect("pub");
        await pub.Handle(ChannelHarness.Publish("secret/plan", "x", QoS.AtLeastOnce, id: 1));
        await pub.Handle(ChannelHarness.Publish("open/news", "y", QoS.AtLeastOnce, id: 2));
        var acks = pubOut.Take().OfType<PublishAckPacket>().ToList();
        Assert.Equal([ReasonCode.NotAuthorized, ReasonCode.Success], acks.Select(a => a.ReasonCode));
        Assert.Equal(["open/news"], subOut.Publishes().Select(p => p.Topic));
    }

    [Fact]
    public void Notification_hooks_see_what_happens_and_stop_when_detached()
    {
        var h = new ChannelHarness();
        var events = new List<string>();
        var hooks = h.Broker.Hooks;
        var attached = new List<IDisposable>
        {
            hooks.ClientConnect.Attach(e => events.Add("connect " + e.ClientId)),
            hooks.ClientConnected.Attach(e => events.Add("connected " + e.ClientId)),
            hooks.ClientDisconnected.Attach(e => events.Add("disconnected " + e.ClientId)),
            hooks.SessionSubscribed.Attach(e => events.Add($"subscribed {e.ClientId} {e.Filter} {(int)e.QoS}")),
            hooks.SessionUnsubscribed.Attach(e => events.Add($"unsubscribed {e.ClientId} {e.Filter}")),
            hooks.MessagePublish.Attach(e => events.Add("publish " + e.Message.Topic)),
            hooks.RetainedChanged.Attach(e => events.Add($"retained {e.Topic} {(e.Message is null ? "cleared" : "set")}")),
        };
        var (c, _, _) = h.Connect("c1");
        c.Handle(ChannelHarness.Subscribe(1, ("t/#", QoS.AtLeastOnce)));
        c.Handle(ChannelHarness.Publish("t/1", "v", retain: true));
        c.Handle(ChannelHarness.Publish("t/1", "", retain: true));
        c.Handle(new UnsubscribePacket { PacketId = 2, Filters = ["t/#"] });
        c.OnConnectionClosed();
        Assert.Equal([
            "connect c1", "connected c1", "subscribed c1 t/# 1", "publish t/1", "retained t/1 set", "publish t/1",
            "retained t/1 cleared", "unsubscribed c1 t/#", "disconnected c1",
        ], events);

        foreach (var a in attached) a.Dispose();
        events.Clear();
        h.Connect("c2").Channel.Handle(ChannelHarness.Publish("t/2", "v"));
        Assert.Empty(events);
        Assert.False(hooks.MessagePublish.IsAttached);
    }

    [Fact]
    public void A_notification_hook_that_throws_does_not_stop_the_others_or_the_broker()
    {
        var h = new ChannelHarness();
        int seen = 0;
        h.Broker.Hooks.MessagePublish.Attach(_ => throw new InvalidOperationException("broken recorder"));
        h.Broker.Hooks.MessagePublish.Attach(_ => seen++);
        var (sub, subOut, _) = h.Connect("sub");
        sub.Handle(ChannelHarness.Subscribe(1, ("t", QoS.AtMostOnce)));
        h.Connect("pub").Channel.Handle(ChannelHarness.Publish("t", "still delivered"));
        Assert.Equal(1, seen);
        Assert.Single(subOut.Publishes());
    }

    [Fact]
    public void Delivery_hooks_see_each_delivery_its_acknowledgement_drops_and_expiry()
    {
        var h = new ChannelHarness(new BrokerConfig { MaxQueuedMessages = 1 });
        var events = new List<string>();
        var hooks = h.Broker.Hooks;
        hooks.MessageDelivered.Attach(e => events.Add($"delivered {e.ClientId} {e.Message.Topic} q{(int)e.QoS}"));
        hooks.MessageAcknowledged.Attach(e => events.Add($"acknowledged {e.ClientId} {e.Message.Topic}"));
        hooks.MessageDropped.Attach(e => events.Add($"dropped {e.ClientId} {e.Message?.Topic} {e.Reason}"));
        hooks.SessionExpired.Attach(e => events.Add($"expired {e.ClientId}"));

        var (sub, subOut, _) = h.Connect("sub", cleanStart: false, configure: c => c.GetOrCreateProperties().SessionExpiryInterval = 5);
        sub.Handle(ChannelHarness.Subscribe(1, ("t/#", QoS.AtLeastOnce)));
        var (pub, _, _) = h.Connect("pub");
        pub.Handle(ChannelHarness.Publish("t/1", "a", QoS.AtLeastOnce, id: 1));
        var sent = subOut.Publishes().Single();
        sub.Handle(new PublishAckPacket(PacketType.PubAck, sent.Fields.PacketId));
        Assert.Equal(["delivered sub t/1 q1", "acknowledged sub t/1"], events);

        events.Clear();
        sub.OnConnectionClosed(); // offline: one message may wait, the next is dropped
        pub.Handle(ChannelHarness.Publish("t/2", "b", QoS.AtLeastOnce, id: 2));
        pub.Handle(ChannelHarness.Publish("t/3", "c", QoS.AtLeastOnce, id: 3));
        Assert.Equal(["dropped sub t/3 queue full"], events);

        events.Clear();
        h.Time.Advance(TimeSpan.FromSeconds(6));
        h.Broker.Tick();
        Assert.Equal(["expired sub"], events);
    }

    private static ConnectPacket Connect(string clientId, string? user = null, string? password = null) => new()
    {
        ClientId = clientId,
        ProtocolVersion = ProtocolVersion.V500,
        ProtocolName = "MQTT",
        CleanStart = true,
        KeepAlive = 60,
        UserName = user,
        Password = password is null ? null : System.Text.Encoding.UTF8.GetBytes(password),
    };
}
