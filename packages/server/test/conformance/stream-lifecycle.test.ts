import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestClient } from '../support/test-client.js';
import { RawClient } from './raw-client.js';

const PW = 'conformance-pw';

describe('stream lifetime: keepalives, closing, stream errors (RFC 6120 §4.4–§4.9)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ modules: { ping: { idleMs: 0 } } });
    for (const u of ['romeo', 'juliet']) await server.addUser(u, PW);
  });
  after(() => server.destroy());

  test('RFC 6120 §4.6.1: whitespace between elements is accepted before SASL, before bind and after bind', async () => {
    const c = await RawClient.connect(server);
    await c.open();
    c.write('  \n ');
    assert.equal((await c.plain('romeo', PW)).name, 'success');
    await c.open();
    c.write(' \n\t ');
    c.write(`<iq type='set' id='b'><bind xmlns='${NS.bind}'/></iq>`);
    await c.receive((e) => e.name === 'iq' && e.attrs.id === 'b');
    for (let i = 0; i < 5; i++) c.write(' ');
    c.write(`<iq type='get' id='p' to='localhost'><ping xmlns='${NS.ping}'/></iq>   `);
    const pong = await c.receive((e) => e.name === 'iq' && e.attrs.id === 'p');
    assert.equal(pong.attrs.type, 'result');
    assert.equal(c.closed, false);
    c.kill();
  });

  test('RFC 6120 §4.4: the server answers </stream:stream> with its own closing tag and closes the TCP connection, without a stream error', async () => {
    const c = await RawClient.connect(server);
    await c.login('romeo', PW, 'closer');
    c.write('</stream:stream>');
    await c.waitClosed();
    assert.equal(c.streamError(), undefined);
    assert.match(c.raw, /<\/stream:stream>\s*$/);
  });

  test('RFC 6120 §4.4: stanzas sent in the same packet before </stream:stream> are all processed', async () => {
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'j', presence: true });
    const c = await RawClient.connect(server);
    await c.login('romeo', PW, 'burst');
    const N = 5;
    let data = '';
    for (let i = 0; i < N; i++)
      data += `<message to='juliet@localhost/j' id='burst${i}' type='chat'><body>${i}</body></message>`;
    c.write(data + '</stream:stream>');
    await c.waitClosed();
    const got = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        juliet
          .receive((e) => e.name === 'message' && e.attrs.id === `burst${i}`, 1500)
          .then(
            (m) => m.attrs.id,
            () => undefined,
          ),
      ),
    );
    assert.deepEqual(
      got,
      Array.from({ length: N }, (_, i) => `burst${i}`),
    );
    juliet.kill();
  });

  test('RFC 6120 §4.4: a response the server owes is written before its closing tag', async () => {
    const c = await RawClient.connect(server);
    await c.login('romeo', PW, 'pending');
    // A roster get needs storage (asynchronous) work; the closing tag follows in the same packet.
    c.write(
      `<iq type='get' id='owed'><query xmlns='${NS.roster}'/></iq><iq type='get' id='owed2' to='localhost'><query xmlns='${NS.discoItems}'/></iq></stream:stream>`,
    );
    await c.waitClosed();
    const close = c.raw.lastIndexOf('</stream:stream>');
    assert.ok(close >= 0);
    const a = c.raw.search(/id=["']owed["']/);
    const b = c.raw.search(/id=["']owed2["']/);
    assert.ok(a >= 0 && a < close, `roster result before the closing tag; raw: ${c.raw.slice(-400)}`);
    assert.ok(b >= 0 && b < close, `disco result before the closing tag; raw: ${c.raw.slice(-400)}`);
  });

  test('RFC 6120 §4.9.3.13: </stream:stream> inside an open stanza is not-well-formed, and the partial stanza is not delivered', async () => {
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'jp', presence: true });
    const c = await RawClient.connect(server);
    await c.login('romeo', PW, 'partial');
    c.write(`<message to='juliet@localhost/jp' id='half' type='chat'><body>half`);
    c.write('</stream:stream>');
    await c.waitClosed();
    assert.equal(c.streamError(), 'not-well-formed');
    await juliet.nothing((e) => e.attrs.id === 'half');
    juliet.kill();
  });

  test('RFC 6120 §4.9.1.1: after a stream error nothing else the client sent is processed', async () => {
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'je', presence: true });
    const c = await RawClient.connect(server);
    await c.login('romeo', PW, 'err');
    c.write(
      `<message to='juliet@localhost/je' from='juliet@localhost/je' id='spoof'><body>x</body></message>` +
        `<message to='juliet@localhost/je' id='after' type='chat'><body>after error</body></message>`,
    );
    await c.waitClosed();
    assert.equal(c.streamError(), 'invalid-from');
    await juliet.nothing((e) => e.attrs.id === 'after' || e.attrs.id === 'spoof', 500);
    juliet.kill();
  });

  test('RFC 6120 §4.9.1.2: a stream error is an element in the streams namespace, followed by the closing tag, then the TCP close', async () => {
    const c = await RawClient.connect(server);
    await c.login('romeo', PW, 'unk');
    c.write(`<frobnicate xmlns='urn:example:unknown'/>`);
    await c.waitClosed();
    assert.equal(c.streamError(), 'unsupported-stanza-type');
    const err =
      c.raw.lastIndexOf('stream:error') >= 0
        ? c.raw.lastIndexOf('stream:error')
        : c.raw.lastIndexOf('<error');
    assert.ok(err < c.raw.lastIndexOf('</stream:stream>'));
    assert.match(c.raw, /<\/stream:stream>\s*$/);
  });

  test('RFC 6120 §4.9.3.1: a stanza with an unbound namespace prefix is a stream error', async () => {
    const c = await RawClient.connect(server);
    await c.login('romeo', PW, 'prefix');
    c.write(`<foo:message to='juliet@localhost'><body>x</body></foo:message>`);
    await c.waitClosed();
    assert.ok(
      ['bad-namespace-prefix', 'not-well-formed', 'invalid-namespace'].includes(c.streamError() ?? ''),
      String(c.streamError()),
    );
  });

  test('RFC 6120 §4.9.1.3: a stream error received from the client makes the server close the stream', async () => {
    const c = await RawClient.connect(server);
    await c.login('romeo', PW, 'clienterr');
    c.write(`<stream:error><undefined-condition xmlns='${NS.streams}'/></stream:error></stream:stream>`);
    await c.waitClosed();
    assert.equal(c.streamError(), undefined, 'the server does not answer a stream error with a stream error');
  });

  test('RFC 6120 §4.9.3.16: an XML declaration or processing instruction inside the stream is restricted-xml', async () => {
    const c = await RawClient.connect(server);
    await c.login('romeo', PW, 'pi');
    c.write(`<?foo bar?>`);
    await c.waitClosed();
    assert.equal(c.streamError(), 'restricted-xml');
  });

  test('RFC 6120 §11.1: a DOCTYPE is restricted-xml', async () => {
    const c = await RawClient.connect(server);
    c.write(
      `<?xml version='1.0'?><!DOCTYPE foo [<!ENTITY x 'y'>]>` +
        RawClient.header({ to: 'localhost' }).replace(`<?xml version='1.0'?>`, ''),
    );
    await c.waitClosed();
    assert.equal(c.streamError(), 'restricted-xml');
  });

  test('RFC 6120 §4.4: after the server closed the stream no stanza is written', async () => {
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'jc', presence: true });
    const c = await RawClient.connect(server);
    await c.login('romeo', PW, 'late');
    c.write(`<presence/>`);
    c.write('</stream:stream>');
    juliet.send(
      xml('message', { to: 'romeo@localhost/late', id: 'late1', type: 'chat' }, xml('body', null, 'x')),
    );
    await c.waitClosed();
    const close = c.raw.lastIndexOf('</stream:stream>');
    assert.match(c.raw.slice(close), /^<\/stream:stream>\s*$/);
    juliet.kill();
  });
});
