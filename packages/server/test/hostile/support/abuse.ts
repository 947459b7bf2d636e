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

/** A raw TCP socket from `localAddress`; `gone` resolves when the server (or anyone) closes it. */
export interface Held extends Socket {
  gone: Promise<void>;
  isClosed: boolean;
}
export function hold(port: number, localAddress = '127.0.0.1', host = '127.0.0.1'): Promise<Held> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, localAddress }) as Held;
    s.isClosed = false;
    s.on('error', () => {});
    s.gone = new Promise((r) =>
      s.once('close', () => {
        s.isClosed = true;
        r();
      }),
    );
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Rejects if `p` has not settled within `ms` (a bound on a wait for an event, not a speed check). */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, rej) => {
      t = setTimeout(() => rej(new Error(`${what}: not within ${ms} ms`)), ms);
    }),
  ]);
}

/** Waits until `cond` holds (the server side of a close is seen after the client side). */
export async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
