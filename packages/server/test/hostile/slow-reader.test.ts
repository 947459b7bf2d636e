import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { xml } from '@natter/xml';
import { startTestServer } from '../support/test-server.js';
import { TestClient } from '../support/test-client.js';
import { enableSm, until } from './support/sm-client.js';
import { PW, bystanders, exchanges } from './support/abuse.js';

test('RFC 6120 §13.12 / XEP-0198 §5: a client that stops reading is cut off at the send-buffer cap; its messages go to offline storage', async () => {
  const server = await startTestServer({
    limits: { disabled: true, maxSendBufferBytes: 256 * 1024 },
    modules: {
      ping: { idleMs: 0 },
      offline: { quota: 10_000 },
      sm: { maxQueue: 100_000, requestDelayMs: 60_000, requestAfter: 100_000 },
    },
  });
  try {
    for (const u of ['romeo', 'juliet', 'slow', 'sender']) await server.addUser(u, PW);
    const pair = await bystanders(server);
    const slow = await TestClient.login(server, 'slow', PW, { resource: 'phone', presence: true });
    await enableSm(slow);
    // Stop reading: what the server writes piles up in its send buffer.
    (slow as unknown as { socket: Socket }).socket.pause();
    const sender = await TestClient.login(server, 'sender', PW, { resource: 'pc' });
    const N = 2500;
    const filler = 'z'.repeat(4000);
    for (let i = 0; i < N; i++) {
      sender.send(
        xml('message', { to: 'slow@localhost/phone', type: 'chat' }, xml('body', null, `${i} ${filler}`)),
      );
      if (i % 100 === 99) await new Promise((r) => setTimeout(r, 5));
    }
    await until(
      () => server.core.sessions.ofAccount('slow@localhost').length === 0,
      20_000,
      'the slow reader to be cut off',
    );
    await exchanges(pair);
    slow.kill();
    // Everything the slow reader did not acknowledge is in offline storage.
    await new Promise((r) => setTimeout(r, 500));
    // Offline delivery sends the whole backlog at once: let the (reading) client take 10 MB in one go.
    server.config.limits.maxSendBufferBytes = 64 * 1024 * 1024;
    const back = await TestClient.login(server, 'slow', PW, { resource: 'again', presence: true });
    const seen = new Set<number>();
    for (;;) {
      const m = await back.receive((e) => e.name === 'message', 3000).catch(() => undefined);
      if (!m) break;
      seen.add(Number((m.getChildText('body') ?? '').split(' ')[0]));
    }
    const missing = Array.from({ length: N }, (_, i) => i).filter((i) => !seen.has(i));
    assert.deepEqual(missing.slice(0, 10), [], `${missing.length} messages missing`);
    assert.equal(sender.received.filter((e) => e.attrs.type === 'error').length, 0);
    await back.close();
    await sender.close();
    await pair.close();
  } finally {
    await server.destroy();
  }
});
