import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import { TestClient } from '../../../test/support/test-client.js';
import { TestComponent } from '../../../test/support/test-component.js';
import { NS_PRIVILEGE } from './xep-0356-permissions.js';
import { configSchema } from '../../config.js';

const PW = 'privileged-pw';
const GW = 'gw.localhost';
const PLAIN = 'plain.localhost';
const READER = 'reader.localhost';
const WATCHER = 'watcher.localhost';
const SECRET = 'a-long-component-secret';

const condition = (e: Element) =>
  e
    .getChild('error')
    ?.elements()
    .find((c) => c.xmlns === NS.stanzas && c.name !== 'text')?.name;

const isAdvertisement = (e: Element) =>
  e.name === 'message' && e.getChild('privilege', NS_PRIVILEGE) !== undefined;

function perms(e: Element): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const p of e.getChild('privilege', NS_PRIVILEGE)!.getChildren('perm', NS_PRIVILEGE)) {
    out[p.attrs.access!] =
      p.attrs.access === 'iq'
        ? p
            .getChildren('namespace', NS_PRIVILEGE)
            .map((n) => `${n.attrs.ns}=${n.attrs.type}`)
            .join(',')
        : p.attrs.type;
  }
  return out;
}

describe('privileged components (XEP-0356)', () => {
  let server: TestServer;
  let gw: TestComponent;
  before(async () => {
    server = await startTestServer({
      components: {
        [GW]: {
          secret: SECRET,
          privileges: {
            roster: 'both',
            message: 'outgoing',
            presence: 'managed_entity',
            iq: { 'vcard-temp': 'both', 'urn:xmpp:ping': 'get' },
          },
        },
        [PLAIN]: { secret: SECRET },
        [READER]: { secret: SECRET, privileges: { roster: 'set' } },
        [WATCHER]: { secret: SECRET, privileges: { roster: 'get', rosterPush: false, presence: 'roster' } },
      },
      modules: { ping: { idleMs: 0 } },
    });
    for (const u of ['romeo', 'juliet', 'nurse', 'tybalt']) await server.addUser(u, PW);
    gw = await TestComponent.connect(server.port('component'), GW, SECRET);
  });
  after(async () => {
    await gw.close();
    await server.destroy();
  });

  const login = (user: string, resource: string, presence = false) =>
    TestClient.login(server, user, PW, { resource, presence });

  test('§4.2/§5.2/§6.2/§7.2: after the handshake the server advertises exactly the configured privileges', async () => {
    const ad = await gw.receive(isAdvertisement);
    assert.equal(ad.attrs.from, 'localhost');
    assert.equal(ad.attrs.to, GW);
    assert.deepEqual(perms(ad), {
      roster: 'both',
      message: 'outgoing',
      presence: 'managed_entity',
      iq: 'vcard-temp=both,urn:xmpp:ping=get',
    });
    const rosterPerm = ad
      .getChild('privilege', NS_PRIVILEGE)!
      .getChildren('perm', NS_PRIVILEGE)
      .find((p) => p.attrs.access === 'roster')!;
    assert.equal(rosterPerm.attrs.push, 'true');
  });

  test('a component without privileges is told nothing and may do nothing privileged', async () => {
    const plain = await TestComponent.connect(server.port('component'), PLAIN, SECRET);
    try {
      const get = await plain.iq(
        xml('iq', { type: 'get', to: 'romeo@localhost' }, xml('query', { xmlns: NS.roster })),
      );
      assert.equal(get.attrs.type, 'error');
      assert.equal(condition(get), 'forbidden');
      await plain.nothing(isAdvertisement);
    } finally {
      await plain.close();
    }
  });

  test('§4.3: roster get on behalf of a user is answered from the user bare JID; set-only access may not read', async () => {
    const romeo = await login('romeo', 'roster');
    const add = await romeo.iq(
      xml(
        'iq',
        { type: 'set' },
        xml('query', { xmlns: NS.roster }, xml('item', { jid: 'juliet@localhost', name: 'J' })),
      ),
    );
    assert.equal(add.attrs.type, 'result');
    const res = await gw.iq(
      xml('iq', { type: 'get', to: 'romeo@localhost' }, xml('query', { xmlns: NS.roster })),
    );
    assert.equal(res.attrs.type, 'result', res.toString());
    assert.equal(res.attrs.from, 'romeo@localhost');
    const items = res.getChild('query', NS.roster)!.getChildren('item', NS.roster);
    assert.deepEqual(
      items.map((i) => [i.attrs.jid, i.attrs.name]),
      [['juliet@localhost', 'J']],
    );

    const reader = await TestComponent.connect(server.port('component'), READER, SECRET);
    try {
      const denied = await reader.iq(
        xml('iq', { type: 'get', to: 'romeo@localhost' }, xml('query', { xmlns: NS.roster })),
      );
      assert.equal(condition(denied), 'forbidden');
    } finally {
      await reader.close();
    }
    await romeo.close();
  });

  test('§4.3/§4.4: a privileged roster set adds items (with subscription) that the user sees pushed, and the component gets the push', async () => {
    const romeo = await login('romeo', 'pushes');
    await romeo.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS.roster }))); // interested in pushes
    const set = await gw.iq(
      xml(
        'iq',
        { type: 'set', to: 'romeo@localhost' },
        xml(
          'query',
          { xmlns: NS.roster },
          xml('item', { jid: `alice@${GW}`, name: 'Alice', subscription: 'both' }, xml('group', null, 'IRC')),
          xml('item', { jid: `bob@${GW}`, name: 'Bob', subscription: 'to' }),
        ),
      ),
    );
    assert.equal(set.attrs.type, 'result', set.toString());
    const pushed = await romeo.receive(
      (e) =>
        e.name === 'iq' &&
        e.attrs.type === 'set' &&
        e.getChild('query', NS.roster)?.getChild('item', NS.roster)?.attrs.jid === `alice@${GW}`,
    );
    const item = pushed.getChild('query', NS.roster)!.getChild('item', NS.roster)!;
    assert.equal(item.attrs.subscription, 'both');
    assert.equal(item.getChildText('group'), 'IRC');
    romeo.send(xml('iq', { type: 'result', id: pushed.attrs.id, to: pushed.attrs.from }));

    const toComponent = await gw.receive(
      (e) =>
        e.name === 'iq' &&
        e.attrs.type === 'set' &&
        e.getChild('query', NS.roster)?.getChild('item', NS.roster)?.attrs.jid === `bob@${GW}`,
    );
    assert.equal(toComponent.attrs.from, 'romeo@localhost');
    gw.send(xml('iq', { type: 'result', id: toComponent.attrs.id, to: 'romeo@localhost' }));

    const roster = await romeo.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS.roster })));
    const subs = Object.fromEntries(
      roster
        .getChild('query', NS.roster)!
        .getChildren('item', NS.roster)
        .map((i) => [i.attrs.jid, i.attrs.subscription]),
    );
    assert.equal(subs[`alice@${GW}`], 'both');
    assert.equal(subs[`bob@${GW}`], 'to');

    const removed = await gw.iq(
      xml(
        'iq',
        { type: 'set', to: 'romeo@localhost' },
        xml('query', { xmlns: NS.roster }, xml('item', { jid: `bob@${GW}`, subscription: 'remove' })),
      ),
    );
    assert.equal(removed.attrs.type, 'result');
    await romeo.receive(
      (e) =>
        e.name === 'iq' &&
        e.getChild('query', NS.roster)?.getChild('item', NS.roster)?.attrs.subscription === 'remove',
    );
    await romeo.close();
  });

  test('roster access is for accounts of the server: an unknown user gets service-unavailable', async () => {
    const res = await gw.iq(
      xml('iq', { type: 'get', to: 'nobody@localhost' }, xml('query', { xmlns: NS.roster })),
    );
    assert.equal(res.attrs.type, 'error');
    assert.equal(condition(res), 'service-unavailable');
  });

  test('§5.3: a message in the name of a user reaches its recipient from the user, with a sent carbon for the user', async () => {
    const juliet = await login('juliet', 'phone', true);
    const romeo = await login('romeo', 'laptop', true);
    const on = await romeo.iq(xml('iq', { type: 'set' }, xml('enable', { xmlns: NS.carbons })));
    assert.equal(on.attrs.type, 'result');
    gw.send(
      xml(
        'message',
        { to: 'localhost', id: 'wrap1' },
        xml(
          'privilege',
          { xmlns: NS_PRIVILEGE },
          xml(
            'forwarded',
            { xmlns: NS.forward },
            xml(
              'message',
              {
                xmlns: NS.client,
                from: 'romeo@localhost',
                to: 'juliet@localhost',
                type: 'chat',
                id: 'legacy-1',
              },
              xml('body', null, 'sent from IRC'),
            ),
          ),
        ),
      ),
    );
    const got = await juliet.receive(
      (e) => e.name === 'message' && e.getChildText('body') === 'sent from IRC',
    );
    assert.equal(got.attrs.from, 'romeo@localhost');
    assert.equal(got.attrs.type, 'chat');
    const carbon = await romeo.receive(
      (e) => e.name === 'message' && e.getChild('sent', NS.carbons) !== undefined,
    );
    const inner = carbon
      .getChild('sent', NS.carbons)!
      .getChild('forwarded', NS.forward)!
      .getChild('message', NS.client)!;
    assert.equal(inner.getChildText('body'), 'sent from IRC');
    assert.equal(inner.attrs.to, 'juliet@localhost');
    // and the user's archive has it as sent (XEP-0313)
    const fin = await romeo.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: NS.mam, queryid: 'sent' })));
    assert.equal(fin.attrs.type, 'result');
    const archived = romeo.received.filter(
      (e) =>
        e.getChild('result', NS.mam)?.attrs.queryid === 'sent' &&
        e
          .getChild('result', NS.mam)!
          .getChild('forwarded', NS.forward)
          ?.getChild('message', NS.client)
          ?.getChildText('body') === 'sent from IRC',
    );
    assert.equal(archived.length, 1);
    await juliet.close();
    await romeo.close();
  });

  test('§5.1: a forwarded message from a full JID, another server or an unknown account is refused with forbidden', async () => {
    const juliet = await login('juliet', 'guard', true);
    for (const [id, from] of [
      ['f-full', 'romeo@localhost/laptop'],
      ['f-remote', 'romeo@example.net'],
      ['f-unknown', 'nobody@localhost'],
    ] as const) {
      gw.send(
        xml(
          'message',
          { to: 'localhost', id },
          xml(
            'privilege',
            { xmlns: NS_PRIVILEGE },
            xml(
              'forwarded',
              { xmlns: NS.forward },
              xml('message', { xmlns: NS.client, from, to: 'juliet@localhost' }, xml('body', null, id)),
            ),
          ),
        ),
      );
      const err = await gw.receive((e) => e.name === 'message' && e.attrs.id === id);
      assert.equal(err.attrs.type, 'error', err.toString());
      assert.equal(condition(err), 'forbidden');
    }
    await juliet.nothing((e) => e.name === 'message' && (e.getChildText('body') ?? '').startsWith('f-'));
    await juliet.close();
  });

  test('§6: a privileged IQ waiting for a slow addressee does not hold up what the component sends next', async () => {
    // PLAIN is connected but answers nothing: the inner ping waits for its timeout.
    const plain = await TestComponent.connect(server.port('component'), PLAIN, SECRET);
    try {
      gw.send(
        xml(
          'iq',
          { type: 'get', to: 'romeo@localhost', id: 'priv-slow' },
          xml(
            'privileged_iq',
            { xmlns: NS_PRIVILEGE },
            xml(
              'iq',
              { xmlns: NS.client, type: 'get', id: 'inner-slow', to: `bot@${PLAIN}` },
              xml('ping', { xmlns: NS.ping }),
            ),
          ),
        ),
      );
      await plain.receive((e) => e.name === 'iq' && e.getChild('ping', NS.ping) !== undefined);
      const pong = await gw.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: NS.ping })));
      assert.equal(pong.attrs.type, 'result');
    } finally {
      await plain.close();
    }
  });

  test('§6.3: an IQ in the name of a user is sent as the user and its answer comes back wrapped', async () => {
    const vcard = xml('vCard', { xmlns: 'vcard-temp' }, xml('FN', null, 'Romeo Montague'));
    const res = await gw.iq(
      xml(
        'iq',
        { type: 'set', to: 'romeo@localhost', id: 'priv-1' },
        xml(
          'privileged_iq',
          { xmlns: NS_PRIVILEGE },
          xml('iq', { xmlns: NS.client, type: 'set', id: 'inner-1' }, vcard),
        ),
      ),
    );
    assert.equal(res.attrs.type, 'result', res.toString());
    assert.equal(res.attrs.from, 'romeo@localhost');
    const answer = res
      .getChild('privilege', NS_PRIVILEGE)
      ?.getChild('forwarded', NS.forward)
      ?.getChild('iq', NS.client);
    assert.ok(answer, res.toString());
    assert.equal(answer.attrs.type, 'result');
    assert.equal(answer.attrs.id, 'inner-1');

    // what the component set is what the user has: another user reads it
    const juliet = await login('juliet', 'vcard');
    const card = await juliet.iq(
      xml('iq', { type: 'get', to: 'romeo@localhost' }, xml('vCard', { xmlns: 'vcard-temp' })),
    );
    assert.equal(card.getChild('vCard', 'vcard-temp')?.getChildText('FN'), 'Romeo Montague');
    await juliet.close();
  });

  test('§6.3: an error answer is forwarded too', async () => {
    const res = await gw.iq(
      xml(
        'iq',
        { type: 'get', to: 'romeo@localhost' },
        xml(
          'privileged_iq',
          { xmlns: NS_PRIVILEGE },
          xml(
            'iq',
            { xmlns: NS.client, type: 'get', id: 'ping-x', to: 'nobody@localhost/gone' },
            xml('ping', { xmlns: 'urn:xmpp:ping' }),
          ),
        ),
      ),
    );
    assert.equal(res.attrs.type, 'result', res.toString());
    const answer = res
      .getChild('privilege', NS_PRIVILEGE)!
      .getChild('forwarded', NS.forward)!
      .getChild('iq', NS.client)!;
    assert.equal(answer.attrs.type, 'error');
    assert.equal(answer.attrs.id, 'ping-x');
    assert.equal(condition(answer), 'service-unavailable');
  });

  test('§6.3: every failed check gets forbidden', async () => {
    const ping = () => xml('ping', { xmlns: 'urn:xmpp:ping' });
    const cases: [string, Element][] = [
      [
        'namespace not granted',
        xml(
          'iq',
          { type: 'get', to: 'romeo@localhost' },
          xml(
            'privileged_iq',
            { xmlns: NS_PRIVILEGE },
            xml('iq', { xmlns: NS.client, type: 'get', id: 'a' }, xml('query', { xmlns: NS.roster })),
          ),
        ),
      ],
      [
        'type not granted',
        xml(
          'iq',
          { type: 'set', to: 'romeo@localhost' },
          xml(
            'privileged_iq',
            { xmlns: NS_PRIVILEGE },
            xml('iq', { xmlns: NS.client, type: 'set', id: 'b', to: 'localhost' }, ping()),
          ),
        ),
      ],
      [
        'types differ',
        xml(
          'iq',
          { type: 'set', to: 'romeo@localhost' },
          xml(
            'privileged_iq',
            { xmlns: NS_PRIVILEGE },
            xml('iq', { xmlns: NS.client, type: 'get', id: 'c', to: 'localhost' }, ping()),
          ),
        ),
      ],
      [
        'inner from is another user',
        xml(
          'iq',
          { type: 'get', to: 'romeo@localhost' },
          xml(
            'privileged_iq',
            { xmlns: NS_PRIVILEGE },
            xml(
              'iq',
              { xmlns: NS.client, type: 'get', id: 'd', to: 'localhost', from: 'juliet@localhost' },
              ping(),
            ),
          ),
        ),
      ],
      [
        'inner namespace is not jabber:client',
        xml(
          'iq',
          { type: 'get', to: 'romeo@localhost' },
          xml(
            'privileged_iq',
            { xmlns: NS_PRIVILEGE },
            xml('iq', { xmlns: 'jabber:server', type: 'get', id: 'e', to: 'localhost' }, ping()),
          ),
        ),
      ],
      [
        'not an account of the server',
        xml(
          'iq',
          { type: 'get', to: 'nobody@localhost' },
          xml(
            'privileged_iq',
            { xmlns: NS_PRIVILEGE },
            xml('iq', { xmlns: NS.client, type: 'get', id: 'f', to: 'localhost' }, ping()),
          ),
        ),
      ],
    ];
    for (const [what, stanza] of cases) {
      const res = await gw.iq(stanza);
      assert.equal(res.attrs.type, 'error', `${what}: ${res.toString()}`);
      assert.equal(condition(res), 'forbidden', what);
    }
  });

  test('§7.1/§7.3: the presence of users reaches a managed_entity component, and their unavailable presence too', async () => {
    const nurse = await login('nurse', 'balcony');
    nurse.send(xml('presence', null, xml('show', null, 'chat')));
    const seen = await gw.receive(
      (e) => e.name === 'presence' && e.attrs.from === nurse.jid && e.attrs.type === undefined,
    );
    assert.equal(seen.attrs.to, GW);
    assert.equal(seen.getChildText('show'), 'chat');
    await nurse.close();
    const gone = await gw.receive(
      (e) => e.name === 'presence' && e.attrs.from === nurse.jid && e.attrs.type === 'unavailable',
    );
    assert.equal(gone.attrs.to, GW);
  });

  test("§7.4/§8: a roster-presence component gets the users' contacts' presence, once per change; managed_entity ones do not", async () => {
    const watcher = await TestComponent.connect(server.port('component'), WATCHER, SECRET);
    const plain = await TestComponent.connect(server.port('component'), PLAIN, SECRET);
    try {
      const ad = await watcher.receive(isAdvertisement);
      assert.deepEqual(perms(ad), { roster: 'get', message: 'none', presence: 'roster' });
      const rosterPerm = ad
        .getChild('privilege', NS_PRIVILEGE)!
        .getChildren('perm', NS_PRIVILEGE)
        .find((p) => p.attrs.access === 'roster')!;
      assert.equal(rosterPerm.attrs.push, 'false');

      const romeo = await login('romeo', 'watched', true);
      const juliet = await login('juliet', 'watched', true);
      const bob = `bob@${PLAIN}/irc`;
      const status = (s: string) => xml('status', null, s);
      // bob (an address of another component) is a contact of both: they receive his presence
      for (const [c, user] of [
        [romeo, 'romeo@localhost'],
        [juliet, 'juliet@localhost'],
      ] as const) {
        c.send(xml('presence', { to: `bob@${PLAIN}`, type: 'subscribe' }));
        await plain.receive(
          (e) => e.name === 'presence' && e.attrs.type === 'subscribe' && e.attrs.from === user,
        );
        plain.send(xml('presence', { from: `bob@${PLAIN}`, to: user, type: 'subscribed' }));
        await c.receive((e) => e.name === 'presence' && e.attrs.type === 'subscribed');
      }
      // a stranger's directed presence is the user's business, not a roster contact's presence
      const eve = `eve@${PLAIN}/irc`;
      plain.send(xml('presence', { from: eve, to: 'romeo@localhost' }, status('psst')));
      await romeo.receive((e) => e.name === 'presence' && e.attrs.from === eve);
      // a contact tells two users the same presence
      plain.send(xml('presence', { from: bob, to: 'romeo@localhost' }, status('hi')));
      plain.send(xml('presence', { from: bob, to: 'juliet@localhost' }, status('hi')));
      await romeo.receive((e) => e.name === 'presence' && e.attrs.from === bob);
      await juliet.receive((e) => e.name === 'presence' && e.attrs.from === bob);
      const relayed = await watcher.receive((e) => e.name === 'presence' && e.attrs.from === bob);
      assert.equal(relayed.attrs.to, WATCHER);
      assert.equal(relayed.getChildText('status'), 'hi');
      // a change is news again
      plain.send(xml('presence', { from: bob, to: 'romeo@localhost', type: 'unavailable' }));
      await watcher.receive(
        (e) => e.name === 'presence' && e.attrs.from === bob && e.attrs.type === 'unavailable',
      );
      await watcher.nothing((e) => e.name === 'presence' && e.attrs.from === bob);
      await watcher.nothing((e) => e.name === 'presence' && e.attrs.from === eve, 0);
      // managed_entity is about the users only
      await gw.nothing((e) => e.name === 'presence' && e.attrs.from === bob, 0);
      await romeo.close();
      await juliet.close();
    } finally {
      await plain.close();
      await watcher.close();
    }
  });

  test('§7.4: presence "roster" without read access to rosters is a configuration error', () => {
    const parsed = configSchema.safeParse({
      components: { [WATCHER]: { secret: SECRET, privileges: { roster: 'set', presence: 'roster' } } },
    });
    assert.equal(parsed.success, false);
    assert.match(parsed.error!.issues.map((i) => i.message).join('\n'), /roster "get" or "both"/);
  });

  test('§8: a component that connects late gets the presence of users already online', async () => {
    const tybalt = await login('tybalt', 'street', true);
    // the server has the presence once the component was sent it
    await gw.receive(
      (e) => e.name === 'presence' && e.attrs.from === tybalt.jid && e.attrs.type === undefined,
    );
    await gw.close();
    gw = await TestComponent.connect(server.port('component'), GW, SECRET);
    await gw.receive(isAdvertisement);
    await gw.receive(
      (e) => e.name === 'presence' && e.attrs.from === tybalt.jid && e.attrs.type === undefined,
    );
    await tybalt.close();
  });
});
