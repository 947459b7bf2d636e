import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { xml } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestClient } from '../support/test-client.js';
import { makeTestCa } from '../support/test-ca.js';
import { RawS2SPeer } from '../support/s2s-peer.js';
import { DnsServer } from '../../../../test/support/dns-server.js';
import type { ConfigInput } from '../../src/config.js';

const PW = 'federation-pw-1';

/** Two Natter servers federating over loopback, each routed to the other by `s2s.routes`. */
async function pair(
  a: Partial<ConfigInput>,
  b: Partial<ConfigInput>,
): Promise<{ a: TestServer; b: TestServer }> {
  const sa = await startTestServer(a, { s2s: true });
  const sb = await startTestServer(b, { s2s: true });
  sa.core.config.s2s.routes[sb.domain] = `127.0.0.1:${sb.port('s2s')}`;
  sb.core.config.s2s.routes[sa.domain] = `127.0.0.1:${sa.port('s2s')}`;
  await sa.addUser('alice', PW);
  await sb.addUser('bob', PW);
  return { a: sa, b: sb };
}

const chat = (to: string, body: string) => xml('message', { to, type: 'chat' }, xml('body', {}, body));

describe('federation between two Natter servers, dialback (self-signed certificates)', () => {
  let a: TestServer;
  let b: TestServer;
  before(async () => {
    ({ a, b } = await pair({ hosts: ['a.test'] }, { hosts: ['b.test'] }));
  });
  after(async () => {
    await a?.destroy();
    await b?.destroy();
  });

  test('chat both ways with a non-ASCII body, over TLS, authenticated by dialback', async () => {
    const alice = await TestClient.login(a, 'alice', PW, { resource: 'phone', presence: true });
    const bob = await TestClient.login(b, 'bob', PW, { resource: 'desk', presence: true });
    const body = 'Grüße aus a.test — 你好 🌍';
    alice.send(chat('bob@b.test', body));
    const got = await bob.receive((e) => e.name === 'message' && e.getChildText('body') === body, 10_000);
    assert.equal(got.attrs.from, 'alice@a.test/phone');
    bob.send(chat('alice@a.test/phone', 'Привет, alice'));
    const back = await alice.receive(
      (e) => e.name === 'message' && e.getChildText('body') !== undefined,
      10_000,
    );
    assert.equal(back.getChildText('body'), 'Привет, alice');
    assert.equal(back.attrs.from, 'bob@b.test/desk');

    // One outbound stream per direction, encrypted, dialback (the certificates are self-signed).
    const out = a.core.federation!.list();
    assert.equal(out.length, 1);
    assert.equal(out[0]!.remoteDomains[0], 'b.test');
    assert.equal(out[0]!.auth, 'dialback');
    assert.equal(out[0]!.tls, true);
    const inbound = [...b.core.s2sInbound].map((s) => s.info()).filter((i) => i.state === 'authenticated');
    assert.equal(inbound.length, 1);
    assert.deepEqual(inbound[0]!.remoteDomains, ['a.test']);
    assert.equal(inbound[0]!.auth, 'dialback');
    assert.equal(inbound[0]!.tls, true);
    await alice.close();
    await bob.close();
  });

  test('a message to a user who does not exist on the other side comes back as an error', async () => {
    const alice = await TestClient.login(a, 'alice', PW);
    alice.send(xml('message', { to: 'nobody@b.test', type: 'chat', id: 'm1' }, xml('body', {}, 'hello?')));
    const err = await alice.receive((e) => e.name === 'message' && e.attrs.type === 'error', 10_000);
    assert.equal(err.attrs.from, 'nobody@b.test');
    assert.equal(err.attrs.id, 'm1');
    assert.ok(err.getChild('error')?.getChild('service-unavailable', NS.stanzas));
    await alice.close();
  });

  test('an IQ to the other server (ping) is answered across', async () => {
    const alice = await TestClient.login(a, 'alice', PW);
    const r = await alice.iq(
      xml('iq', { type: 'get', to: 'b.test' }, xml('ping', { xmlns: NS.ping })),
      10_000,
    );
    assert.equal(r.attrs.type, 'result');
    assert.equal(r.attrs.from, 'b.test');
    await alice.close();
  });

  test('XEP-0368: a route to a direct-TLS port is used with TLS from the first byte', async () => {
    const c = await startTestServer({ hosts: ['c.test'] }, { s2s: true });
    try {
      a.core.config.s2s.routes['c.test'] = `tls://127.0.0.1:${c.port('s2s-tls')}`;
      c.core.config.s2s.routes['a.test'] = `127.0.0.1:${a.port('s2s')}`;
      await c.addUser('carol', PW);
      const alice = await TestClient.login(a, 'alice', PW);
      const carol = await TestClient.login(c, 'carol', PW, { presence: true });
      alice.send(chat('carol@c.test', 'direct'));
      const got = await carol.receive((e) => e.name === 'message', 10_000);
      assert.equal(got.getChildText('body'), 'direct');
      const out = a.core.federation!.list().find((s) => s.remoteDomains.includes('c.test'));
      assert.ok(out?.address.startsWith('tls://'));
      assert.equal(out?.tls, true);
      await alice.close();
      await carol.close();
    } finally {
      await c.destroy();
    }
  });

  test('a peer claiming a.test with a forged dialback key is refused and cut off', async () => {
    const peer = await RawS2SPeer.connect(b.port('s2s'));
    await peer.open('a.test', 'b.test');
    const features = await peer.receive((e) => e.name === 'features');
    assert.ok(features.getChild('starttls', NS.tls)?.getChild('required'), 'TLS is required');
    await peer.startTls('a.test', 'b.test');
    peer.send(xml('result', { xmlns: NS.dialback, from: 'a.test', to: 'b.test' }, 'f'.repeat(64)));
    // b.test asks the authoritative server (the real a.test), which says the key is not its own.
    const verdict = await peer.receive((e) => e.name === 'result' && e.xmlns === NS.dialback, 10_000);
    assert.equal(verdict.attrs.type, 'invalid');
    await peer.waitClosed();
    // Nothing from the forger was accepted.
    const bob = await TestClient.login(b, 'bob', PW);
    await bob.nothing('message', 200);
    await bob.close();
  });

  test('stanzas before authentication, or from a domain not authenticated, end the stream with invalid-from', async () => {
    const peer = await RawS2SPeer.connect(b.port('s2s'));
    await peer.open('a.test', 'b.test');
    await peer.receive((e) => e.name === 'features');
    await peer.startTls('a.test', 'b.test');
    peer.send(xml('message', { from: 'mallory@a.test', to: 'bob@b.test' }, xml('body', {}, 'spoofed')));
    assert.equal(await peer.streamError(), 'invalid-from');
    await peer.waitClosed();
  });

  test('dialback before TLS is refused when encryption is required', async () => {
    const peer = await RawS2SPeer.connect(b.port('s2s'));
    await peer.open('a.test', 'b.test');
    await peer.receive((e) => e.name === 'features');
    peer.send(xml('result', { xmlns: NS.dialback, from: 'a.test', to: 'b.test' }, 'abc'));
    assert.equal(await peer.streamError(), 'policy-violation');
    await peer.waitClosed();
  });

  test('a peer claiming to be one of our own domains is refused (invalid-from)', async () => {
    const peer = await RawS2SPeer.connect(b.port('s2s'));
    await peer.open('b.test', 'b.test');
    assert.equal(await peer.streamError(), 'invalid-from');
    await peer.waitClosed();
  });

  test('a stream to a domain not served here gets host-unknown', async () => {
    const peer = await RawS2SPeer.connect(b.port('s2s'));
    await peer.open('a.test', 'c.test');
    assert.equal(await peer.streamError(), 'host-unknown');
    await peer.waitClosed();
  });
});

