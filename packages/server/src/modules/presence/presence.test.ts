import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import { TestClient } from '../../../test/support/test-client.js';

const PW = 'secret-password';
const CONFIG = { modules: { ping: { idleMs: 0 } } };

const isPush = (e: Element) =>
  e.name === 'iq' && e.attrs.type === 'set' && e.getChild('query', NS.roster) !== undefined;
const pushItem = (e: Element) => e.getChild('query', NS.roster)!.getChild('item', NS.roster)!;
const pushFor = (jid: string) => (e: Element) => isPush(e) && pushItem(e).attrs.jid === jid;
const presence = (type: string | undefined, from: string) => (e: Element) =>
  e.name === 'presence' &&
  e.attrs.type === type &&
  (e.attrs.from === from || e.attrs.from?.startsWith(from + '/') === true);
const errorCondition = (e: Element) =>
  e
    .getChild('error')
    ?.elements()
    .find((c) => c.xmlns === NS.stanzas && c.name !== 'text')?.name;

/** The state a push announces, as "subscription[+ask][+approved]". */
function state(push: Element): string {
  const i = pushItem(push);
  return [
    i.attrs.subscription,
    i.attrs.ask && `ask=${i.attrs.ask}`,
    i.attrs.approved && `approved=${i.attrs.approved}`,
  ]
    .filter(Boolean)
    .join(' ');
}

async function rosterOf(c: TestClient): Promise<Record<string, string>> {
  const res = await c.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS.roster })));
  const out: Record<string, string> = {};
  for (const i of res.getChild('query', NS.roster)?.getChildren('item', NS.roster) ?? []) {
    out[i.attrs.jid!] = [
      i.attrs.subscription,
      i.attrs.ask && `ask=${i.attrs.ask}`,
      i.attrs.approved && `approved=${i.attrs.approved}`,
    ]
      .filter(Boolean)
      .join(' ');
  }
  return out;
}

