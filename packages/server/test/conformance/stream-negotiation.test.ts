import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Element } from '@natter/xml';
import { NS, toBase64 } from '@natter/protocol';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestClient } from '../support/test-client.js';
import { RawClient } from './raw-client.js';

const PW = 'conformance-pw';
const b64 = (s: string) => toBase64(new TextEncoder().encode(s));
const mechanisms = (features: Element | undefined) =>
  (features?.getChild('mechanisms', NS.sasl)?.getChildren('mechanism') ?? []).map((m) => m.text());

describe('stream negotiation (RFC 6120 §4–§6)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ modules: { ping: { idleMs: 0 } } });
    await server.addUser('romeo', PW);
  });
  after(() => server.destroy());

  test('RFC 6120 §4.7: the response header carries id, from=domain, version 1.0, xml:lang and the jabber:client content namespace', async () => {
    const c = await RawClient.connect(server);
    await c.open({ 'xml:lang': 'en' });
    assert.equal(c.header?.name, 'stream');
    assert.equal(c.header?.xmlns, NS.stream);
    assert.equal(c.header?.attrs.from, 'localhost');
    assert.equal(c.header?.attrs.version, '1.0');
    assert.ok(c.header?.attrs['xml:lang'], 'xml:lang present');
    assert.ok((c.header?.attrs.id ?? '').length >= 8, 'id present');
    assert.equal(c.header?.attrs.to, undefined, 'no to when the client sent no from');
    assert.match(c.raw, /xmlns=['"]jabber:client['"]/);
    c.kill();
  });

  test('RFC 6120 §4.7.3: stream ids are unique per stream', async () => {
    const a = await RawClient.connect(server);
    const b = await RawClient.connect(server);
    await a.open();
    await b.open();
    assert.notEqual(a.header?.attrs.id, b.header?.attrs.id);
    a.kill();
    b.kill();
  });

  test('RFC 6120 §4.3.3/§6.4.6: the stream restarted after SASL gets a new stream id', async () => {
    const c = await RawClient.connect(server);
    await c.open();
    const first = c.header?.attrs.id;
    assert.equal((await c.plain('romeo', PW)).name, 'success');
    await c.open();
    assert.ok(c.header?.attrs.id);
    assert.notEqual(c.header?.attrs.id, first);
    c.kill();
  });

  test('RFC 6120 §4.7.1: a header without to is answered with from set to the server domain', async () => {
    const c = await RawClient.connect(server);
    const f = await c.open({ to: undefined });
    assert.equal(c.header?.attrs.from, 'localhost');
    assert.ok(f.getChild('starttls', NS.tls));
    c.kill();
  });

  test('RFC 6120 §4.7.2: the response header echoes as to the from of the client header', async () => {
    const c = await RawClient.connect(server);
    await c.open({ from: 'romeo@localhost' });
    assert.equal(c.header?.attrs.to, 'romeo@localhost');
    c.kill();
  });

  test('RFC 6120 §4.8.5 / XML Namespaces: a prefix other than stream bound to the stream namespace is accepted', async () => {
    const c = await RawClient.connect(server);
    const f = c.receive((e) => e.name === 'features');
    c.write(
      `<?xml version='1.0'?><s:stream xmlns='jabber:client' xmlns:s='${NS.stream}' to='localhost' version='1.0'>`,
    );
    await f;
    assert.equal(c.header?.xmlns, NS.stream);
    c.kill();
  });

  test('RFC 6120 §4.9.3.10: a wrong stream namespace is invalid-namespace, then the connection closes', async () => {
    const c = await RawClient.connect(server);
    c.write(RawClient.header({ to: 'localhost', 'xmlns:stream': 'http://wrong.example/streams' }));
    await c.waitClosed();
    assert.equal(c.streamError(), 'invalid-namespace');
  });

  test('RFC 6120 §4.9.3.10: a content namespace other than jabber:client is invalid-namespace', async () => {
    const c = await RawClient.connect(server);
    c.write(RawClient.header({ to: 'localhost', xmlns: 'urn:example:wrong' }));
    await c.waitClosed();
    assert.equal(c.streamError(), 'invalid-namespace');
  });

  test('RFC 6120 §4.9.3.25: an unsupported major version is unsupported-version', async () => {
    const c = await RawClient.connect(server);
    c.write(RawClient.header({ to: 'localhost', version: '2.0' }));
    await c.waitClosed();
    assert.equal(c.streamError(), 'unsupported-version');
    assert.ok(c.header, 'a response header precedes the stream error (§4.9.1.2)');
  });

  test('RFC 6120 §4.9.3.6: an unknown host is host-unknown, preceded by a stream header', async () => {
    const c = await RawClient.connect(server);
    c.write(RawClient.header({ to: 'unknown.example' }));
    await c.waitClosed();
    assert.ok(c.header);
    assert.equal(c.streamError(), 'host-unknown');
    assert.ok(c.streamEnded, 'the stream is closed with </stream:stream>');
  });

  test('RFC 6120 §4.9.1.2: a stream error is followed by the closing tag and the connection closes', async () => {
    const c = await RawClient.connect(server);
    await c.open();
    c.write('<foo xmlns="urn:example:unknown"/>');
    await c.waitClosed();
    assert.ok(c.streamError(), 'some stream error');
    assert.match(c.raw, /<\/stream:stream>\s*$/);
  });

  test('RFC 6120 §5.3.1/§6.3.1: before TLS the plain port offers STARTTLS; after TLS, SASL without STARTTLS; after SASL, bind', async () => {
    const plain = await TestClient.open(server, 'plain');
    assert.ok(plain.features?.getChild('starttls', NS.tls));
    plain.kill();
    const tls = await TestClient.open(server, 'starttls');
    assert.equal(tls.features?.getChild('starttls', NS.tls), undefined);
    assert.deepEqual(mechanisms(tls.features), [
      'SCRAM-SHA-256-PLUS',
      'SCRAM-SHA-1-PLUS',
      'SCRAM-SHA-256',
      'SCRAM-SHA-1',
      'PLAIN',
    ]);
    await tls.authenticate('romeo', PW, 'SCRAM-SHA-1');
    assert.ok(tls.features?.getChild('bind', NS.bind));
    assert.equal(tls.features?.getChild('mechanisms', NS.sasl), undefined, 'no SASL after SASL (§6.4.6)');
    assert.equal(tls.features?.getChild('starttls', NS.tls), undefined);
    tls.kill();
  });

  test('RFC 6120 §5.4.2.3: STARTTLS after TLS is not offered; a second <starttls/> gets <failure/> and the stream closes', async () => {
    const c = await TestClient.open(server, 'starttls');
    c.write(`<starttls xmlns='${NS.tls}'/>`);
    await c.waitClosed();
    assert.ok(
      c.received.some((e) => e.name === 'failure' && e.xmlns === NS.tls) || c.streamError,
      'failure or stream error',
    );
  });

  test('RFC 6120 §5.4.3.3: data sent after <starttls/> in the same packet is ignored', async () => {
    const c = await RawClient.connect(server);
    await c.open();
    // An injected authentication and stanza in the clear, before the TLS handshake.
    c.write(
      `<starttls xmlns='${NS.tls}'/><auth xmlns='${NS.sasl}' mechanism='PLAIN'>${b64(`\0romeo\0${PW}`)}</auth>`,
    );
    await c.receive((e) => e.name === 'proceed' && e.xmlns === NS.tls);
    await c.upgrade();
    const f = await c.open();
    assert.ok(f.getChild('mechanisms', NS.sasl), 'still unauthenticated: SASL offered');
    assert.equal(f.getChild('bind', NS.bind), undefined);
    await c.nothing((e) => e.xmlns === NS.sasl);
    c.kill();
  });

  test('RFC 6120 §5.4.3.3: malformed data after <starttls/> in the same packet is dropped too: no plaintext error after <proceed/>', async () => {
    const c = await RawClient.connect(server);
    await c.open();
    c.write(`<starttls xmlns='${NS.tls}'/><!-- not allowed --><message to='romeo@localhost' to='x'/>`);
    await c.receive((e) => e.name === 'proceed' && e.xmlns === NS.tls);
    await c.upgrade();
    assert.doesNotMatch(
      c.raw,
      /stream:error|restricted-xml|not-well-formed/,
      'nothing in the clear after <proceed/>',
    );
    const f = await c.open();
    assert.ok(f.getChild('mechanisms', NS.sasl), 'the TLS stream goes on');
    c.kill();
  });

  test('RFC 6120 §6.4.5: an unknown mechanism gets invalid-mechanism and authentication may be retried', async () => {
    const c = await RawClient.connect(server);
    await c.open();
    c.write(`<auth xmlns='${NS.sasl}' mechanism='X-UNKNOWN'>=</auth>`);
    const f = await c.receive('failure');
    assert.equal(f.xmlns, NS.sasl);
    assert.ok(f.getChild('invalid-mechanism'));
    assert.equal((await c.plain('romeo', PW)).name, 'success');
    c.kill();
  });

  test('RFC 6120 §6.4.5: an <auth/> without mechanism attribute gets invalid-mechanism', async () => {
    const c = await RawClient.connect(server);
    await c.open();
    c.write(`<auth xmlns='${NS.sasl}'>=</auth>`);
    const f = await c.receive('failure');
    assert.ok(f.getChild('invalid-mechanism'), f.toString());
    c.kill();
  });

  test('RFC 6120 §6.5.2: data that is not base64 gets incorrect-encoding', async () => {
    const c = await RawClient.connect(server);
    await c.open();
    c.write(`<auth xmlns='${NS.sasl}' mechanism='PLAIN'>!!!not*base64!!!</auth>`);
    const f = await c.receive('failure');
    assert.ok(f.getChild('incorrect-encoding'), f.toString());
    c.kill();
  });

  test('RFC 6120 §6.5.8: a PLAIN message without the NUL separators gets malformed-request', async () => {
    const c = await RawClient.connect(server);
    await c.open();
    c.write(`<auth xmlns='${NS.sasl}' mechanism='PLAIN'>${b64('just-a-string')}</auth>`);
    const f = await c.receive('failure');
    assert.ok(f.getChild('malformed-request'), f.toString());
    c.kill();
  });

  test('RFC 6120 §6.5.8: a <response/> with no exchange in progress gets malformed-request', async () => {
    const c = await RawClient.connect(server);
    await c.open();
    c.write(`<response xmlns='${NS.sasl}'>${b64('x')}</response>`);
    const f = await c.receive('failure');
    assert.ok(f.getChild('malformed-request'), f.toString());
    c.kill();
  });

  test('RFC 6120 §6.4.4: <abort/> during SCRAM gets <failure><aborted/></failure>, and a new attempt succeeds', async () => {
    const c = await RawClient.connect(server);
    await c.open();
    c.write(
      `<auth xmlns='${NS.sasl}' mechanism='SCRAM-SHA-1'>${b64('n,,n=romeo,r=abcdefghijklmnop')}</auth>`,
    );
    await c.receive('challenge');
    c.write(`<abort xmlns='${NS.sasl}'/>`);
    const f = await c.receive('failure');
    assert.ok(f.getChild('aborted'), f.toString());
    assert.equal((await c.plain('romeo', PW)).name, 'success');
    c.kill();
  });

  test('RFC 6120 §6.4.5: wrong credentials give not-authorized and at least two retries are allowed', async () => {
    const c = await RawClient.connect(server);
    await c.open();
    for (let i = 0; i < 2; i++) {
      const f = await c.plain('romeo', 'wrong');
      assert.equal(f.name, 'failure');
      assert.ok(f.getChild('not-authorized'));
    }
    assert.equal(c.closed, false);
    assert.equal((await c.plain('romeo', PW)).name, 'success');
    c.kill();
  });

  test('RFC 6120 §6.4.6: an authzid equal to the authenticated bare JID is accepted', async () => {
    const c = await RawClient.connect(server);
    await c.open();
    const r = await c.plain('romeo', PW, 'romeo@localhost');
    assert.equal(r.name, 'success', r.toString());
    c.kill();
  });

  test('RFC 6120 §6.5.6: an authzid of another account gets invalid-authzid', async () => {
    const c = await RawClient.connect(server);
    await c.open();
    const r = await c.plain('romeo', PW, 'juliet@localhost');
    assert.equal(r.name, 'failure');
    assert.ok(r.getChild('invalid-authzid'), r.toString());
    c.kill();
  });

  test('RFC 6120 §6.4.2: PLAIN without an initial response gets an empty challenge, and the response completes it', async () => {
    const c = await RawClient.connect(server);
    await c.open();
    c.write(`<auth xmlns='${NS.sasl}' mechanism='PLAIN'/>`);
    const ch = await c.receive((e) => e.xmlns === NS.sasl);
    assert.equal(ch.name, 'challenge', ch.toString());
    assert.ok(ch.text() === '' || ch.text() === '=', `empty challenge, got ${ch.text()}`);
    const done = c.receive((e) => e.xmlns === NS.sasl);
    c.write(`<response xmlns='${NS.sasl}'>${b64(`\0romeo\0${PW}`)}</response>`);
    assert.equal((await done).name, 'success');
    c.kill();
  });

  test('RFC 6120 §4.7.1: the to of the header is compared case-insensitively and answered with the canonical domain', async () => {
    const c = await RawClient.connect(server);
    await c.open({ to: 'LocalHost' });
    assert.equal(c.header?.attrs.from, 'localhost');
    c.kill();
  });

  test('RFC 6120 §4.7.5: a client offering version 1.1 is answered with version 1.0', async () => {
    const c = await RawClient.connect(server);
    const f = await c.open({ version: '1.1' });
    assert.equal(c.header?.attrs.version, '1.0');
    assert.equal(f.name, 'features');
    c.kill();
  });

  test('RFC 6120 §4.7.5: leading zeros in the version are ignored (01.0 is 1.0)', async () => {
    const c = await RawClient.connect(server);
    const f = await c.open({ version: '01.00' });
    assert.equal(c.header?.attrs.version, '1.0');
    assert.equal(f.name, 'features');
    c.kill();
  });

  test('RFC 6120 §6.4.2: PLAIN with an empty initial response (=) is a malformed message, not a missing one', async () => {
    const c = await RawClient.connect(server);
    await c.open();
    c.write(`<auth xmlns='${NS.sasl}' mechanism='PLAIN'>=</auth>`);
    const f = await c.receive((e) => e.xmlns === NS.sasl);
    assert.equal(f.name, 'failure', f.toString());
    assert.ok(f.getChild('malformed-request'), f.toString());
    c.kill();
  });

  test('XEP-0368 / RFC 6120 §5.3.1: on the direct TLS port STARTTLS is not offered and SASL is', async () => {
    const c = await RawClient.connect(server, 'c2s-tls');
    const f = await c.open();
    assert.equal(f.getChild('starttls', NS.tls), undefined);
    assert.ok(f.getChild('mechanisms', NS.sasl));
    c.kill();
  });

  test('RFC 6120 §6.4.6: <success/> is followed by a stream restart whose features offer bind', async () => {
    const c = await RawClient.connect(server);
    await c.open();
    await c.plain('romeo', PW);
    const f = await c.open();
    assert.ok(f.getChild('bind', NS.bind));
    c.kill();
  });

  test('RFC 6120 §6.4.1: a second <auth/> after success on the restarted stream is refused', async () => {
    const c = await RawClient.connect(server);
    await c.open();
    await c.plain('romeo', PW);
    await c.open();
    c.write(`<auth xmlns='${NS.sasl}' mechanism='PLAIN'>${b64(`\0romeo\0${PW}`)}</auth>`);
    await c.nothing((e) => e.name === 'success', 500);
    c.kill();
  });
});
