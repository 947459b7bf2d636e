// The gateway end to end: a real XMPP server (Natter and Prosody; the main flows also on ejabberd) with the
// gateway on its component port, real user clients (@natter/client), the real Mosquitto broker.
import assert from 'node:assert/strict';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { xml } from '@natter/client';
import { parseJid, type Jid } from '@natter/component';
import type { MqttClient } from 'mqtt';
import { parseConfig, type GatewayConfig } from '../src/config.js';
import { NS_MQTT } from '../src/gateway.js';
import { startGateway, type RunningGateway } from '../src/run.js';
import { topicToLocal } from '../src/topic-address.js';
import { BROKER_URL, connectBroker, subscriber, uniquePrefix } from './support/broker.js';
import { startRelay } from '../../../test/support/tcp-relay.js';
import {
  GATEWAY_DOMAIN,
  GATEWAY_SECRET,
  errorCondition,
  is,
  servers,
  type Server,
  type User,
} from './support/xmpp.js';

const MUC = 'http://jabber.org/protocol/muc';
const brokerPort = Number(new URL(BROKER_URL).port || 1883);
const MUC_USER = 'http://jabber.org/protocol/muc#user';

function addr(topic: string, nick?: string): string {
  return `${topicToLocal(topic)}@${GATEWAY_DOMAIN}${nick === undefined ? '' : `/${nick}`}`;
}

async function waitFor(cond: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * The gateway's behaviour through one server (one test file per server, each within the runner's
 * per-file time): every behaviour on Natter and Prosody, the flows of issue 11 part 4 on ejabberd.
 */