describe('presence (RFC 6121 §3, §4)', () => {
  let server: TestServer;
  const clients: TestClient[] = [];
  const users = [
    'alice',
    'bob',
    'carol',
    'dave',
    'erin',
    'frank',
    'grace',
    'heidi',
    'ivan',
    'judy',
    'mallory',
    'oscar',
    'peggy',
    'trent',
    'victor',
    'walter',
    'xavier',
    'yolanda',
    'zed',
    'quinn',
    'rupert',
  ];

  /** Logs in, gets the roster (interested resource), optionally sends initial presence. */
  const login = async (
    user: string,
    resource = 'r',
    opts: { presence?: boolean | Element; rosterGet?: boolean } = {},
  ) => {
    const c = await TestClient.login(server, user, PW, { resource });
    clients.push(c);
    if (opts.rosterGet !== false) await rosterOf(c);
    if (opts.presence !== false) {
      c.send(opts.presence instanceof Object ? opts.presence : xml('presence'));
      await c.receive(presence(undefined, `${user}@localhost/${resource}`)); // own echo (§4.2.2)
    }
    return c;
  };

  /** A complete mutual subscription between two online clients. */
  const befriend = async (a: TestClient, aUser: string, b: TestClient, bUser: string) => {
    const aj = `${aUser}@localhost`;
    const bj = `${bUser}@localhost`;
    a.send(xml('presence', { to: bj, type: 'subscribe' }));
    await b.receive(presence('subscribe', aj));
    b.send(xml('presence', { to: aj, type: 'subscribed' }));
    await a.receive(presence('subscribed', bj));
    b.send(xml('presence', { to: aj, type: 'subscribe' }));
    await a.receive(presence('subscribe', bj));
    a.send(xml('presence', { to: bj, type: 'subscribed' }));
    await b.receive(presence('subscribed', aj));
    await a.receive((e) => pushFor(bj)(e) && pushItem(e).attrs.subscription === 'both');
    await b.receive((e) => pushFor(aj)(e) && pushItem(e).attrs.subscription === 'both');
    a.received.length = 0;
    b.received.length = 0;
  };

  before(async () => {
    server = await startTestServer(CONFIG);
    for (const u of users) await server.addUser(u, PW);
  });
  after(async () => {
    for (const c of clients) c.kill();
    await server.destroy();
  });

  test('RFC 6121 §3.1, A.2.1, A.3.1–A.3.2: the subscription handshake both ways, with the exact roster pushes, ends in "both"', async () => {
    const a = await login('alice');
    const b = await login('bob', 'r', { presence: xml('presence', null, xml('show', null, 'chat')) });

    // alice asks: her item becomes none + pending out; bob sees the request and no push (§3.1.3)
    a.send(xml('presence', { to: 'bob@localhost', type: 'subscribe' }, xml('status', null, 'hi, bob')));
    assert.equal(state(await a.receive(pushFor('bob@localhost'))), 'none ask=subscribe');
    const req = await b.receive(presence('subscribe', 'alice@localhost'));
    assert.equal(req.attrs.from, 'alice@localhost', 'stamped with the bare JID (§3.1.2)');
    assert.equal(req.getChildText('status'), 'hi, bob');
    await b.nothing(isPush, 150);

    // bob approves: from on his side, to on hers, and she receives his current presence (§3.1.5)
    b.send(xml('presence', { to: 'alice@localhost', type: 'subscribed' }));
    assert.equal(state(await b.receive(pushFor('alice@localhost'))), 'from');
    assert.equal(state(await a.receive(pushFor('bob@localhost'))), 'to');
    assert.equal((await a.receive(presence('subscribed', 'bob@localhost'))).attrs.from, 'bob@localhost');
    const current = await a.receive(presence(undefined, 'bob@localhost/r'));
    assert.equal(current.getChildText('show'), 'chat');

    // and back: bob asks alice
    b.send(xml('presence', { to: 'alice@localhost', type: 'subscribe' }));
    assert.equal(state(await b.receive(pushFor('alice@localhost'))), 'from ask=subscribe');
    await a.receive(presence('subscribe', 'bob@localhost'));
    await a.nothing(isPush, 150);
    a.send(xml('presence', { to: 'bob@localhost', type: 'subscribed' }));
    assert.equal(state(await a.receive(pushFor('bob@localhost'))), 'both');
    assert.equal(state(await b.receive(pushFor('alice@localhost'))), 'both');
    await b.receive(presence('subscribed', 'alice@localhost'));
    await b.receive(presence(undefined, 'alice@localhost/r'));
    await a.nothing(isPush, 150);
    await b.nothing(isPush, 150);
    assert.deepEqual(await rosterOf(a), { 'bob@localhost': 'both' });
    assert.deepEqual(await rosterOf(b), { 'alice@localhost': 'both' });
  });

  test('RFC 6121 §3.1.3: a request to an offline user is stored and delivered at each initial presence until answered', async () => {
    const c = await login('carol');
    c.send(xml('presence', { to: 'dave@localhost', type: 'subscribe' }));
    await c.receive(pushFor('dave@localhost'));
    const d1 = await login('dave', 'one', { presence: false });
    await d1.nothing((e) => e.name === 'presence', 150);
    d1.send(xml('presence'));
    await d1.receive(presence('subscribe', 'carol@localhost'));
    const d2 = await login('dave', 'two', { presence: false });
    d2.send(xml('presence'));
    await d2.receive(presence('subscribe', 'carol@localhost'));
    // A.3.1: a repeated request while one is pending is not delivered again
    c.send(xml('presence', { to: 'dave@localhost', type: 'subscribe' }));
    await d1.nothing(presence('subscribe', 'carol@localhost'), 200);
    // answered: no longer re-delivered
    d2.send(xml('presence', { to: 'carol@localhost', type: 'unsubscribed' }));
    assert.equal(state(await c.receive(pushFor('dave@localhost'))), 'none');
    await c.receive(presence('unsubscribed', 'dave@localhost'));
    const d3 = await login('dave', 'three', { presence: false });
    d3.send(xml('presence'));
    await d3.nothing(presence('subscribe', 'carol@localhost'), 200);
  });

  test('RFC 6121 §3.4: pre-approval is advertised, recorded as approved="true", and answers the later request without delivering it', async () => {
    const e = await login('erin');
    assert.ok(e.features?.getChild('sub', 'urn:xmpp:features:pre-approval'));
    const f = await login('frank');
    e.send(xml('presence', { to: 'frank@localhost', type: 'subscribed' }));
    assert.equal(state(await e.receive(pushFor('frank@localhost'))), 'none approved=true');
    await f.nothing((x) => x.name === 'presence' || isPush(x), 150); // not routed (A.2.3)

    f.send(xml('presence', { to: 'erin@localhost', type: 'subscribe' }));
    assert.equal(state(await f.receive(pushFor('erin@localhost'))), 'none ask=subscribe');
    assert.equal(state(await e.receive(pushFor('frank@localhost'))), 'from');
    await f.receive(presence('subscribed', 'erin@localhost'));
    assert.equal(state(await f.receive(pushFor('erin@localhost'))), 'to');
    await f.receive(presence(undefined, 'erin@localhost/r'));
    await e.nothing(presence('subscribe', 'frank@localhost'), 150);
  });

  test('RFC 6121 §3.4: unsubscribed cancels a pre-approval, without routing', async () => {
    const g = await login('grace');
    g.send(xml('presence', { to: 'heidi@localhost', type: 'subscribed' }));
    assert.equal(state(await g.receive(pushFor('heidi@localhost'))), 'none approved=true');
    g.send(xml('presence', { to: 'heidi@localhost', type: 'unsubscribed' }));
    assert.equal(state(await g.receive(pushFor('heidi@localhost'))), 'none');
    const h = await login('heidi');
    h.send(xml('presence', { to: 'grace@localhost', type: 'subscribe' }));
    await g.receive(presence('subscribe', 'heidi@localhost')); // delivered: no pre-approval left
    await h.nothing(presence('subscribed', 'grace@localhost'), 150);
  });

  test('RFC 6121 §3.2, §3.3, A.2.2, A.2.4, A.3.3, A.3.4: unsubscribe, unsubscribed and cancel, with unavailable and ignored stanzas', async () => {
    const a = await login('ivan');
    const b = await login('judy');
    await befriend(a, 'ivan', b, 'judy');

    // ivan unsubscribes from judy: both → from for him, both → to for her; he sees her go unavailable
    a.send(xml('presence', { to: 'judy@localhost', type: 'unsubscribe' }));
    assert.equal(state(await a.receive(pushFor('judy@localhost'))), 'from');
    assert.equal(state(await b.receive(pushFor('ivan@localhost'))), 'to');
    await b.receive(presence('unsubscribe', 'ivan@localhost'));
    await a.receive(presence('unavailable', 'judy@localhost/r'));

    // judy "cancels" a subscription ivan no longer has: silently ignored (A.2.4, "To")
    b.send(xml('presence', { to: 'ivan@localhost', type: 'unsubscribed' }));
    await a.nothing((e) => isPush(e) || presence('unsubscribed', 'judy@localhost')(e), 200);
    await b.nothing(isPush, 50);
    // an unsolicited "subscribed" is not delivered (A.3.2, "From") — on judy's side it is a pre-approval
    b.send(xml('presence', { to: 'ivan@localhost', type: 'subscribed' }));
    await a.nothing(presence('subscribed', 'judy@localhost'), 200);

    // ivan cancels judy's subscription: from → none / to → none; judy receives his unavailable
    a.send(xml('presence', { to: 'judy@localhost', type: 'unsubscribed' }));
    assert.equal(state(await a.receive(pushFor('judy@localhost'))), 'none');
    assert.equal(
      state(
        await b.receive((e) => pushFor('ivan@localhost')(e) && pushItem(e).attrs.subscription === 'none'),
      ),
      'none approved=true',
    );
    await b.receive(presence('unsubscribed', 'ivan@localhost'));
    await b.receive(presence('unavailable', 'ivan@localhost/r'));
    assert.deepEqual(await rosterOf(a), { 'judy@localhost': 'none' });
  });

  test('RFC 6121 §2.5.2: removing a contact unsubscribes both ways and the contact sees the user go unavailable', async () => {
    const a = await login('mallory');
    const b = await login('oscar');
    await befriend(a, 'mallory', b, 'oscar');
    const res = await a.iq(
      xml(
        'iq',
        { type: 'set' },
        xml('query', { xmlns: NS.roster }, xml('item', { jid: 'oscar@localhost', subscription: 'remove' })),
      ),
    );
    assert.equal(res.attrs.type, 'result');
    assert.equal(state(await a.receive(pushFor('oscar@localhost'))), 'remove');
    await b.receive(presence('unsubscribe', 'mallory@localhost'));
    await b.receive(presence('unsubscribed', 'mallory@localhost'));
    await b.receive(presence('unavailable', 'mallory@localhost/r'));
    assert.deepEqual(await rosterOf(b), { 'mallory@localhost': 'none' });
  });

  test("RFC 6121 §4.4, §4.5, §4.2.2: updates (show, status) and unavailable reach subscribers and the other resources, and a new resource learns the others' presence", async () => {
    const a = await login('peggy');
    const b = await login('trent');
    await befriend(a, 'peggy', b, 'trent');
    const a2 = await login('peggy', 'second');
    await a2.receive(presence(undefined, 'peggy@localhost/r')); // the other resource's presence (§4.2.2)
    await b.receive(presence(undefined, 'peggy@localhost/second'));
    await a.receive(presence(undefined, 'peggy@localhost/second'));
    for (const show of ['away', 'dnd', 'xa', 'chat']) {
      a.send(
        xml(
          'presence',
          null,
          xml('show', null, show),
          xml('status', null, `now ${show}`),
          xml('priority', null, '5'),
        ),
      );
      const got = await b.receive(presence(undefined, 'peggy@localhost/r'));
      assert.equal(got.getChildText('show'), show);
      assert.equal(got.getChildText('status'), `now ${show}`);
      assert.equal(got.attrs.to, 'trent@localhost');
      assert.equal((await a2.receive(presence(undefined, 'peggy@localhost/r'))).getChildText('show'), show);
    }
    a.send(xml('presence', { type: 'unavailable' }, xml('status', null, 'bye')));
    assert.equal(
      (await b.receive(presence('unavailable', 'peggy@localhost/r'))).getChildText('status'),
      'bye',
    );
    await a2.receive(presence('unavailable', 'peggy@localhost/r'));
  });

  test('RFC 6121 §4.3: at login the server probes the contacts and answers with their current presence', async () => {
    const a = await login('victor');
    const b = await login('walter', 'r', {
      presence: xml('presence', null, xml('show', null, 'dnd'), xml('status', null, 'busy')),
    });
    await befriend(a, 'victor', b, 'walter');
    const late = await login('victor', 'late', { presence: false });
    late.send(xml('presence'));
    const answer = await late.receive(presence(undefined, 'walter@localhost/r'));
    assert.equal(answer.getChildText('show'), 'dnd');
    assert.equal(answer.getChildText('status'), 'busy');
    assert.equal(answer.attrs.to, 'victor@localhost/late');
    // and the other side sees the new resource
    await b.receive(presence(undefined, 'victor@localhost/late'));
  });

  test('RFC 6121 §4.5.2: an unclean disconnect makes the contacts receive unavailable', async () => {
    const a = await login('victor', 'crash');
    const b = await login('walter', 'watch');
    await b.receive(presence(undefined, 'victor@localhost/crash')).catch(() => undefined);
    a.kill();
    const gone = await b.receive(presence('unavailable', 'victor@localhost/crash'));
    assert.equal(gone.attrs.from, 'victor@localhost/crash');
  });

  test('XEP-0077 §3.2, RFC 6121 §2.5.2: a deleted account leaves its contacts\' rosters at "none" and goes unavailable', async () => {
    const q = await login('quinn');
    const r = await login('rupert');
    await befriend(q, 'quinn', r, 'rupert');
    const res = await q.iq(
      xml('iq', { type: 'set', to: 'localhost' }, xml('query', { xmlns: NS.register }, xml('remove'))),
    );
    assert.equal(res.attrs.type, 'result');
    await r.receive(presence('unavailable', 'quinn@localhost/r'));
    await r.receive((e) => pushFor('quinn@localhost')(e) && pushItem(e).attrs.subscription === 'none');
    assert.deepEqual(await rosterOf(r), { 'quinn@localhost': 'none' });
  });

  test('RFC 6121 §4.6: directed presence reaches a non-contact, who then receives unavailable (explicit or on disconnect)', async () => {
    const a = await login('alice', 'directed');
    const stranger = await login('oscar', 'watch');
    a.send(xml('presence', { to: 'oscar@localhost' }, xml('status', null, 'psst')));
    assert.equal(
      (await stranger.receive(presence(undefined, 'alice@localhost/directed'))).getChildText('status'),
      'psst',
    );
    a.send(xml('presence', { type: 'unavailable' }));
    await stranger.receive(presence('unavailable', 'alice@localhost/directed'));

    const a2 = await login('alice', 'directed2');
    a2.send(xml('presence', { to: 'oscar@localhost/watch' }));
    await stranger.receive(presence(undefined, 'alice@localhost/directed2'));
    a2.kill();
    await stranger.receive(presence('unavailable', 'alice@localhost/directed2'));
  });

  test('RFC 6121 §3.1.1, §8.5.1: subscribing to oneself is refused; to an unknown user is answered "unsubscribed"; a remote contact stays pending', async () => {
    const a = await login('carol', 'errs');
    a.send(xml('presence', { to: 'carol@localhost', type: 'subscribe', id: 'self' }));
    const self = await a.receive(
      (e) => e.name === 'presence' && e.attrs.type === 'error' && e.attrs.id === 'self',
    );
    assert.equal(errorCondition(self), 'not-allowed');

    a.send(xml('presence', { to: 'nobody@localhost', type: 'subscribe' }));
    assert.equal(state(await a.receive(pushFor('nobody@localhost'))), 'none ask=subscribe');
    await a.receive(presence('unsubscribed', 'nobody@localhost'));
    assert.equal(state(await a.receive(pushFor('nobody@localhost'))), 'none');

    // a remote contact: the item waits in "none + pending out" (the router answers remote-server-not-found)
    a.send(xml('presence', { to: 'someone@elsewhere.example', type: 'subscribe', id: 'remote' }));
    assert.equal(state(await a.receive(pushFor('someone@elsewhere.example'))), 'none ask=subscribe');

    a.send(xml('presence', { to: 'carol@localhost', type: 'bogus', id: 'bogus' }));
    const bogus = await a.receive((e) => e.name === 'presence' && e.attrs.id === 'bogus');
    assert.equal(errorCondition(bogus), 'bad-request');
  });

  test('RFC 6121 §3.1.3: pending requests and rosters survive a restart of the server', async () => {
    const x = await login('xavier');
    const y = await login('yolanda');
    await befriend(x, 'xavier', y, 'yolanda');
    x.send(xml('presence', { to: 'zed@localhost', type: 'subscribe' }));
    await x.receive(pushFor('zed@localhost'));
    for (const c of clients.splice(0)) c.kill();
    await server.stop();
    server = await startTestServer(CONFIG, { dataDir: server.dataDir });
    const z = await login('zed', 'back', { presence: false });
    z.send(xml('presence'));
    await z.receive(presence('subscribe', 'xavier@localhost'));
    assert.deepEqual(await rosterOf(await login('xavier', 'again', { presence: false })), {
      'yolanda@localhost': 'both',
      'zed@localhost': 'none ask=subscribe',
    });
    assert.deepEqual(await rosterOf(await login('yolanda', 'again', { presence: false })), {
      'xavier@localhost': 'both',
    });
  });
});
