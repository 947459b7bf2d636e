import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ConsoleSessions, LoginDelays, delayAfter, sameCsrf } from './console-sessions.js';

describe('web console sessions and login delays (fake clock)', () => {
  test('a session ends after its idle time without use, and at its absolute age even when used', () => {
    let now = 0;
    const sessions = new ConsoleSessions(30 * 60_000, 12 * 3600_000, () => now);
    const { id, session } = sessions.create('admin@example.com');
    assert.match(id, /^[A-Za-z0-9_-]{43}$/);
    assert.notEqual(session.csrf, id);
    now = 29 * 60_000;
    assert.equal(sessions.use(id)?.jid, 'admin@example.com', 'used within the idle time');
    now += 30 * 60_000;
    assert.equal(sessions.use(id), undefined, 'idle for 30 minutes');

    now = 0;
    const kept = sessions.create('admin@example.com');
    for (now = 0; now < 12 * 3600_000; now += 20 * 60_000)
      assert.ok(sessions.use(kept.id), `alive at ${now / 60_000} min`);
    now = 12 * 3600_000;
    assert.equal(sessions.use(kept.id), undefined, 'twelve hours after the login');
  });

  test('logout and endAll forget sessions; an unknown or missing cookie is no session', () => {
    const sessions = new ConsoleSessions(60_000, 3600_000);
    const a = sessions.create('a@example.com');
    const b = sessions.create('b@example.com');
    const a2 = sessions.create('a@example.com');
    sessions.end(a.id);
    assert.equal(sessions.use(a.id), undefined);
    sessions.endAll('a@example.com');
    assert.equal(sessions.use(a2.id), undefined);
    assert.ok(sessions.use(b.id));
    assert.equal(sessions.use(undefined), undefined);
    assert.equal(sessions.use('x'.repeat(43)), undefined);
  });

  test('the CSRF token is compared whole', () => {
    const sessions = new ConsoleSessions(60_000, 3600_000);
    const { session } = sessions.create('a@example.com');
    assert.ok(sameCsrf(session.csrf, session));
    assert.ok(!sameCsrf(session.csrf.slice(1), session));
    assert.ok(!sameCsrf(undefined, session));
    assert.ok(!sameCsrf('', session));
  });

  test('failed logins make the address wait longer each time, up to 5 minutes; a success clears it', () => {
    assert.deepEqual([1, 2, 3, 4, 5].map(delayAfter), [0, 1000, 2000, 4000, 8000]);
    assert.equal(delayAfter(40), 5 * 60_000);
    let now = 1_000_000;
    const delays = new LoginDelays(() => now);
    delays.failed('192.0.2.1');
    assert.equal(delays.wait('192.0.2.1'), 0, 'one failure is free');
    delays.failed('192.0.2.1');
    assert.equal(delays.wait('192.0.2.1'), 1000);
    assert.equal(delays.wait('192.0.2.2'), 0, 'per address');
    now += 1000;
    assert.equal(delays.wait('192.0.2.1'), 0);
    delays.failed('192.0.2.1');
    assert.equal(delays.wait('192.0.2.1'), 2000);
    delays.succeeded('192.0.2.1');
    assert.equal(delays.wait('192.0.2.1'), 0);
  });
});
