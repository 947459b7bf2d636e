import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { request } from 'node:http';
import { startTestServer, type TestServer } from './support/test-server.js';
import { TestClient, type Via } from './support/test-client.js';
import { PROXY_V2_SIGNATURE } from '../src/listeners/proxy-protocol.js';

const PW = 'secret-password';

interface Report {
  total: number;
  sessions?: { jid: string; ip: string; transport: string }[];
}

async function sessions(server: TestServer, token?: string): Promise<Report> {
  const res = await fetch(`http://127.0.0.1:${server.port('admin')}/admin/sessions?list=1`, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  assert.equal(res.status, 200);
  return (await res.json()) as Report;
}

async function ipOf(server: TestServer, jid: string): Promise<string | undefined> {
  return (await sessions(server)).sessions?.find((s) => s.jid === jid)?.ip;
}

/** A PROXY protocol v2 header for a TCP/IPv4 client. */
function proxyV2(client: string, port = 40000): Buffer {
  const b = Buffer.alloc(28);
  PROXY_V2_SIGNATURE.copy(b, 0);
  b[12] = 0x21; // version 2, PROXY
  b[13] = 0x11; // IPv4, STREAM
  b.writeUInt16BE(12, 14);
  Buffer.from(client.split('.').map(Number)).copy(b, 16);
  Buffer.from([127, 0, 0, 1]).copy(b, 20);
  b.writeUInt16BE(port, 24);
  b.writeUInt16BE(5222, 26);
  return b;
}

/** Connects, writes `data`, resolves once the server closes the connection (and with what it said). */
function closedAfter(port: number, data: Buffer | string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString()));
    s.on('error', () => {});
    s.once('connect', () => s.write(data));
    s.once('close', () => resolve(got));
    s.setTimeout(20_000, () => reject(new Error('the server kept the connection open')));
  });
}

