using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Midge.Core;
using Midge.Core.Messages;
using Midge.Core.Protection;
using Midge.Core.Sessions;
using Midge.Protocol;

namespace Midge.Transport.Http;

// The routes: EMQX 5's paths under /api/v5 and their JSON (docs/http-api.md), with Midge's additions.
internal sealed partial class HttpApiListener
{
    private const string Prefix = "/api/v5/";

    /// <summary>The node's name in EMQX's form, <c>midge@host</c>.</summary>
    private static readonly string NodeName = "midge@" + Environment.MachineName;

    private Task RouteAsync(HttpContext http, string decodedPath)
    {
        // The raw target keeps %2F as it came: a client id or topic with '/' is one segment when encoded.
        string raw = http.Features.Get<IHttpRequestFeature>()?.RawTarget ?? decodedPath;
        int query = raw.IndexOf('?', StringComparison.Ordinal);
        if (query >= 0) raw = raw[..query];
        string method = http.Request.Method;
        if (raw == "/metrics") return Only(method, "GET", () => PrometheusAsync(http));
        if (!raw.StartsWith(Prefix, StringComparison.Ordinal)) throw ApiError.NotFound("NOT_FOUND", $"no such path: {decodedPath}");
        string rest = raw[Prefix.Length..].TrimEnd('/');
        // The retained message of a topic: the topic is the rest of the path, '/' encoded or not.
        const string RetainedOne = "mqtt/retainer/message/";
        if (rest.StartsWith(RetainedOne, StringComparison.Ordinal))
        {
            string topic = Unescape(rest[RetainedOne.Length..]);
            return method switch
            {
                "GET" => RetainedGetAsync(http, topic),
                "DELETE" => RetainedDeleteAsync(http, topic),
                _ => throw MethodNotAllowed(method),
            };
        }
        var s = rest.Split('/');
        for (int i = 0; i < s.Length; i++) s[i] = Unescape(s[i]);
        return (s.Length, s[0]) switch
        {
            (1, "publish") => Only(method, "POST", () => PublishAsync(http)),
            (2, "publish") when s[1] == "bulk" => Only(method, "POST", () => PublishBulkAsync(http)),
            (1, "clients") => Only(method, "GET", () => ClientsAsync(http)),
            (2, "clients") => method switch
            {
                "GET" => ClientAsync(http, s[1]),
                "DELETE" => KickAsync(http, s[1]),
                _ => throw MethodNotAllowed(method),
            },
            (3, "clients") when s[2] == "subscriptions" => Only(method, "GET", () => ClientSubscriptionsAsync(http, s[1])),
            (3, "clients") when s[2] == "subscribe" => Only(method, "POST", () => SubscribeAsync(http, s[1])),
            (3, "clients") when s[2] == "unsubscribe" => Only(method, "POST", () => UnsubscribeAsync(http, s[1])),
            (1, "subscriptions") => Only(method, "GET", () => SubscriptionsAsync(http)),
            (1, "topics") => Only(method, "GET", () => TopicsAsync(http)),
            (3, "mqtt") when s[1] == "retainer" && s[2] == "messages" => method switch
            {
                "GET" => RetainedListAsync(http),
                "DELETE" => RetainedClearAsync(http),
                _ => throw MethodNotAllowed(method),
            },
            (1, "banned") => method switch
            {
                "GET" => BannedAsync(http),
                "POST" => BanAsync(http),
                _ => throw MethodNotAllowed(method),
            },
            (3, "banned") => Only(method, "DELETE", () => UnbanAsync(http, s[1], s[2])),
            (1, "stats") => Only(method, "GET", () => StatsAsync(http)),
            (1, "metrics") => Only(method, "GET", () => MetricsAsync(http)),
            (2, "prometheus") when s[1] == "stats" => Only(method, "GET", () => PrometheusAsync(http)),
            (1, "listeners") => Only(method, "GET", () => ListenersAsync(http)),
            (2, "configs") when s[1] == "reload" => Only(method, "POST", () => ReloadAsync(http)),
            (1, "nodes") => Only(method, "GET", () => NodesAsync(http, null)),
            (1, "bridges") => Only(method, "GET", () => BridgesAsync(http)),
            (2, "nodes") => Only(method, "GET", () => NodesAsync(http, s[1])),
            _ => throw ApiError.NotFound("NOT_FOUND", $"no such path: {decodedPath}"),
        };
    }

