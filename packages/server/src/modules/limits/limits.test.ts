import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { xml } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer } from '../../../test/support/test-server.js';
import { TestClient } from '../../../test/support/test-client.js';
import { TokenBucket } from '../../util/token-bucket.js';

const PW = 'secret-password';

function rawConnect(port: number): Promise<Socket & { text: string; closedP: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port }) as Socket & { text: string; closedP: Promise<void> };
    s.text = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (s.text += d));
    s.on('error', () => {});
    s.closedP = new Promise((r) => s.once('close', () => r()));
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

describe('token bucket', () => {
  test('allows a burst, then the rate; the debt says how long to wait', () => {
    let now = 0;
    const b = new TokenBucket(100, 200, () => now);
    assert.equal(b.take(200), 0);
    assert.equal(b.take(50), 500); // 50 tokens owed at 100/s
    now += 500;
    assert.equal(b.take(0), 0);
    now += 10_000;
    assert.equal(b.available, 200, 'never more than the burst');
  });
});

describe('limits module (RFC 6120 §13.12)', () => {
  test('throttling pauses reading instead of dropping: every stanza is answered, slower', async () => {
    const server = await startTestServer({
      modules: { ping: { idleMs: 0 }, limits: { authenticated: { bytesPerSecond: 4096, burstBytes: 4096 } } },
    });
    try {
      await server.addUser('romeo', PW);
      const c = await TestClient.login(server, 'romeo', PW, { resource: 'slow' });
      const ping = (i: number) =>
        `<iq type='get' id='p${i}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`;
      const one = ping(0).length;
      const n = Math.ceil((16 * 1024) / one);
      const started = Date.now();
      c.write(Array.from({ length: n }, (_, i) => ping(i)).join(''));
      for (let i = 0; i < n; i++) await c.receive((e) => e.name === 'iq' && e.attrs.id === `p${i}`, 10_000);
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 1500, `16 KiB at 4 KiB/s after a 4 KiB burst took only ${elapsed} ms`);
      assert.equal(c.closed, false);
      await c.close();
    } finally {
      await server.destroy();
    }
  });

  test('the stanza rate holds inside one large read: 600 pings written at once are answered at the allowed rate, in order, none lost', async () => {
    const server = await startTestServer({
      modules: {
        ping: { idleMs: 0 },
        limits: {
          authenticated: { stanzasPerSecond: 100, burstStanzas: 50, bytesPerSecond: 1e7, burstBytes: 1e7 },
        },
      },
    });
    try {
      await server.addUser('romeo', PW);
      // Plain TCP (allowed on loopback): reads of up to 64 KiB, where TLS would cut them at 16 KiB.
      const c = await TestClient.login(server, 'romeo', PW, { resource: 'burst', transport: 'plain' });
      const n = 600; // ~45 KB: one or two reads on the server side
      const answered: number[] = [];
      const watcher = (async () => {
        for (let i = 0; i < n; i++) {
          await c.receive((e) => e.name === 'iq' && e.attrs.id === `b${i}`, 20_000);
          answered.push(i);
        }
      })();
      c.write(
        Array.from(
          { length: n },
          (_, i) => `<iq type='get' id='b${i}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`,
        ).join(''),
      );
      const written = Date.now();
      await new Promise((r) => setTimeout(r, 300));
      // 50 at once, then 100/s, plus at most one 4 KiB slice (~58 pings) parsed ahead. Before the
      // reads were sliced, the whole chunk was handled at once: all 600.
      const elapsed = (Date.now() - written) / 1000;
      const allowed = 50 + 100 * elapsed + 60;
      assert.ok(elapsed < 4, 'checked well before the rate alone would allow all 600');
      assert.ok(answered.length <= allowed, `${answered.length} of ${n} answered in ${elapsed} s`);
      await watcher;
      assert.equal(answered.length, n);
      assert.equal(c.closed, false, 'throttled, not disconnected');
      await c.close();
    } finally {
      await server.destroy();
    }
  });

  test('rates are configurable per listener: a tight WebSocket listener does not slow the TCP one', async () => {
    const server = await startTestServer({
      modules: {
        ping: { idleMs: 0 },
        limits: { listeners: { http: { authenticated: { bytesPerSecond: 4096, burstBytes: 4096 } } } },
      },
    });
    try {
      await server.addUser('romeo', PW);
      // 16 KiB of pings in 2 KiB rounds: after the 4 KiB burst, reading pauses between rounds.
      const timeFor = async (c: TestClient) => {
        const ping = (i: number) =>
          `<iq type='get' id='q${i}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`;
        const perRound = Math.ceil(2048 / ping(0).length);
        const rounds = 8;
        const started = Date.now();
        for (let r = 0; r < rounds; r++) {
          const ids = Array.from({ length: perRound }, (_, k) => r * perRound + k);
          if (c.transport === 'ws') for (const i of ids) c.write(ping(i));
          else c.write(ids.map(ping).join(''));
          await c.receive((e) => e.name === 'iq' && e.attrs.id === `q${ids[ids.length - 1]}`, 10_000);
        }
        return Date.now() - started;
      };
      const tcp = await TestClient.login(server, 'romeo', PW, { resource: 'tcp' });
      const ws = await TestClient.login(server, 'romeo', PW, { resource: 'ws', transport: 'ws' });
      const [tTcp, tWs] = await Promise.all([timeFor(tcp), timeFor(ws)]);
      assert.ok(tWs >= 1000, `WebSocket took ${tWs} ms`);
      assert.ok(tTcp < tWs, `TCP took ${tTcp} ms, WebSocket ${tWs} ms`);
      await tcp.close();
      await ws.close();
    } finally {
      await server.destroy();
    }
  });

  test('a stanza flood beyond the hard cap is a policy-violation', async () => {
    const server = await startTestServer({
      modules: {
        ping: { idleMs: 0 },
        limits: { authenticated: { stanzasPerSecond: 10, burstStanzas: 10 }, stanzaFloodDebt: 50 },
      },
    });
    try {
      await server.addUser('romeo', PW);
      const c = await TestClient.login(server, 'romeo', PW, { resource: 'flood' });
      c.write(
        Array.from(
          { length: 300 },
          () => `<message to='romeo@localhost/nobody' type='headline'><body>x</body></message>`,
        ).join(''),
      );
      await c.waitClosed(5000);
      assert.equal(c.streamError?.condition, 'policy-violation');
    } finally {
      await server.destroy();
    }
  });

  test('connections per IP are capped: the oldest unauthenticated one makes room; when none is left, new ones are refused', async () => {
    const server = await startTestServer({
      modules: { ping: { idleMs: 0 }, limits: { maxConnectionsPerIp: 4 } },
    });
    try {
      await server.addUser('romeo', PW);
      const a = await TestClient.login(server, 'romeo', PW, { resource: 'a' });
      const b = await TestClient.login(server, 'romeo', PW, { resource: 'b' });
      const idle1 = await rawConnect(server.port('c2s'));
      const idle2 = await rawConnect(server.port('c2s'));
      await new Promise((r) => setTimeout(r, 100));
      const c = await TestClient.login(server, 'romeo', PW, { resource: 'c' });
      await idle1.closedP;
      assert.match(idle1.text, /policy-violation/);
      const d = await TestClient.login(server, 'romeo', PW, { resource: 'd' });
      await idle2.closedP;
      // Four authenticated connections: a fifth is refused.
      const refused = await rawConnect(server.port('c2s')).then((s) => s.closedP.then(() => true));
      assert.equal(refused, true);
      const pong = await a.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: NS.ping })));
      assert.equal(pong.attrs.type, 'result');
      for (const x of [a, b, c, d]) await x.close();
    } finally {
      await server.destroy();
    }
  });

  test('password guessing over many connections: after the per-IP allowance, attempts are refused with temporary-auth-failure, even with the right password; other addresses are unaffected', async () => {
    const server = await startTestServer({
      modules: { ping: { idleMs: 0 }, limits: { authFailuresPerIp: { burst: 4, perMinute: 6 } } },
    });
    try {
      await server.addUser('romeo', PW);
      const attempt = async (password: string, localAddress?: string) => {
        const c = await TestClient.open(server, 'plain', undefined, localAddress);
        try {
          await c.authenticate('romeo', password);
          return { condition: 'success', text: '' };
        } catch (err) {
          return err as { condition: string; text: string };
        } finally {
          c.kill();
        }
      };
      // Wrong guesses, one per connection (the per-stream limit never triggers), until the address
      // is refused: after the 4 allowed (one more per 10 s may have refilled meanwhile).
      const seen: string[] = [];
      for (let i = 0; i < 8 && !seen.includes('temporary-auth-failure'); i++)
        seen.push((await attempt(`guess-${i}`)).condition);
      assert.deepEqual(seen.slice(0, 4), [
        'not-authorized',
        'not-authorized',
        'not-authorized',
        'not-authorized',
      ]);
      assert.equal(seen.at(-1), 'temporary-auth-failure', seen.join(', '));
      // The right password is not even checked now.
      const refused = await attempt(PW);
      assert.equal(refused.condition, 'temporary-auth-failure');
      const wait = /try again in (\d+) s/.exec(refused.text);
      assert.ok(wait, refused.text);
      assert.ok(Number(wait[1]) >= 1 && Number(wait[1]) <= 10, refused.text);
      // Another machine (source address 127.0.0.2) logs in at once.
      assert.equal((await attempt(PW, '127.0.0.2')).condition, 'success');
      // Having waited as told, the first address logs in.
      await new Promise((r) => setTimeout(r, Number(wait[1]) * 1000 + 100));
      assert.equal((await attempt(PW)).condition, 'success');
    } finally {
      await server.destroy();
    }
  });

  test('unauthenticated connections are capped in total (resource-constraint for the oldest)', async () => {
    const server = await startTestServer({
      modules: { ping: { idleMs: 0 }, limits: { maxUnauthenticated: 3 } },
    });
    try {
      const socks = [];
      for (let i = 0; i < 3; i++) socks.push(await rawConnect(server.port('c2s')));
      await new Promise((r) => setTimeout(r, 50));
      const fourth = await rawConnect(server.port('c2s'));
      await socks[0]!.closedP;
      assert.match(socks[0]!.text, /resource-constraint/);
      for (const s of [...socks, fourth]) s.destroy();
    } finally {
      await server.destroy();
    }
  });

  test('slowloris: a stream header that does not arrive complete within headerTimeoutMs gets connection-timeout', async () => {
    const server = await startTestServer({
      modules: { ping: { idleMs: 0 }, limits: { headerTimeoutMs: 500 } },
    });
    try {
      const s = await rawConnect(server.port('c2s'));
      const header = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>`;
      let i = 0;
      const drip = setInterval(() => i < header.length && s.write(header[i++]!), 100);
      const started = Date.now();
      await s.closedP;
      clearInterval(drip);
      assert.match(s.text, /connection-timeout/);
      assert.ok(Date.now() - started < 3000);
    } finally {
      await server.destroy();
    }
  });

  test('limits.disabled turns every limit off', async () => {
    const server = await startTestServer({ limits: { disabled: true } });
    try {
      assert.equal(server.core.limiter, undefined);
      assert.equal(server.core.admit, undefined);
    } finally {
      await server.destroy();
    }
  });
});
