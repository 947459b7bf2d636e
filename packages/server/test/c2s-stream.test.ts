import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from './support/test-server.js';
import { TestClient } from './support/test-client.js';

const PW = 'secret-password';

describe('client streams (RFC 6120)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ modules: { ping: { idleMs: 0 } } });
    for (const u of ['romeo', 'juliet', 'nurse']) await server.addUser(u, PW);
  });
  after(() => server.destroy());

  test('RFC 6120 §4.2: the stream header answers with an id, from and version 1.0', async () => {
    const c = await TestClient.open(server, 'plain');
    assert.equal(c.streamHeader?.from, 'localhost');
    assert.equal(c.streamHeader?.version, '1.0');
    assert.ok((c.streamHeader?.id ?? '').length >= 8);
    c.kill();
  });

  test('RFC 6120 §5: STARTTLS is offered on the plain port, then SASL mechanisms after TLS', async () => {
    const c = await TestClient.open(server, 'plain');
    assert.ok(c.features?.getChild('starttls', NS.tls));
    const tls = await TestClient.open(server, 'starttls');
    assert.equal(tls.features?.getChild('starttls', NS.tls), undefined);
    const mechs = tls.features
      ?.getChild('mechanisms', NS.sasl)
      ?.getChildren('mechanism')
      .map((m) => m.text());
    assert.deepEqual(mechs, [
      'SCRAM-SHA-256-PLUS',
      'SCRAM-SHA-1-PLUS',
      'SCRAM-SHA-256',
      'SCRAM-SHA-1',
      'PLAIN',
    ]);
    c.kill();
    tls.kill();
  });

  for (const mechanism of ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN']) {
    test(`RFC 6120 §6: ${mechanism} over STARTTLS authenticates and binds`, async () => {
      const c = await TestClient.login(server, 'romeo', PW, { mechanism, resource: `r-${mechanism}` });
      assert.equal(c.jid, `romeo@localhost/r-${mechanism}`);
      await c.close();
    });
  }

  test('XEP-0368: direct TLS on its own port', async () => {
    const c = await TestClient.login(server, 'romeo', PW, { transport: 'tls', resource: 'direct' });
    assert.equal(c.jid, 'romeo@localhost/direct');
    await c.close();
  });

  test('RFC 7395: XMPP over WebSocket with open/close framing', async () => {
    const c = await TestClient.login(server, 'romeo', PW, { transport: 'ws', resource: 'web' });
    assert.equal(c.streamHeader?.from, 'localhost');
    assert.equal(c.jid, 'romeo@localhost/web');
    const pong = await c.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: NS.ping })));
    assert.equal(pong.attrs.type, 'result');
    await c.close();
  });

  test('RFC 6120 §6.5.10: a wrong password gets not-authorized; repeated failures end the stream', async () => {
    const c = await TestClient.open(server, 'starttls');
    for (let i = 0; i < 2; i++) {
      await assert.rejects(c.authenticate('romeo', 'wrong'), /not-authorized/);
    }
    await assert.rejects(c.authenticate('romeo', 'wrong'), /not-authorized/);
    await c.waitClosed();
    assert.equal(c.streamError?.condition, 'policy-violation');
  });

  test('RFC 6120 §6.5.10: an unknown user fails exactly like a wrong password', async () => {
    const c = await TestClient.open(server, 'starttls');
    await assert.rejects(c.authenticate('nobody', PW), /not-authorized/);
    c.kill();
  });

  test('RFC 6120 §7.6: the server generates a resource when none is asked', async () => {
    const c = await TestClient.login(server, 'juliet', PW);
    assert.match(c.jid, /^juliet@localhost\/.{6,}$/);
    await c.close();
  });

  test('RFC 6120 §7.7.2.2: a conflicting resource replaces the older session', async () => {
    const old = await TestClient.login(server, 'juliet', PW, { resource: 'balcony' });
    const fresh = await TestClient.login(server, 'juliet', PW, { resource: 'balcony' });
    await old.waitClosed();
    assert.equal(old.streamError?.condition, 'conflict');
    assert.equal(fresh.jid, 'juliet@localhost/balcony');
    await fresh.close();
  });

  test('RFC 6121 §1.4: the legacy session IQ is answered', async () => {
    const c = await TestClient.login(server, 'romeo', PW);
    const r = await c.iq(xml('iq', { type: 'set' }, xml('session', { xmlns: NS.session })));
    assert.equal(r.attrs.type, 'result');
    await c.close();
  });

  test('RFC 6120 §8.1.2.1: messages carry the sender stamped by the server, to full and bare JIDs', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'a', presence: true });
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'b', presence: true });
    romeo.send(xml('message', { to: 'juliet@localhost/b', type: 'chat' }, xml('body', null, 'to full')));
    const m1 = await juliet.receive((e) => e.name === 'message' && e.getChildText('body') === 'to full');
    assert.equal(m1.attrs.from, 'romeo@localhost/a');
    romeo.send(xml('message', { to: 'Juliet@LOCALHOST', type: 'chat' }, xml('body', null, 'to bare')));
    const m2 = await juliet.receive((e) => e.name === 'message' && e.getChildText('body') === 'to bare');
    assert.equal(m2.attrs.from, 'romeo@localhost/a');
    await romeo.close();
    await juliet.close();
  });

  test('RFC 6120 §8.1.2.1: a spoofed from is an invalid-from stream error', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'spoof' });
    romeo.send(
      xml('message', { to: 'juliet@localhost', from: 'nurse@localhost/x' }, xml('body', null, 'hi')),
    );
    await romeo.waitClosed();
    assert.equal(romeo.streamError?.condition, 'invalid-from');
  });

  test('RFC 6121 §8.5.1: a message to an unknown account returns service-unavailable', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { presence: true });
    romeo.send(xml('message', { to: 'ghost@localhost', id: 'm1', type: 'chat' }, xml('body', null, 'boo')));
    const err = await romeo.receive((e) => e.name === 'message' && e.attrs.type === 'error');
    assert.equal(err.attrs.id, 'm1');
    assert.equal(err.attrs.from, 'ghost@localhost');
    assert.ok(err.getChild('error')?.getChild('service-unavailable', NS.stanzas));
    await romeo.close();
  });

  test('RFC 6120 §8.4: an IQ in an unknown namespace gets service-unavailable, to the server and to an account', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW);
    for (const to of ['localhost', 'juliet@localhost', undefined]) {
      const r = await romeo.iq(
        xml('iq', { type: 'get', to }, xml('query', { xmlns: 'urn:example:nothing' })),
      );
      assert.equal(r.attrs.type, 'error', String(to));
      assert.ok(r.getChild('error')?.getChild('service-unavailable', NS.stanzas));
    }
    await romeo.close();
  });

  test('RFC 6121 §8.5.3.2.1: an IQ to an offline full JID gets service-unavailable', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW);
    const r = await romeo.iq(
      xml('iq', { type: 'get', to: 'juliet@localhost/nowhere' }, xml('ping', { xmlns: NS.ping })),
    );
    assert.ok(r.getChild('error')?.getChild('service-unavailable', NS.stanzas));
    await romeo.close();
  });

  test('RFC 6120 §10.4: a remote domain is unreachable without federation: remote-server-not-found', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW);
    const r = await romeo.iq(xml('iq', { type: 'get', to: 'example.org' }, xml('ping', { xmlns: NS.ping })));
    assert.ok(r.getChild('error')?.getChild('remote-server-not-found', NS.stanzas));
    await romeo.close();
  });

  test('RFC 6120 §8.3.3.8: a malformed to is answered with jid-malformed', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW);
    const r = await romeo.iq(xml('iq', { type: 'get', to: 'a@b@c/' }, xml('ping', { xmlns: NS.ping })));
    assert.ok(r.getChild('error')?.getChild('jid-malformed', NS.stanzas));
    await romeo.close();
  });

  test('XEP-0199 and XEP-0030: ping and disco#info to the server', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW);
    const pong = await romeo.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: NS.ping })));
    assert.equal(pong.attrs.type, 'result');
    assert.equal(pong.attrs.from, 'localhost');
    const info = await romeo.iq(
      xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: NS.discoInfo })),
    );
    const features = info
      .getChild('query', NS.discoInfo)!
      .getChildren('feature')
      .map((f) => f.attrs.var);
    assert.ok(features.includes(NS.ping));
    assert.ok(features.includes(NS.discoInfo));
    assert.equal(info.getChild('query', NS.discoInfo)!.getChild('identity')?.attrs.category, 'server');
    await romeo.close();
  });

  test('RFC 6120 §4.6: whitespace keepalives are tolerated', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW);
    for (let i = 0; i < 20; i++) romeo.write(' ');
    const pong = await romeo.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: NS.ping })));
    assert.equal(pong.attrs.type, 'result');
    await romeo.close();
  });

  test('RFC 6120 §4.4: closing the stream makes the server close its side', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW);
    await romeo.close();
    assert.equal(romeo.closed, true);
    assert.equal(romeo.streamError, undefined);
  });
});