    private static string Unescape(string segment)
    {
        try
        {
            return Uri.UnescapeDataString(segment);
        }
        catch (UriFormatException)
        {
            throw ApiError.BadRequest("malformed percent-encoding in the path");
        }
    }

    private static Task Only(string method, string allowed, Func<Task> handle) =>
        method == allowed ? handle() : throw MethodNotAllowed(method);

    private static ApiError MethodNotAllowed(string method) => new(405, "METHOD_NOT_ALLOWED", $"{method} is not allowed here");

    private static Task NoContent(HttpContext http)
    {
        http.Response.StatusCode = 204;
        return Task.CompletedTask;
    }

    // ---- publish ----

    private async Task PublishAsync(HttpContext http)
    {
        using var body = await Json.ReadAsync(http.Request, http.RequestAborted).ConfigureAwait(false);
        var request = ReadPublish(Json.Object(body.RootElement));
        int matched = Publish(request);
        string id = NewMessageId();
        await Json.WriteAsync(http, matched > 0 ? 200 : 202, w => WritePublishResult(w, id, matched)).ConfigureAwait(false);
    }

    private async Task PublishBulkAsync(HttpContext http)
    {
        using var body = await Json.ReadAsync(http.Request, http.RequestAborted).ConfigureAwait(false);
        if (body.RootElement.ValueKind != JsonValueKind.Array) throw ApiError.BadRequest("the body must be a JSON array of messages");
        if (body.RootElement.GetArrayLength() > 1000) throw ApiError.BadRequest("at most 1000 messages in one bulk publish");
        var requests = new List<PublishRequest>();
        int index = 0;
        foreach (var item in body.RootElement.EnumerateArray())
        {
            requests.Add(ReadPublish(Json.Object(item, $"message {index}"), $"message {index}: "));
            index++;
        }
        // All are checked before any is published: a bad one refuses the whole request.
        var results = new (string Id, int Matched)[requests.Count];
        for (int i = 0; i < requests.Count; i++) results[i] = (NewMessageId(), Publish(requests[i]));
        await Json.WriteAsync(http, 200, w =>
        {
            w.WriteStartArray();
            foreach (var (id, matched) in results) WritePublishResult(w, id, matched);
            w.WriteEndArray();
        }).ConfigureAwait(false);
    }

    private static void WritePublishResult(Utf8JsonWriter w, string id, int matched)
    {
        w.WriteStartObject();
        w.WriteString("id", id);
        if (matched == 0)
        {
            // EMQX's answer when nobody subscribes: 202 with reason code 16 (No matching subscribers).
            w.WriteString("message", "no_matched_subscribers");
            w.WriteNumber("reason_code", 16);
        }
        w.WriteEndObject();
    }

    private static string NewMessageId() => Guid.NewGuid().ToString("N").ToUpperInvariant();

    private sealed record PublishRequest(string Topic, byte[] Payload, QoS QoS, bool Retain, MqttProperties? Properties);

    private PublishRequest ReadPublish(JsonElement o, string where = "")
    {
        try
        {
            return ReadPublish(o);
        }
        catch (ApiError e) when (where.Length > 0)
        {
            throw new ApiError(e.Status, e.Code, where + e.Message);
        }
    }

