import { test } from 'node:test';
import assert from 'node:assert/strict';
import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { parseConfig } from '../src/config.js';
import { startTestServer, type TestServer } from './support/test-server.js';
import { TestClient } from './support/test-client.js';
import { componentHeader, connectComponent, connectComponentSocket } from './support/component-client.js';
import { handshakeDigest } from '../src/core/stream/steps/handshake.js';
import type { Socket } from 'node:net';
import type { RawClient } from './conformance/raw-client.js';
import { TestComponent } from './support/test-component.js';

const GW = 'gw.localhost';
const SECRET = 's3cret';
const PW = 'pencil-7-pencil';

async function withServer(fn: (server: TestServer) => Promise<void>): Promise<void> {
  const server = await startTestServer({
    components: { [GW]: { secret: SECRET }, 'other.localhost': { secret: 'other-secret' } },
  });
  try {
    await fn(server);
  } finally {
    await server.destroy();
  }
}

/** Waits (at most 10 s) until `cond` holds, checking on every turn of the event loop. */
async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Waits for the stream error the server closes the component stream with. */
async function closedWith(c: RawClient): Promise<string | undefined> {
  await c.waitClosed();
  return c.streamError();
}

test('XEP-0114 §3: the right handshake is answered with an empty <handshake/>', async () => {
  await withServer(async (server) => {
    const c = await connectComponent(server, GW, SECRET);
    assert.equal(c.header?.attrs.from, GW);
    assert.equal(c.header?.xmlns, NS.stream);
    assert.ok((c.header?.attrs.id ?? '').length >= 16, 'a stream id to hash');
    assert.equal(c.closed, false);
    c.kill();
  });
});

test('XEP-0114 §3: a wrong secret gets <not-authorized/> and the stream closes', async () => {
  await withServer(async (server) => {
    await assert.rejects(connectComponent(server, GW, 'wrong'), /not-authorized/);
  });
});

test('XEP-0114 §3 / RFC 6120 §13.12: failed handshakes count against the address; past its allowance even the right secret is refused unchecked', async () => {
  const server = await startTestServer({
    components: { [GW]: { secret: SECRET } },
    modules: { limits: { authFailuresPerIp: { burst: 2, perMinute: 1 } } },
  });
  try {
    for (let i = 0; i < 2; i++) await assert.rejects(connectComponent(server, GW, 'guess'), /not-authorized/);
    await assert.rejects(connectComponent(server, GW, SECRET), /policy-violation/);
  } finally {
    await server.destroy();
  }
});

test('XEP-0114 §3: a domain that is not a configured component gets <host-unknown/>', async () => {
  await withServer(async (server) => {
    const c = await connectComponentSocket(server, 'nope.localhost');
    c.write(componentHeader('nope.localhost'));
    assert.equal(await closedWith(c), 'host-unknown');
  });
});

test('XEP-0114 §3: a domain named after an Object.prototype property is unknown, not a component whose secret is "undefined"', async () => {
  await withServer(async (server) => {
    for (const domain of ['constructor', '__proto__']) {
      await assert.rejects(connectComponent(server, domain, 'undefined'), /host-unknown/, domain);
    }
  });
});

test('XEP-0114: a stanza before the handshake gets <not-authorized/>', async () => {
  await withServer(async (server) => {
    const c = await connectComponentSocket(server, GW);
    c.write(componentHeader(GW));
    await c.waitHeader();
    c.write(`<message from='${GW}' to='romeo@localhost'><body>early</body></message>`);
    assert.equal(await closedWith(c), 'not-authorized');
  });
});

test('XEP-0114: a client content namespace on the component port gets <invalid-namespace/>', async () => {
  await withServer(async (server) => {
    const c = await connectComponentSocket(server, GW);
    c.write(componentHeader(GW, { xmlns: NS.client }));
    assert.equal(await closedWith(c), 'invalid-namespace');
  });
});

test('XEP-0114: a second connection for a bound domain gets <conflict/>; the first keeps working; the domain reconnects at once after it closes', async () => {
  await withServer(async (server) => {
    await server.addUser('romeo', PW);
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'pc' });
    const first = await connectComponent(server, GW, SECRET);
    await assert.rejects(connectComponent(server, GW, SECRET), /conflict/);
    romeo.send(xml('message', { to: `bot@${GW}` }, xml('body', null, 'still there?')));
    const got = await first.receive('message');
    assert.equal(got.getChildText('body'), 'still there?');
    // A clean close frees the domain: the next connection is accepted straight away.
    first.write('</stream:stream>');
    await first.waitClosed();
    const again = await connectComponent(server, GW, SECRET);
    romeo.send(xml('message', { to: `bot@${GW}` }, xml('body', null, 'back')));
    assert.equal((await again.receive('message')).getChildText('body'), 'back');
    again.kill();
    await romeo.close();
  });
});

