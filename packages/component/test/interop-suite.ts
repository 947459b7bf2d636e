// The interop suite of @natter/component against a real server's component port: a real user logs
// in with @natter/client and talks to the gateway through the server. One test file per server
// (interop-<server>.test.ts), so each stays within the runner's per-file timeout.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { createClient, xml, type Client, type Element } from '@natter/client';
import { NS, parseForm } from '@natter/protocol';
import {
  ComponentError,
  StanzaError,
  createComponent,
  type Component,
  type ComponentOptions,
} from '../src/index.js';
import { startRelay } from '../../../test/support/tcp-relay.js';
import {
  Accounts,
  COMPONENT_DOMAIN,
  COMPONENT_SECRET,
  type ComponentTarget,
  type TargetFactory,
} from './targets.js';

const WAIT = 15_000;

export function interopSuite(factory: TargetFactory): void {
  describe(`@natter/component against ${factory.name}`, () => {
    let target: ComponentTarget;
    let accounts: Accounts;
    let components: Component[] = [];
    let clients: Client[] = [];
    before(async () => {
      target = await factory.start();
      accounts = new Accounts(target);
    });
    after(async () => target?.stop());
    afterEach(async () => {
      const cs = components;
      const us = clients;
      components = [];
      clients = [];
      await Promise.all([...cs.map((c) => c.disconnect()), ...us.map((c) => c.disconnect().catch(() => {}))]);
    });

    function gateway(opts: Partial<ComponentOptions> = {}): Component {
      const gw = createComponent({
        service: target.componentService,
        domain: COMPONENT_DOMAIN,
        secret: COMPONENT_SECRET,
        ...opts,
      });
      components.push(gw);
      return gw;
    }

    async function user(): Promise<Client> {
      const account = accounts.take();
      const c = createClient({ service: target.service, tls: target.tls, ...account, resource: 'test' });
      clients.push(c);
      await c.connect();
      // as real clients do; Prosody delivers subscription answers only to resources that asked for the roster
      await c.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS.roster })));
      await c.sendPresence();
      return c;
    }

    test('XEP-0114 §3: the handshake succeeds with the right secret and emits online', async () => {
      const gw = gateway();
      const online = gw.waitFor('online', { timeout: WAIT });
      await gw.connect();
      assert.equal((await online).domain, COMPONENT_DOMAIN);
      assert.equal(gw.status, 'online');
    });

    test('XEP-0114 §3: a wrong secret rejects connect() with not-authorized and never reconnects', async () => {
      const relay = await startRelay(Number(new URL(target.componentService).port));
      try {
        const gw = gateway({ secret: 'wrong', service: relay.service, reconnect: { initialDelayMs: 1 } });
        const offline = gw.waitFor('offline', { timeout: WAIT });
        await assert.rejects(gw.connect(), (err: unknown) => {
          assert.ok(err instanceof ComponentError);
          assert.equal(err.condition, 'not-authorized');
          assert.equal(err.fatal, true);
          return true;
        });
        const { reconnectInMs } = await offline;
        assert.equal(reconnectInMs, undefined, 'no reconnect is scheduled');
        assert.equal(gw.status, 'closed');
        assert.equal(relay.accepted, 1);
      } finally {
        await relay.close();
      }
    });

    test('a domain the server does not know is refused with a fatal error (host-unknown or not-authorized)', async () => {
      const gw = createComponent({
        service: target.componentService,
        domain: 'unknown.localhost',
        secret: 'x',
      });
      components.push(gw);
      await assert.rejects(gw.connect(), (err: unknown) => {
        assert.ok(err instanceof ComponentError);
        assert.ok(['host-unknown', 'not-authorized'].includes(err.condition), err.condition);
        assert.equal(err.fatal, true);
        return true;
      });
    });

    test('a message from a user reaches the gateway, and a puppet answers it', async () => {
      const gw = gateway();
      await gw.connect();
      const alice = await user();
      const got = gw.waitFor('message', { timeout: WAIT, filter: (m) => m.to.local === 'bob' });
      await alice.sendMessage({ to: `bob@${COMPONENT_DOMAIN}`, body: 'hello legacy world', type: 'chat' });
      const m = await got;
      assert.equal(m.body, 'hello legacy world');
      assert.equal(m.type, 'chat');
      assert.equal(m.from.toBareString(), alice.account.toString());
      assert.equal(m.to.toString(), `bob@${COMPONENT_DOMAIN}`);

      const reply = alice.waitFor('message', {
        timeout: WAIT,
        filter: (el) => el.getChildText('body') === 'hi back',
      });
      gw.puppet('bob').say(m.from, 'hi back');
      const el = await reply;
      assert.equal(el.attr('from'), `bob@${COMPONENT_DOMAIN}`);
      assert.equal(el.attr('type'), 'chat');
    });

    test('XEP-0030: disco#info on the component domain lists the gateway identity and the handled namespaces', async () => {
      const gw = gateway({
        disco: { identities: [{ category: 'gateway', type: 'mqtt', name: 'Test gateway' }] },
      });
      gw.handleIq('get', 'jabber:iq:version', 'query', () =>
        xml(
          'query',
          { xmlns: 'jabber:iq:version' },
          xml('name', null, 'test-gw'),
          xml('version', null, '1.0'),
        ),
      );
      await gw.connect();
      const alice = await user();
      const info = await alice.iq(
        xml('iq', { type: 'get', to: COMPONENT_DOMAIN }, xml('query', { xmlns: NS.discoInfo })),
      );
      const q = info.getChild('query', NS.discoInfo)!;
      const identity = q.getChild('identity')!;
      assert.equal(identity.attr('category'), 'gateway');
      assert.equal(identity.attr('type'), 'mqtt');
      const features = q.getChildren('feature').map((f) => f.attr('var'));
      assert.ok(features.includes('jabber:iq:version'), String(features));
      assert.ok(features.includes(NS.discoInfo));

      assert.ok(features.includes('urn:xmpp:ping'), 'XEP-0199 ping is answered by default');
      const pong = await alice.iq(
        xml('iq', { type: 'get', to: `x@${COMPONENT_DOMAIN}` }, xml('ping', { xmlns: 'urn:xmpp:ping' })),
      );
      assert.equal(pong.attr('type'), 'result');

      const version = await alice.iq(
        xml('iq', { type: 'get', to: COMPONENT_DOMAIN }, xml('query', { xmlns: 'jabber:iq:version' })),
      );
      assert.equal(version.getChild('query')?.getChildText('name'), 'test-gw');
    });

    test('RFC 6120 §8.4: an IQ nobody handles gets service-unavailable; a thrown StanzaError becomes the error reply', async () => {
      const gw = gateway();
      gw.handleIq('set', 'urn:example:test', 'op', () => {
        throw new StanzaError('not-allowed', { text: 'nope' });
      });
      await gw.connect();
      const alice = await user();
      await assert.rejects(
        alice.iq(
          xml('iq', { type: 'get', to: COMPONENT_DOMAIN }, xml('query', { xmlns: 'urn:example:none' })),
        ),
        (err: { condition?: string }) => err.condition === 'service-unavailable',
      );
      await assert.rejects(
        alice.iq(
          xml('iq', { type: 'set', to: `x@${COMPONENT_DOMAIN}` }, xml('op', { xmlns: 'urn:example:test' })),
        ),
        (err: { condition?: string; text?: string }) =>
          err.condition === 'not-allowed' && err.text === 'nope',
      );
    });

    test('gw.iq() asks the server and resolves with the result', async () => {
      const gw = gateway();
      await gw.connect();
      const res = await gw.iq(
        xml('iq', { type: 'get', to: target.domain }, xml('query', { xmlns: NS.discoInfo })),
      );
      assert.equal(res.attr('type'), 'result');
      assert.ok(res.getChild('query', NS.discoInfo)?.getChild('identity'));
    });

    test('RFC 6121 §3 and §4.3: a user subscribes to a puppet, sees its presence, and a later login probe is answered', async () => {
      const gw = gateway();
      await gw.connect();
      const puppet = gw.puppets.add('carol', { show: 'away', status: 'on the legacy network' });
      const account = accounts.take();
      const first = createClient({ service: target.service, tls: target.tls, ...account, resource: 'one' });
      clients.push(first);
      await first.connect();
      await first.sendPresence();
      const seen = first.waitFor('presence', {
        timeout: WAIT,
        filter: (p) => p.attr('from') === puppet.jid.toString() && p.attr('type') === undefined,
      });
      await first.sendPresence({ to: puppet.jid.toString(), type: 'subscribe' });
      const p = await seen;
      assert.equal(p.getChildText('show'), 'away');
      assert.equal(p.getChildText('status'), 'on the legacy network');
      assert.ok(puppet.subscribers.has(account.jid));
      const info = await first.iq(
        xml('iq', { type: 'get', to: puppet.jid.toString() }, xml('query', { xmlns: NS.discoInfo })),
      );
      assert.equal(info.getChild('query')?.getChild('identity')?.attr('category'), 'client');

      // a new presence is pushed to the subscriber
      const update = first.waitFor('presence', {
        timeout: WAIT,
        filter: (el) => el.attr('from') === puppet.jid.toString() && el.getChildText('status') === 'back',
      });
      puppet.setPresence({ status: 'back' });
      assert.equal((await update).getChildText('show'), undefined);
      await first.disconnect();

      // a new login: the user's server probes its contacts, the puppet answers with its presence
      const probed = gw.waitFor('stanza', {
        timeout: WAIT,
        filter: (el) => el.name === 'presence' && el.attr('type') === 'probe',
      });
      const second = createClient({ service: target.service, tls: target.tls, ...account, resource: 'two' });
      clients.push(second);
      await second.connect();
      const again = second.waitFor('presence', {
        timeout: WAIT,
        filter: (el) => el.attr('from') === puppet.jid.toString() && el.getChildText('status') === 'back',
      });
      await second.sendPresence();
      await probed;
      await again;
    });

    test('XEP-0045 subset: a user joins a legacy room, sees its occupants, chats, and leaves', async () => {
      const gw = gateway();
      await gw.connect();
      const room = gw.rooms.add('lobby', { name: 'Lobby', subject: 'Legacy lobby' });
      room.addParticipant('legacy-dave');
      const alice = await user();
      const roomJid = room.jid.toString();
      const presences: Element[] = [];
      alice.on('presence', (p) => {
        if (p.attr('from')?.startsWith(`${roomJid}/`)) presences.push(p);
      });
      const subject = alice.waitFor('message', {
        timeout: WAIT,
        filter: (m) => m.getChild('subject') !== undefined,
      });
      const joined = room.waitFor('join', { timeout: WAIT });
      await alice.send(xml('presence', { to: `${roomJid}/alice` }, xml('x', { xmlns: NS.muc })));
      assert.equal((await subject).getChildText('subject'), 'Legacy lobby');
      assert.equal((await joined).nick, 'alice');
      assert.deepEqual(
        presences.map((p) => p.attr('from')),
        [`${roomJid}/legacy-dave`, `${roomJid}/alice`],
      );
      const self = presences[1]!.getChild('x', NS.mucUser)!;
      assert.ok(self.getChildren('status').some((s) => s.attr('code') === '110'));

      // the user's groupchat message is reflected and reaches the gateway
      const reflected = alice.waitFor('message', {
        timeout: WAIT,
        filter: (m) => m.attr('type') === 'groupchat' && m.getChildText('body') === 'hi room',
      });
      const atGateway = room.waitFor('message', { timeout: WAIT });
      await alice.send(
        xml('message', { to: roomJid, type: 'groupchat', id: 'g1' }, xml('body', null, 'hi room')),
      );
      assert.equal((await reflected).attr('from'), `${roomJid}/alice`);
      assert.equal((await atGateway).body, 'hi room');

      // a legacy participant speaks
      const fromDave = alice.waitFor('message', {
        timeout: WAIT,
        filter: (m) => m.getChildText('body') === 'hello alice',
      });
      room.say('legacy-dave', 'hello alice');
      assert.equal((await fromDave).attr('from'), `${roomJid}/legacy-dave`);

      // a second join with the same nick from someone else is refused with conflict
      const bob = await user();
      const refused = bob.waitFor('presence', { timeout: WAIT, filter: (p) => p.attr('type') === 'error' });
      await bob.send(xml('presence', { to: `${roomJid}/alice` }, xml('x', { xmlns: NS.muc })));
      assert.equal(StanzaError.fromStanza(await refused).condition, 'conflict');

      const left = room.waitFor('leave', { timeout: WAIT });
      await alice.send(xml('presence', { to: `${roomJid}/alice`, type: 'unavailable' }));
      assert.equal((await left).nick, 'alice');
      assert.equal(room.users.length, 0);
    });

    test('XEP-0077 and XEP-0100 §4.1: a user registers with the gateway, which then asks to be in the roster', async () => {
      const gw = gateway();
      const registered = new Map<string, Record<string, string>>();
      gw.registration({
        instructions: 'Your legacy account',
        fields: [
          { var: 'username', label: 'User name', required: true },
          { var: 'password', label: 'Password', required: true },
        ],
        onRegister: (from, form) => {
          registered.set(from.toBareString(), form);
        },
        registered: (from) => registered.get(from.toBareString()),
      });
      await gw.connect();
      const alice = await user();
      const form = await alice.iq(
        xml('iq', { type: 'get', to: COMPONENT_DOMAIN }, xml('query', { xmlns: NS.register })),
      );
      const x = form.getChild('query', NS.register)!.getChild('x', NS.dataForms)!;
      assert.deepEqual(
        parseForm(x).fields.map((f) => f.var),
        ['FORM_TYPE', 'username', 'password'],
      );
      await assert.rejects(
        alice.iq(
          xml(
            'iq',
            { type: 'set', to: COMPONENT_DOMAIN },
            xml('query', { xmlns: NS.register }, xml('username', null, 'a')),
          ),
        ),
        (err: { condition?: string }) => err.condition === 'not-acceptable',
      );
      const subscribe = alice.waitFor('presence', {
        timeout: WAIT,
        filter: (p) => p.attr('from') === COMPONENT_DOMAIN && p.attr('type') === 'subscribe',
      });
      await alice.iq(
        xml(
          'iq',
          { type: 'set', to: COMPONENT_DOMAIN },
          xml(
            'query',
            { xmlns: NS.register },
            xml('username', null, 'alice-legacy'),
            xml('password', null, 'pw'),
          ),
        ),
      );
      await subscribe;
      assert.deepEqual(registered.get(alice.account.toString()), {
        username: 'alice-legacy',
        password: 'pw',
      });
      const again = await alice.iq(
        xml('iq', { type: 'get', to: COMPONENT_DOMAIN }, xml('query', { xmlns: NS.register })),
      );
      assert.ok(again.getChild('query', NS.register)?.getChild('registered'));
    });

    test('XEP-0050: a settings command is listed and completes a data form round trip', async () => {
      const gw = gateway();
      let saved: string | undefined;
      gw.command('settings', 'Gateway settings', (ctx) => {
        if (ctx.stage === 0)
          return {
            form: {
              type: 'form',
              title: 'Settings',
              fields: [{ var: 'topic', type: 'text-single', values: ['a/b'] }],
            },
          };
        saved = ctx.values.topic;
        return { done: true, note: `saved ${saved}` };
      });
      await gw.connect();
      const alice = await user();
      const items = await alice.iq(
        xml(
          'iq',
          { type: 'get', to: COMPONENT_DOMAIN },
          xml('query', { xmlns: NS.discoItems, node: 'http://jabber.org/protocol/commands' }),
        ),
      );
      assert.deepEqual(
        items
          .getChild('query')!
          .getChildren('item')
          .map((i) => [i.attr('node'), i.attr('name')]),
        [['settings', 'Gateway settings']],
      );
      const cmdNs = 'http://jabber.org/protocol/commands';
      const first = await alice.iq(
        xml(
          'iq',
          { type: 'set', to: COMPONENT_DOMAIN },
          xml('command', { xmlns: cmdNs, node: 'settings', action: 'execute' }),
        ),
      );
      const cmd = first.getChild('command', cmdNs)!;
      assert.equal(cmd.attr('status'), 'executing');
      const sessionid = cmd.attr('sessionid')!;
      const done = await alice.iq(
        xml(
          'iq',
          { type: 'set', to: COMPONENT_DOMAIN },
          xml(
            'command',
            { xmlns: cmdNs, node: 'settings', sessionid, action: 'complete' },
            xml(
              'x',
              { xmlns: NS.dataForms, type: 'submit' },
              xml('field', { var: 'topic' }, xml('value', null, 'sensors/#')),
            ),
          ),
        ),
      );
      const result = done.getChild('command', cmdNs)!;
      assert.equal(result.attr('status'), 'completed');
      assert.equal(result.getChildText('note'), 'saved sensors/#');
      assert.equal(saved, 'sensors/#');
    });

    test('a handler that throws something else gives internal-server-error and an error event', async () => {
      const gw = gateway();
      gw.handleIq('get', 'urn:example:crash', 'q', () => {
        throw new Error('boom');
      });
      await gw.connect();
      const alice = await user();
      const reported = gw.waitFor('error', { timeout: WAIT });
      await assert.rejects(
        alice.iq(xml('iq', { type: 'get', to: COMPONENT_DOMAIN }, xml('q', { xmlns: 'urn:example:crash' }))),
        (err: { condition?: string }) => err.condition === 'internal-server-error',
      );
      assert.equal((await reported).message, 'boom');
    });

    test('gw.iq() rejects with a TimeoutError when the user never answers', async () => {
      const gw = gateway();
      await gw.connect();
      const alice = await user();
      alice.handleIq('get', 'slow', 'urn:example:slow', () => new Promise(() => {}));
      await assert.rejects(
        gw.iq(
          xml('iq', { type: 'get', to: alice.jid!.toString() }, xml('slow', { xmlns: 'urn:example:slow' })),
          500,
        ),
        (err: Error) => err.name === 'TimeoutError',
      );
    });

    test('RFC 6121 §3.1: with autoApprove off, the gateway decides; a denied request gets unsubscribed', async () => {
      const gw = gateway({ puppets: { autoApprove: false } });
      await gw.connect();
      gw.puppets.add('frank', { status: 'private' });
      const alice = await user();
      const asked = gw.puppets.waitFor('subscribe', { timeout: WAIT });
      const denied = alice.waitFor('presence', {
        timeout: WAIT,
        filter: (p) => p.attr('from') === `frank@${COMPONENT_DOMAIN}` && p.attr('type') === 'unsubscribed',
      });
      await alice.sendPresence({ to: `frank@${COMPONENT_DOMAIN}`, type: 'subscribe' });
      const req = await asked;
      assert.equal(req.from.toString(), alice.account.toString());
      req.deny();
      await denied;
      assert.equal(gw.puppets.get('frank')!.subscribers.size, 0);
    });

    test('puppets.resolve creates a puppet on the first subscription request to an unknown name', async () => {
      const gw = gateway({
        puppets: { resolve: (name) => (name === 'grace' ? { show: 'dnd' } : undefined) },
      });
      await gw.connect();
      const alice = await user();
      const seen = alice.waitFor('presence', {
        timeout: WAIT,
        filter: (p) => p.attr('from') === `grace@${COMPONENT_DOMAIN}` && p.getChildText('show') === 'dnd',
      });
      await alice.sendPresence({ to: `grace@${COMPONENT_DOMAIN}`, type: 'subscribe' });
      await seen;
      assert.ok(gw.puppets.get('grace'));
      const refused = alice.waitFor('presence', {
        timeout: WAIT,
        filter: (p) => p.attr('from') === `nobody@${COMPONENT_DOMAIN}` && p.attr('type') === 'unsubscribed',
      });
      await alice.sendPresence({ to: `nobody@${COMPONENT_DOMAIN}`, type: 'subscribe' });
      await refused;
    });

    test('rooms created on first join are listed in disco#items and answer disco#info as conference/text', async () => {
      const gw = gateway();
      gw.rooms.onUnknownRoom((name) =>
        name.startsWith('topic-') ? { name: `Topic ${name.slice(6)}` } : undefined,
      );
      await gw.connect();
      const alice = await user();
      const self = alice.waitFor('presence', {
        timeout: WAIT,
        filter: (p) => p.attr('from') === `topic-a@${COMPONENT_DOMAIN}/alice`,
      });
      await alice.send(
        xml('presence', { to: `topic-a@${COMPONENT_DOMAIN}/alice` }, xml('x', { xmlns: NS.muc })),
      );
      await self;
      const refused = alice.waitFor('presence', {
        timeout: WAIT,
        filter: (p) => p.attr('from') === `other@${COMPONENT_DOMAIN}/alice` && p.attr('type') === 'error',
      });
      await alice.send(
        xml('presence', { to: `other@${COMPONENT_DOMAIN}/alice` }, xml('x', { xmlns: NS.muc })),
      );
      assert.equal(StanzaError.fromStanza(await refused).condition, 'item-not-found');
      const items = await alice.iq(
        xml('iq', { type: 'get', to: COMPONENT_DOMAIN }, xml('query', { xmlns: NS.discoItems })),
      );
      assert.deepEqual(
        items
          .getChild('query')!
          .getChildren('item')
          .map((i) => [i.attr('jid'), i.attr('name')]),
        [[`topic-a@${COMPONENT_DOMAIN}`, 'Topic a']],
      );
      const info = await alice.iq(
        xml('iq', { type: 'get', to: `topic-a@${COMPONENT_DOMAIN}` }, xml('query', { xmlns: NS.discoInfo })),
      );
      const identity = info.getChild('query')!.getChild('identity')!;
      assert.deepEqual([identity.attr('category'), identity.attr('type')], ['conference', 'text']);
    });

    test('XEP-0100 §4.1, §4.3 and §6: the gateway and the user subscribe to each other, unregistering undoes it; jabber:iq:gateway escapes legacy addresses', async () => {
      const gw = gateway();
      let removed = '';
      gw.registration({
        fields: [{ var: 'username', required: true }],
        onRegister: () => {},
        onUnregister: (from) => {
          removed = from.toBareString();
        },
        gateway: { prompt: 'IRC nick' },
      });
      await gw.connect();
      const alice = await user();
      const prompt = await alice.iq(
        xml('iq', { type: 'get', to: COMPONENT_DOMAIN }, xml('query', { xmlns: 'jabber:iq:gateway' })),
      );
      assert.equal(prompt.getChild('query')?.getChildText('prompt'), 'IRC nick');
      const translated = await alice.iq(
        xml(
          'iq',
          { type: 'set', to: COMPONENT_DOMAIN },
          xml('query', { xmlns: 'jabber:iq:gateway' }, xml('prompt', null, 'john doe')),
        ),
      );
      assert.equal(translated.getChild('query')?.getChildText('jid'), `john\\20doe@${COMPONENT_DOMAIN}`);
      // XEP-0100 §4.1.1: register, accept the gateway's request, ask for its presence in return
      const asked = alice.waitFor('presence', {
        timeout: WAIT,
        filter: (p) => p.attr('from') === COMPONENT_DOMAIN && p.attr('type') === 'subscribe',
      });
      await alice.iq(
        xml(
          'iq',
          { type: 'set', to: COMPONENT_DOMAIN },
          xml('query', { xmlns: NS.register }, xml('username', null, 'j')),
        ),
      );
      await asked;
      const approved = alice.waitFor('presence', {
        timeout: WAIT,
        filter: (p) => p.attr('from') === COMPONENT_DOMAIN && p.attr('type') === 'subscribed',
      });
      const gatewayOnline = alice.waitFor('presence', {
        timeout: WAIT,
        filter: (p) => p.attr('from') === COMPONENT_DOMAIN && p.attr('type') === undefined,
      });
      await alice.sendPresence({ to: COMPONENT_DOMAIN, type: 'subscribed' });
      await alice.sendPresence({ to: COMPONENT_DOMAIN, type: 'subscribe' });
      await approved;
      await gatewayOnline;
      // XEP-0100 §4.3: unregistering removes the gateway from the roster both ways
      const unsubscribe = alice.waitFor('presence', {
        timeout: WAIT,
        filter: (p) => p.attr('from') === COMPONENT_DOMAIN && p.attr('type') === 'unsubscribed',
      });
      await alice.iq(
        xml('iq', { type: 'set', to: COMPONENT_DOMAIN }, xml('query', { xmlns: NS.register }, xml('remove'))),
      );
      await unsubscribe;
      assert.equal(removed, alice.account.toString());
    });

    test('XEP-0050 §4.4: a cancelled session is gone; an unknown session id gets bad-sessionid', async () => {
      const gw = gateway();
      gw.command('settings', 'Settings', () => ({
        form: { type: 'form', fields: [{ var: 'x', values: [] }] },
      }));
      await gw.connect();
      const alice = await user();
      const cmdNs = 'http://jabber.org/protocol/commands';
      const run = (attrs: Record<string, string>) =>
        alice.iq(
          xml(
            'iq',
            { type: 'set', to: COMPONENT_DOMAIN },
            xml('command', { xmlns: cmdNs, node: 'settings', ...attrs }),
          ),
        );
      const sessionid = (await run({ action: 'execute' })).getChild('command', cmdNs)!.attr('sessionid')!;
      const cancelled = await run({ sessionid, action: 'cancel' });
      assert.equal(cancelled.getChild('command', cmdNs)!.attr('status'), 'canceled');
      await assert.rejects(run({ sessionid, action: 'complete' }), (err: StanzaError) => {
        assert.equal(err.condition, 'not-allowed');
        assert.equal(err.appCondition?.name, 'bad-sessionid');
        return true;
      });
    });

    test('a second connection for a bound domain: Prosody and Natter refuse it with conflict, ejabberd balances', async () => {
      const first = gateway();
      await first.connect();
      const second = gateway({ reconnect: false });
      if (target.name === 'ejabberd') {
        await second.connect();
        assert.equal(second.status, 'online');
      } else {
        await assert.rejects(second.connect(), (err: unknown) => {
          assert.ok(err instanceof ComponentError);
          assert.equal(err.condition, 'conflict');
          assert.equal(err.fatal, false);
          return true;
        });
        assert.equal(first.status, 'online', 'the working connection is kept');
      }
    });

    test('an idle component sends whitespace keepalives; disconnect() emits offline without an error', async () => {
      const relay = await startRelay(Number(new URL(target.componentService).port));
      try {
        const gw = gateway({ service: relay.service, keepaliveMs: 1000 });
        await gw.connect();
        await new Promise<void>((resolve) => {
          relay.onClientData = (chunk) => {
            if (chunk.toString() === ' ') resolve();
          };
        });
        const offline = gw.waitFor('offline', { timeout: WAIT });
        await gw.disconnect();
        assert.equal((await offline).error, undefined);
        assert.equal(gw.status, 'closed');
      } finally {
        await relay.close();
      }
    });

    test('a lost connection is re-established with backoff, and stanzas sent while offline are delivered after it', async () => {
      const relay = await startRelay(Number(new URL(target.componentService).port));
      try {
        const gw = gateway({ service: relay.service, reconnect: { initialDelayMs: 50, maxDelayMs: 200 } });
        await gw.connect();
        const alice = await user();
        const offline = gw.waitFor('offline', { timeout: WAIT });
        const online = gw.waitFor('online', { timeout: WAIT });
        relay.cut();
        const { reconnectInMs, error } = await offline;
        assert.ok(reconnectInMs !== undefined && reconnectInMs <= 200, String(reconnectInMs));
        assert.equal(error?.condition, 'connection-closed');
        const received = alice.waitFor('message', {
          timeout: WAIT,
          filter: (m) => m.getChildText('body') === 'queued',
        });
        gw.puppet('erin').say(alice.jid!, 'queued');
        await online;
        assert.equal((await received).attr('from'), `erin@${COMPONENT_DOMAIN}`);
        assert.ok(relay.accepted >= 2);
      } finally {
        await relay.close();
      }
    });

    test('a stanza over maxStanzaBytes ends the stream with policy-violation, then the component reconnects', async () => {
      const gw = gateway({ maxStanzaBytes: 4096, reconnect: { initialDelayMs: 50, maxDelayMs: 200 } });
      await gw.connect();
      const alice = await user();
      const error = gw.waitFor('error', { timeout: WAIT });
      const back = new Promise<void>((resolve) =>
        gw.once('offline', () => gw.once('online', () => resolve())),
      );
      await alice.sendMessage({ to: `big@${COMPONENT_DOMAIN}`, body: 'x'.repeat(20_000) });
      const err = await error;
      assert.ok(err instanceof ComponentError);
      assert.equal(err.condition, 'policy-violation');
      await back;
      // still usable
      const m = gw.waitFor('message', { timeout: WAIT });
      await alice.sendMessage({ to: `small@${COMPONENT_DOMAIN}`, body: 'ok' });
      assert.equal((await m).body, 'ok');
    });
  });
}
