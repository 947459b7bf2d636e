import assert from 'node:assert/strict';
import { test } from 'node:test';
import { reconnect } from '../../src/index.node.js';
import { available, sleep, type SuiteContext } from '../helpers.js';

export function reconnectSuite(ctx: SuiteContext): void {
  test('reconnect: delays grow exponentially up to maxDelay', () => {
    const c = ctx.client(ctx.account(), {
      plugins: { reconnect: reconnect({ initialDelay: 100, factor: 2, maxDelay: 1000 }) },
    });
    const r = c.plugins.reconnect;
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map((n) => r.delayFor(n)),
      [100, 200, 400, 800, 1000, 1000],
    );
  });

  test('reconnect: a dropped connection is re-established automatically', async () => {
    const c = await ctx.online({ plugins: { reconnect: reconnect({ initialDelay: 50 }) } });
    const scheduled = c.plugins.reconnect.waitFor('scheduled', { timeout: 2000 });
    const reconnected = c.plugins.reconnect.waitFor('reconnected', { timeout: 5000 });
    c.dropConnection();
    const s = await scheduled;
    assert.ok(s.delay >= 25 && s.delay <= 50, `jittered delay ${s.delay}`);
    await reconnected;
    assert.equal(c.status, 'online');
  });

  test('reconnect: stops after an authentication failure', async (t) => {
    if (!ctx.target.setPassword) return t.skip('target cannot change passwords');
    const acct = ctx.account();
    const c = ctx.client(acct, { plugins: { reconnect: reconnect({ initialDelay: 50 }) } });
    await c.connect();
    await ctx.target.setPassword(acct.jid, 'changed-elsewhere');
    const stopped = c.plugins.reconnect.waitFor('stopped', { timeout: 5000 });
    c.dropConnection();
    assert.equal((await stopped).reason, 'auth-failed');
    await sleep(200);
    assert.equal(c.status, 'offline');
  });

  test('reconnect: a manual disconnect does not reconnect', async () => {
    const c = await ctx.online({ plugins: { reconnect: reconnect({ initialDelay: 20 }) } });
    let scheduled = false;
    c.plugins.reconnect.on('scheduled', () => (scheduled = true));
    await c.disconnect();
    await sleep(200);
    assert.equal(scheduled, false);
    assert.equal(c.status, 'offline');
  });

  test('reconnect: keeps trying with backoff while the server is unreachable', async () => {
    const acct = ctx.account();
    const c = ctx.client(acct, { plugins: { reconnect: reconnect({ initialDelay: 30, maxAttempts: 2 }) } });
    await c.connect();
    // Point the client at a closed port: every attempt fails, then it gives up after maxAttempts.
    (c.options as { service: string }).service = 'xmpp://127.0.0.1:1';
    const failures: number[] = [];
    c.plugins.reconnect.on('failed', (f) => failures.push(f.attempt));
    const stopped = c.plugins.reconnect.waitFor('stopped', { timeout: 5000 });
    c.dropConnection();
    assert.equal((await stopped).reason, 'max-attempts');
    assert.deepEqual(failures, [1, 2]);
  });

  test('reconnect: after a new session our last broadcast presence is sent again', async () => {
    const acct = ctx.account();
    const a = ctx.client(acct, { resource: 'away', plugins: { reconnect: reconnect({ initialDelay: 50 }) } });
    // Watch our own account's presence: a second resource of the same account receives it.
    const w2 = ctx.client(acct, { resource: 'watch' });
    await a.connect();
    await w2.connect();
    await available(w2);
    const isBusy = (p: import('../../src/index.node.js').Element) =>
      p.attr('from') === a.jid!.toString() &&
      p.attr('type') === undefined &&
      p.getChildText('status') === 'busy';
    const first = w2.waitFor('presence', { filter: isBusy, timeout: 5000 });
    await a.sendPresence({ show: 'dnd', status: 'busy' });
    await first;
    const back = w2.waitFor('presence', {
      filter: (p) => isBusy(p) && p.attr('from') !== undefined,
      timeout: 8000,
    });
    const reconnected = a.plugins.reconnect.waitFor('reconnected', { timeout: 8000 });
    a.dropConnection();
    assert.equal((await reconnected).resumed, false);
    const p = await back;
    assert.equal(p.getChildText('show'), 'dnd');
  });
}
