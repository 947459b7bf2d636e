import type { EventEmitter } from 'node:events';
import { client as xmppjsClient, xml } from '@xmpp/client';
import * as Stanza from 'stanza';
import type { TestServer } from '../../packages/server/test/support/test-server.js';

// The test server's certificate is self-signed: these clients trust only the system store.
process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';

export { xml };
export type XmppJs = ReturnType<typeof xmppjsClient>;
export type LtxElement = ReturnType<typeof xml>;

/** An @xmpp/client (xmpp.js) over STARTTLS, with a buffer of received stanzas to wait on. */
export async function xmppjs(
  server: TestServer,
  username: string,
  password: string,
  resource: string,
): Promise<
  XmppJs & {
    next(pred: (s: LtxElement) => boolean, timeoutMs?: number): Promise<LtxElement>;
    request(el: LtxElement): Promise<LtxElement>;
  }
> {
  const c = xmppjsClient({
    service: `xmpp://127.0.0.1:${server.port('c2s')}`,
    domain: 'localhost',
    // xmpp.js waits 2 s for each step by default: too tight when CI runs tests side by side.
    timeout: 15_000,
    username,
    password,
    resource,
  });
  c.on('error', () => {});
  c.reconnect.stop();
  const buffer: LtxElement[] = [];
  const waiters: { pred: (s: LtxElement) => boolean; resolve: (s: LtxElement) => void }[] = [];
  c.on('stanza', (s: LtxElement) => {
    const i = waiters.findIndex((w) => w.pred(s));
    if (i >= 0) waiters.splice(i, 1)[0]!.resolve(s);
    else buffer.push(s);
  });
  await c.start();
  return Object.assign(c, {
    next(pred: (s: LtxElement) => boolean, timeoutMs = 5000): Promise<LtxElement> {
      const i = buffer.findIndex(pred);
      if (i >= 0) return Promise.resolve(buffer.splice(i, 1)[0]!);
      return new Promise<LtxElement>((resolve, reject) => {
        const w = { pred, resolve: (s: LtxElement) => (clearTimeout(t), resolve(s)) };
        const t = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(
            new Error(
              `${username}/${resource}: timed out; buffered: ${buffer.map((b) => b.toString().slice(0, 160)).join(' | ')}`,
            ),
          );
        }, timeoutMs);
        waiters.push(w);
      });
    },
    request(el: LtxElement) {
      return c.iqCaller.request(el, 5000) as Promise<LtxElement>;
    },
  });
}

/** A StanzaJS client over WebSocket, connected and with its session started. */
export async function stanzaClient(
  server: TestServer,
  username: string,
  password: string,
  resource: string,
  config: Partial<Stanza.AgentConfig> = {},
): Promise<Stanza.Agent> {
  const c = Stanza.createClient({
    jid: `${username}@localhost`,
    password,
    resource,
    transports: { websocket: `ws://127.0.0.1:${server.port('http')}/xmpp-websocket`, bosh: false },
    ...config,
  });
  const started = waitEvent(c as unknown as EventEmitter, 'session:started', () => true, 8000);
  c.connect();
  await started;
  return c;
}

/** Resolves with the first event `name` whose payload matches; start waiting before acting. */
export function waitEvent<T = any>(
  emitter: EventEmitter | Stanza.Agent,
  name: string,
  pred: (v: T) => boolean = () => true,
  timeoutMs = 5000,
): Promise<T> {
  const em = emitter as unknown as EventEmitter;
  return new Promise<T>((resolve, reject) => {
    const handler = (v: T) => {
      if (!pred(v)) return;
      clearTimeout(t);
      em.off(name, handler);
      resolve(v);
    };
    const t = setTimeout(() => {
      em.off(name, handler);
      reject(new Error(`timed out waiting for event ${name}`));
    }, timeoutMs);
    em.on(name, handler);
  });
}