describe('reverse proxies: trustedProxies and the PROXY protocol', () => {
  test('WebSocket: X-Forwarded-For from an untrusted peer is ignored (the session shows the TCP peer)', async () => {
    const server = await startTestServer();
    try {
      await server.addUser('romeo', PW);
      const via: Via = { headers: { 'x-forwarded-for': '203.0.113.9', forwarded: 'for=203.0.113.9' } };
      const c = await TestClient.open(server, 'ws', undefined, undefined, via);
      await c.authenticate('romeo', PW);
      const jid = await c.bind('ws');
      assert.equal(await ipOf(server, jid), '127.0.0.1');
      await c.close();
    } finally {
      await server.destroy();
    }
  });

  test('a trusted proxy is not held to limits.maxSocketsPerIp: its clients are capped by their own addresses', async () => {
    const server = await startTestServer({
      trustedProxies: ['127.0.0.1'],
      limits: { maxSocketsPerIp: 2 },
      modules: { ping: { idleMs: 0 } },
    });
    const open: TestClient[] = [];
    try {
      for (let i = 0; i < 2; i++) await server.addUser(`user${i}`, PW);
      // Five streams through the proxy (one TCP peer), from five forwarded clients: all get in.
      for (let i = 0; i < 5; i++) {
        const c = await TestClient.open(server, 'ws', undefined, undefined, {
          headers: { 'x-forwarded-for': `203.0.113.${i + 10}`, 'x-forwarded-proto': 'https' },
        });
        open.push(c);
        await c.authenticate(`user${i % 2}`, PW);
        await c.bind(`r${i}`);
      }
      assert.equal((await sessions(server)).total, 5);
    } finally {
      for (const c of open) await c.close().catch(() => {});
      await server.destroy();
    }
  });

  test('WebSocket via a trusted proxy: failed logins lock out the forwarded address, not the proxy’s other clients', async () => {
    const server = await startTestServer({
      trustedProxies: ['127.0.0.1'],
      modules: { ping: { idleMs: 0 }, limits: { authFailuresPerIp: { burst: 2, perMinute: 0.1 } } },
    });
    try {
      await server.addUser('romeo', PW);
      const from = (client: string): Via => ({
        headers: { 'x-forwarded-for': `198.51.100.1, ${client}`, 'x-forwarded-proto': 'https' },
      });
      const attempt = async (password: string, via: Via) => {
        const c = await TestClient.open(server, 'ws', undefined, undefined, via);
        try {
          await c.authenticate('romeo', password);
          return 'success';
        } catch (err) {
          return (err as { condition: string }).condition;
        } finally {
          c.kill();
        }
      };
      const seen: string[] = [];
      for (let i = 0; i < 6 && !seen.includes('temporary-auth-failure'); i++)
        seen.push(await attempt(`guess-${i}`, from('203.0.113.1')));
      assert.equal(seen.at(-1), 'temporary-auth-failure', seen.join(', '));
      assert.equal(await attempt(PW, from('203.0.113.1')), 'temporary-auth-failure');
      // Another client behind the same proxy is not locked out, and is listed with its own address.
      const c = await TestClient.open(server, 'ws', undefined, undefined, from('203.0.113.2'));
      await c.authenticate('romeo', PW);
      const jid = await c.bind('other');
      assert.equal(await ipOf(server, jid), '203.0.113.2');
      await c.close();
      // A client's own Forwarded header, passed through by a proxy that writes X-Forwarded-For, is
      // not believed: the address stays the one the proxy appended.
      const spoof = await TestClient.open(server, 'ws', undefined, undefined, {
        headers: {
          forwarded: 'for=203.0.113.77',
          'x-forwarded-for': '203.0.113.3',
          'x-forwarded-proto': 'https',
        },
      });
      await spoof.authenticate('romeo', PW);
      assert.equal(await ipOf(server, await spoof.bind('spoof')), '203.0.113.3');
      await spoof.close();
    } finally {
      await server.destroy();
    }
  });

  test('WebSocket via a trusted proxy that writes RFC 7239 Forwarded (trustedProxyHeader: forwarded)', async () => {
    const server = await startTestServer({
      trustedProxies: ['127.0.0.1'],
      trustedProxyHeader: 'forwarded',
      modules: { ping: { idleMs: 0 } },
    });
    try {
      await server.addUser('romeo', PW);
      // Quoted IPv6 with a port; X-Forwarded-For is now the header that is ignored.
      const v6 = await TestClient.open(server, 'ws', undefined, undefined, {
        headers: { forwarded: 'for="[2001:db8::1]:4711";proto=https', 'x-forwarded-for': '203.0.113.78' },
      });
      await v6.authenticate('romeo', PW);
      assert.equal(await ipOf(server, await v6.bind('v6')), '2001:db8::1');
      await v6.close();
    } finally {
      await server.destroy();
    }
  });

  test('PROXY protocol v2 from a trusted proxy gives the client address, on STARTTLS and direct TLS', async () => {
    const server = await startTestServer({
      trustedProxies: ['127.0.0.0/8'],
      listeners: [
        { type: 'c2s', port: 0, host: '127.0.0.1', proxyProtocol: true },
        { type: 'c2s-tls', port: 0, host: '127.0.0.1', proxyProtocol: true },
        { type: 'http', port: 0, host: '127.0.0.1' },
        { type: 'admin', port: 0, host: '127.0.0.1' },
      ],
    });
    try {
      await server.addUser('romeo', PW);
      const a = await TestClient.open(server, 'starttls', undefined, undefined, {
        proxyHeader: proxyV2('203.0.113.5'),
      });
      await a.authenticate('romeo', PW);
      assert.equal(await ipOf(server, await a.bind('starttls')), '203.0.113.5');
      const b = await TestClient.open(server, 'tls', undefined, undefined, {
        proxyHeader: proxyV2('203.0.113.6'),
      });
      await b.authenticate('romeo', PW);
      assert.equal(await ipOf(server, await b.bind('tls')), '203.0.113.6');
      await a.close();
      await b.close();
      // A connection without the header is closed (XMPP where the header should be).
      await closedAfter(server.port('c2s'), "<?xml version='1.0'?><stream:stream to='localhost'>");
    } finally {
      await server.destroy();
    }
  });

  test('PROXY protocol v2 from a peer that is not a trusted proxy: the connection is closed', async () => {
    const server = await startTestServer({
      trustedProxies: ['192.0.2.1'],
      listeners: [
        { type: 'c2s', port: 0, host: '127.0.0.1', proxyProtocol: true },
        { type: 'c2s-tls', port: 0, host: '127.0.0.1', proxyProtocol: true },
        { type: 'http', port: 0, host: '127.0.0.1' },
        { type: 'admin', port: 0, host: '127.0.0.1' },
      ],
    });
    try {
      assert.equal(await closedAfter(server.port('c2s'), proxyV2('203.0.113.5')), '');
      assert.equal(await closedAfter(server.port('c2s-tls'), proxyV2('203.0.113.5')), '');
      assert.equal(server.core.streams.size, 0);
    } finally {
      await server.destroy();
    }
  });
});