describe('federation with two local domains (XEP-0220 piggybacking)', () => {
  let a: TestServer;
  let b: TestServer;
  before(async () => {
    ({ a, b } = await pair({ hosts: ['a.test', 'a2.test'] }, { hosts: ['b.test'] }));
    b.core.config.s2s.routes['a2.test'] = `127.0.0.1:${a.port('s2s')}`;
    await a.addUser('zoe', PW, 'a2.test');
  });
  after(async () => {
    await a?.destroy();
    await b?.destroy();
  });

  test('both local domains share one stream to b.test, each authenticated by dialback', async () => {
    const alice = await TestClient.login(a, 'alice', PW);
    const zoe = await TestClient.login({ port: (k) => a.port(k), domain: 'a2.test' }, 'zoe', PW);
    const bob = await TestClient.login(b, 'bob', PW, { presence: true });
    alice.send(chat('bob@b.test', 'from a.test'));
    await bob.receive((e) => e.name === 'message' && e.getChildText('body') === 'from a.test', 10_000);
    zoe.send(chat('bob@b.test', 'from a2.test'));
    const got = await bob.receive(
      (e) => e.name === 'message' && e.getChildText('body') === 'from a2.test',
      10_000,
    );
    assert.equal(got.attrs.from?.split('/')[0], 'zoe@a2.test');
    const out = a.core.federation!.list();
    assert.equal(out.length, 1, 'one stream carries both domains');
    assert.deepEqual([...out[0]!.localDomains].sort(), ['a.test', 'a2.test']);
    const inbound = [...b.core.s2sInbound].map((s) => s.info()).filter((i) => i.state === 'authenticated');
    assert.equal(inbound.length, 1);
    assert.deepEqual([...inbound[0]!.remoteDomains].sort(), ['a.test', 'a2.test']);
    // And the way back to a2.test works (its own outbound stream from b.test).
    bob.send(chat('zoe@a2.test', 'hi zoe'));
    zoe.send(xml('presence'));
    const back = await zoe.receive((e) => e.name === 'message', 10_000);
    assert.equal(back.getChildText('body'), 'hi zoe');
    await alice.close();
    await zoe.close();
    await bob.close();
  });
});

