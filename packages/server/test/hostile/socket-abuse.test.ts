import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestClient } from '../support/test-client.js';
import { PW, raw, header, streamErrorOf, bystanders, exchanges } from './support/abuse.js';

/**
 * Each abuse on a real socket, while two well-behaved clients keep talking: the offender gets the
 * stream error RFC 6120 §4.9.3 names (or is throttled), the bystanders still exchange a message
 * within 2 s. Default limits, except a short authentication timeout.
 */
describe('hostile input on client streams (RFC 6120 §4.9, §13)', () => {
  let server: TestServer;
  let pair: Awaited<ReturnType<typeof bystanders>>;
  before(async () => {
    server = await startTestServer({ limits: { authTimeoutMs: 1500 }, modules: { ping: { idleMs: 0 } } });
    for (const u of ['romeo', 'juliet', 'mallory']) await server.addUser(u, PW);
    pair = await bystanders(server);
  });
  after(async () => {
    await pair.close();
    await server.destroy();
  });

  test('RFC 6120 §11.1: billion laughs (a DTD with nested entities) is restricted-xml', async () => {
    const s = await raw(server.port('c2s'));
    const lol = `<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol "lol">${Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i === 0 ? '' : i};`.repeat(10)}">`).join('')}]><lolz>&lol9;</lolz>`;
    s.write(lol);
    assert.equal(await streamErrorOf(s), 'restricted-xml');
    await exchanges(pair);
  });

  test('RFC 6120 §11.1: a billion-laughs entity reference inside a stream is not-well-formed', async () => {
    const s = await raw(server.port('c2s'));
    s.write(header() + '<message>&lol9;</message>');
    assert.equal(await streamErrorOf(s), 'not-well-formed');
    await exchanges(pair);
  });

  test('RFC 6120 §13.12: deep nesting is policy-violation', async () => {
    const c = await TestClient.login(server, 'mallory', PW, { resource: 'deep' });
    c.write('<message>' + '<a>'.repeat(10_000));
    await c.waitClosed();
    assert.equal(c.streamError?.condition, 'policy-violation');
    await exchanges(pair);
  });

  test('RFC 6120 §13.12: a 10 MB stanza is policy-violation before it is buffered', async () => {
    const c = await TestClient.login(server, 'mallory', PW, { resource: 'big' });
    const chunk = 'x'.repeat(64 * 1024);
    c.write(`<message to='juliet@localhost/good'><body>`);
    for (let i = 0; i < 160; i++) {
      // All 10 MB, even after the stream error: the rest is ignored and throttles nobody.
      c.write(chunk);
      if (i % 16 === 0) await new Promise((r) => setImmediate(r));
    }
    await c.waitClosed(10_000);
    assert.equal(c.streamError?.condition, 'policy-violation');
    await pair.juliet.nothing(
      (e) => e.name === 'message' && (e.getChildText('body') ?? '').startsWith('xxxx'),
      100,
    );
    await exchanges(pair);
  });

  test('RFC 6120 §13.12: an attribute flood is policy-violation', async () => {
    const c = await TestClient.login(server, 'mallory', PW, { resource: 'attrs' });
    c.write(`<message ${Array.from({ length: 5000 }, (_, i) => `a${i}='v'`).join(' ')}/>`);
    await c.waitClosed();
    assert.equal(c.streamError?.condition, 'policy-violation');
    await exchanges(pair);
  });

  test('RFC 6120 §13.12: slowloris (a stream header trickled byte by byte) is cut off with connection-timeout', async () => {
    const s = await raw(server.port('c2s'));
    const h = header();
    let i = 0;
    const drip = setInterval(() => {
      if (i < h.length) s.write(h[i++]!);
    }, 40);
    try {
      assert.equal(await streamErrorOf(s, 5000), 'connection-timeout');
    } finally {
      clearInterval(drip);
    }
    await exchanges(pair);
  });

  test('RFC 6120 §4.3: stanzas before authentication are not-authorized', async () => {
    const s = await raw(server.port('c2s'));
    s.write(
      header() + `<message to='juliet@localhost/good' type='chat'><body>unauthenticated</body></message>`,
    );
    assert.equal(await streamErrorOf(s), 'not-authorized');
    await pair.juliet.nothing((e) => e.getChildText('body') === 'unauthenticated', 200);
    await exchanges(pair);
  });

  test('RFC 6120 §8.1.2.1: a spoofed from is invalid-from and nothing is delivered', async () => {
    const c = await TestClient.login(server, 'mallory', PW, { resource: 'spoof' });
    c.send(
      xml(
        'message',
        { to: 'juliet@localhost/good', from: 'romeo@localhost/good', type: 'chat' },
        xml('body', null, 'spoofed'),
      ),
    );
    await c.waitClosed();
    assert.equal(c.streamError?.condition, 'invalid-from');
    await pair.juliet.nothing((e) => e.getChildText('body') === 'spoofed', 200);
    await exchanges(pair);
  });

  test('RFC 6120 §13.12: a stanza flood from an authenticated client is throttled or cut off; others are not slowed', async () => {
    const c = await TestClient.login(server, 'mallory', PW, { resource: 'flood' });
    const stanza = `<message to='mallory@localhost/nowhere' type='headline'><body>flood</body></message>`;
    const batch = stanza.repeat(200);
    let stop = false;
    let written = 0;
    const flooding = (async () => {
      while (!stop && !c.closed) {
        c.write(batch);
        written += batch.length;
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await new Promise((r) => setTimeout(r, 1000));
    const times = [];
    for (let i = 0; i < 3; i++) times.push(await exchanges(pair));
    stop = true;
    await flooding;
    // Either disconnected for flooding, or slowed down by back-pressure: the server read far less than was sent.
    const stream = [...server.core.streams].find((s) => s.session?.jid.resource === 'flood');
    if (c.closed) assert.equal(c.streamError?.condition, 'policy-violation');
    else
      assert.ok(
        stream && stream.bytesReceived < written / 2,
        `flooder not throttled: server read ${stream?.bytesReceived} of ${written} bytes`,
      );
    c.kill();
  });

  test('RFC 6120 §7.7.2.2: a resource-binding flood is capped with resource-constraint', async () => {
    const conns: TestClient[] = [];
    let refused = 0;
    for (let i = 0; i < 25; i++) {
      const c = await TestClient.open(server, 'starttls');
      await c.authenticate('mallory', PW);
      conns.push(c);
      try {
        await c.bind(`r${i}`);
      } catch (err) {
        assert.match((err as Error).message, /resource-constraint/);
        refused++;
      }
    }
    assert.ok(refused >= 5, `only ${refused} binds refused`);
    await exchanges(pair);
    for (const c of conns) c.kill();
  });

  test('RFC 6120 §7: binding again on a bound stream does not create sessions', async () => {
    const c = await TestClient.login(server, 'mallory', PW, { resource: 'rebind' });
    const before = server.core.sessions.ofAccount('mallory@localhost').length;
    for (let i = 0; i < 20; i++) {
      const r = await c.iq(
        xml('iq', { type: 'set' }, xml('bind', { xmlns: NS.bind }, xml('resource', null, `x${i}`))),
      );
      assert.equal(r.attrs.type, 'error');
    }
    assert.equal(server.core.sessions.ofAccount('mallory@localhost').length, before);
    await exchanges(pair);
    c.kill();
  });
});
