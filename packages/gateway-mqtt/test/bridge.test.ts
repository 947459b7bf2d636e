// The bridge against the real Mosquitto broker; the XMPP side is a loopback that records what the
// gateway sends (the same stanzas go through a real server in e2e.test.ts).
import assert from 'node:assert/strict';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseJid } from '@natter/jid';
import type { MqttClient } from 'mqtt';
import { parseConfig, type GatewayConfig } from '../src/config.js';
import { MqttGateway, NS_MQTT } from '../src/gateway.js';
import { topicToLocal } from '../src/topic-address.js';
import { connectBroker, subscriber, uniquePrefix } from './support/broker.js';
import { LoopbackComponent, stanza } from './support/loopback-component.js';

const DOMAIN = 'mqtt.localhost';
const ALICE = 'alice@localhost';
const BOB = 'bob@localhost';
const prefix = uniquePrefix();
const clients: MqttClient[] = [];
let publisher: MqttClient;
let dir: string;

function addr(topic: string, nick?: string): string {
  return `${topicToLocal(topic)}@${DOMAIN}${nick === undefined ? '' : `/${nick}`}`;
}

function configFor(name: string, extra: Record<string, unknown> = {}): GatewayConfig {
  return parseConfig({
    component: { domain: DOMAIN, secret: 'unused' },
    dataFile: join(dir, `${name}.json`),
    topicPrefixes: [`${prefix}/`],
    ...extra,
  });
}

async function startGateway(config: GatewayConfig): Promise<{ gw: MqttGateway; xmpp: LoopbackComponent }> {
  const mqtt = await connectBroker();
  clients.push(mqtt);
  const xmpp = new LoopbackComponent();
  const gw = new MqttGateway({ config, component: xmpp, mqtt });
  await gw.start();
  xmpp.online();
  return { gw, xmpp };
}

async function follow(xmpp: LoopbackComponent, user: string, topic: string): Promise<void> {
  xmpp.deliver(`<presence from='${user}' to='${addr(topic)}' type='subscribe'/>`);
  await xmpp.receive(stanza('presence', { from: addr(topic), to: user, type: 'subscribed' }));
  await xmpp.receive(stanza('presence', { from: addr(topic), to: user, type: undefined }));
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'natter-mqtt-'));
  publisher = await connectBroker();
  clients.push(publisher);
});

after(async () => {
  await Promise.all(clients.map((c) => c.endAsync()));
});

describe('roster contacts', () => {
  test('following a topic as a contact: approved, available, and its messages arrive as chat', async () => {
    const { xmpp } = await startGateway(configFor('contacts'));
    const topic = `${prefix}/kitchen/temp`;
    await follow(xmpp, ALICE, topic);
    await publisher.publishAsync(topic, '21.5', { qos: 1 });
    const msg = await xmpp.receive(stanza('message', { from: addr(topic), to: ALICE, type: 'chat' }));
    assert.equal(msg.getChildText('body'), '21.5');
    assert.equal(msg.getChild('mqtt', NS_MQTT)?.attr('topic'), topic);
  });

  test('a message to the contact is published on the topic with QoS 1', async () => {
    const { xmpp } = await startGateway(configFor('publish'));
    const topic = `${prefix}/lights/hall`;
    const sub = await subscriber(topic);
    clients.push(sub.client);
    xmpp.deliver(
      `<message from='${ALICE}/phone' to='${addr(topic)}' type='chat' id='m1'><body>on</body></message>`,
    );
    assert.deepEqual(await sub.next(), { topic, payload: 'on' });
  });

  test('a wildcard contact gets every matching topic, the topic named in the body', async () => {
    const { xmpp } = await startGateway(configFor('wildcard'));
    const filter = `${prefix}/wild/+/temp`;
    await follow(xmpp, BOB, filter);
    await publisher.publishAsync(`${prefix}/wild/cellar/temp`, '12', { qos: 1 });
    const msg = await xmpp.receive(stanza('message', { from: addr(filter), to: BOB }));
    assert.equal(msg.getChildText('body'), `${prefix}/wild/cellar/temp: 12`);
  });

  test('unsubscribing stops the messages; a probe then gets unsubscribed', async () => {
    const { gw, xmpp } = await startGateway(configFor('unfollow'));
    const topic = `${prefix}/unfollow`;
    await follow(xmpp, ALICE, topic);
    xmpp.deliver(`<presence from='${ALICE}' to='${addr(topic)}' type='unsubscribe'/>`);
    await xmpp.receive(stanza('presence', { from: addr(topic), to: ALICE, type: 'unavailable' }));
    assert.deepEqual(gw.subscriptionsOf(parseJid(ALICE)), []);
    xmpp.deliver(`<presence from='${ALICE}/pc' to='${addr(topic)}' type='probe'/>`);
    await xmpp.receive(stanza('presence', { from: addr(topic), to: `${ALICE}/pc`, type: 'unsubscribed' }));
    // Ordered after the first on the same topic from the same publisher (MQTT §4.6):
    // when "second" is not forwarded either, neither was "first".
    await publisher.publishAsync(topic, 'first', { qos: 1 });
    await follow(xmpp, BOB, topic);
    await publisher.publishAsync(topic, 'second', { qos: 1 });
    const msg = await xmpp.receive(stanza('message', { from: addr(topic), to: BOB }));
    assert.equal(msg.getChildText('body'), 'second');
    assert.ok(!xmpp.sent.some((el) => el.name === 'message' && el.attr('to') === ALICE));
  });
});