test('XEP-0114: a refused second connection makes the server ping the bound one; a live one stays, a silent one (its peer vanished) is closed and the domain freed', async () => {
  await withServer(async (server) => {
    const isPing = (e: Element) =>
      e.name === 'iq' && e.attrs.type === 'get' && e.getChild('ping', NS.ping) !== undefined;
    const first = await connectComponent(server, GW, SECRET);
    await assert.rejects(connectComponent(server, GW, SECRET), /conflict/);
    const ping = await first.receive(isPing);
    first.write(`<iq type='result' id='${ping.attrs.id}' from='${GW}' to='${ping.attrs.from}'/>`);
    // Answered: still bound; a new probe starts only once that one settled, and is sent to it again.
    await assert.rejects(connectComponent(server, GW, SECRET), /conflict/);
    const again = await first.receive(isPing);
    assert.equal(first.closed, false);
    // Silent this time, as a peer that vanished without closing: cut off, and the domain is free.
    await first.waitClosed(30_000);
    assert.equal(first.streamError(), 'connection-timeout');
    assert.ok(again.attrs.id);
    const next = await connectComponent(server, GW, SECRET);
    next.kill();
  });
});

test('XEP-0114: stanzas to the domain, bare and full JIDs on it reach the component with the sender stamped; its stanzas reach local users', async () => {
  await withServer(async (server) => {
    await server.addUser('romeo', PW);
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'pc', presence: true });
    const gw = await connectComponent(server, GW, SECRET);
    for (const to of [GW, `alice@${GW}`, `alice@${GW}/irc`]) {
      romeo.send(xml('message', { to, type: 'chat' }, xml('body', null, to)));
      const m = await gw.receive((e) => e.name === 'message' && e.getChildText('body') === to);
      assert.equal(m.attrs.from, 'romeo@localhost/pc');
      assert.equal(m.attrs.to, to);
      assert.equal(m.xmlns, NS.component);
    }
    // An IQ to the component and its answer.
    const pending = romeo.iq(
      xml('iq', { type: 'get', to: GW, id: 'v1' }, xml('query', { xmlns: 'jabber:iq:version' })),
    );
    const iq = await gw.receive('iq');
    assert.equal(iq.attrs.from, 'romeo@localhost/pc');
    gw.write(
      `<iq type='result' id='${iq.attrs.id}' from='${GW}' to='romeo@localhost/pc'><query xmlns='jabber:iq:version'><name>gw</name></query></iq>`,
    );
    const answer = await pending;
    assert.equal(answer.attrs.type, 'result');
    assert.equal(answer.attrs.from, GW);
    // From any address on its domain to a local user's bare and full JID.
    gw.write(
      `<message from='alice@${GW}/irc' to='romeo@localhost' type='chat'><body>hi romeo</body></message>`,
    );
    const m1 = await romeo.receive((e) => e.name === 'message' && e.getChildText('body') === 'hi romeo');
    assert.equal(m1.attrs.from, `alice@${GW}/irc`);
    assert.equal(m1.xmlns, NS.client, 'written to the client in its own namespace');
    gw.write(`<message from='${GW}' to='romeo@localhost/pc'><body>from the domain</body></message>`);
    const m2 = await romeo.receive(
      (e) => e.name === 'message' && e.getChildText('body') === 'from the domain',
    );
    assert.equal(m2.attrs.from, GW);
    // To the server's own domain: answered by the server (XEP-0199 ping).
    gw.write(`<iq type='get' id='p1' from='${GW}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    const pong = await gw.receive((e) => e.name === 'iq' && e.attrs.id === 'p1');
    assert.equal(pong.attrs.type, 'result');
    assert.equal(pong.attrs.to, GW);
    // To another component.
    const other = await connectComponent(server, 'other.localhost', 'other-secret');
    gw.write(`<message from='${GW}' to='x@other.localhost'><body>hello neighbour</body></message>`);
    const m3 = await other.receive('message');
    assert.equal(m3.attrs.from, GW);
    assert.equal(m3.getChildText('body'), 'hello neighbour');
    // To a local user who does not exist: the error comes back to the component.
    gw.write(
      `<iq type='get' id='q1' from='${GW}' to='nobody@localhost'><query xmlns='jabber:iq:version'/></iq>`,
    );
    const err = await gw.receive((e) => e.name === 'iq' && e.attrs.id === 'q1');
    assert.equal(err.attrs.type, 'error');
    // Whitespace keepalives are fine.
    gw.write('   \n ');
    gw.write(`<message from='${GW}' to='romeo@localhost'><body>after keepalive</body></message>`);
    await romeo.receive((e) => e.name === 'message' && e.getChildText('body') === 'after keepalive');
    assert.equal(gw.closed, false);
    gw.kill();
    other.kill();
    await romeo.close();
  });
});

test('XEP-0114: a from outside the component domain is <invalid-from/>; a missing to is <improper-addressing/>', async () => {
  await withServer(async (server) => {
    const a = await connectComponent(server, GW, SECRET);
    a.write(`<message from='romeo@localhost' to='juliet@localhost'><body>spoof</body></message>`);
    assert.equal(await closedWith(a), 'invalid-from');
    const b = await connectComponent(server, GW, SECRET);
    b.write(`<message from='x@other.localhost' to='juliet@localhost'><body>spoof</body></message>`);
    assert.equal(await closedWith(b), 'invalid-from');
    const c = await connectComponent(server, GW, SECRET);
    c.write(`<message from='${GW}'><body>nowhere</body></message>`);
    assert.equal(await closedWith(c), 'improper-addressing');
  });
});

test('XEP-0114: a subdomain or look-alike of the component domain is <invalid-from/>; its own domain in any case is accepted and normalised', async () => {
  await withServer(async (server) => {
    for (const from of [`x@evil.${GW}`, 'x@gw.localhost.evil', 'x@xgw.localhost', `${GW}@localhost`]) {
      const c = await connectComponent(server, GW, SECRET);
      c.write(`<message from='${from}' to='juliet@localhost'><body>spoof</body></message>`);
      assert.equal(await closedWith(c), 'invalid-from', from);
    }
    await server.addUser('juliet', PW);
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'pc', presence: true });
    const c = await connectComponent(server, GW, SECRET);
    c.write(
      `<message from='Alice@GW.LocalHost/Res' to='juliet@localhost' id='case'><body>hi</body></message>`,
    );
    const got = await juliet.receive((e) => e.name === 'message' && e.attrs.id === 'case');
    assert.equal(got.attrs.from, `alice@${GW}/Res`);
    c.kill();
    await juliet.close();
  });
});

test('XEP-0114 §3: the handshake digest is accepted in upper-case hex; a second handshake once bound ends the stream', async () => {
  await withServer(async (server) => {
    const c = await connectComponentSocket(server, GW);
    c.write(componentHeader(GW));
    await c.waitHeader();
    const digest = handshakeDigest(c.header?.attrs.id ?? '', SECRET);
    c.write(`<handshake>${digest.toUpperCase()}</handshake>`);
    await c.receive('handshake');
    c.write(`<handshake>${digest}</handshake>`);
    assert.equal(await closedWith(c), 'unsupported-stanza-type');
  });
});

test('XEP-0114: stanzas from a component are validated like client stanzas (IQ without id is bad-request)', async () => {
  await withServer(async (server) => {
    const c = await connectComponent(server, GW, SECRET);
    c.write(`<iq type='get' from='${GW}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    const err = await c.receive('iq');
    assert.equal(err.attrs.type, 'error');
    assert.ok(err.getChild('error')?.getChild('bad-request', NS.stanzas));
    c.write(`<iq type='bogus' id='b1' from='${GW}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    const err2 = await c.receive((e) => e.attrs.id === 'b1');
    assert.ok(err2.getChild('error')?.getChild('bad-request', NS.stanzas));
    c.kill();
  });
});

test('RFC 6120 §8.3.1 / §8.2.3: an invalid IQ error or result from a component is dropped, never answered with an error', async () => {
  await withServer(async (server) => {
    const c = await connectComponent(server, GW, SECRET);
    c.write(`<iq type='error' from='${GW}' to='localhost'/>`);
    c.write(`<iq type='result' from='${GW}' to='localhost'/>`);
    c.write(`<iq type='get' id='then' from='${GW}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    const pong = await c.receive((e) => e.name === 'iq' && e.attrs.id === 'then');
    assert.equal(pong.attrs.type, 'result');
    assert.deepEqual(
      c.received.filter((e) => e.name === 'iq').map((e) => e.toString()),
      [],
      'nothing answers the error and the result',
    );
    c.kill();
  });
});