    private PublishRequest ReadPublish(JsonElement o)
    {
        string topic = Json.String(o, "topic", required: true)!;
        if (!Topics.IsValidTopicName(topic)) throw ApiError.BadRequest($"'{topic}' is not a valid topic name");
        if (topic.StartsWith("$SYS/", StringComparison.Ordinal) || topic == "$SYS") throw ApiError.BadRequest("$SYS topics are the broker's own");
        string payloadText = Json.String(o, "payload") ?? "";
        string encoding = Json.String(o, "payload_encoding") ?? "plain";
        byte[] payload = encoding switch
        {
            "plain" => Encoding.UTF8.GetBytes(payloadText),
            "base64" => FromBase64(payloadText, "payload"),
            _ => throw ApiError.BadRequest("'payload_encoding' must be plain or base64"),
        };
        var config = _broker.Config;
        if (config.MessageSizeLimit > 0 && payload.Length > config.MessageSizeLimit)
        {
            throw ApiError.BadRequest($"the payload of {payload.Length} bytes exceeds message_size_limit {config.MessageSizeLimit}");
        }
        var qos = (QoS)(Json.Integer(o, "qos", 0, 2) ?? 0);
        bool retain = Json.Bool(o, "retain") ?? false;
        if (retain && !config.RetainAvailable) throw ApiError.BadRequest("retained messages are not available (retain_available false)");
        MqttProperties? properties = null;
        if (o.TryGetProperty("properties", out var p) && p.ValueKind != JsonValueKind.Null)
        {
            Json.Object(p, "'properties'");
            properties = new MqttProperties();
            if (Json.Bool(p, "payload_format_indicator") is { } pfi) properties.PayloadFormatIndicator = pfi ? (byte)1 : (byte)0;
            if (Json.Integer(p, "message_expiry_interval", 0, uint.MaxValue) is { } expiry) properties.MessageExpiryInterval = (uint)expiry;
            properties.ContentType = Json.String(p, "content_type");
            if (Json.String(p, "response_topic") is { } response)
            {
                if (!Topics.IsValidTopicName(response)) throw ApiError.BadRequest($"'response_topic' '{response}' is not a valid topic name");
                properties.ResponseTopic = response;
            }
            if (Json.String(p, "correlation_data") is { } correlation) properties.CorrelationData = Encoding.UTF8.GetBytes(correlation);
            if (p.TryGetProperty("user_properties", out var user) && user.ValueKind != JsonValueKind.Null)
            {
                if (user.ValueKind != JsonValueKind.Object) throw ApiError.BadRequest("'user_properties' must be an object of strings");
                foreach (var property in user.EnumerateObject())
                {
                    if (property.Value.ValueKind != JsonValueKind.String) throw ApiError.BadRequest("'user_properties' must be an object of strings");
                    properties.AddUserProperty(property.Name, property.Value.GetString()!);
                }
            }
            if (properties.PayloadFormatIndicator == 1 && !System.Text.Unicode.Utf8.IsValid(payload))
            {
                throw ApiError.BadRequest("payload_format_indicator says UTF-8 but the payload is not");
            }
        }
        return new PublishRequest(topic, payload, qos, retain, properties);
    }

    private static byte[] FromBase64(string text, string name)
    {
        try
        {
            return Convert.FromBase64String(text);
        }
        catch (FormatException)
        {
            throw ApiError.BadRequest($"'{name}' is not valid base64");
        }
    }

    private int Publish(PublishRequest r) => _broker.PublishFromBroker(r.Topic, r.Payload, r.QoS, r.Retain, r.Properties);

    // ---- clients ----

    private Task ClientsAsync(HttpContext http)
    {
        var paging = Paging.From(http.Request);
        var q = http.Request.Query;
        string? clientId = Filter(q, "clientid"), username = Filter(q, "username"), ip = Filter(q, "ip_address");
        string? likeId = Filter(q, "like_clientid"), likeName = Filter(q, "like_username"), state = Filter(q, "conn_state");
        string? proto = Filter(q, "proto_ver");
        if (state is not (null or "connected" or "disconnected")) throw ApiError.BadRequest("'conn_state' must be connected or disconnected");
        int protoLevel = proto switch
        {
            null => 0,
            "v3" or "3" => 3,
            "v4" or "4" => 4,
            "v5" or "5" => 5,
            _ => throw ApiError.BadRequest("'proto_ver' must be v3, v4 or v5"),
        };
        var list = new List<ClientInfo>();
        foreach (var c in _broker.GetClients())
        {
            if (clientId is not null && c.ClientId != clientId) continue;
            if (username is not null && c.Username != username) continue;
            if (ip is not null && c.IpAddress != ip) continue;
            if (likeId is not null && !c.ClientId.Contains(likeId, StringComparison.Ordinal)) continue;
            if (likeName is not null && (c.Username is null || !c.Username.Contains(likeName, StringComparison.Ordinal))) continue;
            if (state is not null && c.Connected != (state == "connected")) continue;
            if (protoLevel != 0 && c.ProtocolLevel != protoLevel) continue;
            list.Add(c);
        }
        list.Sort((a, b) => string.CompareOrdinal(a.ClientId, b.ClientId));
        return paging.WriteAsync(http, list, WriteClient);
    }

    private static string? Filter(IQueryCollection query, string name) => query[name].ToString() is { Length: > 0 } v ? v : null;

    private Task ClientAsync(HttpContext http, string clientId)
    {
        var client = _broker.GetClient(clientId) ?? throw NoClient(clientId);
        return Json.WriteAsync(http, 200, w => WriteClient(w, client));
    }

    private static ApiError NoClient(string clientId) => ApiError.NotFound("CLIENTID_NOT_FOUND", $"no client '{clientId}'");

