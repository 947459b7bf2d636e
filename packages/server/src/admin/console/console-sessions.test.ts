import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { accountMigrations } from '../../accounts/account-store.js';
import { Database } from '../../storage/database.js';
import { ConsoleSessions, LoginGuard, delayAfter, sameCsrf } from './console-sessions.js';

/** The sessions over real (in-memory SQLite) storage with the server's own migrations. */
async function sessionsOn(
  idleMs: number,
  maxAgeMs: number,
  now?: () => number,
): Promise<{ sessions: ConsoleSessions; database: Database; other: ConsoleSessions }> {
  const database = Database.open({ engine: 'sqlite', path: ':memory:' });
  await database.migrate('accounts', accountMigrations);
  // A second instance on the same storage: another worker of the same machine.
  return {
    sessions: new ConsoleSessions(database.db, idleMs, maxAgeMs, now),
    other: new ConsoleSessions(database.db, idleMs, maxAgeMs, now),
    database,
  };
}

describe('web console sessions (in storage, fake clock) and login delays', () => {
  test('a session ends after its idle time without use, and at its absolute age even when used', async () => {
    let now = 0;
    const { sessions, database } = await sessionsOn(30 * 60_000, 12 * 3600_000, () => now);
    const { id, session } = await sessions.create('admin@example.com');
    assert.match(id, /^[A-Za-z0-9_-]{43}$/);
    assert.notEqual(session.csrf, id);
    now = 29 * 60_000;
    assert.equal((await sessions.use(id))?.jid, 'admin@example.com', 'used within the idle time');
    now += 30 * 60_000;
    assert.equal(await sessions.use(id), undefined, 'idle for 30 minutes');

    now = 0;
    const kept = await sessions.create('admin@example.com');
    for (now = 0; now < 12 * 3600_000; now += 20 * 60_000)
      assert.ok(await sessions.use(kept.id), `alive at ${now / 60_000} min`);
    now = 12 * 3600_000;
    assert.equal(await sessions.use(kept.id), undefined, 'twelve hours after the login');
    await database.close();
  });

  test('logout and endAll forget sessions; an unknown or missing cookie is no session', async () => {
    const { sessions, database } = await sessionsOn(60_000, 3600_000);
    const a = await sessions.create('a@example.com');
    const b = await sessions.create('b@example.com');
    const a2 = await sessions.create('a@example.com');
    await sessions.end(a.id);
    assert.equal(await sessions.use(a.id), undefined);
    await sessions.endAll('a@example.com');
    assert.equal(await sessions.use(a2.id), undefined);
    assert.ok(await sessions.use(b.id));
    assert.equal(await sessions.use(undefined), undefined);
    assert.equal(await sessions.use('x'.repeat(43)), undefined);
    await database.close();
  });

  test('another instance on the same storage (another worker) knows the session, its use and its end; the cookie itself is not stored', async () => {
    let now = 0;
    const { sessions, other, database } = await sessionsOn(60_000, 3600_000, () => now);
    const { id, session } = await sessions.create('a@example.com');
    assert.deepEqual(await other.use(id), { ...session, lastSeen: 0 });
    // Used through the other one for 50 s at a time: the idle time restarts for both.
    for (now = 50_000; now < 200_000; now += 50_000) assert.ok(await other.use(id));
    assert.ok(await sessions.use(id), 'kept alive by the use the other instance saw');
    const rows = await database.db.selectFrom('console_sessions').selectAll().execute();
    assert.equal(rows.length, 1);
    assert.ok(!JSON.stringify(rows).includes(id), 'the cookie value is not in the database');
    await other.end(id);
    assert.equal(await sessions.use(id), undefined, 'a logout on one ends it on all');
    await database.close();
  });

  test('at most 1000 sessions: the least recently used goes first', async () => {
    let now = 0;
    const { sessions, database } = await sessionsOn(3600_000, 24 * 3600_000, () => now);
    const first = await sessions.create('a@example.com');
    now++;
    const second = await sessions.create('a@example.com');
    now++;
    assert.ok(await sessions.use(first.id));
    for (let i = 0; i < 998; i++) await sessions.create('b@example.com');
    now++;
    await sessions.create('c@example.com');
    assert.ok(await sessions.use(first.id), 'recently used: kept');
    assert.equal(await sessions.use(second.id), undefined, 'least recently used: dropped');
    await database.close();
  });

  test('the CSRF token is compared whole', async () => {
    const { sessions, database } = await sessionsOn(60_000, 3600_000);
    const { session } = await sessions.create('a@example.com');
    assert.ok(sameCsrf(session.csrf, session));
    assert.ok(!sameCsrf(session.csrf.slice(1), session));
    assert.ok(!sameCsrf(undefined, session));
    assert.ok(!sameCsrf('', session));
    await database.close();
  });

  test('failed logins make the address wait longer each time, up to 5 minutes, on every worker; a success clears it', async () => {
    assert.deepEqual([1, 2, 3, 4, 5].map(delayAfter), [0, 1000, 2000, 4000, 8000]);
    assert.equal(delayAfter(40), 5 * 60_000);
    let now = 1_000_000;
    const database = Database.open({ engine: 'sqlite', path: ':memory:' });
    await database.migrate('accounts', accountMigrations);
    // Two workers over one storage.
    const a = new LoginGuard(database.db, () => now);
    const b = new LoginGuard(database.db, () => now);
    const ip = '192.0.2.1';
    assert.equal(await a.claim(ip), undefined);
    // While a checks, no other check from the address starts, on a or on b.
    assert.deepEqual(await b.claim(ip), { waitMs: 30_000, reason: 'checking' });
    await a.failed(ip);
    assert.equal(await b.claim(ip), undefined, 'one failure is free');
    await b.failed(ip);
    assert.deepEqual(await a.claim(ip), { waitMs: 1000, reason: 'delay' });
    assert.equal(await a.claim('192.0.2.2'), undefined, 'per address');
    now += 1000;
    assert.equal(await a.claim(ip), undefined);
    await a.failed(ip);
    assert.deepEqual(await b.claim(ip), { waitMs: 2000, reason: 'delay' });
    now += 2000;
    assert.equal(await b.claim(ip), undefined);
    await b.succeeded(ip);
    assert.equal(await a.claim(ip), undefined, 'a success clears the address');
    await a.release(ip);
    // A check that never ends (its node died) holds the address 30 s at most.
    assert.equal(await a.claim('192.0.2.3'), undefined);
    now += 30_000;
    assert.equal(await b.claim('192.0.2.3'), undefined);
    // Failures an hour old are forgotten.
    for (let i = 0; i < 5; i++) {
      await b.failed('192.0.2.4');
      now += 1;
    }
    assert.equal((await a.claim('192.0.2.4'))?.reason, 'delay');
    now += 3600_000;
    assert.equal(await a.claim('192.0.2.4'), undefined);
    await a.failed('192.0.2.4');
    assert.equal(await b.claim('192.0.2.4'), undefined, 'counted afresh: one failure is free');
    await database.close();
  });
});
