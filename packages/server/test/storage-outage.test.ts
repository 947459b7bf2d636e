// PostgreSQL connections break in production: the database restarts, fails over, or an operator
// terminates backends. The server must shrug it off: no crash, new connections on demand, no
// accepted message lost.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { xml } from '@natter/xml';
import { startTestServer } from './support/test-server.js';
import { TestClient } from './support/test-client.js';
import { createTestDatabase, POSTGRES_ADMIN_URL } from './support/postgres.js';

const PW = 'secret-password';

/** Terminates every backend connected to the database in `url`; returns how many there were. */
async function terminateBackends(url: string): Promise<number> {
  const name = new URL(url).pathname.slice(1);
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await admin.connect();
  try {
    const r = await admin.query<{ pid: number }>(
      'SELECT pg_terminate_backend(pid) AS pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
      [name],
    );
    return r.rowCount ?? 0;
  } finally {
    await admin.end();
  }
}

describe('storage outage (PostgreSQL)', () => {
  test('terminated database connections: the server keeps running, reconnects, and stores and delivers offline messages', async (t) => {
    const database = await createTestDatabase();
    if (!database) return t.skip('PostgreSQL is not reachable');
    const server = await startTestServer({
      storage: { engine: 'postgres', url: database.url },
      modules: { ping: { idleMs: 0 } },
    });
    try {
      for (const u of ['romeo', 'juliet']) await server.addUser(u, PW);
      const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'r', presence: true });
      romeo.send(xml('message', { to: 'juliet@localhost', type: 'chat' }, xml('body', null, 'before')));
      // Give the offline write time to land, so the pool holds idle connections to terminate.
      await new Promise((r) => setTimeout(r, 300));

      assert.ok((await terminateBackends(database.url)) > 0, 'the server had connections to terminate');

      // The first query after the outage may fail (its connection died under it); the pool then
      // opens fresh ones. A new client logs in, and a message to an offline user is stored.
      const second = await TestClient.login(server, 'romeo', PW, { resource: 'again', presence: true });
      second.send(xml('message', { to: 'juliet@localhost', type: 'chat' }, xml('body', null, 'after')));
      await new Promise((r) => setTimeout(r, 300));

      const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'j', presence: true });
      const bodies: string[] = [];
      for (const want of ['before', 'after']) {
        const m = await juliet.receive((e) => e.name === 'message' && e.getChildText('body') === want, 5000);
        bodies.push(m.getChildText('body')!);
        assert.ok(m.getChild('delay', 'urn:xmpp:delay'), `${want}: delivered from offline storage`);
      }
      assert.deepEqual(bodies, ['before', 'after']);
      // And live traffic still flows.
      juliet.send(xml('message', { to: 'romeo@localhost/again', type: 'chat' }, xml('body', null, 'hi')));
      await second.receive((e) => e.name === 'message' && e.getChildText('body') === 'hi');
      for (const c of [romeo, second, juliet]) await c.close();
    } finally {
      await server.destroy();
      await database.drop();
    }
  });
});