test('XEP-0114: while the component is away, messages and IQs to its domain bounce with service-unavailable; presence is dropped', async () => {
  await withServer(async (server) => {
    await server.addUser('romeo', PW);
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'pc' });
    // Never connected.
    romeo.send(xml('message', { to: `bot@${GW}`, id: 'm1' }, xml('body', null, 'anyone?')));
    const e1 = await romeo.receive((e) => e.name === 'message' && e.attrs.id === 'm1');
    assert.equal(e1.attrs.type, 'error');
    assert.ok(e1.getChild('error')?.getChild('service-unavailable', NS.stanzas));
    // Connected, then gone.
    const gw = await connectComponent(server, GW, SECRET);
    gw.kill();
    await gw.waitClosed();
    await until(() => !server.core.components.has(GW), 'the server to see the component gone');
    const r = await romeo.iq(
      xml('iq', { type: 'get', to: GW }, xml('query', { xmlns: 'jabber:iq:version' })),
    );
    assert.equal(r.attrs.type, 'error');
    assert.ok(r.getChild('error')?.getChild('service-unavailable', NS.stanzas));
    assert.equal(
      romeo.received.some((e) => e.getChild('error')?.getChild('remote-server-not-found', NS.stanzas)),
      false,
    );
    romeo.send(xml('presence', { to: `bot@${GW}`, type: 'subscribe' }));
    await romeo.nothing((e) => e.name === 'presence' && e.attrs.type === 'error');
    await romeo.close();
  });
});

