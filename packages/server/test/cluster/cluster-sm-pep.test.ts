import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestCluster, type TestCluster } from '../support/test-cluster.js';
import type { TestServer } from '../support/test-server.js';
import { befriend } from '../support/subscriptions.js';
import { TestClient } from '../support/test-client.js';
import { enableSm, trackSm } from '../hostile/support/sm-client.js';
import { capsVer } from '../../src/modules/pep/xep-0115-caps.js';

const PW = 'cluster-pw';
const TUNE = 'http://jabber.org/protocol/tune';
let cluster: TestCluster;
let unique = 0;

/** Waits until `fn` is true (records and bus messages travel between nodes asynchronously). */
async function until(fn: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Whether `node` knows `full` as an available resource (its own session or another node's record). */
const seesAvailable = (node: TestServer, full: string) => node.core.sessions.get(full)?.available === true;

/**
 * Sends available presence with XEP-0115 caps for `features`, plus a feature of its own so that no
 * node knows the hash yet, and answers every disco#info query about them, whichever node asks.
 */
function presenceWithCaps(c: TestClient, features: string[]): void {
  const query = xml(
    'query',
    { xmlns: NS.discoInfo },
    xml('identity', { category: 'client', type: 'pc', name: 'Natter cluster tests' }),
    [...features, `urn:natter:test:cluster:${++unique}`].map((v) => xml('feature', { var: v })),
  );
  const ver = capsVer(query, 'sha-1')!;
  const target = c as unknown as { onElement(el: Element): void };
  const orig = target.onElement.bind(c);
  target.onElement = (el: Element) => {
    const asked =
      el.name === 'iq' && el.attrs.type === 'get' ? el.getChild('query', NS.discoInfo) : undefined;
    if (!asked) return orig(el);
    const answer = query.clone();
    if (asked.attrs.node !== undefined) answer.attrs.node = asked.attrs.node;
    c.send(xml('iq', { type: 'result', id: el.attrs.id, to: el.attrs.from }, answer));
  };
  c.send(
    xml(
      'presence',
      null,
      xml('c', { xmlns: NS.caps, hash: 'sha-1', node: 'https://natter.example/cluster-tests', ver }),
    ),
  );
}

/** Logs in on `node` with caps wanting `features`, and waits until both nodes see it available. */
async function loginWithCaps(
  node: TestServer,
  user: string,
  resource: string,
  features: string[],
): Promise<TestClient> {
  const c = await TestClient.login(node, user, PW, { resource });
  presenceWithCaps(c, features);
  for (const n of cluster.nodes) await until(() => seesAvailable(n, c.jid), `${c.jid} available everywhere`);
  return c;
}

const tune = (title: string) => xml('tune', { xmlns: TUNE }, xml('title', null, title));

/** Publishes a tune on the sender's own PEP service. */
async function publishTune(c: TestClient, title: string): Promise<void> {
  const res = await c.iq(
    xml(
      'iq',
      { type: 'set' },
      xml(
        'pubsub',
        { xmlns: NS.pubsub },
        xml('publish', { node: TUNE }, xml('item', { id: 'current' }, tune(title))),
      ),
    ),
  );
  assert.equal(res.attrs.type, 'result', res.toString());
}

/** Whether `e` is a PEP tune notification from `owner` (with this title, when given). */
const isTune = (owner: string, title?: string) => (e: Element) => {
  if (e.name !== 'message' || e.attrs.from !== owner) return false;
  const items = e.getChild('event', NS.pubsubEvent)?.getChild('items');
  if (items?.attrs.node !== TUNE) return false;
  return (
    title === undefined || items.getChild('item')?.getChild('tune', TUNE)?.getChildText('title') === title
  );
};

before(async () => {
  cluster = await startTestCluster(2, { modules: { ping: { idleMs: 0 } } });
  for (const u of ['romeo', 'juliet', 'nurse', 'benvolio', 'mercutio'])
    await cluster.nodes[0]!.addUser(u, PW);
  // Romeo and Juliet are each other's contacts (set up on one node, as users did long before).
  const [n1] = cluster.nodes;
  const r = await TestClient.login(n1!, 'romeo', PW, { resource: 'setup', presence: true });
  const j = await TestClient.login(n1!, 'juliet', PW, { resource: 'setup', presence: true });
  await r.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS.roster })));
  await j.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS.roster })));
  await befriend(r, j);
  await r.close();
  await j.close();
});
after(() => cluster.destroy());

