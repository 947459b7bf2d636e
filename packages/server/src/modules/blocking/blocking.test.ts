import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml, type Element } from '@natter/xml';
import { parseJid } from '@natter/jid';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import { TestClient, type Target } from '../../../test/support/test-client.js';
import { builtinModules } from '../index.js';
import { blocklistMatches } from './xep-0191-matching.js';

const PW = 'secret-password';
/** Only the modules under test (other modules' hooks would change what the clients see). */
const MINE = new Set(['disco', 'ping', 'version', 'register', 'blocking', 'vcard', 'offline']);
const others = Object.fromEntries(
  builtinModules.filter((m) => !MINE.has(m.name)).map((m) => [m.name, false as const]),
);
const config = { hosts: ['localhost', 'example.org'], modules: { ...others, ping: { idleMs: 0 } } };

const blocklistGet = () => xml('iq', { type: 'get' }, xml('blocklist', { xmlns: NS.blocking }));
const block = (...jids: string[]) =>
  xml(
    'iq',
    { type: 'set' },
    xml(
      'block',
      { xmlns: NS.blocking },
      jids.map((jid) => xml('item', { jid })),
    ),
  );
const unblock = (...jids: string[]) =>
  xml(
    'iq',
    { type: 'set' },
    xml(
      'unblock',
      { xmlns: NS.blocking },
      jids.map((jid) => xml('item', { jid })),
    ),
  );
/** XEP-0191 IQs go without 'to' (§3.2); some tests address the account explicitly, which is equivalent (RFC 6120 §10.3.3). */
let explicit = false;
const own = (iq: Element, c: TestClient) => {
  explicit = !explicit;
  if (explicit) iq.attrs.to = c.jid.split('/')[0]!;
  return iq;
};
const items = (el: Element | undefined) =>
  (el?.getChildren('item', NS.blocking) ?? []).map((i) => i.attrs.jid);
const condition = (el: Element) =>
  el
    .getChild('error')
    ?.elements()
    .find((c) => c.xmlns === NS.stanzas && c.name !== 'text')?.name;

/** Logs in with initial presence and swallows its reflection to the account's own resources. */
const online = async (target: Target, user: string, resource: string) => {
  const c = await TestClient.login(target, user, PW, { resource, presence: true });
  await c.receive((e) => e.name === 'presence' && e.attrs.from === c.jid);
  return c;
};