test('XEP-0114 / RFC 6120 §13.12: an oversize stanza from a component gets <policy-violation/>; other components are unaffected', async () => {
  const server = await startTestServer({
    components: { [GW]: { secret: SECRET }, 'other.localhost': { secret: 'other-secret' } },
    limits: { maxStanzaBytes: 10_000 },
  });
  try {
    await server.addUser('romeo', PW);
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'pc', presence: true });
    const bad = await connectComponent(server, GW, SECRET);
    const good = await connectComponent(server, 'other.localhost', 'other-secret');
    bad.write(`<message from='${GW}' to='romeo@localhost'><body>${'x'.repeat(20_000)}</body></message>`);
    assert.equal(await closedWith(bad), 'policy-violation');
    good.write(`<message from='other.localhost' to='romeo@localhost'><body>fine</body></message>`);
    await romeo.receive((e) => e.name === 'message' && e.getChildText('body') === 'fine');
    good.kill();
    await romeo.close();
  } finally {
    await server.destroy();
  }
});

test('config: components need a domain key and a secret, and may not take a virtual host or service domain', () => {
  assert.doesNotThrow(() =>
    parseConfig({
      components: {
        'irc.example.com': { secret: 'a' },
        'mqtt.example.com': {
          secret: 'b',
          privileges: { roster: 'both', iq: { 'jabber:iq:roster': 'get' } },
        },
      },
    }),
  );
  assert.throws(() => parseConfig({ components: { 'irc.example.com': { secret: '' } } }), /secret/);
  assert.throws(() => parseConfig({ components: { 'not a domain': { secret: 'x' } } }), /domain/);
  assert.throws(
    () => parseConfig({ hosts: ['example.com'], components: { 'example.com': { secret: 'x' } } }),
    /components\.example\.com: example\.com is already a virtual host/,
  );
  assert.throws(
    () => parseConfig({ hosts: ['example.com'], components: { 'conference.example.com': { secret: 'x' } } }),
    /service domain/,
  );
  // upload.<host> is the file upload service's only when the module is on.
  assert.throws(
    () =>
      parseConfig({
        hosts: ['example.com'],
        modules: { upload: {} },
        components: { 'upload.example.com': { secret: 'x' } },
      }),
    /file upload service/,
  );
  assert.doesNotThrow(() =>
    parseConfig({ hosts: ['example.com'], components: { 'upload.example.com': { secret: 'x' } } }),
  );
  assert.throws(
    () => parseConfig({ listeners: [{ type: 'component', port: 5347, proxyProtocol: true }] }),
    /proxyProtocol/,
  );
  const c = parseConfig({ listeners: [{ type: 'component', port: 5347 }] });
  assert.equal(c.listeners[0]!.host, '127.0.0.1');
});