describe('PEP across the nodes of a cluster (XEP-0163)', () => {
  test('§4.3: a publication on node 1 reaches the contact and the own resources held by node 2, filtered by caps', async () => {
    const [n1, n2] = cluster.nodes;
    const romeo = await loginWithCaps(n1!, 'romeo', 'orchard', [`${TUNE}+notify`]);
    const romeoCar = await loginWithCaps(n2!, 'romeo', 'car', [`${TUNE}+notify`]);
    const juliet = await loginWithCaps(n2!, 'juliet', 'balcony', [`${TUNE}+notify`]);
    // A resource without the +notify feature gets nothing (XEP-0163 §4.3.2).
    const julietTv = await loginWithCaps(n2!, 'juliet', 'tv', [TUNE]);

    await publishTune(romeo, 'Sigh no more');
    await juliet.receive(isTune('romeo@localhost', 'Sigh no more'));
    await romeoCar.receive(isTune('romeo@localhost', 'Sigh no more'));
    await romeo.receive(isTune('romeo@localhost', 'Sigh no more'));
    await julietTv.nothing(isTune('romeo@localhost'));

    for (const c of [romeo, romeoCar, juliet, julietTv]) await c.close();
  });

  test('§4.3: a publication on node 2 reaches the contact held by node 1', async () => {
    const [n1, n2] = cluster.nodes;
    const romeo = await loginWithCaps(n1!, 'romeo', 'orchard', [`${TUNE}+notify`]);
    const juliet = await loginWithCaps(n2!, 'juliet', 'balcony', [`${TUNE}+notify`]);

    await publishTune(juliet, 'O happy dagger');
    await romeo.receive(isTune('juliet@localhost', 'O happy dagger'));
    await juliet.receive(isTune('juliet@localhost', 'O happy dagger'));

    await romeo.close();
    await juliet.close();
  });

  test('§4.3.4: a contact becoming available on node 2 gets the last item published on node 1', async () => {
    const [n1, n2] = cluster.nodes;
    const romeo = await loginWithCaps(n1!, 'romeo', 'orchard', [`${TUNE}+notify`]);
    await publishTune(romeo, 'Thus with a kiss');
    await romeo.receive(isTune('romeo@localhost', 'Thus with a kiss'));

    const juliet = await loginWithCaps(n2!, 'juliet', 'later', [`${TUNE}+notify`]);
    const last = await juliet.receive(isTune('romeo@localhost'));
    assert.ok(isTune('romeo@localhost', 'Thus with a kiss')(last), last.toString());
    assert.ok(last.getChild('delay', NS.delay), 'sent as the last published item (XEP-0163 §4.3.4)');
    // Once only.
    await juliet.nothing(isTune('romeo@localhost'));

    await romeo.close();
    await juliet.close();
  });
  test('§4.3.3: a contact on node 2 whose subscription the owner approves on node 1 gets the last item', async () => {
    const [n1, n2] = cluster.nodes;
    const romeo = await loginWithCaps(n1!, 'romeo', 'orchard', [`${TUNE}+notify`]);
    await publishTune(romeo, 'But soft');
    await romeo.receive(isTune('romeo@localhost', 'But soft'));
    const benvolio = await loginWithCaps(n2!, 'benvolio', 'street', [`${TUNE}+notify`]);
    await benvolio.nothing(isTune('romeo@localhost'));

    benvolio.send(xml('presence', { type: 'subscribe', to: 'romeo@localhost' }));
    await romeo.receive(
      (e) => e.name === 'presence' && e.attrs.type === 'subscribe' && e.attrs.from === 'benvolio@localhost',
    );
    romeo.send(xml('presence', { type: 'subscribed', to: 'benvolio@localhost' }));
    await benvolio.receive(isTune('romeo@localhost', 'But soft'));
    await benvolio.nothing(isTune('romeo@localhost'));

    await romeo.close();
    await benvolio.close();
  });
});

