// What the component does on its own, before any server answers: service parsing, the handshake
// digest, the offline queue and its bound, a refused TCP connection.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { describe, test } from 'node:test';
import {
  ComponentError,
  createComponent,
  escapeLocal,
  handshakeDigest,
  parseService,
  unescapeLocal,
  xml,
} from './index.js';

async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe('component, locally', () => {
  test('parseService accepts xmpp://host:port, host:port and a bare host (port 5347)', () => {
    assert.deepEqual(parseService('xmpp://127.0.0.1:5348'), { host: '127.0.0.1', port: 5348 });
    assert.deepEqual(parseService('example.com:5000'), { host: 'example.com', port: 5000 });
    assert.deepEqual(parseService('xmpp://example.com'), { host: 'example.com', port: 5347 });
    assert.deepEqual(parseService('xmpp://[::1]:5347'), { host: '::1', port: 5347 });
    assert.throws(() => parseService('http://x/y?z'), TypeError);
    assert.throws(() => parseService('xmpp://x:70000'), TypeError);
  });

  test('XEP-0114 §3: the handshake is the hex SHA-1 of stream id and secret', () => {
    assert.equal(
      handshakeDigest('3BF96D32', 'secret'),
      createHash('sha1').update('3BF96D32secret').digest('hex'),
    );
    assert.equal(handshakeDigest('ab', 'c'), 'a9993e364706816aba3e25717850c26c9cd0d89d'); // SHA-1("abc")
  });

  test('XEP-0106 helpers are exported', () => {
    assert.equal(escapeLocal('john doe@irc'), 'john\\20doe\\40irc');
    assert.equal(unescapeLocal('john\\20doe\\40irc'), 'john doe@irc');
  });

  test('gw.jid builds addresses on the domain, normalised', () => {
    const gw = createComponent({ service: 'xmpp://127.0.0.1:1', domain: 'GW.Example', secret: 's' });
    assert.equal(gw.domain, 'gw.example');
    assert.equal(gw.jid().toString(), 'gw.example');
    assert.equal(gw.jid('Room', 'Nick').toString(), 'room@gw.example/Nick');
  });

  test('stanzas sent before connecting wait in a bounded queue: beyond maxQueue send() throws queue-full', () => {
    const gw = createComponent({
      service: 'xmpp://127.0.0.1:1',
      domain: 'gw.example',
      secret: 's',
      maxQueue: 2,
    });
    gw.sendMessage({ to: 'a@example.com', body: '1' });
    gw.sendMessage({ to: 'a@example.com', body: '2' });
    assert.throws(
      () => gw.sendMessage({ to: 'a@example.com', body: '3' }),
      (e: unknown) => e instanceof ComponentError && e.condition === 'queue-full',
    );
  });

  test('a refused TCP connection rejects connect() with connection-failed; send() then throws not-connected', async () => {
    const gw = createComponent({
      service: `xmpp://127.0.0.1:${await closedPort()}`,
      domain: 'gw.example',
      secret: 's',
    });
    await assert.rejects(
      gw.connect(),
      (e: unknown) => e instanceof ComponentError && e.condition === 'connection-failed',
    );
    assert.equal(gw.status, 'closed');
    assert.throws(
      () => gw.send(xml('message', { to: 'a@example.com' })),
      (e: unknown) => e instanceof ComponentError && e.condition === 'not-connected',
    );
  });

  test('XEP-0114 §4: a stanza from outside the domain or without a to is refused before it could end the stream', () => {
    const gw = createComponent({ service: 'xmpp://127.0.0.1:1', domain: 'gw.example', secret: 's' });
    assert.throws(
      () => gw.sendMessage({ from: 'alice@example.com', to: 'bob@example.com', body: 'x' }),
      TypeError,
    );
    assert.throws(() => gw.send(xml('presence', { from: 'a@gw.example' })), TypeError);
    gw.sendMessage({ from: 'alice@gw.example/r', to: 'bob@example.com', body: 'fine' });
  });

  test('iq() refuses anything but an IQ get or set', async () => {
    const gw = createComponent({ service: 'xmpp://127.0.0.1:1', domain: 'gw.example', secret: 's' });
    await assert.rejects(gw.iq(xml('iq', { type: 'result' })), TypeError);
    await assert.rejects(gw.iq(xml('message')), TypeError);
  });
});