export function gatewaySuite(serverName: 'natter' | 'prosody' | 'ejabberd'): void {
  const factory = servers.find((s) => s.name === serverName)!;
  const everything = factory.name !== 'ejabberd';
  describe(`the MQTT gateway through ${factory.name}`, () => {
    const prefix = uniquePrefix();
    let server: Server;
    let dir: string;
    let publisher: MqttClient;
    let gateways: RunningGateway[] = [];
    let users: User[] = [];
    const mqttClients: MqttClient[] = [];

    before(async () => {
      server = await factory.start();
      dir = await mkdtemp(join(tmpdir(), 'natter-mqtt-'));
      publisher = await connectBroker();
      mqttClients.push(publisher);
    });
    after(async () => {
      await Promise.all(mqttClients.map((c) => c.endAsync()));
      await server?.stop();
    });
    afterEach(async () => {
      const gs = gateways;
      const us = users;
      gateways = [];
      users = [];
      await Promise.all([
        ...gs.map((g) => g.stop()),
        ...us.map((u) => u.client.disconnect().catch(() => {})),
      ]);
    });

    function config(name: string, extra: Record<string, unknown> = {}): GatewayConfig {
      return parseConfig({
        component: { service: server.componentService, domain: GATEWAY_DOMAIN, secret: GATEWAY_SECRET },
        dataFile: join(dir, `${name}.json`),
        topicPrefixes: [`${prefix}/`],
        ...extra,
      });
    }

    async function gateway(cfg: GatewayConfig): Promise<RunningGateway> {
      const g = await startGateway(cfg, { reconnect: false });
      gateways.push(g);
      return g;
    }

    async function stopGateway(g: RunningGateway): Promise<void> {
      gateways = gateways.filter((x) => x !== g);
      await g.stop();
    }

    async function user(): Promise<User> {
      const u = await server.user();
      users.push(u);
      return u;
    }

    async function follow(u: User, topic: string): Promise<void> {
      await u.client.send(xml('presence', { to: addr(topic), type: 'subscribe' }));
      // The server turns `subscribed` into a roster push (Prosody does not forward it); then the
      // contact's available presence arrives.
      await u.receive(is('presence', { from: addr(topic), type: undefined }));
    }

    async function joinRoom(u: User, topic: string, nick: string): Promise<void> {
      await u.client.send(xml('presence', { to: addr(topic, nick) }, xml('x', { xmlns: MUC })));
      const self = await u.receive(is('presence', { from: addr(topic, nick), type: undefined }));
      assert.equal(self.getChild('x', MUC_USER)?.getChild('status')?.attr('code'), '110');
      await u.receive(
        (el) => el.name === 'message' && el.attr('from') === addr(topic) && !!el.getChild('subject'),
      );
    }

    test('adding a topic as a contact: approved, shown available; its messages arrive as chat', async () => {
      const g = await gateway(config('contact'));
      const alice = await user();
      const topic = `${prefix}/kitchen/temp`;
      await follow(alice, topic);
      assert.deepEqual(g.gateway.subscriptionsOf(jidOf(alice)), [topic]);
      await publisher.publishAsync(topic, '21.5', { qos: 1 });
      const msg = await alice.receive(is('message', { from: addr(topic), type: 'chat' }));
      assert.equal(msg.getChildText('body'), '21.5');
      assert.equal(msg.getChild('mqtt', NS_MQTT)?.attr('topic'), topic);
    });

    test('a message sent to the contact is published on the topic', async () => {
      await gateway(config('publish'));
      const alice = await user();
      const topic = `${prefix}/lights/hall`;
      const sub = await subscriber(topic);
      mqttClients.push(sub.client);
      await alice.client.send(xml('message', { to: addr(topic), type: 'chat' }, xml('body', null, 'on')));
      assert.deepEqual(await sub.next(15_000), { topic, payload: 'on' });
    });

    test('XEP-0045: joining a topic room, its messages as groupchat, own messages published and reflected, leaving', async () => {
      const g = await gateway(config('room'));
      const [alice, bob] = [await user(), await user()];
      const topic = `${prefix}/room`;
      await joinRoom(alice, topic, 'alice');
      await joinRoom(bob, topic, 'bob');
      await alice.receive(is('presence', { from: addr(topic, 'bob'), type: undefined }));
      await bob.receive(is('presence', { from: addr(topic, 'alice'), type: undefined }));

      await publisher.publishAsync(topic, 'to the room', { qos: 1 });
      for (const u of [alice, bob]) {
        const m = await u.receive(is('message', { type: 'groupchat', from: addr(topic, topic) }));
        assert.equal(m.getChildText('body'), 'to the room');
      }

      const sub = await subscriber(topic);
      mqttClients.push(sub.client);
      await bob.client.send(
        xml('message', { to: addr(topic), type: 'groupchat', id: 'g1' }, xml('body', null, 'from bob')),
      );
      assert.deepEqual(await sub.next(15_000), { topic, payload: 'from bob' });
      for (const u of [alice, bob]) {
        const m = await u.receive(is('message', { type: 'groupchat', from: addr(topic, 'bob') }));
        assert.equal(m.attr('id'), 'g1');
        assert.equal(m.getChildText('body'), 'from bob');
      }
      // Another MQTT client replaying the message's correlation data does not speak as bob.
      const correlationData = sub.lastCorrelation();
      assert.ok(correlationData);
      await publisher.publishAsync(topic, 'replayed', { qos: 1, properties: { correlationData } });
      const replayed = await alice.receive(is('message', { type: 'groupchat', from: addr(topic, topic) }));
      assert.equal(replayed.getChildText('body'), 'replayed');

      await bob.client.send(xml('presence', { to: addr(topic, 'bob'), type: 'unavailable' }));
      await bob.receive(is('presence', { from: addr(topic, 'bob'), type: 'unavailable' }));
      await alice.receive(is('presence', { from: addr(topic, 'bob'), type: 'unavailable' }));
      // Going offline leaves the room too (the server sends unavailable to where presence went).
      await alice.client.disconnect();
      await waitFor(
        () => [alice, bob].every((u) => g.gateway.subscriptionsOf(jidOf(u)).length === 0),
        'both left the room',
      );
    });

    test('subscriptions survive a restart of the gateway', async () => {
      const cfg = config('restart');
      const first = await gateway(cfg);
      const alice = await user();
      const topic = `${prefix}/persist`;
      await follow(alice, topic);
      await stopGateway(first);
      const saved = JSON.parse(await readFile(cfg.dataFile, 'utf8')) as { contacts: object };
      assert.deepEqual(saved.contacts, { [alice.jid]: [topic] });

      await gateway(cfg);
      await alice.receive(is('presence', { from: addr(topic), type: undefined }));
      await publisher.publishAsync(topic, 'after restart', { qos: 1 });
      const msg = await alice.receive(is('message', { from: addr(topic), type: 'chat' }));
      assert.equal(msg.getChildText('body'), 'after restart');
    });

    test('saved subscriptions that the configuration no longer allows are dropped at start', async () => {
      const cfg = config('narrowed');
      const first = await gateway(cfg);
      const alice = await user();
      await follow(alice, `${prefix}/old/a`);
      await follow(alice, `${prefix}/kept/b`);
      await stopGateway(first);
      const second = await gateway({ ...cfg, topicPrefixes: [`${prefix}/kept/`] });
      assert.deepEqual(second.gateway.subscriptionsOf(jidOf(alice)), [`${prefix}/kept/b`]);
    });

    test('a topic outside the allowed prefixes is refused with forbidden', async () => {
      await gateway(config('refused'));
      const alice = await user();
      const topic = 'not-allowed/secret';
      await alice.client.send(xml('presence', { to: addr(topic), type: 'subscribe' }));
      const err = await alice.receive(is('presence', { from: addr(topic), type: 'error' }));
      assert.equal(errorCondition(err), 'forbidden');
      await alice.client.send(
        xml('message', { to: addr(topic), type: 'chat', id: 'x1' }, xml('body', null, 'x')),
      );
      const merr = await alice.receive(is('message', { from: addr(topic), type: 'error' }));
      assert.equal(errorCondition(merr), 'forbidden');
      await alice.client.send(xml('presence', { to: addr('#', 'a') }, xml('x', { xmlns: MUC })));
      const perr = await alice.receive(is('presence', { from: addr('#', 'a'), type: 'error' }));
      assert.equal(errorCondition(perr), 'forbidden');
    });

    if (!everything) return;

    test('a wildcard contact gets every matching topic, named in the body', async () => {
      await gateway(config('wildcard'));
      const bob = await user();
      const filter = `${prefix}/wild/+/temp`;
      await follow(bob, filter);
      await publisher.publishAsync(`${prefix}/wild/cellar/temp`, '12', { qos: 1 });
      const msg = await bob.receive(is('message', { from: addr(filter) }));
      assert.equal(msg.getChildText('body'), `${prefix}/wild/cellar/temp: 12`);
    });

    test('removing the contact stops its messages and the broker subscription', async () => {
      const g = await gateway(config('unfollow'));
      const [alice, bob] = [await user(), await user()];
      const topic = `${prefix}/unfollow`;
      await follow(alice, topic);
      await alice.client.iq(
        xml(
          'iq',
          { type: 'set' },
          xml(
            'query',
            { xmlns: 'jabber:iq:roster' },
            xml('item', { jid: addr(topic), subscription: 'remove' }),
          ),
        ),
      );
      await waitFor(() => g.gateway.subscriptionsOf(jidOf(alice)).length === 0, 'unsubscribed');
      await publisher.publishAsync(topic, 'first', { qos: 1 });
      await follow(bob, topic);
      await publisher.publishAsync(topic, 'second', { qos: 1 });
      const msg = await bob.receive(is('message', { from: addr(topic) }));
      assert.equal(msg.getChildText('body'), 'second');
      await alice.sync();
      assert.ok(!alice.inbox.some((el) => el.name === 'message' && el.attr('from') === addr(topic)));
    });

    test('a room occupant whose session vanished while the gateway was down is removed when a message bounces', async () => {
      const cfg = config('ghost');
      const first = await gateway(cfg);
      const alice = await user();
      const topic = `${prefix}/ghost`;
      await joinRoom(alice, topic, 'alice');
      await stopGateway(first);
      await alice.client.disconnect();
      const second = await gateway(cfg);
      assert.deepEqual(second.gateway.subscriptionsOf(jidOf(alice)), [topic]);
      await publisher.publishAsync(topic, 'anyone there?', { qos: 1 });
      await waitFor(() => second.gateway.subscriptionsOf(jidOf(alice)).length === 0, 'ghost removed');
    });

    test('non-occupants cannot send to the room; a taken nick is a conflict', async () => {
      await gateway(config('room-errors'));
      const [alice, bob] = [await user(), await user()];
      const topic = `${prefix}/room2`;
      await bob.client.send(xml('message', { to: addr(topic), type: 'groupchat' }, xml('body', null, 'x')));
      assert.equal(errorCondition(await bob.receive(is('message', { type: 'error' }))), 'not-acceptable');
      await joinRoom(alice, topic, 'nick');
      await bob.client.send(xml('presence', { to: addr(topic, 'nick') }, xml('x', { xmlns: MUC })));
      assert.equal(errorCondition(await bob.receive(is('presence', { type: 'error' }))), 'conflict');
    });

    test('users outside allowedUsers are refused', async () => {
      await gateway(config('users', { allowedUsers: ['someone-else@localhost'] }));
      const alice = await user();
      const topic = `${prefix}/users`;
      await alice.client.send(xml('presence', { to: addr(topic), type: 'subscribe' }));
      assert.equal(errorCondition(await alice.receive(is('presence', { type: 'error' }))), 'forbidden');
    });

    test('limits: topics per user, payload size both ways, publish rate', async () => {
      await gateway(
        config('limits', {
          limits: { maxSubscriptionsPerUser: 1, maxPayloadBytes: 8, publishRate: { burst: 2, perSecond: 0 } },
        }),
      );
      const [alice, bob] = [await user(), await user()];
      const topic = `${prefix}/l/1`;
      await follow(alice, topic);
      await alice.client.send(xml('presence', { to: addr(`${prefix}/l/2`), type: 'subscribe' }));
      assert.equal(
        errorCondition(await alice.receive(is('presence', { type: 'error' }))),
        'policy-violation',
      );

      await bob.client.send(xml('message', { to: addr(topic), id: 'big' }, xml('body', null, '123456789')));
      const big = await bob.receive(is('message', { id: 'big', type: 'error' }));
      assert.equal(errorCondition(big), 'policy-violation');
      for (const id of ['r1', 'r2', 'r3']) {
        await bob.client.send(xml('message', { to: addr(topic), id }, xml('body', null, id)));
      }
      const rate = await bob.receive(is('message', { type: 'error' }));
      assert.equal(rate.attr('id'), 'r3');
      assert.equal(errorCondition(rate), 'policy-violation');
      assert.equal(rate.getChild('error')?.attr('type'), 'wait');

      // Too large to forward: not sent (same publisher and topic, so 'short' comes after it).
      await publisher.publishAsync(topic, 'far too long for the limit', { qos: 1 });
      await publisher.publishAsync(topic, 'short', { qos: 1 });
      const bodies: (string | undefined)[] = [];
      while (bodies.at(-1) !== 'short') {
        bodies.push((await alice.receive(is('message', { from: addr(topic) }))).getChildText('body'));
      }
      assert.ok(!bodies.includes('far too long for the limit'), bodies.join(', '));
    });

    test('limits: users of the gateway', async () => {
      await gateway(config('max-users', { limits: { maxUsers: 1 } }));
      const [alice, bob] = [await user(), await user()];
      await follow(alice, `${prefix}/mu/1`);
      await follow(alice, `${prefix}/mu/2`);
      await bob.client.send(xml('presence', { to: addr(`${prefix}/mu/1`), type: 'subscribe' }));
      assert.equal(
        errorCondition(await bob.receive(is('presence', { type: 'error' }))),
        'resource-constraint',
      );
    });

    test('after the broker connection breaks, the gateway reconnects and renews its subscriptions', async () => {
      const relay = await startRelay(brokerPort);
      try {
        const g = await gateway(config('broker-cut', { mqtt: { url: `mqtt://127.0.0.1:${relay.port}` } }));
        const alice = await user();
        const topic = `${prefix}/cut`;
        await follow(alice, topic);
        relay.cut();
        await waitFor(() => relay.accepted >= 2 && g.mqtt.connected, 'reconnected to the broker');
        // Subscriptions are renewed right after the reconnection: publish until one arrives.
        let n = 0;
        const arrived = alice.receive(is('message', { from: addr(topic) }));
        const timer = setInterval(() => void publisher.publishAsync(topic, `again ${++n}`, { qos: 1 }), 250);
        try {
          assert.match((await arrived).getChildText('body') ?? '', /^again \d+$/);
        } finally {
          clearInterval(timer);
        }
      } finally {
        await relay.close();
      }
    });

    test('after the XMPP connection breaks, the component reconnects and followers see the topics again', async () => {
      const relay = await startRelay(Number(new URL(server.componentService).port));
      try {
        const cfg = config('xmpp-cut', {
          component: { service: relay.service, domain: GATEWAY_DOMAIN, secret: GATEWAY_SECRET },
        });
        const g = await startGateway(cfg, { reconnect: true });
        gateways.push(g);
        const alice = await user();
        const topic = `${prefix}/xcut`;
        await follow(alice, topic);
        // Forget presence received so far (the server may have probed the contact too).
        await alice.sync();
        alice.inbox.length = 0;
        const online = g.component.waitFor('online', { timeout: 15_000 });
        relay.cut();
        await online;
        await alice.receive(is('presence', { from: addr(topic), type: undefined }));
        await publisher.publishAsync(topic, 'still here', { qos: 1 });
        const msg = await alice.receive(is('message', { from: addr(topic) }));
        assert.equal(msg.getChildText('body'), 'still here');
      } finally {
        await relay.close();
      }
    });

    test('binary payloads arrive in base64 with a note, or are skipped', async () => {
      await gateway(config('binary'));
      const alice = await user();
      const topic = `${prefix}/bin`;
      await follow(alice, topic);
      await publisher.publishAsync(topic, Buffer.from([0xde, 0xad, 0xbe, 0xef]), { qos: 1 });
      const msg = await alice.receive(is('message', { from: addr(topic) }));
      assert.equal(msg.getChildText('body'), '[binary payload, 4 bytes, base64] 3q2+7w==');
      await stopGateway(gateways[0]!);

      await gateway(config('binary', { binaryPayloads: 'skip' }));
      await alice.receive(is('presence', { from: addr(topic), type: undefined }));
      await publisher.publishAsync(topic, Buffer.from([0xff]), { qos: 1 });
      await publisher.publishAsync(topic, 'text', { qos: 1 });
      const next = await alice.receive(is('message', { from: addr(topic) }));
      assert.equal(next.getChildText('body'), 'text');
    });
  });
}

function jidOf(u: User): Jid {
  return parseJid(u.jid);
}