test('XEP-0114: on shutdown a connected component is told <system-shutdown/>', async () => {
  const server = await startTestServer({ components: { [GW]: { secret: SECRET } } });
  try {
    const gw = await connectComponent(server, GW, SECRET);
    const stopping = server.stop();
    assert.equal(await closedWith(gw), 'system-shutdown');
    await stopping;
  } finally {
    await server.destroy();
  }
});

test('XEP-0114 / RFC 6120 §13.12: a component flooding stanzas beyond the limits module allowance gets <policy-violation/>; another component is unaffected', async () => {
  const server = await startTestServer({
    components: { [GW]: { secret: SECRET }, 'other.localhost': { secret: 'other-secret' } },
    modules: {
      limits: { authenticated: { stanzasPerSecond: 5, burstStanzas: 5 }, stanzaFloodDebt: 20 },
    },
  });
  try {
    await server.addUser('romeo', PW);
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'pc', presence: true });
    const flooder = await connectComponent(server, GW, SECRET);
    const calm = await connectComponent(server, 'other.localhost', 'other-secret');
    const one = `<message from='${GW}' to='nobody@other.localhost'><body>flood</body></message>`;
    flooder.write(one.repeat(200));
    assert.equal(await closedWith(flooder), 'policy-violation');
    calm.write(`<message from='other.localhost' to='romeo@localhost'><body>calm</body></message>`);
    await romeo.receive((e) => e.name === 'message' && e.getChildText('body') === 'calm');
    calm.kill();
    await romeo.close();
  } finally {
    await server.destroy();
  }
});

test('RFC 6120 §13.12 / XEP-0114: a component that stops reading is cut off; each message it never got bounces to its sender with service-unavailable', async () => {
  const server = await startTestServer({
    limits: { disabled: true, maxSendBufferBytes: 64 * 1024 },
    components: { [GW]: { secret: SECRET } },
    modules: { ping: { idleMs: 0 } },
  });
  try {
    await server.addUser('sender', PW);
    const gw = await TestComponent.connect(server.port('component'), GW, SECRET);
    const socket = (gw as unknown as { socket: Socket }).socket;
    socket.pause(); // what the server writes piles up in its send buffer
    const sender = await TestClient.login(server, 'sender', PW, { resource: 'pc' });
    // Large error messages fill the buffers (errors are never bounced); each is followed by a
    // small message, which is either read by the component or bounced once it is cut off.
    const filler = 'z'.repeat(4000);
    let sent = 0;
    while (server.core.components.has(GW)) {
      if (sent >= 10_000) assert.fail('the component was not cut off');
      for (let i = sent; i < sent + 50; i++) {
        sender.send(
          xml('message', { to: `bot@${GW}`, id: `f${i}`, type: 'error' }, xml('body', null, filler)),
        );
        sender.send(xml('message', { to: `bot@${GW}`, id: `m${i}` }, xml('body', null, String(i))));
      }
      sent += 50;
      await sender.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: NS.ping })), 30_000);
    }
    // The component reads what the kernel had taken before the cut-off; the rest came back as errors.
    socket.resume();
    await gw.waitClosed(30_000);
    const got = new Set(
      gw.received.filter((e) => e.name === 'message' && e.attrs.id?.startsWith('m')).map((e) => e.attrs.id),
    );
    const bounced = new Set<string | undefined>();
    await until(() => {
      for (const e of sender.received.splice(0))
        if (e.name === 'message' && e.attrs.type === 'error') {
          assert.ok(e.getChild('error')?.getChild('service-unavailable', NS.stanzas), e.toString());
          bounced.add(e.attrs.id);
        }
      return got.size + bounced.size >= sent;
    }, 'every message to be either read by the component or bounced').catch((err: unknown) => {
      throw new Error(`${(err as Error).message}: ${sent} sent, ${got.size} read, ${bounced.size} bounced`);
    });
    assert.deepEqual(
      [...got].filter((id) => bounced.has(id)),
      [],
      'a message read by the component is not bounced',
    );
    assert.ok(bounced.size > 0);
    await sender.close();
  } finally {
    await server.destroy();
  }
});