describe('rooms', () => {
  test('joining a topic room: presence, subject, publications as groupchat, own messages reflected', async () => {
    const { gw, xmpp } = await startGateway(configFor('rooms'));
    const topic = `${prefix}/room/a`;
    const room = addr(topic);
    xmpp.deliver(
      `<presence from='${ALICE}/pc' to='${room}/alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>`,
    );
    const self = await xmpp.receive(stanza('presence', { from: `${room}/alice`, to: `${ALICE}/pc` }));
    assert.ok(
      self.getChild('x', 'http://jabber.org/protocol/muc#user')?.getChild('status')?.attr('code') === '110',
    );
    await xmpp.receive(
      (el) => el.name === 'message' && el.attr('to') === `${ALICE}/pc` && !!el.getChild('subject'),
    );

    xmpp.deliver(
      `<presence from='${BOB}/m' to='${room}/bob'><x xmlns='http://jabber.org/protocol/muc'/></presence>`,
    );
    await xmpp.receive(stanza('presence', { from: `${room}/alice`, to: `${BOB}/m` }));
    await xmpp.receive(stanza('presence', { from: `${room}/bob`, to: `${ALICE}/pc` }));
    await xmpp.receive(stanza('presence', { from: `${room}/bob`, to: `${BOB}/m` }));

    await publisher.publishAsync(topic, 'hello room', { qos: 1 });
    for (const to of [`${ALICE}/pc`, `${BOB}/m`]) {
      const m = await xmpp.receive(stanza('message', { to, type: 'groupchat', from: `${room}/${topic}` }));
      assert.equal(m.getChildText('body'), 'hello room');
    }

    const sub = await subscriber(topic);
    clients.push(sub.client);
    xmpp.deliver(
      `<message from='${BOB}/m' to='${room}' type='groupchat' id='g1'><body>from bob</body></message>`,
    );
    assert.deepEqual(await sub.next(), { topic, payload: 'from bob' });
    for (const to of [`${ALICE}/pc`, `${BOB}/m`]) {
      const m = await xmpp.receive(stanza('message', { to, type: 'groupchat', from: `${room}/bob` }));
      assert.equal(m.attr('id'), 'g1');
      assert.equal(m.getChildText('body'), 'from bob');
    }

    xmpp.deliver(`<presence from='${BOB}/m' to='${room}/bob' type='unavailable'/>`);
    await xmpp.receive(stanza('presence', { from: `${room}/bob`, to: `${BOB}/m`, type: 'unavailable' }));
    await xmpp.receive(stanza('presence', { from: `${room}/bob`, to: `${ALICE}/pc`, type: 'unavailable' }));
    assert.deepEqual(gw.subscriptionsOf(parseJid(BOB)), []);
    assert.deepEqual(gw.subscriptionsOf(parseJid(ALICE)), [topic]);
  });

  test('a groupchat message from a non-occupant is refused; a taken nick is a conflict', async () => {
    const { xmpp } = await startGateway(configFor('room-errors'));
    const room = addr(`${prefix}/room/b`);
    xmpp.deliver(`<message from='${BOB}/m' to='${room}' type='groupchat'><body>x</body></message>`);
    const err = await xmpp.receive(stanza('message', { to: `${BOB}/m`, type: 'error' }));
    assert.ok(err.getChild('error')?.getChild('not-acceptable', 'urn:ietf:params:xml:ns:xmpp-stanzas'));
    xmpp.deliver(`<presence from='${ALICE}/pc' to='${room}/nick'/>`);
    await xmpp.receive(stanza('presence', { from: `${room}/nick`, to: `${ALICE}/pc` }));
    xmpp.deliver(`<presence from='${BOB}/m' to='${room}/nick'/>`);
    const conflict = await xmpp.receive(stanza('presence', { to: `${BOB}/m`, type: 'error' }));
    assert.ok(conflict.getChild('error')?.getChild('conflict', 'urn:ietf:params:xml:ns:xmpp-stanzas'));
  });

  test('XEP-0045 ghosts: a bounced groupchat message removes the occupant', async () => {
    const { gw, xmpp } = await startGateway(configFor('ghosts'));
    const topic = `${prefix}/room/ghost`;
    xmpp.deliver(`<presence from='${ALICE}/gone' to='${addr(topic)}/a'/>`);
    await xmpp.receive(stanza('presence', { from: `${addr(topic)}/a`, to: `${ALICE}/gone` }));
    xmpp.deliver(`<message from='${ALICE}/gone' to='${addr(topic)}/${topic}' type='error'/>`);
    await waitFor(() => gw.subscriptionsOf(parseJid(ALICE)).length === 0);
  });
});

