import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { xml } from '@natter/xml';
import { startTestServer } from '../support/test-server.js';
import { TestClient } from '../support/test-client.js';
import { socketGuard } from '../../src/listeners/socket-guard.js';
import { PW, header, hold, within, until, type Held } from './support/abuse.js';

describe('socket guard: raw sockets per address, handshake and request-head timeouts', () => {
  test('idle sockets to the direct-TLS port beyond limits.maxSocketsPerIp are closed at once; another address still logs in over TLS', async () => {
    const server = await startTestServer({ limits: { maxSocketsPerIp: 20, handshakeTimeoutMs: 60_000 } });
    const held: Held[] = [];
    try {
      await server.addUser('romeo', PW);
      const port = server.port('c2s-tls');
      for (let i = 0; i < 30; i++) held.push(await hold(port, '127.0.0.2'));
      // Ten of them are closed by the server without a TLS handshake having started.
      await within(
        new Promise<void>((r) => {
          let n = 0;
          for (const s of held) void s.gone.then(() => ++n === 10 && r());
        }),
        5000,
        'ten refused sockets closed',
      );
      await until(() => socketGuard(server.core).count('127.0.0.2') === 20, 'twenty counted');
      assert.equal(held.filter((s) => !s.isClosed).length, 20);
      // The same cap is shared by every listener: the plain and the HTTP port refuse this address too.
      for (const kind of ['c2s', 'http'] as const) {
        const extra = await hold(server.port(kind), '127.0.0.2');
        await within(extra.gone, 5000, `${kind} socket beyond the cap closed`);
      }
      // Another address is unaffected.
      const romeo = await TestClient.login(server, 'romeo', PW, { transport: 'tls', resource: 'a' });
      await romeo.close();
      // Freeing sockets makes room again.
      for (const s of held.splice(0, 5)) s.destroy();
      await until(() => socketGuard(server.core).count('127.0.0.2') === 15, 'freed');
      const again = await hold(port, '127.0.0.2');
      held.push(again);
      assert.equal(again.isClosed, false);
    } finally {
      for (const s of held) s.destroy();
      await server.destroy();
    }
  });

  test('a TLS handshake that stalls is closed after limits.handshakeTimeoutMs and stops counting', async () => {
    const server = await startTestServer({ limits: { handshakeTimeoutMs: 300 } });
    try {
      // Nothing sent at all, and half a ClientHello.
      const silent = await hold(server.port('c2s-tls'), '127.0.0.3');
      const partial = await hold(server.port('c2s-tls'), '127.0.0.3');
      partial.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]));
      await within(Promise.all([silent.gone, partial.gone]), 5000, 'stalled handshakes closed');
      await until(() => socketGuard(server.core).count('127.0.0.3') === 0, 'uncounted');
    } finally {
      await server.destroy();
    }
  });

  test('a connection upgraded with STARTTLS stops counting once closed (it used to hold its slot forever)', async () => {
    const server = await startTestServer({ limits: { maxSocketsPerIp: 3 } });
    try {
      await server.addUser('romeo', PW);
      for (let i = 0; i < 6; i++) {
        const c = await TestClient.login(server, 'romeo', PW, {
          transport: 'starttls',
          localAddress: '127.0.0.4',
        });
        await c.close();
        await until(() => socketGuard(server.core).count('127.0.0.4') === 0, `login ${i + 1} uncounted`);
      }
    } finally {
      await server.destroy();
    }
  });

  test('an HTTP connection that never completes its request head (or upgrade) is closed', async () => {
    const server = await startTestServer({ limits: { handshakeTimeoutMs: 300 } });
    try {
      const silent = await hold(server.port('http'), '127.0.0.4');
      const upgrade = await hold(server.port('http'), '127.0.0.4');
      upgrade.write('GET /xmpp-websocket HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n');
      await within(Promise.all([silent.gone, upgrade.gone]), 5000, 'stalled HTTP connections closed');
      await until(() => socketGuard(server.core).count('127.0.0.4') === 0, 'uncounted');
      // A WebSocket client that completes its upgrade is not cut by that timer.
      await server.addUser('romeo', PW);
      const romeo = await TestClient.login(server, 'romeo', PW, { transport: 'ws', resource: 'w' });
      await new Promise((r) => setTimeout(r, 600)); // twice the head timeout: the session must outlive it
      await romeo.iq(xml('iq', { type: 'get', id: 'p1' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
      await romeo.close();
    } finally {
      await server.destroy();
    }
  });

  test('limits.maxConnections: at the cap the oldest unfinished handshake makes room for a client that logs in; with none, new sockets are refused', async () => {
    const server = await startTestServer({ limits: { maxConnections: 6 } });
    const held: Held[] = [];
    /** A plain-TCP stream that got its features (past any handshake). */
    const streamFrom = async (from: string) => {
      const s = await hold(server.port('c2s'), from);
      s.write(header());
      await within(
        new Promise<void>((r) =>
          s.on('data', (d: Buffer) => d.toString().includes('stream:features') && r()),
        ),
        5000,
        'stream features',
      );
      return s;
    };
    try {
      await server.addUser('romeo', PW);
      const guard = socketGuard(server.core);
      assert.equal(guard.maxConnections, 6);
      for (let i = 0; i < 3; i++) held.push(await streamFrom('127.0.0.7'));
      const [tlsA, tlsB] = [
        await hold(server.port('c2s-tls'), '127.0.0.5'),
        await hold(server.port('c2s-tls'), '127.0.0.5'),
      ];
      const httpC = await hold(server.port('http'), '127.0.0.6');
      held.push(tlsA, tlsB, httpC);
      await until(() => guard.total === 6, 'six counted');
      // Full: a client logs in over TLS, and the oldest stalled handshake is what was closed for it.
      const romeo = await TestClient.login(server, 'romeo', PW, { transport: 'tls', resource: 'a' });
      await within(tlsA.gone, 5000, 'the oldest unfinished handshake closed');
      assert.equal(tlsB.isClosed || httpC.isClosed, false);
      // Full of sockets past their handshakes: a new one is refused.
      tlsB.destroy();
      httpC.destroy();
      await until(() => guard.total === 4, 'two freed');
      for (let i = 0; i < 2; i++) held.push(await streamFrom('127.0.0.7'));
      await until(() => guard.total === 6, 'full again');
      const refused = await hold(server.port('c2s-tls'), '127.0.0.8');
      await within(refused.gone, 5000, 'a socket beyond the cap is refused');
      await romeo.close();
      await until(() => guard.total === 5, 'romeo gone');
      held.push(await streamFrom('127.0.0.8'));
    } finally {
      for (const s of held) s.destroy();
      await server.destroy();
    }
  });
  test('at limits.maxConnections, a socket refused by the per-address cap evicts nobody', async () => {
    const server = await startTestServer({ limits: { maxConnections: 4, maxSocketsPerIp: 2 } });
    const held: Held[] = [];
    try {
      const guard = socketGuard(server.core);
      for (const from of ['127.0.0.5', '127.0.0.5', '127.0.0.6', '127.0.0.6'])
        held.push(await hold(server.port('c2s-tls'), from));
      await until(() => guard.total === 4, 'four counted');
      const [oldest] = held;
      // The server is full and 127.0.0.5 is at its cap: its next socket is refused ...
      const refused = await hold(server.port('c2s-tls'), '127.0.0.5');
      await within(refused.gone, 5000, 'refused by the per-address cap');
      // ... without closing the oldest unfinished handshake for it (that would happen in the same
      // turn as the refusal; give its close time to arrive all the same).
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(oldest!.isClosed, false);
      assert.equal(guard.total, 4);
    } finally {
      for (const s of held) s.destroy();
      await server.destroy();
    }
  });
});
