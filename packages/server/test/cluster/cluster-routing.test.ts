import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { xml } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestCluster, type TestCluster } from '../support/test-cluster.js';
import { TestClient } from '../support/test-client.js';
import { BoshClient } from '../support/bosh-client.js';

const PW = 'cluster-pw';
let cluster: TestCluster;

/** Waits until `fn` is true (records travel between nodes asynchronously). */
async function until(fn: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

before(async () => {
  cluster = await startTestCluster(2, { modules: { ping: { idleMs: 0 } } });
  for (const u of ['romeo', 'juliet', 'nurse']) await cluster.nodes[0]!.addUser(u, PW);
});
after(() => cluster.destroy());

describe('a cluster of two nodes (docs/decisions/0009)', () => {
  test('a message to a full JID and to a bare JID reaches a session on the other node', async () => {
    const [n1, n2] = cluster.nodes;
    const romeo = await TestClient.login(n1!, 'romeo', PW, { resource: 'r', presence: true });
    const juliet = await TestClient.login(n2!, 'juliet', PW, { resource: 'j', presence: true });
    await until(
      () => n1!.core.sessions.get('juliet@localhost/j')?.available === true,
      'the record of juliet on n1',
    );
    assert.equal(n1!.core.sessions.get('juliet@localhost/j')?.node, cluster.buses[1]!.nodeId);
    // The operator's view (`natter sessions --list`) from either node covers the cluster.
    const res = await fetch(`http://127.0.0.1:${n1!.port('admin')}/admin/sessions?list=1`);
    const report = (await res.json()) as {
      total: number;
      node: string;
      local: number;
      sessions: { jid: string; node: string; state: string }[];
    };
    assert.equal(report.total, 2);
    assert.equal(report.local, 1);
    assert.equal(report.node, cluster.buses[0]!.nodeId);
    assert.deepEqual(report.sessions.map((x) => `${x.jid} ${x.node} ${x.state}`).sort(), [
      `juliet@localhost/j ${cluster.buses[1]!.nodeId} available`,
      `romeo@localhost/r ${cluster.buses[0]!.nodeId} available`,
    ]);

    romeo.send(
      xml('message', { to: 'juliet@localhost/j', type: 'chat', id: 'm1' }, xml('body', null, 'full')),
    );
    const m1 = await juliet.receive((e) => e.name === 'message' && e.attrs.id === 'm1');
    assert.equal(m1.attrs.from, 'romeo@localhost/r');
    assert.equal(m1.getChildText('body'), 'full');

    juliet.send(xml('message', { to: 'romeo@localhost', type: 'chat', id: 'm2' }, xml('body', null, 'bare')));
    const m2 = await romeo.receive((e) => e.name === 'message' && e.attrs.id === 'm2');
    assert.equal(m2.attrs.from, 'juliet@localhost/j');

    // An IQ between clients on two nodes, and its answer.
    const ask = romeo.iq(
      xml(
        'iq',
        { to: 'juliet@localhost/j', type: 'get', id: 'v1' },
        xml('query', { xmlns: 'jabber:iq:version' }),
      ),
    );
    const req = await juliet.receive((e) => e.name === 'iq' && e.attrs.id === 'v1');
    juliet.send(
      xml(
        'iq',
        { to: req.attrs.from, type: 'result', id: 'v1' },
        xml('query', { xmlns: 'jabber:iq:version' }, xml('name', null, 'j-client')),
      ),
    );
    const answer = await ask;
    assert.equal(answer.getChild('query')?.getChildText('name'), 'j-client');
    await romeo.close();
    await juliet.close();
    await until(() => n1!.core.sessions.get('juliet@localhost/j') === undefined, 'juliet gone from n1');
  });

  test('a message to a session that ended on the other node goes to the bare JID (offline storage)', async () => {
    const [n1, n2] = cluster.nodes;
    const romeo = await TestClient.login(n1!, 'romeo', PW, { resource: 'r', presence: true });
    romeo.send(
      xml('message', { to: 'nurse@localhost', type: 'chat', id: 'off1' }, xml('body', null, 'later')),
    );
    await romeo.nothing((e) => e.name === 'message' && e.attrs.id === 'off1');
    const nurse = await TestClient.login(n2!, 'nurse', PW, { resource: 'n', presence: true });
    const got = await nurse.receive((e) => e.name === 'message' && e.attrs.id === 'off1');
    assert.ok(got.getChild('delay', NS.delay), 'delivered from offline storage');
    await romeo.close();
    await nurse.close();
  });

  test('RFC 6120 §7.7.2.2: binding a resource held on the other node ends the older session with conflict', async () => {
    const [n1, n2] = cluster.nodes;
    const old = await TestClient.login(n1!, 'juliet', PW, { resource: 'same', presence: true });
    await until(() => n2!.core.sessions.get('juliet@localhost/same') !== undefined, 'the record on n2');
    const fresh = await TestClient.login(n2!, 'juliet', PW, { resource: 'same', presence: true });
    const err = await old.receive((e) => e.name === 'error');
    assert.ok(err.getChild('conflict', NS.streams), err.toString());
    await old.waitClosed();
    await until(
      () => n1!.core.sessions.get('juliet@localhost/same')?.node === cluster.buses[1]!.nodeId,
      'n1 sees the new session',
    );
    await fresh.close();
  });

  test('XEP-0124: the requests of a BOSH session may reach any node: they are forwarded to the node holding it', async () => {
    const [n1, n2] = cluster.nodes;
    const url = (n: typeof n1) => `http://127.0.0.1:${n!.port('http')}/http-bind`;
    const bosh = await BoshClient.login(url(n1), 'nurse', PW, { resource: 'web', create: { wait: 5 } });
    assert.ok(bosh.sid.endsWith(`.${cluster.buses[0]!.nodeId}`), bosh.sid);
    // From here on every request goes to node 2, as a load balancer may send it.
    bosh.url = url(n2);
    void bosh.send(xml('presence'));
    const romeo = await TestClient.login(n2!, 'romeo', PW, { resource: 'r', presence: true });
    await until(
      () => n2!.core.sessions.get('nurse@localhost/web')?.available === true,
      'nurse available on n2',
    );
    romeo.send(
      xml('message', { to: 'nurse@localhost/web', type: 'chat', id: 'b1' }, xml('body', null, 'to the web')),
    );
    const got = await bosh.receive((e) => e.name === 'message' && e.attrs.id === 'b1');
    assert.equal(got.attrs.from, 'romeo@localhost/r');
    void bosh.send(
      xml('message', { to: 'romeo@localhost/r', type: 'chat', id: 'b2' }, xml('body', null, 'from the web')),
    );
    await romeo.receive((e) => e.name === 'message' && e.attrs.id === 'b2');
    const pong = await bosh.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: NS.ping })));
    assert.equal(pong.attrs.type, 'result');
    await bosh.terminate();
    await until(
      () => n2!.core.sessions.get('nurse@localhost/web') === undefined,
      'the BOSH session ended everywhere',
    );

    // A sid naming a node that is not in the cluster is unknown (item-not-found), not forwarded.
    const stray = new BoshClient(url(n2));
    stray.sid = 'AAAAAAAAAAAAAAAAAAAAAAAA.nosuchnode';
    const r = await stray.request([]);
    assert.equal(r.attrs.type, 'terminate');
    assert.equal(r.attrs.condition, 'item-not-found');
    await romeo.close();
  });
});
