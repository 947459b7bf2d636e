import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { xml } from '@natter/xml';
import { TestClient } from '../../support/test-client.js';
import type { TestServer } from '../../support/test-server.js';

export const PW = 'secret-password';

/** A raw TCP connection that records what the server sends. */
export interface Raw extends Socket {
  text: string;
  gone: Promise<void>;
}

export function raw(port: number): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port }) as Raw;
    s.text = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      if (s.text.length < 64 * 1024) s.text += d;
    });
    s.on('error', () => {});
    s.gone = new Promise((r) => s.once('close', () => r()));
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

export const header = (to = 'localhost') =>
  `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='${to}' version='1.0'>`;

/** Waits for a raw connection to be closed and returns the stream error condition it got. */
export async function streamErrorOf(s: Raw, timeoutMs = 10_000): Promise<string | undefined> {
  await Promise.race([
    s.gone,
    new Promise((_, rej) =>
      setTimeout(() => rej(new Error(`not closed; got: ${s.text.slice(0, 500)}`)), timeoutMs),
    ),
  ]);
  const m =
    /<stream:error>\s*<([a-z-]+)/.exec(s.text) ??
    /<error xmlns=['"]http:\/\/etherx\.jabber\.org\/streams['"]>\s*<([a-z-]+)/.exec(s.text);
  return m?.[1];
}

/** Two well-behaved clients. */
export async function bystanders(
  server: TestServer,
): Promise<{ romeo: TestClient; juliet: TestClient; close(): Promise<void> }> {
  const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'good', presence: true });
  const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'good', presence: true });
  return {
    romeo,
    juliet,
    async close() {
      await romeo.close();
      await juliet.close();
    },
  };
}

let seq = 0;
/** Asserts a message from romeo reaches juliet within `ms` (default 2 s). */
export async function exchanges(pair: { romeo: TestClient; juliet: TestClient }, ms = 2000): Promise<number> {
  const body = `still alive ${++seq}`;
  const started = Date.now();
  const got = pair.juliet.receive((e) => e.name === 'message' && e.getChildText('body') === body, ms);
  pair.romeo.send(xml('message', { to: 'juliet@localhost/good', type: 'chat' }, xml('body', null, body)));
  await got;
  const elapsed = Date.now() - started;
  assert.ok(elapsed < ms);
  return elapsed;
}
