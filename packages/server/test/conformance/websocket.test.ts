// XMPP over WebSocket (RFC 7395): framing errors get the stream error RFC 6120 names, as on TCP.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { xml } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestClient } from '../support/test-client.js';

const PW = 'conformance-pw';
const OPEN = `<open xmlns='${NS.framing}' to='localhost' version='1.0'/>`;

/** A raw RFC 7395 client: sends text frames, records every frame it receives and the close code. */
async function rawWs(server: TestServer): Promise<{
  ws: WebSocket;
  frames: string[];
  closed: Promise<number>;
}> {
  const ws = new WebSocket(`ws://127.0.0.1:${server.port('http')}/xmpp-websocket`, 'xmpp');
  const frames: string[] = [];
  ws.on('message', (d) => frames.push(d.toString()));
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { ws, frames, closed };
}

/** The condition of the stream error among the frames, if any. */
function streamError(frames: string[]): string | undefined {
  const frame = frames.find((f) => /<(stream:)?error[\s>]/.test(f));
  return frame && /<([a-z-]+) xmlns=['"]urn:ietf:params:xml:ns:xmpp-streams['"]/.exec(frame)?.[1];
}

describe('XMPP over WebSocket: framing errors (RFC 7395, RFC 6120 §4.9)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ modules: { ping: { idleMs: 0 } } });
    await server.addUser('romeo', PW);
    await server.addUser('juliet', PW);
  });
  after(() => server.destroy());

  for (const [what, first] of [
    ['an <open/> in another namespace', `<open xmlns='urn:wrong' to='localhost' version='1.0'/>`],
    ['an <open/> without namespace', `<open to='localhost' version='1.0'/>`],
    ['a stanza before <open/>', `<message xmlns='jabber:client' to='romeo@localhost'/>`],
  ] as const) {
    test(`RFC 7395 §3.3.1 / RFC 6120 §4.9.3.10: ${what} is invalid-namespace, after an <open/> from the server`, async () => {
      const c = await rawWs(server);
      c.ws.send(first);
      await c.closed;
      assert.match(c.frames[0] ?? '', /^<open /, 'the server opens its side first (RFC 6120 §4.9.1.2)');
      assert.equal(streamError(c.frames), 'invalid-namespace', c.frames.join('\n'));
      assert.match(c.frames.at(-1) ?? '', /^<close /);
    });
  }

  test('RFC 7395 §3.3.3: a message holding an incomplete element is not-well-formed at once', async () => {
    const c = await rawWs(server);
    c.ws.send(OPEN);
    c.ws.send(`<message xmlns='jabber:client' to='juliet@localhost'><body>half`);
    const code = await Promise.race([c.closed, new Promise((r) => setTimeout(() => r('timeout'), 3000))]);
    assert.notEqual(code, 'timeout', 'closed without waiting for a timeout');
    assert.equal(streamError(c.frames), 'not-well-formed', c.frames.join('\n'));
  });

  test('RFC 6120 §4.9.3.15: a frame over the stanza size limit gets policy-violation, as on TCP', async () => {
    const c = await rawWs(server);
    c.ws.send(OPEN);
    c.ws.send(
      `<message xmlns='jabber:client' to='juliet@localhost'><body>${'x'.repeat(300 * 1024)}</body></message>`,
    );
    await c.closed;
    assert.equal(streamError(c.frames), 'policy-violation', c.frames.map((f) => f.slice(0, 200)).join('\n'));
  });

  test('RFC 7395: well-formed frames, one element each, still log in and chat', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'ws', transport: 'ws' });
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'tcp' });
    romeo.send(
      xml('message', { to: 'juliet@localhost/tcp', type: 'chat' }, xml('body', null, 'over websocket')),
    );
    const m = await juliet.receive(
      (e) => e.name === 'message' && e.getChildText('body') === 'over websocket',
    );
    assert.equal(m.attrs.from, 'romeo@localhost/ws');
    await romeo.close();
    await juliet.close();
  });
});