describe('persistence', () => {
  test('subscriptions survive a restart: renewed at the broker, presence sent again', async () => {
    const config = configFor('restart');
    const topic = `${prefix}/persist`;
    const first = await startGateway(config);
    await follow(first.xmpp, ALICE, topic);
    first.xmpp.deliver(`<presence from='${BOB}/m' to='${addr(topic)}/bob'/>`);
    await first.xmpp.receive(stanza('presence', { from: `${addr(topic)}/bob`, to: `${BOB}/m` }));
    await first.gw.stop();
    const saved = JSON.parse(await readFile(config.dataFile, 'utf8')) as { contacts: object; rooms: object };
    assert.deepEqual(saved.contacts, { [ALICE]: [topic] });
    assert.deepEqual(saved.rooms, { [topic]: { [`${BOB}/m`]: 'bob' } });

    const second = await startGateway(config);
    await second.xmpp.receive(stanza('presence', { from: addr(topic), to: ALICE, type: undefined }));
    await publisher.publishAsync(topic, 'after restart', { qos: 1 });
    const chat = await second.xmpp.receive(stanza('message', { to: ALICE, type: 'chat' }));
    assert.equal(chat.getChildText('body'), 'after restart');
    const group = await second.xmpp.receive(stanza('message', { to: `${BOB}/m`, type: 'groupchat' }));
    assert.equal(group.getChildText('body'), 'after restart');
  });
});

