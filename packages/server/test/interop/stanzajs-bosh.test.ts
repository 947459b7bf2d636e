// Interop: StanzaJS (npm `stanza`, a client nobody here wrote) over BOSH (XEP-0206) to the http
// listener: it negotiates the session, SASL, the restart, binding and stream management its own
// way, then chats with a TCP client both ways and ends the session; the contact sees it go.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as XMPP from 'stanza';
import { xml, type Element } from '@natter/xml';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestClient } from '../support/test-client.js';

const PW = 'stanzajs-bosh-pw';

function waitFor<T>(register: (resolve: (v: T) => void) => void, what: string, ms = 10_000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
    register((v) => {
      clearTimeout(timer);
      resolve(v);
    });
  });
}

describe('StanzaJS over BOSH (XEP-0206)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ modules: { ping: { idleMs: 0 } } });
    await server.addUser('romeo', PW);
    await server.addUser('juliet', PW);
  });
  after(() => server.destroy());

  test('logs in, chats both ways with a TCP client, and signs off (the contact sees unavailable)', async () => {
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'tcp', presence: true });
    const client = XMPP.createClient({
      jid: 'romeo@localhost',
      password: PW,
      resource: 'stanzajs',
      transports: { bosh: `http://127.0.0.1:${server.port('http')}/http-bind`, websocket: false },
    });
    const raw: string[] = [];
    client.on('raw', (direction, data) => raw.push(`${direction}: ${data.slice(0, 300)}`));
    try {
      const started = waitFor<void>((r) => client.on('session:started', () => r()), 'session:started');
      client.connect();
      await started;
      assert.equal(client.transport?.constructor.name, 'BOSH');
      assert.equal(client.jid, 'romeo@localhost/stanzajs');

      // Juliet subscribes to Romeo (StanzaJS approves), so she is told when he leaves.
      const asked = waitFor<string>(
        (r) => client.on('subscribe', (p) => r(p.from)),
        'the subscription request',
      );
      client.sendPresence();
      juliet.send(xml('presence', { type: 'subscribe', to: 'romeo@localhost' }));
      client.acceptSubscription(await asked);
      await juliet.receive((e) => e.name === 'presence' && e.attrs.type === 'subscribed');
      await juliet.receive(
        (e: Element) => e.name === 'presence' && e.attrs.from === 'romeo@localhost/stanzajs' && !e.attrs.type,
      );

      client.sendMessage({ to: juliet.jid, type: 'chat', body: 'hello from StanzaJS' });
      const got = await juliet.receive(
        (e) => e.name === 'message' && e.getChildText('body') === 'hello from StanzaJS',
      );
      assert.equal(got.attrs.from, 'romeo@localhost/stanzajs');

      const reply = waitFor<string>(
        (r) =>
          client.on('message', (m) => {
            if (m.body) r(m.body);
          }),
        'the reply',
      );
      juliet.send(
        xml('message', { to: 'romeo@localhost/stanzajs', type: 'chat' }, xml('body', null, 'hello StanzaJS')),
      );
      assert.equal(await reply, 'hello StanzaJS');

      const ended = waitFor<void>((r) => client.on('disconnected', () => r()), 'disconnected');
      client.disconnect();
      await ended;
      await juliet.receive(
        (e) =>
          e.name === 'presence' &&
          e.attrs.from === 'romeo@localhost/stanzajs' &&
          e.attrs.type === 'unavailable',
      );
      assert.ok(
        raw.some((l) => l.startsWith('incoming') && l.includes('type="terminate"')),
        'the session ended with a terminate body',
      );
    } catch (err) {
      (err as Error).message += `\n${raw.join('\n')}`;
      throw err;
    } finally {
      client.disconnect();
      await juliet.close();
    }
  });
});