    private static void WriteClient(Utf8JsonWriter w, ClientInfo c)
    {
        w.WriteStartObject();
        w.WriteString("clientid", c.ClientId);
        w.WriteString("username", c.Username);
        w.WriteBoolean("connected", c.Connected);
        w.WriteString("node", NodeName);
        if (c.IpAddress is not null)
        {
            w.WriteString("ip_address", c.IpAddress);
            w.WriteNumber("port", c.Port);
        }
        if (c.Listener is not null) w.WriteString("listener", c.Listener);
        w.WriteString("proto_name", "MQTT");
        w.WriteNumber("proto_ver", c.ProtocolLevel);
        w.WriteNumber("keepalive", c.KeepAlive);
        w.WriteBoolean("is_bridge", c.IsBridge);
        w.WriteString("mountpoint", c.MountPoint);
        if (c.ConnectedAt is { } at) w.WriteString("connected_at", Json.Time(at));
        if (c.DisconnectedAt is { } gone) w.WriteString("disconnected_at", Json.Time(gone));
        if (c.ExpiryInterval == uint.MaxValue) w.WriteString("expiry_interval", "infinity");
        else w.WriteNumber("expiry_interval", c.ExpiryInterval);
        w.WriteNumber("subscriptions_cnt", c.Subscriptions);
        w.WriteNumber("mqueue_len", c.Queued);
        w.WriteNumber("mqueue_max", c.MaxQueued);
        w.WriteNumber("inflight_cnt", c.Inflight);
        w.WriteNumber("inflight_max", c.MaxInflight);
        w.WriteNumber("awaiting_rel_cnt", c.AwaitingRel);
        w.WriteEndObject();
    }

    private Task KickAsync(HttpContext http, string clientId)
    {
        // EMQX's DELETE kicks the client and discards its session.
        if (!_broker.DisconnectClient(clientId, endSession: true)) throw NoClient(clientId);
        LogAction(http, $"client '{clientId}' kicked");
        return NoContent(http);
    }

    private Task ClientSubscriptionsAsync(HttpContext http, string clientId)
    {
        var subscriptions = _broker.GetSubscriptions(clientId) ?? throw NoClient(clientId);
        return Json.WriteAsync(http, 200, w =>
        {
            w.WriteStartArray();
            foreach (var sub in subscriptions) WriteSubscription(w, clientId, sub);
            w.WriteEndArray();
        });
    }

    private static void WriteSubscription(Utf8JsonWriter w, string clientId, Subscription sub)
    {
        w.WriteStartObject();
        w.WriteString("clientid", clientId);
        w.WriteString("topic", sub.Filter);
        w.WriteNumber("qos", (int)sub.QoS);
        w.WriteNumber("nl", sub.NoLocal ? 1 : 0);
        w.WriteNumber("rap", sub.RetainAsPublished ? 1 : 0);
        w.WriteNumber("rh", (int)sub.RetainHandling);
        if (Topics.TryParseShared(sub.Filter, out var group, out _)) w.WriteString("share_group", group);
        w.WriteString("node", NodeName);
        w.WriteEndObject();
    }

    private async Task SubscribeAsync(HttpContext http, string clientId)
    {
        using var body = await Json.ReadAsync(http.Request, http.RequestAborted).ConfigureAwait(false);
        var o = Json.Object(body.RootElement);
        string topic = Json.String(o, "topic", required: true)!;
        var qos = (QoS)(Json.Integer(o, "qos", 0, 2) ?? 0);
        bool nl = (Json.Integer(o, "nl", 0, 1) ?? 0) == 1;
        bool rap = (Json.Integer(o, "rap", 0, 1) ?? 0) == 1;
        var rh = (RetainHandling)(Json.Integer(o, "rh", 0, 2) ?? 0);
        switch (_broker.SubscribeFor(clientId, topic, qos, nl, rap, rh))
        {
            case AdminSubscribeResult.NoSession: throw NoClient(clientId);
            case AdminSubscribeResult.InvalidFilter: throw ApiError.BadRequest($"'{topic}' is not a valid topic filter");
        }
        LogAction(http, $"client '{clientId}' subscribed to '{topic}'");
        await Json.WriteAsync(http, 200, w =>
        {
            w.WriteStartObject();
            w.WriteString("clientid", clientId);
            w.WriteString("topic", topic);
            w.WriteNumber("qos", (int)qos);
            w.WriteString("node", NodeName);
            w.WriteEndObject();
        }).ConfigureAwait(false);
    }