describe('stream management across the nodes of a cluster (XEP-0198)', () => {
  const chat = (to: string, body: string) => xml('message', { to, type: 'chat' }, xml('body', null, body));

  test('§5: a resumption reaching another node fails; the fresh session gets every unacknowledged message once', async () => {
    const [n1, n2] = cluster.nodes;
    const held: string[] = [];
    const stopCounting = n1!.core.hosts.get('localhost')!.hooks.add('session/held', ({ session, stanza }) => {
      if (session.jid.toString() === 'mercutio@localhost/phone') held.push(stanza.getChildText('body') ?? '');
    });
    try {
      const mercutio = await TestClient.login(n1!, 'mercutio', PW, { resource: 'phone', presence: true });
      const { tracker, enabled } = await enableSm(mercutio);
      tracker.autoAck = false; // nothing acknowledged
      const nurse = await TestClient.login(n2!, 'nurse', PW, { resource: 'n', presence: true });
      await until(() => seesAvailable(n2!, 'mercutio@localhost/phone'), 'mercutio on n2');
      const live = ['live0', 'live1', 'live2', 'live3', 'live4'];
      for (const b of live) nurse.send(chat('mercutio@localhost/phone', b));
      await until(() => tracker.bodies.length === live.length, 'the live messages');
      assert.deepEqual(tracker.bodies, live);

      mercutio.kill();
      await until(
        () =>
          [...n1!.core.sessions.all()].some(
            (s) => s.jid.toString() === 'mercutio@localhost/phone' && s.hibernated,
          ),
        'hibernation on n1',
      );
      // Two more while the session is hibernated: queued for it on n1.
      const asleep = ['held0', 'held1'];
      for (const b of asleep) nurse.send(chat('mercutio@localhost/phone', b));
      await until(() => held.length === asleep.length, 'the messages held for the hibernated session');

      // The client comes back through another node: it cannot resume there.
      const again = await TestClient.open(n2!, 'starttls');
      await again.authenticate('mercutio', PW);
      const answer = again.receive((e) => e.xmlns === NS.sm && (e.name === 'resumed' || e.name === 'failed'));
      again.send(xml('resume', { xmlns: NS.sm, previd: enabled.attrs.id, h: '0' }));
      const failed = await answer;
      assert.equal(failed.name, 'failed', failed.toString());
      assert.ok(failed.getChild('item-not-found', NS.stanzas), failed.toString());
      // What n1 had received of the client's stanzas since <enable/> (none), so it knows what to send again.
      assert.equal(failed.attrs.h, '0');
      // The session was ended at once on n1 (not at the end of its resumption time).
      assert.equal(
        [...n1!.core.sessions.all()].some((s) => s.jid.toString() === 'mercutio@localhost/phone'),
        false,
      );

      // A fresh session on n2 gets every unacknowledged message, exactly once.
      await again.bind('phone');
      const t = trackSm(again, { h: 0 });
      again.send(xml('presence'));
      const all = [...live, ...asleep];
      await until(
        () => t.bodies.length >= all.length,
        `all ${all.length} messages (have ${t.bodies.length})`,
      );
      // No copy follows the ones counted.
      const counted = new Set(again.received);
      await again.nothing((e) => e.name === 'message' && !counted.has(e));
      assert.deepEqual([...t.bodies].sort(), [...all].sort());
      assert.equal(t.bodies.length, all.length, `received ${t.bodies.join(', ')}`);
      assert.equal(nurse.received.filter((e) => e.name === 'message' && e.attrs.type === 'error').length, 0);

      await again.close();
      await nurse.close();
    } finally {
      stopCounting();
    }
  });

  test('§5: a resumption on the node holding the session still resumes it', async () => {
    const [n1, n2] = cluster.nodes;
    const romeo = await TestClient.login(n1!, 'romeo', PW, { resource: 'tablet', presence: true });
    const { tracker, enabled } = await enableSm(romeo);
    tracker.autoAck = false;
    const nurse = await TestClient.login(n2!, 'nurse', PW, { resource: 'n2', presence: true });
    await until(() => seesAvailable(n2!, 'romeo@localhost/tablet'), 'romeo on n2');
    nurse.send(chat('romeo@localhost/tablet', 'before'));
    await until(() => tracker.bodies.includes('before'), 'the first message');
    const h = tracker.h;
    romeo.kill();
    await until(
      () =>
        [...n1!.core.sessions.all()].some(
          (s) => s.jid.toString() === 'romeo@localhost/tablet' && s.hibernated,
        ),
      'hibernation on n1',
    );
    const again = await TestClient.open(n1!, 'starttls');
    await again.authenticate('romeo', PW);
    const t2 = trackSm(again, { h });
    const answer = again.receive((e) => e.xmlns === NS.sm && (e.name === 'resumed' || e.name === 'failed'));
    again.send(xml('resume', { xmlns: NS.sm, previd: enabled.attrs.id, h: String(h) }));
    const resumed = await answer;
    assert.equal(resumed.name, 'resumed', resumed.toString());
    nurse.send(chat('romeo@localhost/tablet', 'after'));
    await until(() => t2.bodies.includes('after'), 'a message after resumption');
    assert.deepEqual(t2.bodies, ['after']);
    await again.close();
    await nurse.close();
  });
});
