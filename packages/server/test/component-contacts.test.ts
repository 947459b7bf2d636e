// External components (XEP-0114) as entities of the server: listed in disco#items, answering
// disco#info themselves, and contacts with presence in users' rosters (RFC 6121 §3, §4).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from './support/test-server.js';
import { TestClient } from './support/test-client.js';
import { TestComponent } from './support/test-component.js';

const PW = 'contacts-pw';
const GW = 'gw.localhost';
const FAR = 'irc.example.net';
const SECRET = 'another-long-component-secret';
const ALICE = `alice@${GW}`;

const rosterItem = (jid: string) => (e: Element) =>
  e.name === 'iq' &&
  e.attrs.type === 'set' &&
  e.getChild('query', NS.roster)?.getChild('item', NS.roster)?.attrs.jid === jid;

describe('components as entities of the server', () => {
  let server: TestServer;
  let gw: TestComponent;
  before(async () => {
    server = await startTestServer({
      components: { [GW]: { secret: SECRET }, [FAR]: { secret: SECRET } },
      modules: { ping: { idleMs: 0 } },
    });
    for (const u of ['romeo', 'juliet']) await server.addUser(u, PW);
    gw = await TestComponent.connect(server.port('component'), GW, SECRET);
  });
  after(async () => {
    await gw.close();
    await server.destroy();
  });

  const login = (user: string, resource: string, presence = false) =>
    TestClient.login(server, user, PW, { resource, presence });

  test("XEP-0030: the server's disco#items lists its components, also one under no virtual host", async () => {
    const juliet = await login('juliet', 'disco');
    const res = await juliet.iq(
      xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: NS.discoItems })),
    );
    const jids = res
      .getChild('query', NS.discoItems)!
      .getChildren('item')
      .map((i) => i.attrs.jid);
    assert.ok(jids.includes(GW), jids.join(' '));
    assert.ok(jids.includes(FAR), jids.join(' '));
    await juliet.close();
  });

  test('XEP-0030: disco#info to a component domain is answered by the component', async () => {
    const juliet = await login('juliet', 'info');
    const asked = gw.receive((e) => e.name === 'iq' && e.getChild('query', NS.discoInfo) !== undefined);
    const answer = juliet.iq(
      xml('iq', { type: 'get', to: GW, id: 'info1' }, xml('query', { xmlns: NS.discoInfo })),
    );
    const req = await asked;
    assert.equal(req.attrs.from, juliet.jid);
    gw.send(
      xml(
        'iq',
        { type: 'result', id: req.attrs.id, to: req.attrs.from },
        xml(
          'query',
          { xmlns: NS.discoInfo },
          xml('identity', { category: 'gateway', type: 'irc', name: 'IRC' }),
          xml('feature', { var: 'jabber:iq:register' }),
        ),
      ),
    );
    const res = await answer;
    assert.equal(res.attrs.type, 'result');
    assert.equal(res.attrs.from, GW);
    assert.equal(res.getChild('query', NS.discoInfo)?.getChild('identity')?.attrs.type, 'irc');
    await juliet.close();
  });

  test('RFC 6121 §3/§4: a component contact subscribes, is probed, sees broadcasts, and goes unavailable with its component', async () => {
    const romeo = await login('romeo', 'desk');
    await romeo.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS.roster })));
    romeo.send(xml('presence'));

    // §3.1: the subscription request reaches the component, stamped with the user's bare JID
    romeo.send(xml('presence', { type: 'subscribe', to: ALICE }));
    const sub = await gw.receive((e) => e.name === 'presence' && e.attrs.type === 'subscribe');
    assert.equal(sub.attrs.from, 'romeo@localhost');
    assert.equal(sub.attrs.to, ALICE);
    const pending = await romeo.receive(rosterItem(ALICE));
    assert.equal(pending.getChild('query', NS.roster)!.getChild('item', NS.roster)!.attrs.ask, 'subscribe');

    // §3.1.5: the component approves: the roster is pushed, then its presence arrives
    gw.send(xml('presence', { type: 'subscribed', from: ALICE, to: 'romeo@localhost' }));
    const approved = await romeo.receive(
      (e) =>
        rosterItem(ALICE)(e) &&
        e.getChild('query', NS.roster)!.getChild('item', NS.roster)!.attrs.subscription === 'to',
    );
    assert.ok(approved);
    gw.send(xml('presence', { from: `${ALICE}/irc`, to: 'romeo@localhost' }, xml('status', null, 'on IRC')));
    const available = await romeo.receive((e) => e.name === 'presence' && e.attrs.from === `${ALICE}/irc`);
    assert.equal(available.getChildText('status'), 'on IRC');

    // the component asks for romeo's presence; romeo approves: subscription both
    gw.send(xml('presence', { type: 'subscribe', from: ALICE, to: 'romeo@localhost' }));
    await romeo.receive(
      (e) => e.name === 'presence' && e.attrs.type === 'subscribe' && e.attrs.from === ALICE,
    );
    romeo.send(xml('presence', { type: 'subscribed', to: ALICE }));
    await gw.receive(
      (e) => e.name === 'presence' && e.attrs.type === 'subscribed' && e.attrs.from === 'romeo@localhost',
    );
    // §3.1.5: the new subscriber gets the user's current presence
    await gw.receive(
      (e) => e.name === 'presence' && e.attrs.from === romeo.jid && e.attrs.type === undefined,
    );

    // §4.4: a broadcast reaches the component contact
    romeo.send(xml('presence', null, xml('show', null, 'away')));
    const away = await gw.receive(
      (e) => e.name === 'presence' && e.attrs.from === romeo.jid && e.getChildText('show') === 'away',
    );
    assert.equal(away.attrs.to, ALICE);

    // §4.2.2: a new session's initial presence probes the component contact, which answers
    const phone = await login('romeo', 'phone');
    phone.send(xml('presence'));
    const probe = await gw.receive(
      (e) => e.name === 'presence' && e.attrs.type === 'probe' && e.attrs.to === ALICE,
    );
    assert.equal(probe.attrs.from, phone.jid);
    gw.send(
      xml('presence', { from: `${ALICE}/irc`, to: probe.attrs.from }, xml('status', null, 'still on IRC')),
    );
    await phone.receive((e) => e.name === 'presence' && e.attrs.from === `${ALICE}/irc`);

    // the component goes away: both sessions are told its address is unavailable
    await gw.close();
    const gone = (e: Element) =>
      e.name === 'presence' && e.attrs.from === `${ALICE}/irc` && e.attrs.type === 'unavailable';
    await romeo.receive(gone);
    await phone.receive(gone);

    // and it may come back at once
    gw = await TestComponent.connect(server.port('component'), GW, SECRET);
    await romeo.close();
    await phone.close();
  });
  test('XEP-0191 §3.3: a user who blocked a component address gets nothing from it; its IQs to the bare JID get service-unavailable', async () => {
    const romeo = await login('romeo', 'blocker', true);
    const blocked = `mallory@${GW}`;
    const set = await romeo.iq(
      xml('iq', { type: 'set' }, xml('block', { xmlns: NS.blocking }, xml('item', { jid: blocked }))),
    );
    assert.equal(set.attrs.type, 'result');
    const condition = (e: Element) =>
      e
        .getChild('error')
        ?.elements()
        .find((c) => c.xmlns === NS.stanzas)?.name;
    // IQs to the bare JID are answered by the server for the user: refused all the same.
    for (const [ns, name] of [
      [NS.vcard, 'vCard'],
      [NS.last, 'query'],
      [NS.ping, 'ping'],
      [NS.discoInfo, 'query'],
    ] as const) {
      const answer = await gw.iq(
        xml('iq', { type: 'get', from: blocked, to: 'romeo@localhost' }, xml(name, { xmlns: ns })),
      );
      assert.equal(answer.attrs.type, 'error', `${ns}: ${answer.toString()}`);
      assert.equal(condition(answer), 'service-unavailable', ns);
    }
    gw.send(
      xml('message', { from: blocked, to: 'romeo@localhost', id: 'm-blocked' }, xml('body', null, 'hi')),
    );
    const bounced = await gw.receive((e) => e.name === 'message' && e.attrs.id === 'm-blocked');
    assert.equal(condition(bounced), 'service-unavailable');
    // Another address of the same component is not blocked.
    const ok = await gw.iq(
      xml(
        'iq',
        { type: 'get', from: `friend@${GW}`, to: 'romeo@localhost' },
        xml('ping', { xmlns: NS.ping }),
      ),
    );
    assert.equal(ok.attrs.type, 'result');
    await romeo.nothing((e) => e.name === 'message' && e.attrs.id === 'm-blocked');
    await romeo.iq(
      xml('iq', { type: 'set' }, xml('unblock', { xmlns: NS.blocking }, xml('item', { jid: blocked }))),
    );
    await romeo.close();
  });
});
