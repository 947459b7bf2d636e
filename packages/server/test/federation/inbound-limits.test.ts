import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestClient } from '../support/test-client.js';
import { RawS2SPeer } from '../support/s2s-peer.js';
import { dialbackKey } from '../../src/core/s2s/dialback-key.js';

const PW = 'federation-limits-pw';
const SECRET = 'a-known-dialback-secret-for-tests';

/**
 * b.test under test; a.test is a real Natter server whose dialback secret the test knows, so a
 * hand-driven peer can authenticate as a.test (b.test checks the key with a.test) and then
 * misbehave in ways a real server would not.
 */
describe('inbound federation limits', () => {
  let a: TestServer;
  let b: TestServer;
  before(async () => {
    a = await startTestServer(
      { hosts: ['a.test'], s2s: { enabled: true, dialbackSecret: SECRET } },
      { s2s: true },
    );
    b = await startTestServer(
      { hosts: ['b.test'], s2s: { enabled: true, stanzasPerSecond: 2, maxConnectionsPerIp: 4 } },
      { s2s: true },
    );
    b.core.config.s2s.routes['a.test'] = `127.0.0.1:${a.port('s2s')}`;
    await b.addUser('bob', PW);
  });
  after(async () => {
    await a?.destroy();
    await b?.destroy();
  });

  /** A raw peer authenticated as a.test towards b.test by dialback. */
  async function authenticatedPeer(): Promise<RawS2SPeer> {
    const peer = await RawS2SPeer.connect(b.port('s2s'));
    await peer.open('a.test', 'b.test');
    await peer.receive((e) => e.name === 'features');
    await peer.startTls('a.test', 'b.test');
    const key = dialbackKey(SECRET, 'b.test', 'a.test', peer.header!.id!);
    peer.send(xml('result', { xmlns: NS.dialback, from: 'a.test', to: 'b.test' }, key));
    const verdict = await peer.receive((e) => e.name === 'result' && e.xmlns === NS.dialback, 10_000);
    assert.equal(verdict.attrs.type, 'valid');
    return peer;
  }

  test('an authenticated peer may send from its own domain only (invalid-from)', async () => {
    const bob = await TestClient.login(b, 'bob', PW, { presence: true });
    const peer = await authenticatedPeer();
    peer.send(
      xml('message', { from: 'eve@a.test/x', to: 'bob@b.test', type: 'chat' }, xml('body', {}, 'ok')),
    );
    const got = await bob.receive((e) => e.name === 'message', 5000);
    assert.equal(got.attrs.from, 'eve@a.test/x');
    peer.send(
      xml('message', { from: 'eve@c.test', to: 'bob@b.test', type: 'chat' }, xml('body', {}, 'spoof')),
    );
    assert.equal(await peer.streamError(), 'invalid-from');
    await peer.waitClosed();
    await bob.nothing((e) => e.name === 'message' && e.getChildText('body') === 'spoof', 300);
    await bob.close();
  });

  test('a stanza flood from one remote domain is cut off with policy-violation; local users are unaffected', async () => {
    const bob = await TestClient.login(b, 'bob', PW, { presence: true });
    const peer = await authenticatedPeer();
    let flood = '';
    for (let i = 0; i < 40; i++)
      flood += `<message from='eve@a.test' to='bob@b.test' type='chat'><body>${i}</body></message>`;
    peer.write(flood);
    assert.equal(await peer.streamError(10_000), 'policy-violation');
    await peer.waitClosed();
    // The server still answers its own users at once.
    const r = await bob.iq(xml('iq', { type: 'get', to: 'b.test' }, xml('ping', { xmlns: NS.ping })));
    assert.equal(r.attrs.type, 'result');
    await bob.close();
  });

  test('malformed XML from a peer ends its stream with a stream error; local users are unaffected', async () => {
    const bob = await TestClient.login(b, 'bob', PW, { presence: true });
    const peer = await authenticatedPeer();
    peer.write(`<message from='eve@a.test' to='bob@b.test'><body>half</message>`);
    assert.equal(await peer.streamError(), 'not-well-formed');
    await peer.waitClosed();
    const r = await bob.iq(xml('iq', { type: 'get', to: 'b.test' }, xml('ping', { xmlns: NS.ping })));
    assert.equal(r.attrs.type, 'result');
    await bob.close();
  });

  test('inbound connections per address are capped (s2s.maxConnectionsPerIp)', async () => {
    const peers: RawS2SPeer[] = [];
    for (let i = 0; i < 4; i++) {
      const p = await RawS2SPeer.connect(b.port('s2s'), '127.0.0.9');
      await p.open('a.test', 'b.test');
      peers.push(p);
    }
    const extra = await RawS2SPeer.connect(b.port('s2s'), '127.0.0.9');
    await extra.waitClosed();
    assert.equal(extra.header, undefined, 'refused before any stream header');
    for (const p of peers) p.destroy();
    // Once the server has seen them go, a new connection is admitted again.
    const end = Date.now() + 5000;
    let again: RawS2SPeer | undefined;
    while (!again) {
      const p = await RawS2SPeer.connect(b.port('s2s'), '127.0.0.9');
      try {
        await p.open('a.test', 'b.test');
        again = p;
      } catch (err) {
        if (Date.now() > end) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    again.destroy();
  });

  test('a db:verify for a key we did not issue is answered invalid, and one for another domain with an error', async () => {
    const peer = await RawS2SPeer.connect(a.port('s2s'));
    await peer.open('b.test', 'a.test');
    await peer.receive((e) => e.name === 'features');
    await peer.startTls('b.test', 'a.test');
    const good = dialbackKey(SECRET, 'b.test', 'a.test', 'stream-1');
    peer.send(xml('verify', { xmlns: NS.dialback, from: 'b.test', to: 'a.test', id: 'stream-1' }, good));
    const v1 = await peer.receive((e) => e.name === 'verify');
    assert.equal(v1.attrs.type, 'valid');
    peer.send(xml('verify', { xmlns: NS.dialback, from: 'b.test', to: 'a.test', id: 'stream-2' }, good));
    const v2 = await peer.receive((e) => e.name === 'verify');
    assert.equal(v2.attrs.type, 'invalid');
    peer.send(xml('verify', { xmlns: NS.dialback, from: 'b.test', to: 'z.test', id: 'stream-1' }, good));
    const v3 = await peer.receive((e) => e.name === 'verify');
    assert.equal(v3.attrs.type, 'error');
    peer.destroy();
  });
});
