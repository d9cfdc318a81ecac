using System.Buffers;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Midge.Config;
using Midge.Core;
using Midge.Protocol;
using Midge.Protocol.Packets;

namespace Midge.Transport.Tests;

/// <summary>
/// The connection code does not care what carries the bytes: any Kestrel <see cref="ConnectionContext"/> (TLS today;
/// WebSocket, Unix sockets next) runs the same read loop, channel and writer. Here two connections over in-memory
/// pipes, no socket anywhere, exchange a message through one broker.
/// </summary>
public class AnyTransportTests
{
    [Fact]
    public async Task Two_connections_over_in_memory_pipes_exchange_a_message()
    {
        var broker = new Broker(new BrokerConfig());
        var listener = new ListenerConfig { AllowAnonymous = true };
        await using var sub = PipeClient.Start(broker, listener, "sub");
        await using var pub = PipeClient.Start(broker, listener, "pub");
        Assert.Equal(ReasonCode.Success, Assert.IsType<ConnAckPacket>(await sub.ReadAsync()).ReasonCode);
        Assert.Equal(ReasonCode.Success, Assert.IsType<ConnAckPacket>(await pub.ReadAsync()).ReasonCode);

        await sub.SendAsync(new SubscribePacket { PacketId = 1, Subscriptions = [new TopicSubscription("t/#", QoS.AtLeastOnce)] });
        Assert.IsType<SubAckPacket>(await sub.ReadAsync());
        await pub.SendAsync(new PublishPacket { Topic = "t/1", Payload = "over pipes"u8.ToArray(), QoS = QoS.AtLeastOnce, PacketId = 7 });
        Assert.Equal(7, Assert.IsType<PublishAckPacket>(await pub.ReadAsync()).PacketId);
        var delivered = Assert.IsType<PublishPacket>(await sub.ReadAsync());
        Assert.Equal("t/1", delivered.Topic);
        Assert.Equal("over pipes", System.Text.Encoding.UTF8.GetString(delivered.Payload.Span));

        // Malformed input gets the same answer as over TCP: the connection is closed.
        await pub.SendRawAsync([0xF0, 0x00]); // packet type 15 with flags 0 is AUTH, which a 3.1.1 client may not send
        Assert.Null(await pub.ReadAsync());
    }

    private sealed class PipeClient : IAsyncDisposable
    {
        private readonly Pipe _toBroker = new(), _fromBroker = new();
        private readonly Task _running;

        private PipeClient(Broker broker, ListenerConfig listener)
        {
            var context = new DefaultConnectionContext(Guid.NewGuid().ToString("N"),
                new DuplexPipe(_toBroker.Reader, _fromBroker.Writer), new DuplexPipe(_fromBroker.Reader, _toBroker.Writer));
            _running = new MqttConnection(context, broker, listener, localOnlyMode: false).RunAsync();
        }

        public static PipeClient Start(Broker broker, ListenerConfig listener, string clientId)
        {
            var client = new PipeClient(broker, listener);
            client.SendAsync(new ConnectPacket { ClientId = clientId, ProtocolVersion = ProtocolVersion.V311, ProtocolName = "MQTT", CleanStart = true, KeepAlive = 60 })
                .AsTask().GetAwaiter().GetResult();
            return client;
        }

        public ValueTask<FlushResult> SendAsync(MqttPacket packet)
        {
            PacketEncoder.Write(_toBroker.Writer, packet, ProtocolVersion.V311);
            return _toBroker.Writer.FlushAsync();
        }

        public ValueTask<FlushResult> SendRawAsync(byte[] bytes) => _toBroker.Writer.WriteAsync(bytes);

        /// <summary>The next packet from the broker, or null once it closed the connection.</summary>
        public async Task<MqttPacket?> ReadAsync()
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            while (true)
            {
                var result = await _fromBroker.Reader.ReadAsync(timeout.Token);
                var buffer = result.Buffer;
                if (FrameReader.TryRead(ref buffer, 0, out byte header, out var body, out _) == FrameStatus.Complete)
                {
                    var packet = PacketDecoder.Decode(header, body, ProtocolVersion.V311);
                    _fromBroker.Reader.AdvanceTo(buffer.Start);
                    return packet;
                }
                _fromBroker.Reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
                if (result.IsCompleted) return null;
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _toBroker.Writer.CompleteAsync();
            await _running.WaitAsync(TimeSpan.FromSeconds(10));
        }
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;
        public PipeWriter Output { get; } = output;
    }
}