describe('blocking command (XEP-0191)', () => {
  let server: TestServer;
  let n = 0;
  /** Two fresh users on localhost. */
  const pair = async () => {
    const a = `a${++n}`;
    const b = `b${n}`;
    await server.addUser(a, PW);
    await server.addUser(b, PW);
    return [a, b] as const;
  };
  before(async () => {
    server = await startTestServer(config);
  });
  after(() => server?.destroy());

  test('XEP-0191 §3.1: the server and accounts advertise urn:xmpp:blocking', async () => {
    const [a] = await pair();
    const c = await TestClient.login(server, a, PW, { resource: 'r' });
    const res = await c.iq(
      xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: NS.discoInfo })),
    );
    const vars = res
      .getChild('query', NS.discoInfo)
      ?.getChildren('feature')
      .map((f) => f.attrs.var);
    assert.ok(vars?.includes(NS.blocking));
    await c.close();
  });

  test('XEP-0191 §3.2–§3.3: an empty blocklist, then a block of several items pushed to the resources that asked for the list', async () => {
    const [a] = await pair();
    const r1 = await TestClient.login(server, a, PW, { resource: 'one' });
    const r2 = await TestClient.login(server, a, PW, { resource: 'two' });
    const empty = await r1.iq(own(blocklistGet(), r1));
    assert.equal(empty.attrs.type, 'result');
    assert.deepEqual(items(empty.getChild('blocklist', NS.blocking)), []);

    const res = await r2.iq(
      own(block('Romeo@Montague.lit', 'iago@shakespeare.lit/evil', 'spam.example'), r2),
    );
    assert.equal(res.attrs.type, 'result');
    const pushEl = await r1.receive(
      (e) => e.name === 'iq' && e.attrs.type === 'set' && !!e.getChild('block', NS.blocking),
    );
    assert.equal(pushEl.attrs.to, `${a}@localhost/one`);
    assert.deepEqual(items(pushEl.getChild('block', NS.blocking)), [
      'romeo@montague.lit',
      'iago@shakespeare.lit/evil',
      'spam.example',
    ]);
    r1.send(xml('iq', { type: 'result', id: pushEl.attrs.id, to: pushEl.attrs.from }));
    await r2.nothing((e) => e.name === 'iq' && e.attrs.type === 'set', 200); // r2 never asked for the list

    const list = await r2.iq(own(blocklistGet(), r2));
    assert.deepEqual(items(list.getChild('blocklist', NS.blocking)).sort(), [
      'iago@shakespeare.lit/evil',
      'romeo@montague.lit',
      'spam.example',
    ]);
    await Promise.all([r1.close(), r2.close()]);
  });

  test('XEP-0191 §3.3: a block without items is a bad-request; a malformed JID is jid-malformed', async () => {
    const [a] = await pair();
    const c = await TestClient.login(server, a, PW, { resource: 'r' });
    const none = await c.iq(own(block(), c));
    assert.equal(condition(none), 'bad-request');
    const bad = await c.iq(own(block('@@bad@@'), c));
    assert.equal(condition(bad), 'jid-malformed');
    const other = await c.iq(
      xml('iq', { type: 'get', to: `b${n}@localhost` }, xml('blocklist', { xmlns: NS.blocking })),
    );
    assert.equal(condition(other), 'forbidden');
    await c.close();
  });

  test("XEP-0191 §3.3: a blocked contact's messages and IQs get service-unavailable, its presence is dropped without an error", async () => {
    const [a, b] = await pair();
    const user = await online(server, a, 'r');
    const contact = await online(server, b, 'r');
    await user.iq(own(block(`${b}@localhost`), user));
    await contact.receive((e) => e.name === 'presence' && e.attrs.type === 'unavailable');

    contact.send(
      xml('message', { to: `${a}@localhost`, type: 'chat', id: 'blk-m' }, xml('body', null, 'hello?')),
    );
    const bounced = await contact.receive((e) => e.name === 'message' && e.attrs.type === 'error');
    assert.equal(bounced.attrs.id, 'blk-m');
    assert.equal(condition(bounced), 'service-unavailable');
    assert.equal(bounced.getChild('error')?.getChild('blocked', NS.blockingErrors), undefined);

    const iq = await contact.iq(
      xml('iq', { type: 'get', to: `${a}@localhost/r` }, xml('ping', { xmlns: NS.ping })),
    );
    assert.equal(condition(iq), 'service-unavailable');
    // IQs the server answers for the account (here a vCard get) are refused the same way
    const vc = await contact.iq(
      xml('iq', { type: 'get', to: `${a}@localhost` }, xml('vCard', { xmlns: NS.vcard })),
    );
    assert.equal(condition(vc), 'service-unavailable');

    contact.send(xml('presence', { to: `${a}@localhost` }));
    contact.send(xml('presence', { to: `${a}@localhost`, type: 'subscribe' }));
    contact.send(
      xml('message', { to: `${a}@localhost/r`, type: 'normal' }, xml('body', null, 'to the resource')),
    );
    await contact.receive((e) => e.name === 'message' && e.attrs.type === 'error');
    await user.nothing(
      (e) => e.name === 'message' || (e.name === 'presence' && e.attrs.from?.startsWith(b) === true),
      300,
    );
    await contact.nothing('presence', 100);
    await Promise.all([user.close(), contact.close()]);
  });

  test('XEP-0191 §3.3: stanzas from the user to a blocked contact get not-acceptable with <blocked xmlns="urn:xmpp:blocking:errors"/>', async () => {
    const [a, b] = await pair();
    const user = await online(server, a, 'r');
    const contact = await online(server, b, 'r');
    await user.iq(own(block(`${b}@localhost`), user));
    await contact.receive('presence'); // the unavailable presence of §3.3 (see below)

    user.send(xml('message', { to: `${b}@localhost`, type: 'chat', id: 'out-1' }, xml('body', null, 'psst')));
    const err = await user.receive((e) => e.name === 'message' && e.attrs.type === 'error');
    assert.equal(err.attrs.id, 'out-1');
    assert.equal(err.attrs.from, `${b}@localhost`);
    assert.equal(condition(err), 'not-acceptable');
    assert.ok(err.getChild('error')?.getChild('blocked', NS.blockingErrors));
    assert.equal(err.getChildText('body'), 'psst');

    const iq = await user.iq(
      xml('iq', { type: 'get', to: `${b}@localhost/r` }, xml('ping', { xmlns: NS.ping })),
    );
    assert.equal(condition(iq), 'not-acceptable');
    assert.ok(iq.getChild('error')?.getChild('blocked', NS.blockingErrors));
    await contact.nothing((e) => e.name === 'message' || e.name === 'iq', 300);
    await Promise.all([user.close(), contact.close()]);
  });

  test("XEP-0191 §3.3: blocking sends the contact unavailable presence from the user's available resources, and the user's presence no longer reaches it", async () => {
    const [a, b] = await pair();
    const user = await online(server, a, 'r');
    const idle = await TestClient.login(server, a, PW, { resource: 'idle' }); // not available: sends nothing
    const contact = await online(server, b, 'r');
    await user.iq(own(block(`${b}@localhost`), user));
    const p = await contact.receive('presence');
    assert.equal(p.attrs.type, 'unavailable');
    assert.equal(p.attrs.from, `${a}@localhost/r`);
    await contact.nothing('presence', 200);

    // A presence broadcast the presence module would route from the user to the contact is dropped…
    await server.core.router.route(
      xml(
        'presence',
        { xmlns: NS.client, from: `${a}@localhost/r`, to: `${b}@localhost` },
        xml('status', null, 'hidden'),
      ),
    );
    // …and one from the contact to the user too (the contact is blocked: inbound presence).
    await server.core.router.route(
      xml(
        'presence',
        { xmlns: NS.client, from: `${b}@localhost/r`, to: `${a}@localhost` },
        xml('status', null, 'unseen'),
      ),
    );
    await contact.nothing('presence', 200);
    await user.nothing((e) => e.name === 'presence' && e.attrs.from === `${b}@localhost/r`, 100);
    await Promise.all([user.close(), idle.close(), contact.close()]);
  });

  test('XEP-0191 §3.4–§3.5: unblocking one item pushes it and restores delivery (with current presence); unblocking all pushes an empty unblock', async () => {
    const [a, b] = await pair();
    const user = await TestClient.login(server, a, PW, { resource: 'r' });
    await user.iq(own(blocklistGet(), user));
    user.send(xml('presence', null, xml('status', null, 'here')));
    await user.receive('presence');
    const contact = await online(server, b, 'r');
    await user.iq(own(block(`${b}@localhost`, 'x@example.org', 'y@example.org'), user));
    await user.receive((e) => e.name === 'iq' && !!e.getChild('block', NS.blocking));
    await contact.receive((e) => e.name === 'presence' && e.attrs.type === 'unavailable');

    const res = await user.iq(own(unblock(`${b}@localhost`), user));
    assert.equal(res.attrs.type, 'result');
    const pushEl = await user.receive((e) => e.name === 'iq' && !!e.getChild('unblock', NS.blocking));
    assert.deepEqual(items(pushEl.getChild('unblock', NS.blocking)), [`${b}@localhost`]);
    const back = await contact.receive('presence');
    assert.equal(back.attrs.type, undefined);
    assert.equal(back.getChildText('status'), 'here');

    contact.send(xml('message', { to: `${a}@localhost`, type: 'chat' }, xml('body', null, 'friends again')));
    assert.equal((await user.receive('message')).getChildText('body'), 'friends again');

    await user.iq(own(unblock(), user));
    const all = await user.receive((e) => e.name === 'iq' && !!e.getChild('unblock', NS.blocking));
    assert.equal(all.getChild('unblock', NS.blocking)?.elements().length, 0);
    const list = await user.iq(own(blocklistGet(), user));
    assert.deepEqual(items(list.getChild('blocklist', NS.blocking)), []);
    await Promise.all([user.close(), contact.close()]);
  });

  test('XEP-0191 §6: blocking a domain blocks everyone at it; the block applies across sessions and restarts', async () => {
    const [a] = await pair();
    await server.addUser('mercutio', PW, 'example.org');
    const user = await online(server, a, 'r');
    await user.iq(own(block('example.org'), user));
    await user.close();

    await server.stop();
    server = await startTestServer(config, { dataDir: server.dataDir });
    const org2: Target = { domain: 'example.org', port: (k) => server.port(k) };
    const again = await online(server, a, 'r');
    const merc = await online(org2, 'mercutio', 'm');
    merc.send(
      xml('message', { to: `${a}@localhost`, type: 'chat', id: 'dm' }, xml('body', null, 'a plague')),
    );
    const err = await merc.receive((e) => e.name === 'message' && e.attrs.type === 'error');
    assert.equal(condition(err), 'service-unavailable');
    await again.nothing('message', 200);
    const list = await again.iq(own(blocklistGet(), again));
    assert.deepEqual(items(list.getChild('blocklist', NS.blocking)), ['example.org']);
    await Promise.all([again.close(), merc.close()]);
  });

  test('XEP-0191 §3.3 with XEP-0160: a blocked sender’s message to an offline user is refused, not stored; stored ones from a since-blocked sender are not delivered', async () => {
    const [a, b] = await pair();
    const contact = await online(server, b, 'r');
    contact.send(
      xml(
        'message',
        { to: `${a}@localhost`, type: 'chat', id: 'early' },
        xml('body', null, 'stored before the block'),
      ),
    );
    await contact.nothing('message', 200);
    const user = await TestClient.login(server, a, PW, { resource: 'r' }); // connected, no presence yet
    await user.iq(own(block(`${b}@localhost`), user));
    contact.send(
      xml(
        'message',
        { to: `${a}@localhost`, type: 'chat', id: 'late' },
        xml('body', null, 'after the block'),
      ),
    );
    const err = await contact.receive((e) => e.name === 'message' && e.attrs.type === 'error');
    assert.equal(err.attrs.id, 'late');
    assert.equal(condition(err), 'service-unavailable');
    user.send(xml('presence'));
    await user.nothing('message', 300);
    await Promise.all([user.close(), contact.close()]);
  });

  test('XEP-0191 §6: JID matching rules', () => {
    const list = new Set([
      'romeo@montague.lit',
      'iago@shakespeare.lit/evil',
      'capulet.lit/nurse',
      'spam.example',
    ]);
    const m = (j: string) => blocklistMatches(list, parseJid(j));
    assert.equal(m('romeo@montague.lit'), true);
    assert.equal(m('romeo@montague.lit/orchard'), true);
    assert.equal(m('benvolio@montague.lit'), false);
    assert.equal(m('iago@shakespeare.lit/evil'), true);
    assert.equal(m('iago@shakespeare.lit/good'), false);
    assert.equal(m('iago@shakespeare.lit'), false);
    assert.equal(m('capulet.lit/nurse'), true);
    assert.equal(m('nurse@capulet.lit/nurse'), true); // the resource at that domain, whoever the user
    assert.equal(m('nurse@capulet.lit/other'), false);
    assert.equal(m('spam.example'), true);
    assert.equal(m('bot@spam.example/x'), true);
    assert.equal(m('a.b.spam.example'), true);
    assert.equal(m('notspam.example'), false);
  });
});