    private async Task UnsubscribeAsync(HttpContext http, string clientId)
    {
        using var body = await Json.ReadAsync(http.Request, http.RequestAborted).ConfigureAwait(false);
        string topic = Json.String(Json.Object(body.RootElement), "topic", required: true)!;
        if (_broker.GetClient(clientId) is null) throw NoClient(clientId);
        if (!_broker.UnsubscribeFor(clientId, topic)) throw ApiError.NotFound("NOT_FOUND", $"client '{clientId}' has no subscription to '{topic}'");
        LogAction(http, $"client '{clientId}' unsubscribed from '{topic}'");
        await NoContent(http).ConfigureAwait(false);
    }

    // ---- subscriptions and topics ----

    private Task SubscriptionsAsync(HttpContext http)
    {
        var paging = Paging.From(http.Request);
        var q = http.Request.Query;
        string? clientId = Filter(q, "clientid"), topic = Filter(q, "topic"), match = Filter(q, "match_topic"), group = Filter(q, "share_group");
        long? qos = Filter(q, "qos") is { } qosText ? (qosText is "0" or "1" or "2" ? qosText[0] - '0' : throw ApiError.BadRequest("'qos' must be 0, 1 or 2")) : null;
        var list = new List<(string ClientId, Subscription Sub)>();
        IEnumerable<ClientInfo> clients = clientId is null ? _broker.GetClients() : _broker.GetClient(clientId) is { } one ? [one] : [];
        foreach (var c in clients)
        {
            foreach (var sub in _broker.GetSubscriptions(c.ClientId) ?? [])
            {
                if (topic is not null && sub.Filter != topic) continue;
                if (qos is not null && (int)sub.QoS != qos) continue;
                if (match is not null && !Topics.Matches(sub.Filter, match)) continue;
                if (group is not null && !(Topics.TryParseShared(sub.Filter, out var g, out _) && g == group)) continue;
                list.Add((c.ClientId, sub));
            }
        }
        list.Sort((a, b) => a.ClientId == b.ClientId ? string.CompareOrdinal(a.Sub.Filter, b.Sub.Filter) : string.CompareOrdinal(a.ClientId, b.ClientId));
        return paging.WriteAsync(http, list, (w, e) => WriteSubscription(w, e.ClientId, e.Sub));
    }

