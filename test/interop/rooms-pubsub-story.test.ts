// Issue #4's story, told by clients we did not write: StanzaJS (Olivia, Carol) and @xmpp/client
// (Bob, Alice). A reserved, configured, persistent room with kicks and bans that survives a restart;
// a pubsub node; an avatar published over PEP that a contact is notified of.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type * as Stanza from 'stanza';
import { startTestServer, type TestServer } from '../../packages/server/test/support/test-server.js';
import { xmppjs, stanzaClient, waitEvent, xml, type LtxElement } from './support.js';

const PW = 'room-password';
const ROOM = 'lobby@conference.localhost';
const MUC = 'http://jabber.org/protocol/muc';
const MUC_USER = 'http://jabber.org/protocol/muc#user';
const PUBSUB = 'http://jabber.org/protocol/pubsub';
const EVENT = 'http://jabber.org/protocol/pubsub#event';

const statusCodes = (p: LtxElement) =>
  (p.getChild('x', MUC_USER)?.getChildren('status') ?? []).map((s) => s.attrs.code);

describe('rooms and publish-subscribe with third-party clients (issue #4)', { concurrency: false }, () => {
  let server: TestServer;
  let olivia: Stanza.Agent;
  let carol: Stanza.Agent;
  let bob: Awaited<ReturnType<typeof xmppjs>>;

  before(async () => {
    server = await startTestServer({ modules: { ping: { idleMs: 0 } } });
    for (const u of ['olivia', 'bob', 'carol', 'alice']) await server.addUser(u, PW);
    olivia = await stanzaClient(server, 'olivia', PW, 'desk');
    carol = await stanzaClient(server, 'carol', PW, 'web');
    bob = await xmppjs(server, 'bob', PW, 'cli');
  });
  after(async () => {
    olivia?.disconnect();
    carol?.disconnect();
    await bob?.stop().catch(() => {});
    await server.destroy();
  });

  test('XEP-0045 §10.1.3: Olivia creates a reserved room and submits its configuration form', async () => {
    const joined = await olivia.joinRoom(ROOM, 'olivia', { muc: { type: 'join' } } as never);
    assert.ok(joined.muc?.statusCodes?.includes('201'), 'status 201: room created');
    const form = await olivia.getRoomConfig(ROOM);
    const vars = (form.fields ?? []).map((f) => f.name);
    for (const v of [
      'muc#roomconfig_roomname',
      'muc#roomconfig_persistentroom',
      'muc#roomconfig_membersonly',
      'muc#roomconfig_whois',
    ])
      assert.ok(vars.includes(v), v);
    await olivia.configureRoom(ROOM, {
      type: 'submit',
      fields: [
        { name: 'FORM_TYPE', type: 'hidden', value: 'http://jabber.org/protocol/muc#roomconfig' },
        { name: 'muc#roomconfig_roomname', type: 'text-single', value: 'The Lobby' },
        { name: 'muc#roomconfig_persistentroom', type: 'boolean', value: true },
        { name: 'muc#roomconfig_publicroom', type: 'boolean', value: true },
      ],
    });
    const info = await olivia.getDiscoInfo(ROOM);
    assert.ok(info.features.includes('muc_persistent'));
  });

  test('XEP-0045 §7.2: Bob and Carol join, everyone chats, Bob changes his nickname', async () => {
    const bobJoined = bob.next(
      (s) => s.is('presence') && s.attrs.from === `${ROOM}/bob` && statusCodes(s).includes('110'),
    );
    await bob.send(xml('presence', { to: `${ROOM}/bob` }, xml('x', { xmlns: MUC })));
    await bobJoined;
    await carol.joinRoom(ROOM, 'carol');
    const bobHears = bob.next(
      (s) => s.is('message') && s.attrs.type === 'groupchat' && s.getChildText('body') === 'hello room',
    );
    const oliviaHears = waitEvent<Stanza.Stanzas.ReceivedMessage>(
      olivia,
      'groupchat',
      (m) => m.body === 'hello room',
    );
    carol.sendMessage({ to: ROOM, type: 'groupchat', body: 'hello room' });
    assert.equal((await bobHears).attrs.from, `${ROOM}/carol`);
    await oliviaHears;
    const nickChanged = bob.next(
      (s) => s.is('presence') && s.attrs.from === `${ROOM}/bobby` && statusCodes(s).includes('110'),
    );
    await bob.send(xml('presence', { to: `${ROOM}/bobby` }));
    await nickChanged;
  });

  test('XEP-0045 §8.2/§9.1: Olivia kicks then bans Carol; her rejoin fails; the lists show it', async () => {
    const kicked = waitEvent<Stanza.Stanzas.ReceivedPresence>(
      carol,
      'unavailable',
      (p) => p.from === `${ROOM}/carol`,
    );
    await olivia.kick(ROOM, 'carol', 'behave');
    const k = await kicked;
    assert.ok((k as { muc?: { statusCodes?: string[] } }).muc?.statusCodes?.includes('307'));
    await olivia.ban(ROOM, 'carol@localhost', 'still misbehaving');
    await assert.rejects(carol.joinRoom(ROOM, 'carol'));
    const outcasts = await olivia.getRoomMembers(ROOM, { affiliation: 'outcast' });
    assert.deepEqual(
      outcasts.muc?.users?.map((u) => u.jid),
      ['carol@localhost'],
    );
    const moderators = await olivia.getRoomMembers(ROOM, { role: 'moderator' });
    assert.ok(moderators.muc?.users?.some((u) => u.nick === 'olivia'));
    await olivia.setRoomAffiliation(ROOM, 'bob@localhost', 'member');
    const members = await olivia.getRoomMembers(ROOM, { affiliation: 'member' });
    assert.deepEqual(
      members.muc?.users?.map((u) => u.jid),
      ['bob@localhost'],
    );
  });

  test('XEP-0045 §10.9: the persistent room survives a restart with its configuration and affiliations; then it is destroyed', async () => {
    const left = bob.next(
      (s) => s.is('presence') && s.attrs.type === 'unavailable' && statusCodes(s).includes('110'),
    );
    await bob.send(xml('presence', { to: `${ROOM}/bobby`, type: 'unavailable' }));
    await left;
    olivia.disconnect();
    carol.disconnect();
    await bob.stop();
    await server.stop();
    server = await startTestServer({ modules: { ping: { idleMs: 0 } } }, { dataDir: server.dataDir });
    olivia = await stanzaClient(server, 'olivia', PW, 'desk');
    carol = await stanzaClient(server, 'carol', PW, 'web');
    bob = await xmppjs(server, 'bob', PW, 'cli');
    const info = await olivia.getDiscoInfo(ROOM);
    assert.ok(info.features.includes('muc_persistent'));
    assert.equal(info.identities?.[0]?.name, 'The Lobby');
    await assert.rejects(carol.joinRoom(ROOM, 'carol'), 'still banned after the restart');
    await olivia.joinRoom(ROOM, 'olivia');
    const outcasts = await olivia.getRoomMembers(ROOM, { affiliation: 'outcast' });
    assert.deepEqual(
      outcasts.muc?.users?.map((u) => u.jid),
      ['carol@localhost'],
    );
    await olivia.destroyRoom(ROOM, { reason: 'moving on', jid: 'hall@conference.localhost' });
    const gone = await bob
      .request(
        xml(
          'iq',
          { type: 'get', to: ROOM },
          xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' }),
        ),
      )
      .catch((e: { condition?: string }) => e);
    assert.equal((gone as { condition?: string }).condition, 'item-not-found');
  });

  test('XEP-0060: a node is created, subscribed to, published to (notification), read, and retracted', async () => {
    await olivia.createNode('pubsub.localhost', 'news');
    const sub = await bob.request(
      xml(
        'iq',
        { type: 'set', to: 'pubsub.localhost' },
        xml('pubsub', { xmlns: PUBSUB }, xml('subscribe', { node: 'news', jid: String(bob.jid) })),
      ),
    );
    assert.equal(sub.getChild('pubsub', PUBSUB)?.getChild('subscription')?.attrs.subscription, 'subscribed');
    const notified = bob.next((s) => s.is('message') && !!s.getChild('event', EVENT));
    // any payload StanzaJS knows how to encode will do: a User Tune (XEP-0118)
    await olivia.publish(
      'pubsub.localhost',
      'news',
      { itemType: 'http://jabber.org/protocol/tune', artist: 'Natter', title: 'Release notes' } as never,
      'item-1',
    );
    const ev = (await notified).getChild('event', EVENT)!.getChild('items')!;
    assert.equal(ev.attrs.node, 'news');
    assert.equal(ev.getChild('item')?.attrs.id, 'item-1');
    assert.equal(
      ev.getChild('item')?.getChild('tune', 'http://jabber.org/protocol/tune')?.getChildText('title'),
      'Release notes',
    );
    const items = await bob.request(
      xml(
        'iq',
        { type: 'get', to: 'pubsub.localhost' },
        xml('pubsub', { xmlns: PUBSUB }, xml('items', { node: 'news' })),
      ),
    );
    assert.deepEqual(
      items
        .getChild('pubsub', PUBSUB)!
        .getChild('items')!
        .getChildren('item')
        .map((i) => i.attrs.id),
      ['item-1'],
    );
    const retracted = bob.next(
      (s) => s.is('message') && !!s.getChild('event', EVENT)?.getChild('items')?.getChild('retract'),
    );
    await olivia.retract('pubsub.localhost', 'news', 'item-1', true);
    assert.equal(
      (await retracted).getChild('event', EVENT)!.getChild('items')!.getChild('retract')!.attrs.id,
      'item-1',
    );
  });

  test('XEP-0084/0163: Alice publishes an avatar over PEP; her contact Carol is notified', async () => {
    const alice = await xmppjs(server, 'alice', PW, 'phone');
    try {
      // Carol is online with StanzaJS's entity capabilities (they include avatar metadata+notify);
      // then a mutual presence subscription between Alice and Carol
      // (as StanzaJS apps do: compute the caps hash and put it in presence)
      carol.updateCaps();
      carol.sendPresence({ legacyCapabilities: carol.disco.getCaps() } as never);
      await alice.send(xml('presence'));
      const carolAsked = waitEvent<Stanza.Stanzas.ReceivedPresence>(
        carol,
        'subscribe',
        (p) => p.from === 'alice@localhost',
      );
      await alice.send(xml('presence', { to: 'carol@localhost', type: 'subscribe' }));
      await carolAsked;
      carol.acceptSubscription('alice@localhost');
      await alice.next((s) => s.is('presence') && s.attrs.type === 'subscribed');
      // PEP notifies those subscribed to the publisher's presence: Carol subscribes to Alice too
      const aliceAsked = alice.next(
        (s) => s.is('presence') && s.attrs.type === 'subscribe' && s.attrs.from === 'carol@localhost',
      );
      carol.subscribe('alice@localhost');
      await aliceAsked;
      await alice.send(xml('presence', { to: 'carol@localhost', type: 'subscribed' }));
      await new Promise((r) => setTimeout(r, 500)); // let the server learn Carol's capabilities

      const data = Buffer.from('a tiny avatar');
      const id = createHash('sha1').update(data).digest('hex');
      const notified = waitEvent<{ jid: string; avatars: { id: string }[] }>(
        carol,
        'avatar',
        (a) => a.jid === 'alice@localhost',
        8000,
      );
      const pub = (node: string, item: LtxElement) =>
        alice.request(
          xml(
            'iq',
            { type: 'set' },
            xml('pubsub', { xmlns: PUBSUB }, xml('publish', { node }, xml('item', { id }, item))),
          ),
        );
      await pub(
        'urn:xmpp:avatar:data',
        xml('data', { xmlns: 'urn:xmpp:avatar:data' }, data.toString('base64')),
      );
      await pub(
        'urn:xmpp:avatar:metadata',
        xml(
          'metadata',
          { xmlns: 'urn:xmpp:avatar:metadata' },
          xml('info', { id, bytes: String(data.length), type: 'image/png' }),
        ),
      );
      const avatar = await notified;
      assert.equal(avatar.avatars[0]?.id, id);
    } finally {
      await alice.stop().catch(() => {});
    }
  });
});
