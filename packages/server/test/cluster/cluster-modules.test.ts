import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestCluster, type TestCluster } from '../support/test-cluster.js';
import { TestClient } from '../support/test-client.js';
import type { TestServer } from '../support/test-server.js';
import type { OfflineApi } from '../../src/modules/offline/offline.js';

const PW = 'cluster-pw';
let cluster: TestCluster;

/** Waits until `fn` is true (records and invalidations travel between nodes asynchronously). */
async function until(fn: () => boolean | Promise<boolean>, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Waits until every node knows the session `full` (remote records arrive a few ms after a login). */
const everywhere = (full: string) =>
  until(
    () => cluster.nodes.every((n) => n.core.sessions.get(full) !== undefined),
    `the record of ${full} on every node`,
  );

const login = async (node: TestServer, user: string, resource: string, presence = true) => {
  const c = await TestClient.login(node, user, PW, { resource, presence });
  await everywhere(`${user}@localhost/${resource}`);
  return c;
};

const ok = (iq: Element) => {
  assert.equal(iq.attrs.type, 'result', iq.toString());
  return iq;
};

/** The items of a roster get, by JID. */
async function roster(c: TestClient): Promise<Map<string, Element>> {
  const res = ok(await c.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS.roster }))));
  const items = res.getChild('query', NS.roster)?.getChildren('item', NS.roster) ?? [];
  return new Map(items.map((i) => [i.attrs.jid!, i]));
}

const presenceFrom = (from: string, type?: string) => (e: Element) =>
  e.name === 'presence' && e.attrs.from === from && e.attrs.type === type;

/**
 * `a` (account `aBare`) subscribes to `b`'s presence (account `bBare`), `b` approves; resolves
 * once `a` got `b`'s current presence (RFC 6121 §3.1.5), from `bFull`.
 */
async function subscribe(a: TestClient, aBare: string, b: TestClient, bBare: string, bFull: string) {
  a.send(xml('presence', { to: bBare, type: 'subscribe' }));
  await b.receive(presenceFrom(aBare, 'subscribe'));
  b.send(xml('presence', { to: aBare, type: 'subscribed' }));
  await a.receive(presenceFrom(bFull));
}

const message = (to: string, id: string, body: string) =>
  xml('message', { to, id, type: 'chat' }, xml('body', null, body));

before(async () => {
  cluster = await startTestCluster(2, { modules: { ping: { idleMs: 0 } } });
  for (const u of [
    'romeo',
    'juliet',
    'benvolio',
    'mercutio',
    'tybalt',
    'anna',
    'bob',
    'vera',
    'watcher',
    'olga',
    'oscar',
  ])
    await cluster.nodes[0]!.addUser(u, PW);
});
after(() => cluster.destroy());