describe('federation between two Natter servers, SASL EXTERNAL (CA-signed certificates)', () => {
  let a: TestServer;
  let b: TestServer;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'natter-ca-'));
    // a.test's certificate has no clientAuth usage (as public CAs issue them now): presented as a
    // client certificate it must still authenticate a.test.
    const ca = await makeTestCa(dir, ['a.test', 'b.test'], { serverAuthOnly: ['a.test'] });
    const side = (domain: string): Partial<ConfigInput> => ({
      hosts: [domain],
      tls: { cert: ca.certs[domain]!.cert, key: ca.certs[domain]!.key },
      s2s: { enabled: true, ca: [ca.caCert], requireTrustedCertificates: true },
    });
    ({ a, b } = await pair(side('a.test'), side('b.test')));
    assert.ok(readFileSync(ca.caCert, 'utf8').includes('BEGIN CERTIFICATE'));
  });
  after(async () => {
    await a?.destroy();
    await b?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  test('certificates authenticate both servers (no dialback), and chat flows both ways', async () => {
    const alice = await TestClient.login(a, 'alice', PW, { presence: true });
    const bob = await TestClient.login(b, 'bob', PW, { presence: true });
    alice.send(chat('bob@b.test', 'über TLS'));
    const got = await bob.receive((e) => e.name === 'message', 10_000);
    assert.equal(got.getChildText('body'), 'über TLS');
    bob.send(chat('alice@a.test', 'ack'));
    assert.equal((await alice.receive((e) => e.name === 'message', 10_000)).getChildText('body'), 'ack');
    assert.equal(a.core.federation!.list()[0]!.auth, 'external');
    assert.equal(b.core.federation!.list()[0]!.auth, 'external');
    const inbound = [...b.core.s2sInbound].map((s) => s.info()).find((i) => i.state === 'authenticated');
    assert.equal(inbound?.auth, 'external');
    await alice.close();
    await bob.close();
  });

  test('with requireTrustedCertificates, a peer with a self-signed certificate gets no dialback', async () => {
    const peer = await RawS2SPeer.connect(b.port('s2s'));
    await peer.open('a.test', 'b.test');
    await peer.receive((e) => e.name === 'features');
    const features = await peer.startTls('a.test', 'b.test');
    assert.equal(features.getChild('dialback', NS.dialbackFeature), undefined);
    assert.equal(features.getChild('mechanisms', NS.sasl), undefined, 'no certificate, no EXTERNAL');
    peer.destroy();
  });
});