    private Task TopicsAsync(HttpContext http)
    {
        var paging = Paging.From(http.Request);
        string? topic = Filter(http.Request.Query, "topic");
        var filters = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var c in _broker.GetClients())
        {
            foreach (var sub in _broker.GetSubscriptions(c.ClientId) ?? [])
            {
                // A route is the filter a message is matched against: a shared subscription's inner filter.
                string route = Topics.TryParseShared(sub.Filter, out _, out var inner) ? inner : sub.Filter;
                if (topic is null || route == topic) filters.Add(route);
            }
        }
        return paging.WriteAsync(http, filters.ToList(), static (w, f) =>
        {
            w.WriteStartObject();
            w.WriteString("topic", f);
            w.WriteString("node", NodeName);
            w.WriteEndObject();
        });
    }

    // ---- retained messages ----

    private Task RetainedListAsync(HttpContext http)
    {
        var paging = Paging.From(http.Request);
        string? filter = Filter(http.Request.Query, "topic");
        if (filter is not null && !Topics.IsValidTopicFilter(filter)) throw ApiError.BadRequest($"'{filter}' is not a valid topic filter");
        var list = _broker.GetRetained(filter);
        list.Sort((a, b) => string.CompareOrdinal(a.Topic, b.Topic));
        return paging.WriteAsync(http, list, (w, m) => WriteRetained(w, m, payload: false));
    }

    private Task RetainedGetAsync(HttpContext http, string topic)
    {
        var message = _broker.GetRetainedMessage(topic) ?? throw ApiError.NotFound("NOT_FOUND", $"no retained message on '{topic}'");
        return Json.WriteAsync(http, 200, w => WriteRetained(w, message, payload: true));
    }

    private Task RetainedDeleteAsync(HttpContext http, string topic)
    {
        if (!_broker.ClearRetained(topic)) throw ApiError.NotFound("NOT_FOUND", $"no retained message on '{topic}'");
        LogAction(http, $"retained message on '{topic}' deleted");
        return NoContent(http);
    }

    private Task RetainedClearAsync(HttpContext http)
    {
        string? filter = Filter(http.Request.Query, "topic");
        if (filter is not null && !Topics.IsValidTopicFilter(filter)) throw ApiError.BadRequest($"'{filter}' is not a valid topic filter");
        int n = 0;
        foreach (var message in _broker.GetRetained(filter ?? "#"))
        {
            if (_broker.ClearRetained(message.Topic)) n++;
        }
        LogAction(http, $"{n} retained messages deleted ({filter ?? "#"})");
        return NoContent(http);
    }

    private void WriteRetained(Utf8JsonWriter w, Message m, bool payload)
    {
        w.WriteStartObject();
        w.WriteString("topic", m.Topic);
        w.WriteNumber("qos", (int)m.QoS);
        w.WriteString("from_clientid", m.OriginClientId);
        w.WriteString("from_username", m.OriginUserName);
        w.WriteNumber("payload_size", m.PayloadLength);
        if (m.ExpiresAtMs != 0) w.WriteString("expires_at", Json.Time(_broker.UtcNow.AddMilliseconds(m.ExpiresAtMs - _broker.NowMs)));
        if (payload) w.WriteBase64String("payload", m.Payload.Span);
        if (payload && m.Properties is { } p)
        {
            w.WriteStartObject("properties");
            if (p.PayloadFormatIndicator is { } pfi) w.WriteNumber("payload_format_indicator", pfi);
            if (p.ContentType is { } ct) w.WriteString("content_type", ct);
            if (p.ResponseTopic is { } rt) w.WriteString("response_topic", rt);
            if (p.CorrelationData is { } cd) w.WriteBase64String("correlation_data", cd.Span);
            if (!p.UserProperties.IsDefaultOrEmpty)
            {
                w.WriteStartObject("user_properties");
                foreach (var up in p.UserProperties) w.WriteString(up.Name, up.Value);
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        w.WriteEndObject();
    }

    // ---- bans ----

    private Task BannedAsync(HttpContext http)
    {
        var paging = Paging.From(http.Request);
        return paging.WriteAsync(http, _broker.Bans.All(), WriteBan);
    }

    private static void WriteBan(Utf8JsonWriter w, Ban ban)
    {
        w.WriteStartObject();
        w.WriteString("as", ban.AsName);
        w.WriteString("who", ban.Who);
        w.WriteString("by", ban.By);
        w.WriteString("reason", ban.Reason);
        w.WriteString("at", Json.Time(ban.At));
        w.WriteString("until", ban.Until is { } until ? Json.Time(until) : "infinity");
        w.WriteEndObject();
    }

    private async Task BanAsync(HttpContext http)
    {
        using var body = await Json.ReadAsync(http.Request, http.RequestAborted).ConfigureAwait(false);
        var o = Json.Object(body.RootElement);
        if (!Ban.TryParseKind(Json.String(o, "as", required: true), out var kind)) throw ApiError.BadRequest("'as' must be clientid, username or peerhost");
        string who = Json.String(o, "who", required: true)!;
        if (who.Length is 0 or > 65535) throw ApiError.BadRequest("'who' must not be empty");
        if (kind == BanKind.PeerHost && !System.Net.IPAddress.TryParse(who, out _)) throw ApiError.BadRequest($"'{who}' is not an IP address");
        var now = _broker.UtcNow;
        var at = Time(o, "at") ?? now;
        DateTimeOffset? until = Json.String(o, "until") is "infinity" ? null : Time(o, "until");
        if (until is { } u && u <= now) throw ApiError.BadRequest("'until' is in the past");
        if (_broker.Bans.Get(kind, who) is { } existing && (existing.Until is not { } end || end > now))
        {
            throw new ApiError(409, "ALREADY_EXISTS", $"{existing.AsName} '{existing.Who}' is banned already");
        }
        var ban = new Ban(kind, who, Json.String(o, "by") ?? "http_api", Json.String(o, "reason") ?? "", at, until);
        if (!_broker.AddBan(ban)) throw ApiError.BadRequest($"the ban list is full ({BanList.MaxBans})");
        LogAction(http, $"{ban.AsName} '{ban.Who}' banned");
        await Json.WriteAsync(http, 200, w => WriteBan(w, _broker.Bans.Get(kind, who) ?? ban)).ConfigureAwait(false);
    }

    private static DateTimeOffset? Time(JsonElement o, string name)
    {
        if (Json.String(o, name) is not { } text) return null;
        return DateTimeOffset.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var t)
            ? t
            : throw ApiError.BadRequest($"'{name}' must be an RFC 3339 time (or \"infinity\" for until)");
    }

    private Task UnbanAsync(HttpContext http, string kindText, string who)
    {
        if (!Ban.TryParseKind(kindText, out var kind)) throw ApiError.BadRequest("the kind must be clientid, username or peerhost");
        if (!_broker.RemoveBan(kind, who)) throw ApiError.NotFound("NOT_FOUND", $"{kindText} '{who}' is not banned");
        LogAction(http, $"{kindText} '{who}' unbanned");
        return NoContent(http);
    }

    // ---- stats, metrics, listeners, nodes, reload ----

    private static bool Aggregate(HttpContext http) => http.Request.Query["aggregate"].ToString() == "true";

    private Task StatsAsync(HttpContext http) => PerNode(http, w =>
    {
        var stats = _broker.Stats;
        w.WriteNumber("connections.count", _broker.ConnectedCount);
        w.WriteNumber("connections.max", stats.ClientsMaximum);
        w.WriteNumber("live_connections.count", _broker.ConnectedCount);
        w.WriteNumber("live_connections.max", stats.ClientsMaximum);
        w.WriteNumber("sessions.count", _broker.SessionCount);
        w.WriteNumber("subscriptions.count", _broker.SubscriptionCount);
        w.WriteNumber("retained.count", _broker.RetainedCount);
        w.WriteNumber("banned.count", _broker.Bans.Count);
        w.WriteNumber("held.bytes", _broker.HeldBytes);
    });

    private Task MetricsAsync(HttpContext http) => PerNode(http, w =>
    {
        var stats = _broker.Stats;
        w.WriteNumber("packets.received", stats.MessagesReceived);
        w.WriteNumber("packets.sent", stats.MessagesSent);
        w.WriteNumber("messages.received", stats.PublishReceived);
        w.WriteNumber("messages.sent", stats.PublishSent);
        w.WriteNumber("messages.dropped", stats.PublishDropped);
        w.WriteNumber("bytes.received", stats.BytesReceived);
        w.WriteNumber("bytes.sent", stats.BytesSent);
        w.WriteNumber("client.connected", stats.ConnectsTotal);
        w.WriteNumber("client.auth.failure", stats.AuthenticationFailures);
        w.WriteNumber("session.expired", stats.ClientsExpired);
    });

    /// <summary>The bridges (<c>connection</c> blocks) with their state and counters, as <c>$SYS/broker/bridges/</c> has them.</summary>
    private Task BridgesAsync(HttpContext http)
    {
        var bridges = _broker.Bridges?.Snapshot() ?? [];
        return Json.WriteAsync(http, 200, w =>
        {
            w.WriteStartArray();
            foreach (var b in bridges)
            {
                w.WriteStartObject();
                w.WriteString("name", b.Name);
                w.WriteString("status", b.Connected ? "connected" : "disconnected");
                w.WriteStartObject("metrics");
                w.WriteNumber("messages.sent", b.MessagesSent);
                w.WriteNumber("messages.received", b.MessagesReceived);
                w.WriteNumber("messages.dropped", b.MessagesDropped);
                w.WriteNumber("messages.queued", b.MessagesQueued);
                w.WriteNumber("reconnects", b.Reconnects);
                w.WriteEndObject();
                w.WriteEndObject();
            }
            w.WriteEndArray();
        });
    }

    /// <summary>EMQX's shape: one object per node in an array, or the sums as one object with <c>?aggregate=true</c>.</summary>
    private static Task PerNode(HttpContext http, Action<Utf8JsonWriter> fields)
    {
        bool aggregate = Aggregate(http);
        return Json.WriteAsync(http, 200, w =>
        {
            if (!aggregate) w.WriteStartArray();
            w.WriteStartObject();
            if (!aggregate) w.WriteString("node", NodeName);
            fields(w);
            w.WriteEndObject();
            if (!aggregate) w.WriteEndArray();
        });
    }

    private Task ListenersAsync(HttpContext http)
    {
        var counts = _broker.ConnectionsByListener();
        var listeners = MqttListeners.Effective(_broker.Config);
        return Json.WriteAsync(http, 200, w =>
        {
            w.WriteStartArray();
            foreach (var l in listeners)
            {
                string id = Broker.ListenerName(l);
                w.WriteStartObject();
                w.WriteString("id", id);
                w.WriteString("type", id[..id.IndexOf(':', StringComparison.Ordinal)]);
                w.WriteString("bind", l.UnixSocketPath ?? $"{l.BindAddress ?? (l.BindInterface is { } i ? "%" + i : "0.0.0.0")}:{l.Port}");
                w.WriteBoolean("running", true);
                w.WriteBoolean("enable", true);
                w.WriteNumber("current_connections", counts.GetValueOrDefault(id));
                if (l.MaxConnections < 0) w.WriteString("max_connections", "infinity");
                else w.WriteNumber("max_connections", l.MaxConnections);
                if (l.MountPoint is { } mount) w.WriteString("mountpoint", mount);
                w.WriteString("node", NodeName);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        });
    }

    /// <summary>This node, EMQX's fields; in a cluster (docs/cluster.md) every node this one knows of, the others with
    /// what their heartbeats say (<c>node_status</c> <c>stopped</c> when one has been silent for 5 s). A cluster
    /// node is named <c>midge@</c> and its <c>cluster_node_name</c>.</summary>
    private Task NodesAsync(HttpContext http, string? node)
    {
        var cluster = _broker.Cluster?.Nodes() ?? [];
        string self = cluster.FirstOrDefault(n => n.IsSelf) is { } me ? "midge@" + me.Name : NodeName;
        var gc = GC.GetGCMemoryInfo();
        void WriteSelf(Utf8JsonWriter w)
        {
            w.WriteStartObject();
            w.WriteString("node", self);
            w.WriteString("node_status", "running");
            w.WriteString("version", _settings.Version);
            w.WriteString("edition", "Midge");
            w.WriteString("role", "core");
            w.WriteNumber("uptime", _broker.NowMs - _broker.StartedAtMs);
            w.WriteNumber("connections", _broker.ConnectedCount);
            w.WriteNumber("live_connections", _broker.ConnectedCount);
            w.WriteNumber("memory_used", Environment.WorkingSet);
            w.WriteNumber("memory_total", gc.TotalAvailableMemoryBytes);
            w.WriteNumber("heap_size", GC.GetTotalMemory(false));
            w.WriteNumber("process_id", Environment.ProcessId);
            w.WriteNumber("cpus", Environment.ProcessorCount);
            w.WriteString("sys_path", AppContext.BaseDirectory);
            if (cluster.FirstOrDefault(n => n.IsSelf) is { } status) WriteCluster(w, status);
            w.WriteEndObject();
        }
        static void WritePeer(Utf8JsonWriter w, ClusterNodeStatus n)
        {
            w.WriteStartObject();
            w.WriteString("node", "midge@" + n.Name);
            w.WriteString("node_status", n.Running ? "running" : "stopped");
            w.WriteString("edition", "Midge");
            w.WriteString("role", "core");
            w.WriteNumber("connections", n.Connections);
            w.WriteNumber("live_connections", n.Connections);
            WriteCluster(w, n);
            w.WriteEndObject();
        }
        static void WriteCluster(Utf8JsonWriter w, ClusterNodeStatus n)
        {
            w.WriteStartObject("cluster");
            w.WriteBoolean("connected", n.Running);
            w.WriteNumber("sessions", n.Sessions);
            w.WriteNumber("messages.sent", n.MessagesSent);
            w.WriteNumber("messages.received", n.MessagesReceived);
            w.WriteNumber("messages.dropped", n.MessagesDropped);
            w.WriteString("last_seen", n.LastSeen);
            w.WriteEndObject();
        }
        if (node is not null && node != self && !cluster.Any(n => "midge@" + n.Name == node))
        {
            throw ApiError.NotFound("NOT_FOUND", $"no node '{node}'");
        }
        return Json.WriteAsync(http, 200, w =>
        {
            if (node is not null)
            {
                if (node == self) WriteSelf(w);
                else WritePeer(w, cluster.First(n => "midge@" + n.Name == node));
                return;
            }
            w.WriteStartArray();
            WriteSelf(w);
            foreach (var peer in cluster.Where(n => !n.IsSelf)) WritePeer(w, peer);
            w.WriteEndArray();
        });
    }

    private Task ReloadAsync(HttpContext http)
    {
        if (_settings.Reload is not { } reload) throw new ApiError(501, "NOT_IMPLEMENTED", "this broker has no configuration file to reload");
        if (reload() is { } error) throw new ApiError(400, "BAD_CONFIG", error);
        LogAction(http, "configuration reloaded");
        return NoContent(http);
    }

    private Task PrometheusAsync(HttpContext http)
    {
        var text = PrometheusText.Write(_settings.Metrics);
        http.Response.StatusCode = 200;
        http.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
        http.Response.ContentLength = text.Length;
        return http.Response.Body.WriteAsync(text, http.RequestAborted).AsTask();
    }
}
