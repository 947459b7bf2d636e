import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { xml } from '@natter/xml';
import { createClient, reconnect } from '@natter/client';
import { startTestCluster, type TestCluster } from '../support/test-cluster.js';
import { TestClient } from '../support/test-client.js';

const PW = 'failover-pw';
let cluster: TestCluster;

before(async () => {
  cluster = await startTestCluster(2, { modules: { ping: { idleMs: 0 } } });
  for (const u of ['romeo', 'juliet']) await cluster.nodes[0]!.addUser(u, PW);
});
after(() => cluster.destroy());

test('@natter/client with a list of endpoints: when its node goes away, it reconnects to the next and is reachable there', async () => {
  const [n1, n2] = cluster.nodes;
  const endpoints = [n1!, n2!].map((n) => `xmpp://127.0.0.1:${n.port('c2s')}`);
  const client = createClient({
    service: endpoints,
    jid: 'romeo@localhost',
    password: PW,
    resource: 'phone',
    tls: { ca: readFileSync(n1!.certificate.cert, 'utf8') },
    plugins: { reconnect: reconnect({ initialDelay: 50, maxDelay: 200 }) },
  });
  try {
    await client.connect();
    assert.equal(client.service, endpoints[0]);
    await client.send(xml('presence'));

    // Node 1 goes away (as when the primary reports a dead worker); the client moves to node 2.
    const reconnected = client.plugins.reconnect.waitFor('reconnected', { timeout: 10_000 });
    await cluster.lose(0);
    await reconnected;
    assert.equal(client.service, endpoints[1]);

    // Reachable on its new node by a user of that node.
    const juliet = await TestClient.login(n2!, 'juliet', PW, { resource: 'j', presence: true });
    const got = client.waitFor('message', { timeout: 5000 });
    juliet.send(
      xml('message', { to: 'romeo@localhost/phone', type: 'chat', id: 'f1' }, xml('body', null, 'found you')),
    );
    const m = await got;
    assert.equal(m.attr('id'), 'f1');
    await juliet.close();
  } finally {
    await client.disconnect();
  }
});