describe('the admin listener', () => {
  test('the public HTTP listener no longer serves /admin', async () => {
    const server = await startTestServer();
    try {
      const res = await fetch(`http://127.0.0.1:${server.port('http')}/admin/sessions`);
      assert.equal(res.status, 404);
      assert.equal((await sessions(server)).total, 0);
    } finally {
      await server.destroy();
    }
  });

  test('off loopback it refuses to start without a token, and with one every request needs it', async () => {
    await assert.rejects(
      startTestServer({ listeners: [{ type: 'admin', port: 0, host: '0.0.0.0' }] }),
      /admin listener bound to 0\.0\.0\.0 \(not loopback\) needs a token/,
    );
    const token = 'a-long-admin-token-for-tests';
    const server = await startTestServer({
      listeners: [
        { type: 'c2s', port: 0, host: '127.0.0.1' },
        { type: 'admin', port: 0, host: '0.0.0.0', token },
      ],
    });
    try {
      const url = `http://127.0.0.1:${server.port('admin')}/admin/sessions`;
      assert.equal((await fetch(url)).status, 401);
      assert.equal(
        (await fetch(url, { headers: { authorization: 'Bearer wrong-token-of-some-length' } })).status,
        401,
      );
      assert.equal((await sessions(server, token)).total, 0);
      const unknown = await fetch(`http://127.0.0.1:${server.port('admin')}/admin/nothing`, {
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(unknown.status, 404);
    } finally {
      await server.destroy();
    }
  });
  test('browsers are refused: a cross-site POST (Origin) or a rebound host name (Host) gets 403 and changes nothing', async () => {
    const server = await startTestServer();
    try {
      await server.addUser('alice', PW);
      const send = (method: string, path: string, headers: Record<string, string>) =>
        new Promise<number>((resolve, reject) => {
          const req = request(
            { host: '127.0.0.1', port: server.port('admin'), method, path, headers },
            (res) => {
              res.resume();
              resolve(res.statusCode ?? 0);
            },
          );
          req.on('error', reject);
          req.end();
        });
      // What a page at https://evil.example makes the administrator's browser send.
      assert.equal(
        await send('POST', '/admin/users/remove?jid=alice@localhost', { origin: 'https://evil.example' }),
        403,
      );
      // DNS rebinding: the page's own name, resolving to 127.0.0.1, in Host.
      assert.equal(await send('GET', '/admin/sessions?list=1', { host: 'evil.example:5281' }), 403);
      assert.equal(
        await send('POST', '/admin/users/remove?jid=alice@localhost', { host: 'evil.example' }),
        403,
      );
      // The account is still there; the CLI's own requests (loopback Host, no Origin) are answered.
      assert.equal(await send('GET', '/admin/sessions', { host: `127.0.0.1:${server.port('admin')}` }), 200);
      assert.equal(await send('GET', '/admin/sessions', { host: 'localhost' }), 200);
      const c = await TestClient.login(server, 'alice', PW);
      await c.close();
    } finally {
      await server.destroy();
    }
  });
});
