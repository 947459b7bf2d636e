import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml, type Element } from '@natter/xml';
import { NS, toBase64 } from '@natter/protocol';
import { startTestServer, type TestServer } from '../../../../test/support/test-server.js';
import { TestClient } from '../../../../test/support/test-client.js';
import { sasl2Exchange, userAgent } from '../../../../test/support/sasl2-exchange.js';

const PW = 'sasl2-password';
const UA = '4b7c1e6a-2f0d-4a7e-9c51-0e8e2f6b9d13';

function peer(c: TestClient) {
  return { features: c.features, send: (el: Element) => c.send(el), receive: c.receive.bind(c) };
}

const plainResponse = (user: string, pw: string) => toBase64(new TextEncoder().encode(`\0${user}\0${pw}`));

function authenticate(mechanism: string, ...children: (Element | string | undefined)[]): Element {
  return xml('authenticate', { xmlns: NS.sasl2, mechanism }, ...children);
}

const isSasl2 = (e: Element) => e.xmlns === NS.sasl2;

describe('SASL2 (XEP-0388) and Bind2 (XEP-0386)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ modules: { ping: { idleMs: 0 } } });
    for (const u of ['romeo', 'juliet']) await server.addUser(u, PW);
  });
  after(() => server.destroy());

  test('XEP-0388 §2.1: <authentication/> lists the mechanisms of legacy SASL and inline Bind2 with the modules’ features', async () => {
    const c = await TestClient.open(server, 'starttls');
    const auth = c.features!.getChild('authentication', NS.sasl2);
    assert.ok(auth);
    const mechs = auth.getChildren('mechanism', NS.sasl2).map((m) => m.text());
    const legacy = c
      .features!.getChild('mechanisms', NS.sasl)!
      .getChildren('mechanism', NS.sasl)
      .map((m) => m.text());
    assert.deepEqual(mechs, legacy);
    const inline = auth.getChild('inline', NS.sasl2)!;
    const vars = inline
      .getChild('bind', NS.bind2)!
      .getChild('inline', NS.bind2)!
      .getChildren('feature', NS.bind2)
      .map((f) => f.attrs.var);
    for (const v of [NS.carbons, NS.csi, NS.sm]) assert.ok(vars.includes(v), `${v} in ${vars.join(' ')}`);
    assert.ok(inline.getChild('sm', NS.sm), 'XEP-0198 resumption is offered inline');
    c.kill();
  });

  test('XEP-0388 §2.6.1: SCRAM over SASL2 succeeds with the server signature, a bare authorization-identifier and no stream restart', async () => {
    const c = await TestClient.open(server, 'starttls');
    const r = await sasl2Exchange(peer(c), 'romeo', PW, 'SCRAM-SHA-256', [userAgent(UA)]);
    assert.equal(r.success, true, r.element.toString());
    assert.ok(r.element.getChildText('additional-data', NS.sasl2));
    assert.equal(r.element.getChildText('authorization-identifier', NS.sasl2), 'romeo@localhost');
    // Without Bind2, the features after authentication follow at once (no new stream header).
    const features = await c.receive((e) => e.name === 'features' && e.xmlns === NS.stream);
    assert.ok(features.getChild('bind', NS.bind));
    assert.equal(features.getChild('authentication', NS.sasl2), undefined);
    c.features = features;
    const jid = await c.bind('legacy');
    assert.equal(jid, 'romeo@localhost/legacy');
    const pong = await c.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: NS.ping })));
    assert.equal(pong.attrs.type, 'result');
    await c.close();
  });

  test('XEP-0386 §2.2–2.4: Bind2 in <authenticate/> binds tag.random, enables carbons, CSI and stream management inline', async () => {
    const c = await TestClient.open(server, 'starttls');
    const r = await sasl2Exchange(peer(c), 'romeo', PW, 'SCRAM-SHA-1', [
      xml(
        'bind',
        { xmlns: NS.bind2 },
        xml('tag', null, 'Natter Test'),
        xml('enable', { xmlns: NS.carbons }),
        xml('inactive', { xmlns: NS.csi }),
        xml('enable', { xmlns: NS.sm, resume: 'true' }),
        xml('unknown', { xmlns: 'urn:example:nothing' }),
      ),
    ]);
    assert.equal(r.success, true, r.element.toString());
    const aid = r.element.getChildText('authorization-identifier', NS.sasl2)!;
    assert.match(aid, /^romeo@localhost\/Natter Test\.[0-9a-f]{12}$/);
    const bound = r.element.getChild('bound', NS.bind2);
    assert.ok(bound);
    const enabled = bound.getChild('enabled', NS.sm);
    assert.equal(enabled?.attrs.resume, 'true');
    // Bound: no features follow, stanzas flow, stream management counts.
    await c.nothing((e) => e.name === 'features', 200);
    await c.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: NS.ping })));
    const a = c.receive((e) => e.name === 'a' && e.xmlns === NS.sm);
    c.send(xml('r', { xmlns: NS.sm }));
    assert.equal((await a).attrs.h, '1');
    // Carbons were enabled inline: a message romeo sends from another resource is copied here
    // (once this resource is available: XEP-0280 §6).
    c.send(xml('presence'));
    const other = await TestClient.login(server, 'romeo', PW, { resource: 'other' });
    const copy = c.receive((e) => e.name === 'message' && e.getChild('sent', NS.carbons) !== undefined);
    other.send(xml('message', { to: 'juliet@localhost', type: 'chat' }, xml('body', null, 'hi')));
    await copy;
    await other.close();
    await c.close();
  });

  test('XEP-0386 §2.2: the same user-agent id gets the same resource, and its new session replaces the old one', async () => {
    const bindTag = xml('bind', { xmlns: NS.bind2 }, xml('tag', null, 'Phone'));
    const first = await TestClient.open(server, 'starttls');
    const r1 = await sasl2Exchange(peer(first), 'juliet', PW, 'PLAIN', [userAgent(UA), bindTag]);
    const second = await TestClient.open(server, 'starttls');
    const r2 = await sasl2Exchange(peer(second), 'juliet', PW, 'PLAIN', [userAgent(UA), bindTag]);
    const jid1 = r1.element.getChildText('authorization-identifier', NS.sasl2);
    assert.equal(r2.element.getChildText('authorization-identifier', NS.sasl2), jid1);
    await first.waitClosed();
    assert.equal(first.streamError?.condition, 'conflict');
    // Another installation gets another resource.
    const third = await TestClient.open(server, 'starttls');
    const r3 = await sasl2Exchange(peer(third), 'juliet', PW, 'PLAIN', [
      userAgent('0f0f0f0f-1111-4222-8333-444455556666'),
      bindTag,
    ]);
    assert.notEqual(r3.element.getChildText('authorization-identifier', NS.sasl2), jid1);
    await second.close();
    await third.close();
  });

  test('XEP-0388 §2.6.2: a wrong password is a <failure/> with not-authorized and a text; the client may try again', async () => {
    const c = await TestClient.open(server, 'starttls');
    const bad = await sasl2Exchange(peer(c), 'romeo', 'wrong', 'SCRAM-SHA-256');
    assert.equal(bad.success, false);
    assert.equal(bad.condition, 'not-authorized');
    assert.ok(bad.element.getChildText('text', NS.sasl2));
    const good = await sasl2Exchange(peer(c), 'romeo', PW, 'PLAIN');
    assert.equal(good.success, true);
    c.kill();
  });

  test('RFC 6120 §6.4.5 limits apply to SASL2: too many failures end the stream with policy-violation', async () => {
    const c = await TestClient.open(server, 'starttls', undefined, '127.0.0.9');
    for (let i = 0; i < 3; i++) {
      const r = await sasl2Exchange(peer(c), 'juliet', `wrong-${i}`, 'PLAIN');
      assert.equal(r.condition, 'not-authorized');
    }
    await c.waitClosed();
    assert.equal(c.streamError?.condition, 'policy-violation');
  });

  test('XEP-0388: bad requests get the right failure and the stream goes on', async () => {
    const c = await TestClient.open(server, 'starttls');
    const ask = async (el: Element | string) => {
      const p = c.receive(isSasl2);
      c.send(el);
      const f = await p;
      assert.equal(f.name, 'failure', f.toString());
      return f.elements().find((e) => e.xmlns === NS.sasl)?.name;
    };
    const ir = xml('initial-response', null, plainResponse('romeo', PW));
    assert.equal(await ask(authenticate('DIGEST-MD5', ir)), 'invalid-mechanism');
    assert.equal(await ask(authenticate('', ir)), 'invalid-mechanism');
    assert.equal(
      await ask(authenticate('PLAIN', xml('initial-response', null, '%%%not base64'))),
      'incorrect-encoding',
    );
    assert.equal(
      await ask(authenticate('PLAIN', ir, xml('initial-response', null, 'AA=='))),
      'malformed-request',
    );
    assert.equal(
      await ask(authenticate('PLAIN', ir, xml('user-agent', { xmlns: NS.sasl2, id: 'x'.repeat(65) }))),
      'malformed-request',
    );
    assert.equal(
      await ask(authenticate('PLAIN', ir, xml('user-agent', { xmlns: NS.sasl2, id: 'has space' }))),
      'malformed-request',
    );
    assert.equal(
      await ask(
        authenticate('PLAIN', ir, xml('bind', { xmlns: NS.bind2 }, xml('tag', null, 'a'.repeat(65)))),
      ),
      'malformed-request',
    );
    assert.equal(
      await ask(
        authenticate('PLAIN', ir, xml('bind', { xmlns: NS.bind2 }, xml('tag', null, 'evil/<tag>@x'))),
      ),
      'malformed-request',
    );
    assert.equal(await ask(xml('response', { xmlns: NS.sasl2 }, 'AA==')), 'malformed-request');
    // A SCRAM exchange the client abandons.
    c.send(
      authenticate(
        'SCRAM-SHA-1',
        xml('initial-response', null, toBase64(new TextEncoder().encode('n,,n=romeo,r=abcdefgh'))),
      ),
    );
    await c.receive((e) => e.name === 'challenge' && e.xmlns === NS.sasl2);
    assert.equal(await ask(xml('abort', { xmlns: NS.sasl2 })), 'aborted');
    // None of this counted as a wrong password: the stream is alive and a good login works.
    assert.equal(c.closed, false);
    const ok = await sasl2Exchange(peer(c), 'romeo', PW, 'PLAIN');
    assert.equal(ok.success, true);
    c.kill();
  });

  test('XEP-0388 §4: SASL2 is not offered before TLS and refused with encryption-required', async () => {
    const strict = await startTestServer({ auth: { allowPlaintext: 'never' } });
    try {
      await strict.addUser('romeo', PW);
      const c = await TestClient.open(strict, 'plain');
      assert.equal(c.features!.getChild('authentication', NS.sasl2), undefined);
      const p = c.receive(isSasl2);
      c.send(authenticate('PLAIN', xml('initial-response', null, plainResponse('romeo', PW))));
      const f = await p;
      assert.equal(f.name, 'failure');
      assert.ok(f.getChild('encryption-required', NS.sasl));
      c.kill();
    } finally {
      await strict.destroy();
    }
  });

  test('XEP-0386: when no session can be made (resource limit), the client gets a failure with the stanza condition', async () => {
    const small = await startTestServer({ limits: { maxResourcesPerAccount: 1 } });
    try {
      await small.addUser('romeo', PW);
      const first = await TestClient.login(small, 'romeo', PW, { resource: 'one' });
      const c = await TestClient.open(small, 'starttls');
      const r = await sasl2Exchange(peer(c), 'romeo', PW, 'PLAIN', [
        xml('bind', { xmlns: NS.bind2 }, xml('tag', null, 'two')),
      ]);
      assert.equal(r.success, false);
      assert.ok(r.element.getChild('resource-constraint', NS.stanzas), r.element.toString());
      await c.waitClosed();
      // The session that was there is untouched.
      const pong = await first.iq(
        xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: NS.ping })),
      );
      assert.equal(pong.attrs.type, 'result');
      await first.close();
    } finally {
      await small.destroy();
    }
  });

  test('XEP-0388 over WebSocket: Bind2 binds without a restart', async () => {
    const c = await TestClient.open(server, 'ws');
    const r = await sasl2Exchange(peer(c), 'romeo', PW, 'PLAIN', [
      xml('bind', { xmlns: NS.bind2 }, xml('tag', null, 'web')),
    ]);
    assert.equal(r.success, true);
    const pong = await c.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: NS.ping })));
    assert.equal(pong.attrs.type, 'result');
    await c.close();
  });
});
