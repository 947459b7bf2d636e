// Interoperability: clients from npm that we did not write log in to Natter and chat through it.
// @xmpp/client (xmpp.js) over STARTTLS with SCRAM-SHA-1; stanza (StanzaJS) over WebSocket with SCRAM-SHA-256.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { client as xmppjsClient } from '@xmpp/client';
import * as Stanza from 'stanza';
import { startTestServer, type TestServer } from '../../packages/server/test/support/test-server.js';
import { xml as xmppjsXml } from './support.js'; // also relaxes certificate checks for this process

const PW = 'correct horse battery staple';

type XmppJs = ReturnType<typeof xmppjsClient>;

/** Not started: the wrong-password test needs to see start() fail. */
function xmppjs(server: TestServer, username: string, password: string, resource: string): XmppJs {
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
  return c;
}

/** Not connected, for the same reason. */
function stanzaClient(
  server: TestServer,
  username: string,
  password: string,
  resource: string,
): Stanza.Agent {
  return Stanza.createClient({
    jid: `${username}@localhost`,
    password,
    resource,
    transports: { websocket: `ws://127.0.0.1:${server.port('http')}/xmpp-websocket`, bosh: false },
  });
}

describe('third-party clients against Natter', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ modules: { ping: { idleMs: 0 } } });
    await server.addUser('alice', PW);
    await server.addUser('bob', PW);
  });
  after(() => server.destroy());

  test('@xmpp/client logs in over STARTTLS, stanza over WebSocket; they chat both ways and ping the server', async () => {
    const alice = xmppjs(server, 'alice', PW, 'xmppjs');
    const bob = stanzaClient(server, 'bob', PW, 'stanzajs');
    try {
      const aliceOnline = once(alice, 'online');
      await alice.start();
      const [aliceJid] = await aliceOnline;
      // xmpp.js 0.14 logs in with SASL2 + Bind2 (XEP-0386), where the server makes the resource
      // from the client's tag (the requested resource) and a unique part.
      const aliceFull = String(aliceJid);
      assert.match(aliceFull, /^alice@localhost\/xmppjs\.[A-Za-z0-9_-]+$/);

      const bobOnline = once(bob, 'session:started');
      bob.connect();
      await bobOnline;
      assert.equal(bob.jid, 'bob@localhost/stanzajs');

      // alice → bob
      const bobGets = new Promise<Stanza.Stanzas.ReceivedMessage>((resolve) => {
        bob.on('chat', (msg) => resolve(msg));
      });
      await alice.send(
        xmppjsXml(
          'message',
          { to: 'bob@localhost/stanzajs', type: 'chat' },
          xmppjsXml('body', {}, 'Hello from xmpp.js'),
        ),
      );
      const got = await bobGets;
      assert.equal(got.body, 'Hello from xmpp.js');
      assert.equal(got.from, aliceFull);

      // bob → alice's bare JID: delivered to her available resources (RFC 6121 §8.5.2.1.1),
      // so she sends initial presence first and the server echoes it back to her.
      const aliceAvailable = new Promise<void>((resolve) => {
        alice.on('stanza', (s) => {
          if (s.is('presence') && String(s.attrs.from) === aliceFull) resolve();
        });
      });
      const aliceGets = new Promise<string>((resolve) => {
        alice.on('stanza', (s) => {
          if (s.is('message') && s.getChildText('body'))
            resolve(`${s.attrs.from}: ${s.getChildText('body')}`);
        });
      });
      await alice.send(xmppjsXml('presence'));
      await Promise.race([aliceAvailable, new Promise((r) => setTimeout(r, 500))]);
      bob.sendMessage({ to: 'alice@localhost', type: 'chat', body: 'Hi from StanzaJS' });
      assert.equal(await aliceGets, 'bob@localhost/stanzajs: Hi from StanzaJS');

      // pings to the server
      const pong = await alice.iqCaller.request(
        xmppjsXml('iq', { type: 'get', to: 'localhost' }, xmppjsXml('ping', { xmlns: 'urn:xmpp:ping' })),
      );
      assert.equal(pong.attrs.type, 'result');
      assert.equal(await bob.ping('localhost'), undefined);
    } finally {
      await alice.stop().catch(() => {});
      bob.disconnect();
    }
  });

  test('@xmpp/client with a wrong password is refused with not-authorized', async () => {
    const mallory = xmppjs(server, 'alice', 'wrong password', 'x');
    await assert.rejects(mallory.start(), (err: Error & { condition?: string }) => {
      assert.equal(err.condition, 'not-authorized');
      return true;
    });
    await mallory.stop().catch(() => {});
  });

  test('stanza with a wrong password is refused and never comes online', async () => {
    const mallory = stanzaClient(server, 'bob', 'wrong password', 'y');
    const failed = once(mallory, 'auth:failed');
    let online = false;
    mallory.on('session:started', () => (online = true));
    mallory.connect();
    await failed;
    assert.equal(online, false);
    mallory.disconnect();
  });
});