describe('authorization and limits', () => {
  test('a topic outside the allowed prefixes is refused with forbidden, and the subscription denied', async () => {
    const { xmpp } = await startGateway(configFor('refused'));
    const topic = 'elsewhere/secret';
    xmpp.deliver(`<presence from='${ALICE}' to='${addr(topic)}' type='subscribe'/>`);
    const err = await xmpp.receive(stanza('presence', { from: addr(topic), to: ALICE, type: 'error' }));
    assert.ok(err.getChild('error')?.getChild('forbidden', 'urn:ietf:params:xml:ns:xmpp-stanzas'));
    await xmpp.receive(stanza('presence', { from: addr(topic), to: ALICE, type: 'unsubscribed' }));
    xmpp.deliver(`<message from='${ALICE}/pc' to='${addr(topic)}'><body>x</body></message>`);
    const merr = await xmpp.receive(stanza('message', { to: `${ALICE}/pc`, type: 'error' }));
    assert.ok(merr.getChild('error')?.getChild('forbidden', 'urn:ietf:params:xml:ns:xmpp-stanzas'));
    xmpp.deliver(`<presence from='${ALICE}/pc' to='${addr('#')}/a'/>`);
    const perr = await xmpp.receive(stanza('presence', { to: `${ALICE}/pc`, type: 'error' }));
    assert.ok(perr.getChild('error')?.getChild('forbidden', 'urn:ietf:params:xml:ns:xmpp-stanzas'));
  });

  test('users outside allowedUsers are refused', async () => {
    const { xmpp } = await startGateway(configFor('users', { allowedUsers: ['localhost'] }));
    const topic = `${prefix}/users`;
    xmpp.deliver(`<presence from='mallory@evil.example' to='${addr(topic)}' type='subscribe'/>`);
    const err = await xmpp.receive(stanza('presence', { to: 'mallory@evil.example', type: 'error' }));
    assert.ok(err.getChild('error')?.getChild('forbidden', 'urn:ietf:params:xml:ns:xmpp-stanzas'));
    await follow(xmpp, ALICE, topic);
  });

  test('limits: topics per user, payload size, publish rate', async () => {
    const { xmpp } = await startGateway(
      configFor('limits', {
        limits: { maxSubscriptionsPerUser: 1, maxPayloadBytes: 8, publishRate: { burst: 2, perSecond: 0 } },
      }),
    );
    await follow(xmpp, ALICE, `${prefix}/l/1`);
    xmpp.deliver(`<presence from='${ALICE}' to='${addr(`${prefix}/l/2`)}' type='subscribe'/>`);
    const full = await xmpp.receive(stanza('presence', { to: ALICE, type: 'error' }));
    assert.ok(full.getChild('error')?.getChild('policy-violation', 'urn:ietf:params:xml:ns:xmpp-stanzas'));

    const to = addr(`${prefix}/l/1`);
    xmpp.deliver(`<message from='${BOB}/m' to='${to}' id='big'><body>123456789</body></message>`);
    const big = await xmpp.receive(stanza('message', { to: `${BOB}/m`, id: 'big', type: 'error' }));
    assert.match(
      big.getChild('error')?.getChildText('text', 'urn:ietf:params:xml:ns:xmpp-stanzas') ?? '',
      /8 bytes/,
    );

    for (const id of ['r1', 'r2', 'r3']) {
      xmpp.deliver(`<message from='${BOB}/m' to='${to}' id='${id}'><body>${id}</body></message>`);
    }
    const rate = await xmpp.receive(stanza('message', { to: `${BOB}/m`, type: 'error' }));
    assert.equal(rate.attr('id'), 'r3');
    assert.equal(rate.getChild('error')?.attr('type'), 'wait');

    // Oversized payloads from the broker are not forwarded (same publisher, same topic: ordered).
    await publisher.publishAsync(`${prefix}/l/1`, 'far too long for the limit', { qos: 1 });
    await publisher.publishAsync(`${prefix}/l/1`, 'short', { qos: 1 });
    // Alice also gets Bob's r1 and r2 (she follows the topic); whatever came before 'short' is checked.
    const bodies: (string | undefined)[] = [];
    while (bodies.at(-1) !== 'short') {
      bodies.push((await xmpp.receive(stanza('message', { to: ALICE, type: 'chat' }))).getChildText('body'));
    }
    assert.ok(!bodies.includes('far too long for the limit'), bodies.join(', '));
  });

  test('binary payloads arrive in base64 with a note, or are skipped', async () => {
    const b64 = await startGateway(configFor('binary'));
    const topic = `${prefix}/bin`;
    await follow(b64.xmpp, ALICE, topic);
    await publisher.publishAsync(topic, Buffer.from([0xde, 0xad, 0xbe, 0xef]), { qos: 1 });
    const msg = await b64.xmpp.receive(stanza('message', { to: ALICE }));
    assert.equal(msg.getChildText('body'), '[binary payload, 4 bytes, base64] 3q2+7w==');

    const skip = await startGateway(configFor('skip', { binaryPayloads: 'skip' }));
    const topic2 = `${prefix}/bin2`;
    await follow(skip.xmpp, ALICE, topic2);
    await publisher.publishAsync(topic2, Buffer.from([0xff]), { qos: 1 });
    await publisher.publishAsync(topic2, 'text', { qos: 1 });
    const next = await skip.xmpp.receive(stanza('message', { to: ALICE }));
    assert.equal(next.getChildText('body'), 'text');
  });
});

async function waitFor(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
