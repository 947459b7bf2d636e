// Stream management with a client we did not write: xmpp.js (@xmpp/client) enables SM with
// resumption on its own, and resumes by itself after its TCP connection is killed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { client as xmppjsClient, xml as xjs } from '@xmpp/client';
import { xml } from '@natter/xml';
import { startTestServer } from '../../../test/support/test-server.js';
import { TestClient } from '../../../test/support/test-client.js';
import { until } from '../../../test/hostile/support/sm-client.js';

// The test server's certificate is self-signed: xmpp.js checks against the system store only.
process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';

const PW = 'secret-password';

interface XmppJsLike {
  on(event: string, fn: (...args: any[]) => void): void;
  start(): Promise<unknown>;
  stop(): Promise<unknown>;
  send(el: unknown): Promise<unknown>;
  socket: { socket: { destroy(): void } } | null;
  streamManagement: { enabled: boolean; id: string; on(event: string, fn: () => void): void };
}

test('XEP-0198 §5 with xmpp.js: a killed TCP connection is resumed by the client; messages arrive exactly once, in order', async () => {
  const server = await startTestServer({ modules: { ping: { idleMs: 0 } } });
  try {
    await server.addUser('alice', PW);
    await server.addUser('bob', PW);
    const alice = xmppjsClient({
      service: `xmpp://127.0.0.1:${server.port('c2s')}`,
      domain: 'localhost',
      // xmpp.js waits 2 s for each step by default: too tight when CI runs tests side by side.
      timeout: 15_000,
      username: 'alice',
      password: PW,
      resource: 'js',
    }) as unknown as XmppJsLike;
    alice.on('error', () => {});
    const bodies: string[] = [];
    alice.on('stanza', (s: { is(n: string): boolean; getChildText(n: string): string | null }) => {
      if (s.is('message')) bodies.push(s.getChildText('body') ?? '');
    });
    let resumed = 0;
    alice.streamManagement.on('resumed', () => resumed++);
    const online = once(alice as unknown as NodeJS.EventEmitter, 'online');
    await alice.start();
    await online;
    await alice.send(xjs('presence'));
    await until(() => alice.streamManagement.enabled, 3000, 'stream management');
    const bob = await TestClient.login(server, 'bob', PW, { resource: 'b' });
    const N = 40;
    for (let i = 0; i < N; i++) {
      bob.send(xml('message', { to: 'alice@localhost/js', type: 'chat' }, xml('body', null, `m${i}`)));
      if (i === 15) alice.socket!.socket.destroy();
      await new Promise((r) => setTimeout(r, 10));
    }
    await until(() => bodies.length >= N, 15_000, `all messages (have ${bodies.length})`);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(resumed, 1);
    assert.deepEqual(
      bodies,
      Array.from({ length: N }, (_, i) => `m${i}`),
    );
    await alice.stop();
    await bob.close();
  } finally {
    await server.destroy();
  }
});
