// SASL2, Bind2 and FAST with a client we did not write: xmpp.js (@xmpp/client 0.14) uses SASL2
// with Bind2 whenever the server offers it, asks for a FAST token, and logs in with that token next
// time. (Its stream management resumption inside SASL2 runs in modules/sm/sm-interop.test.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { client as xmppjsClient, xml as xjs } from '@xmpp/client';
import { startTestServer } from '../support/test-server.js';

// The test server's certificate is self-signed: xmpp.js checks against the system store only.
process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';

const PW = 'xmppjs-password';

interface XElement {
  name: string;
  attrs: Record<string, string>;
  getChild(name: string, xmlns?: string): XElement | undefined;
  getChildText(name: string): string | null;
  is(name: string, xmlns?: string): boolean;
}

interface XmppJsLike {
  on(event: string, fn: (...args: any[]) => void): void;
  start(): Promise<unknown>;
  stop(): Promise<unknown>;
  jid: { toString(): string } | null;
  iqCaller: { request(el: unknown, timeout?: number): Promise<XElement> };
  fast: { fetchToken(): Promise<{ mechanism: string; token: string; expiry: string } | null> };
}

test('XEP-0388/0386/0484 with xmpp.js: SCRAM with Bind2 first, a FAST token requested, then HT-SHA-256-NONE logins to the same resource', async () => {
  const server = await startTestServer({ modules: { ping: { idleMs: 0 } } });
  try {
    await server.addUser('alice', PW);
    const alice = xmppjsClient({
      service: `xmpp://127.0.0.1:${server.port('c2s')}`,
      domain: 'localhost',
      timeout: 15_000,
      username: 'alice',
      password: PW,
      resource: 'interop',
    }) as unknown as XmppJsLike;
    alice.on('error', () => {});
    const sent: XElement[] = [];
    alice.on('send', (el: XElement) => sent.push(el));
    const authenticate = () => sent.filter((e) => e.is('authenticate', 'urn:xmpp:sasl:2'));

    let online = once(alice as unknown as NodeJS.EventEmitter, 'online');
    await alice.start();
    await online;
    const first = authenticate()[0]!;
    assert.match(first.attrs.mechanism ?? '', /^SCRAM-SHA-/);
    assert.ok(first.getChild('bind', 'urn:xmpp:bind:0'), 'Bind2 was used');
    assert.ok(first.getChild('request-token', 'urn:xmpp:fast:0'), 'a FAST token was requested');
    const jid = String(alice.jid);
    assert.match(jid, /^alice@localhost\/interop\.[A-Za-z0-9_-]{8}$/);
    const token = await alice.fast.fetchToken();
    assert.equal(token?.mechanism, 'HT-SHA-256-NONE');
    const pong = await alice.iqCaller.request(
      xjs('iq', { type: 'get', to: 'localhost' }, xjs('ping', { xmlns: 'urn:xmpp:ping' })),
    );
    assert.equal(pong.attrs.type, 'result');
    await alice.stop();

    // Next login: the token, one round trip, the same installation gets the same resource.
    online = once(alice as unknown as NodeJS.EventEmitter, 'online');
    await alice.start();
    await online;
    const second = authenticate()[1]!;
    assert.equal(second.attrs.mechanism, 'HT-SHA-256-NONE');
    assert.ok(second.getChild('fast', 'urn:xmpp:fast:0'));
    assert.equal(String(alice.jid), jid);
    const pong2 = await alice.iqCaller.request(
      xjs('iq', { type: 'get', to: 'localhost' }, xjs('ping', { xmlns: 'urn:xmpp:ping' })),
    );
    assert.equal(pong2.attrs.type, 'result');
    await alice.stop();
  } finally {
    await server.destroy();
  }
});
