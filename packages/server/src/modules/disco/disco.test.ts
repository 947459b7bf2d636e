import { test, before, after } from 'node:test';
import { createHash } from 'node:crypto';
import assert from 'node:assert/strict';
import { xml } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import { TestClient } from '../../../test/support/test-client.js';

let server: TestServer;
before(async () => {
  server = await startTestServer({ modules: { ping: { idleMs: 0 } } });
  await server.addUser('romeo', 'pw');
  await server.addUser('juliet', 'pw');
});
after(() => server.destroy());

test('XEP-0030 §3: the server lists its services as items and its features from the registered handlers', async () => {
  const romeo = await TestClient.login(server, 'romeo', 'pw');
  const items = await romeo.iq(
    xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: NS.discoItems })),
  );
  const jids = items
    .getChild('query', NS.discoItems)!
    .getChildren('item')
    .map((i) => i.attrs.jid);
  assert.ok(jids.includes('conference.localhost'));
  assert.ok(jids.includes('pubsub.localhost'));
  const info = await romeo.iq(
    xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: NS.discoInfo })),
  );
  const features = info
    .getChild('query', NS.discoInfo)!
    .getChildren('feature')
    .map((f) => f.attrs.var);
  for (const f of [NS.ping, NS.version, NS.discoItems, NS.carbons]) assert.ok(features.includes(f), f);
  const unknownNode = await romeo.iq(
    xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: NS.discoInfo, node: 'nope' })),
  );
  assert.ok(unknownNode.getChild('error')?.getChild('item-not-found', NS.stanzas));
  await romeo.close();
});

test('XEP-0163 §6.2: an account lists its PEP nodes; an unknown account is service-unavailable', async () => {
  const romeo = await TestClient.login(server, 'romeo', 'pw');
  const published = await romeo.iq(
    xml(
      'iq',
      { type: 'set' },
      xml(
        'pubsub',
        { xmlns: NS.pubsub },
        xml(
          'publish',
          { node: 'http://jabber.org/protocol/nick' },
          xml('item', { id: 'current' }, xml('nick', { xmlns: 'http://jabber.org/protocol/nick' }, 'Romeo')),
        ),
      ),
    ),
  );
  assert.equal(published.attrs.type, 'result');
  const items = await romeo.iq(
    xml('iq', { type: 'get', to: 'romeo@localhost' }, xml('query', { xmlns: NS.discoItems })),
  );
  const nodes = items
    .getChild('query', NS.discoItems)!
    .getChildren('item')
    .map((i) => i.attrs.node);
  assert.ok(nodes.includes('http://jabber.org/protocol/nick'), String(nodes));
  const info = await romeo.iq(
    xml('iq', { type: 'get', to: 'romeo@localhost' }, xml('query', { xmlns: NS.discoInfo })),
  );
  const identities = info
    .getChild('query', NS.discoInfo)!
    .getChildren('identity')
    .map((i) => `${i.attrs.category}/${i.attrs.type}`);
  assert.ok(identities.includes('pubsub/pep'));
  const ghost = await romeo.iq(
    xml('iq', { type: 'get', to: 'ghost@localhost' }, xml('query', { xmlns: NS.discoInfo })),
  );
  assert.ok(ghost.getChild('error')?.getChild('service-unavailable', NS.stanzas));
  await romeo.close();
});

test('XEP-0115 §6.3: the stream features carry the server’s capabilities, and their node#ver answers disco#info', async () => {
  const romeo = await TestClient.login(server, 'romeo', 'pw');
  const c = romeo.features?.getChild('c', NS.caps);
  assert.ok(c, romeo.features?.toString());
  assert.equal(c.attrs.hash, 'sha-1');
  const info = (
    await romeo.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: NS.discoInfo })))
  ).getChild('query', NS.discoInfo)!;
  // XEP-0115 §5.1, computed here from the answer (no extension forms on this server).
  const bytes = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));
  const identities = info
    .getChildren('identity')
    .map((i) => `${i.attrs.category}/${i.attrs.type}/${i.attrs['xml:lang'] ?? ''}/${i.attrs.name ?? ''}<`)
    .sort(bytes);
  const features = info
    .getChildren('feature')
    .map((f) => `${f.attrs.var}<`)
    .sort(bytes);
  const expected = createHash('sha1')
    .update([...identities, ...features].join(''))
    .digest('base64');
  assert.equal(c.attrs.ver, expected);
  const byNode = await romeo.iq(
    xml(
      'iq',
      { type: 'get', to: 'localhost' },
      xml('query', { xmlns: NS.discoInfo, node: `${c.attrs.node}#${c.attrs.ver}` }),
    ),
  );
  const q = byNode.getChild('query', NS.discoInfo);
  assert.equal(q?.attrs.node, `${c.attrs.node}#${c.attrs.ver}`, byNode.toString());
  assert.deepEqual(
    q.getChildren('feature').map((f) => f.attrs.var),
    info.getChildren('feature').map((f) => f.attrs.var),
  );
  await romeo.close();
});
