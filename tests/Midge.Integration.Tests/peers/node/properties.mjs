// Request/response, Response Information, payload format, content type, user properties and payload
// validation with MQTT.js. argv: port scenario
import { args, close, open, publish, report, run, sleep, subscribe, unique, until } from './common.mjs';

const scenarios = {
  // The requester asks for Response Information, sends a request with Response Topic and Correlation Data;
  // the responder answers on that topic with the same Correlation Data.
  async 'request-response'() {
    const requesterId = unique('js-requester');
    const requester = await open(requesterId, { properties: { requestResponseInformation: true } });
    const plain = await open(unique('js-noinfo'));
    const responseTopic = `${requester.connack.properties?.responseInformation ?? 'missing'}/answers`;
    const requestTopic = unique('js/requests');
    await subscribe(requester, responseTopic, { qos: 1 });
    const responder = await open(unique('js-responder'));
    await subscribe(responder, requestTopic, { qos: 1 });
    responder.client.on('message', (topic, payload, packet) => {
      const p = packet.properties ?? {};
      if (!p.responseTopic) return;
      responder.client.publish(p.responseTopic, `answer to ${payload}`, { qos: 1, properties: { correlationData: p.correlationData } });
    });
    await publish(requester, requestTopic, 'question', {
      qos: 1,
      properties: { responseTopic, correlationData: Buffer.from('corr-7') },
    });
    await until(() => requester.messages.length >= 1, 3000);
    const request = responder.messages[0] ?? { properties: {} };
    const reply = requester.messages[0] ?? { properties: {} };
    const result = {
      requester_id: requesterId,
      response_information: requester.connack.properties?.responseInformation ?? null,
      unrequested_response_information: plain.connack.properties?.responseInformation ?? null,
      request_response_topic: request.properties.responseTopic ?? null,
      request_correlation: request.properties.correlationData?.toString() ?? null,
      reply_payload: reply.payload ?? null,
      reply_correlation: reply.properties.correlationData?.toString() ?? null,
    };
    await close(requester, plain, responder);
    report(result);
  },

  // Payload Format Indicator, Content Type and user properties reach the subscriber; with
  // validate_payload_format true, invalid UTF-8 marked as UTF-8 gets PUBACK 0x99 and goes nowhere.
  async 'payload-format'() {
    const topic = unique('js/format');
    const sub = await open(unique('js-sub'));
    await subscribe(sub, topic, { qos: 1 });
    const pub = await open(unique('js-pub'));
    const good = await publish(pub, topic, 'héllo', {
      qos: 1,
      properties: { payloadFormatIndicator: true, contentType: 'text/plain; charset=utf-8', userProperties: { a: '1', b: ['x', 'y'] } },
    });
    const bad = await publish(pub, topic, Buffer.from([0xc3, 0x28]), { qos: 1, properties: { payloadFormatIndicator: true } });
    const binary = await publish(pub, topic, Buffer.from([0xc3, 0x28]), { qos: 1, properties: { payloadFormatIndicator: false } });
    await until(() => sub.messages.length >= 2, 2000);
    await sleep(200);
    const first = sub.messages[0] ?? { properties: {} };
    const result = {
      good,
      bad,
      binary,
      received: sub.messages.length,
      payload: first.payload ?? null,
      payload_format: first.properties.payloadFormatIndicator ?? null,
      content_type: first.properties.contentType ?? null,
      user_properties: first.properties.userProperties ?? null,
    };
    await close(sub, pub);
    report(result);
  },
};

run(() => scenarios[args[0]]());