describe('federation failures come back to the sender', () => {
  let a: TestServer;
  let dns: DnsServer;
  let silent: Server;
  const silentSockets = new Set<Socket>();
  before(async () => {
    dns = await DnsServer.start();
    // nowhere.test says it offers no XMPP service (SRV target "."); down.test is routed to a closed port.
    dns.zone.set('_xmpp-server._tcp.nowhere.test', [{ priority: 0, weight: 0, port: 0, target: '.' }]);
    a = await startTestServer(
      { hosts: ['a.test'], s2s: { enabled: true, dnsServers: [dns.address], connectTimeoutMs: 3000 } },
      { s2s: true },
    );
    a.core.config.s2s.routes['down.test'] = '127.0.0.1:1';
    // silent.test accepts connections and never says a word.
    silent = createServer((socket) => {
      silentSockets.add(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    a.core.config.s2s.routes['silent.test'] = `127.0.0.1:${(silent.address() as AddressInfo).port}`;
    await a.addUser('alice', PW);
  });
  after(async () => {
    await a?.destroy();
    await dns?.close();
    for (const sock of silentSockets) sock.destroy();
    silent?.close();
  });

  test('a domain that offers no XMPP service: remote-server-not-found', async () => {
    const alice = await TestClient.login(a, 'alice', PW);
    alice.send(xml('message', { to: 'someone@nowhere.test', id: 'n1' }, xml('body', {}, 'hi')));
    const err = await alice.receive((e) => e.name === 'message' && e.attrs.type === 'error', 10_000);
    assert.equal(err.attrs.id, 'n1');
    assert.ok(err.getChild('error')?.getChild('remote-server-not-found', NS.stanzas));
    await alice.close();
  });

  test('an unreachable server: remote-server-timeout, within the connect timeout', async () => {
    const alice = await TestClient.login(a, 'alice', PW);
    const started = Date.now();
    const r = await alice.iq(
      xml('iq', { type: 'get', to: 'down.test' }, xml('ping', { xmlns: NS.ping })),
      10_000,
    );
    assert.equal(r.attrs.type, 'error');
    assert.ok(r.getChild('error')?.getChild('remote-server-timeout', NS.stanzas));
    assert.ok(Date.now() - started < 9000);
    await alice.close();
  });

  test('a server that accepts the connection and never answers: remote-server-timeout, in bounded time', async () => {
    const alice = await TestClient.login(a, 'alice', PW);
    const started = Date.now();
    alice.send(xml('message', { to: 'x@silent.test', id: 's1' }, xml('body', {}, 'anyone?')));
    const err = await alice.receive((e) => e.name === 'message' && e.attrs.type === 'error', 10_000);
    assert.equal(err.attrs.id, 's1');
    assert.ok(err.getChild('error')?.getChild('remote-server-timeout', NS.stanzas));
    assert.ok(Date.now() - started >= 2500, 'not before the connect timeout (3 s)');
    // Local traffic was never held up meanwhile.
    const r = await alice.iq(xml('iq', { type: 'get', to: 'a.test' }, xml('ping', { xmlns: NS.ping })));
    assert.equal(r.attrs.type, 'result');
    await alice.close();
  });

  test('a denied domain is refused at once', async () => {
    a.core.config.s2s.deny.push('evil.test');
    const alice = await TestClient.login(a, 'alice', PW);
    const r = await alice.iq(xml('iq', { type: 'get', to: 'evil.test' }, xml('ping', { xmlns: NS.ping })));
    assert.ok(r.getChild('error')?.getChild('remote-server-not-found', NS.stanzas));
    await alice.close();
  });
});