describe('module caches in a cluster of two nodes (docs/decisions/0009)', () => {
  test('roster: a change on one node is what the other node serves next, from roster sets and subscriptions alike', async () => {
    const [n1, n2] = cluster.nodes;
    const r1 = await login(n1!, 'romeo', 'r1');
    const r2 = await login(n2!, 'romeo', 'r2');
    const j = await login(n2!, 'juliet', 'j');
    // Both nodes cache romeo's roster, n2 juliet's.
    assert.equal((await roster(r1)).size, 0);
    assert.equal((await roster(r2)).size, 0);
    assert.equal((await roster(j)).size, 0);

    ok(
      await r1.iq(
        xml(
          'iq',
          { type: 'set' },
          xml('query', { xmlns: NS.roster }, xml('item', { jid: 'juliet@localhost', name: 'Jules' })),
        ),
      ),
    );
    const seen = (await roster(r2)).get('juliet@localhost');
    assert.equal(seen?.attrs.name, 'Jules', 'n2 serves the item added on n1');
    assert.equal(seen?.attrs.subscription, 'none');

    // RFC 6121 §3: each state change is written by whichever node handles the stanza, and read by
    // the other one next (the approval needs the request stored on juliet's roster, and so on).
    await subscribe(r1, 'romeo@localhost', j, 'juliet@localhost', 'juliet@localhost/j');
    await subscribe(j, 'juliet@localhost', r1, 'romeo@localhost', 'romeo@localhost/r1');
    j.send(xml('presence', null, xml('status', null, 'juliet here')));
    await r1.receive(
      (e) => presenceFrom('juliet@localhost/j')(e) && e.getChildText('status') === 'juliet here',
    );
    r1.send(xml('presence', null, xml('status', null, 'romeo here')));
    await j.receive(
      (e) => presenceFrom('romeo@localhost/r1')(e) && e.getChildText('status') === 'romeo here',
    );
    assert.equal((await roster(r2)).get('juliet@localhost')?.attrs.subscription, 'both');
    assert.equal((await roster(r1)).get('juliet@localhost')?.attrs.subscription, 'both');
    assert.equal((await roster(j)).get('romeo@localhost')?.attrs.subscription, 'both');

    ok(
      await r2.iq(
        xml(
          'iq',
          { type: 'set' },
          xml(
            'query',
            { xmlns: NS.roster },
            xml('item', { jid: 'juliet@localhost', subscription: 'remove' }),
          ),
        ),
      ),
    );
    assert.equal((await roster(r1)).has('juliet@localhost'), false, 'n1 no longer serves the removed item');
    await Promise.all([r1.close(), r2.close(), j.close()]);
  });

  test('blocking (XEP-0191): a block or unblock on one node is enforced at once by the other', async () => {
    const [n1, n2] = cluster.nodes;
    const b1 = await login(n1!, 'benvolio', 'b1');
    const b2 = await login(n2!, 'benvolio', 'b2');
    const m = await login(n1!, 'mercutio', 'm');
    const t = await login(n2!, 'tybalt', 't');
    const block = (c: TestClient, name: 'block' | 'unblock', jid: string) =>
      c.iq(xml('iq', { type: 'set' }, xml(name, { xmlns: NS.blocking }, xml('item', { jid }))));

    // n1 caches benvolio's list (he blocks someone else there); tybalt, who blocks nobody, is not
    // even looked up on n1.
    ok(await block(b1, 'block', 'nurse@localhost'));
    m.send(message('benvolio@localhost/b1', 'x1', 'before'));
    await b1.receive((e) => e.name === 'message' && e.attrs.id === 'x1');

    ok(await block(b2, 'block', 'mercutio@localhost'));
    ok(await block(t, 'block', 'mercutio@localhost'));
    // §3.3: what mercutio sends them (routed by n1) is refused ...
    m.send(message('benvolio@localhost/b1', 'x2', 'blocked'));
    const e2 = await m.receive((e) => e.name === 'message' && e.attrs.id === 'x2');
    assert.equal(e2.attrs.type, 'error');
    assert.ok(e2.getChild('error')?.getChild('service-unavailable', NS.stanzas), e2.toString());
    m.send(message('tybalt@localhost/t', 'x3', 'blocked too'));
    const e3 = await m.receive((e) => e.name === 'message' && e.attrs.id === 'x3');
    assert.ok(e3.getChild('error')?.getChild('service-unavailable', NS.stanzas), e3.toString());
    // ... and what benvolio sends him from n1 gets the blocking error
    b1.send(message('mercutio@localhost', 'x4', 'to a blocked contact'));
    const e4 = await b1.receive((e) => e.name === 'message' && e.attrs.id === 'x4');
    const err = e4.getChild('error');
    assert.ok(err?.getChild('not-acceptable', NS.stanzas), e4.toString());
    assert.ok(err?.getChild('blocked', NS.blockingErrors), e4.toString());
    await b1.nothing((e) => e.name === 'message' && e.attrs.id === 'x2', 100);
    await t.nothing((e) => e.name === 'message' && e.attrs.id === 'x3', 100);
    await m.nothing((e) => e.name === 'message' && e.attrs.id === 'x4' && e.attrs.type !== 'error', 100);

    ok(await block(b2, 'unblock', 'mercutio@localhost'));
    ok(await block(t, 'unblock', 'mercutio@localhost'));
    m.send(message('benvolio@localhost/b1', 'x5', 'again'));
    await b1.receive((e) => e.name === 'message' && e.attrs.id === 'x5');
    m.send(message('tybalt@localhost/t', 'x6', 'again'));
    await t.receive((e) => e.name === 'message' && e.attrs.id === 'x6');
    b1.send(message('mercutio@localhost', 'x7', 'friends again'));
    const got = await m.receive((e) => e.name === 'message' && e.attrs.id === 'x7');
    assert.equal(got.attrs.type, 'chat');
    await Promise.all([b1.close(), b2.close(), m.close(), t.close()]);
  });

  test('MAM (XEP-0441): preferences set on one node decide what the other node archives', async () => {
    const [n1, n2] = cluster.nodes;
    const a1 = await login(n1!, 'anna', 'a1'); // n1 caches anna's preferences (the defaults)
    const a2 = await login(n2!, 'anna', 'a2');
    const bob = await login(n1!, 'bob', 'b');
    const archivedBy = (m: Element) =>
      m.getChildren('stanza-id', NS.sid).some((s) => s.attrs.by === 'anna@localhost');

    bob.send(message('anna@localhost/a1', 'k1', 'kept'));
    assert.ok(archivedBy(await a1.receive((e) => e.name === 'message' && e.attrs.id === 'k1')));

    const set = await a2.iq(
      xml(
        'iq',
        { type: 'set' },
        xml('prefs', { xmlns: NS.mam, default: 'never' }, xml('always'), xml('never')),
      ),
    );
    assert.equal(ok(set).getChild('prefs', NS.mam)?.attrs.default, 'never');
    bob.send(message('anna@localhost/a1', 'k2', 'not kept'));
    const m2 = await a1.receive((e) => e.name === 'message' && e.attrs.id === 'k2');
    assert.equal(archivedBy(m2), false, m2.toString());

    const queryid = 'q-anna';
    ok(await a1.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: NS.mam, queryid }))));
    const bodies = a1.received
      .filter((e) => e.getChild('result', NS.mam)?.attrs.queryid === queryid)
      .map(
        (e) =>
          e
            .getChild('result', NS.mam)
            ?.getChild('forwarded', NS.forward)
            ?.getChild('message', NS.client)
            ?.getChildText('body') ?? null,
      );
    assert.deepEqual(bodies, ['kept']);
    await Promise.all([a1.close(), a2.close(), bob.close()]);
  });

  test('vCard avatars (XEP-0153): a photo stored on one node is the hash the other node puts in presence', async () => {
    const [n1, n2] = cluster.nodes;
    const v1 = await login(n1!, 'vera', 'v1'); // n1 knows her hash: no vCard yet
    const w = await login(n2!, 'watcher', 'w');
    await subscribe(w, 'watcher@localhost', v1, 'vera@localhost', 'vera@localhost/v1');
    const v2 = await login(n2!, 'vera', 'v2', false);

    // (a PNG signature first: the avatar-conversion module accepts images only)
    const image = Buffer.concat([
      Buffer.from('89504e470d0a1a0a', 'hex'),
      Buffer.from('but bytes all the same'),
    ]);
    const hash = createHash('sha1').update(image).digest('hex');
    ok(
      await v2.iq(
        xml(
          'iq',
          { type: 'set' },
          xml(
            'vCard',
            { xmlns: NS.vcard },
            xml('FN', null, 'Vera'),
            xml('PHOTO', null, xml('TYPE', null, 'image/png'), xml('BINVAL', null, image.toString('base64'))),
          ),
        ),
      ),
    );
    // §3.1: the client sends fresh presence after changing its photo; n1 stamps it.
    v1.send(xml('presence', null, xml('status', null, 'new photo')));
    const p = await w.receive(
      (e) => presenceFrom('vera@localhost/v1')(e) && e.getChildText('status') === 'new photo',
    );
    assert.equal(p.getChild('x', NS.vcardUpdate)?.getChildText('photo', NS.vcardUpdate), hash, p.toString());
    await Promise.all([v1.close(), v2.close(), w.close()]);
  });

  test('offline (XEP-0160): two resources coming online on two nodes at once get each stored message exactly once', async () => {
    const [n1, n2] = cluster.nodes;
    const offline = n1!.core.hosts.get('localhost')!.provided.get('offline') as OfflineApi;
    const oscar = await login(n1!, 'oscar', 'o');
    const ids = ['o1', 'o2', 'o3', 'o4', 'o5'];
    for (const id of ids) oscar.send(message('olga@localhost', id, `stored ${id}`));
    await until(async () => (await offline.count('olga@localhost')) === ids.length, 'five stored messages');

    const [a, b] = await Promise.all([
      TestClient.login(n1!, 'olga', PW, { resource: 'a', presence: true }),
      TestClient.login(n2!, 'olga', PW, { resource: 'b', presence: true }),
    ]);
    await until(async () => (await offline.count('olga@localhost')) === 0, 'the messages taken from storage');
    const stored = (e: Element) => e.name === 'message' && e.getChild('delay', NS.delay) !== undefined;
    const got = { a: [] as string[], b: [] as string[] };
    const take = (c: TestClient, into: string[]) => {
      for (let i = 0; i < c.received.length;) {
        if (stored(c.received[i]!)) into.push(c.received.splice(i, 1)[0]!.attrs.id!);
        else i++;
      }
    };
    // Taken rows are written to the session right away: wait for all five, then for any extra copy.
    await until(() => {
      take(a, got.a);
      take(b, got.b);
      return got.a.length + got.b.length >= ids.length;
    }, 'five delivered messages');
    await Promise.all([a.nothing(stored, 300), b.nothing(stored, 300)]);
    assert.deepEqual([...got.a, ...got.b].sort(), ids, JSON.stringify(got));
    await Promise.all([oscar.close(), a.close(), b.close()]);
  });
});