describe('bad input on client streams (RFC 6120 §4.9)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      limits: { maxStanzaBytes: 16 * 1024 },
      modules: { ping: { idleMs: 0 } },
    });
    await server.addUser('romeo', PW);
  });
  after(() => server.destroy());

  test('malformed XML: not-well-formed', async () => {
    const c = await TestClient.login(server, 'romeo', PW);
    c.write('<message><body>oops</message>');
    await c.waitClosed();
    assert.equal(c.streamError?.condition, 'not-well-formed');
  });

  test('a comment: restricted-xml', async () => {
    const c = await TestClient.login(server, 'romeo', PW);
    c.write('<!-- hello -->');
    await c.waitClosed();
    assert.equal(c.streamError?.condition, 'restricted-xml');
  });

  test('an oversized stanza: policy-violation before it is buffered whole', async () => {
    const c = await TestClient.login(server, 'romeo', PW);
    c.write('<message to="romeo@localhost"><body>' + 'x'.repeat(64 * 1024));
    await c.waitClosed();
    assert.equal(c.streamError?.condition, 'policy-violation');
  });

  test('a stanza before authentication: not-authorized', async () => {
    const c = await TestClient.open(server, 'starttls');
    c.send(xml('message', { to: 'romeo@localhost' }, xml('body', null, 'hi')));
    await c.waitClosed();
    assert.equal(c.streamError?.condition, 'not-authorized');
  });

  test('an unknown host: host-unknown', async () => {
    const c = await TestClient.open(server, 'plain', 'example.org').catch(() => undefined);
    assert.equal(c, undefined);
  });

  test('credentials are refused without TLS when plaintext is not allowed', async () => {
    const strict = await startTestServer({ auth: { allowPlaintext: 'never' } });
    try {
      const c = await TestClient.open(strict, 'plain');
      assert.ok(c.features?.getChild('starttls', NS.tls)?.getChild('required'));
      assert.equal(c.features?.getChild('mechanisms', NS.sasl), undefined);
      c.send(xml('auth', { xmlns: NS.sasl, mechanism: 'PLAIN' }, 'AHJvbWVvAHNlY3JldA=='));
      const f = await c.receive('failure');
      assert.ok(f.getChild('encryption-required'));
      c.kill();
    } finally {
      await strict.destroy();
    }
  });
});

