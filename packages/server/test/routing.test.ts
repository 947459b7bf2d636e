import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from './support/test-server.js';
import { TestClient } from './support/test-client.js';

let server: TestServer;
before(async () => {
  server = await startTestServer({ modules: { ping: { idleMs: 0 } } });
  await server.addUser('romeo', 'pw');
  await server.addUser('juliet', 'pw');
});
after(() => server.destroy());

test('RFC 6120 §10.3.3: an IQ without to is handled for the account and answered without from', async () => {
  const romeo = await TestClient.login(server, 'romeo', 'pw');
  const r = await romeo.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS.discoInfo })));
  assert.equal(r.attrs.type, 'result');
  assert.equal(r.attrs.from, undefined);
  assert.equal(r.attrs.to, romeo.jid);
  assert.equal(r.getChild('query', NS.discoInfo)?.getChild('identity')?.attrs.category, 'account');
  await romeo.close();
});

test('RFC 6120 §10.3.3: an IQ to the own bare JID is answered from the bare JID', async () => {
  const romeo = await TestClient.login(server, 'romeo', 'pw');
  const r = await romeo.iq(
    xml('iq', { type: 'get', to: 'romeo@localhost' }, xml('query', { xmlns: NS.discoInfo })),
  );
  assert.equal(r.attrs.type, 'result');
  assert.equal(r.attrs.from, 'romeo@localhost');
  await romeo.close();
});

test('RFC 6121 §8.5.4: a message without to reaches the sender’s own available resources', async () => {
  const a = await TestClient.login(server, 'juliet', 'pw', { resource: 'a', presence: true });
  const b = await TestClient.login(server, 'juliet', 'pw', { resource: 'b', presence: true });
  a.send(xml('message', { type: 'chat' }, xml('body', null, 'note to self')));
  const got = await Promise.race([
    a.receive((e) => e.name === 'message' && e.getChildText('body') === 'note to self'),
    b.receive((e) => e.name === 'message' && e.getChildText('body') === 'note to self'),
  ]);
  assert.equal(got.attrs.from, 'juliet@localhost/a');
  await a.close();
  await b.close();
});

test('RFC 6121 §8.5.2: an account created right after a message to it bounced receives the next one', async () => {
  const romeo = await TestClient.login(server, 'romeo', 'pw', { presence: true });
  romeo.send(
    xml('message', { to: 'newcomer@localhost', type: 'chat', id: 'early' }, xml('body', null, 'too early')),
  );
  const bounced = await romeo.receive((e) => e.name === 'message' && e.attrs.id === 'early');
  assert.ok(bounced.getChild('error')?.getChild('service-unavailable', NS.stanzas));
  await server.addUser('newcomer', 'pw');
  const newcomer = await TestClient.login(server, 'newcomer', 'pw', { presence: true });
  romeo.send(xml('message', { to: 'newcomer@localhost', type: 'chat' }, xml('body', null, 'welcome')));
  const got = await newcomer.receive((e) => e.name === 'message' && e.getChildText('body') === 'welcome');
  assert.equal(got.attrs.from, romeo.jid);
  await newcomer.close();
  await romeo.close();
});