describe('in-band registration (XEP-0077)', () => {
  test('is off by default', async () => {
    const server = await startTestServer();
    try {
      const c = await TestClient.open(server, 'starttls');
      assert.equal(c.features?.getChild('register', NS.registerFeature), undefined);
      c.kill();
    } finally {
      await server.destroy();
    }
  });

  test('when enabled, registers an account that can log in, refuses taken names and limits per IP', async () => {
    const server = await startTestServer({ registration: { enabled: true, perIpPerHour: 2 } });
    try {
      const c = await TestClient.open(server, 'starttls');
      assert.ok(c.features?.getChild('register', NS.registerFeature));
      const form = await c.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS.register })));
      assert.ok(form.getChild('query', NS.register)?.getChild('password'));
      const ok = await c.iq(
        xml(
          'iq',
          { type: 'set' },
          xml('query', { xmlns: NS.register }, xml('username', null, 'mercutio'), xml('password', null, PW)),
        ),
      );
      assert.equal(ok.attrs.type, 'result');
      const taken = await c.iq(
        xml(
          'iq',
          { type: 'set' },
          xml('query', { xmlns: NS.register }, xml('username', null, 'Mercutio'), xml('password', null, PW)),
        ),
      );
      assert.ok(taken.getChild('error')?.getChild('conflict', NS.stanzas));
      const limited = await c.iq(
        xml(
          'iq',
          { type: 'set' },
          xml('query', { xmlns: NS.register }, xml('username', null, 'tybalt'), xml('password', null, PW)),
        ),
      );
      assert.ok(limited.getChild('error')?.getChild('resource-constraint', NS.stanzas));
      c.kill();
      const m = await TestClient.login(server, 'mercutio', PW);
      assert.match(m.jid, /^mercutio@localhost\//);
      await m.close();
    } finally {
      await server.destroy();
    }
  });
});

describe('server pings (XEP-0199)', () => {
  test('an idle client that does not answer pings is disconnected; one that answers stays', async () => {
    const server = await startTestServer({ modules: { ping: { idleMs: 300, timeoutMs: 300 } } });
    try {
      await server.addUser('romeo', PW);
      await server.addUser('juliet', PW);
      const silent = await TestClient.login(server, 'romeo', PW);
      const polite = await TestClient.login(server, 'juliet', PW);
      const answer = async () => {
        while (!polite.closed) {
          const ping = await polite
            .receive((e) => e.name === 'iq' && !!e.getChild('ping', NS.ping), 3000)
            .catch(() => undefined);
          if (!ping) return;
          polite.send(xml('iq', { type: 'result', id: ping.attrs.id, to: ping.attrs.from }));
        }
      };
      const answering = answer();
      const ping = await silent.receive((e) => e.name === 'iq' && !!e.getChild('ping', NS.ping), 3000);
      assert.equal(ping.attrs.from, 'localhost');
      await silent.waitClosed(3000);
      assert.equal(silent.streamError?.condition, 'connection-timeout');
      assert.equal(polite.closed, false);
      await polite.close();
      await answering;
    } finally {
      await server.destroy();
    }
  });
});
