import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { closeSqlite, roster, sqliteRosterStorage } from '../../src/index.node.js';
import { available, type SuiteContext } from '../helpers.js';

export function rosterSuite(ctx: SuiteContext): void {
  test('RFC 6121 §2.3/§2.5: items are added, updated and removed, with pushes', async () => {
    const c = await ctx.online({ plugins: { roster: roster() } });
    const r = c.plugins.roster;
    await r.waitFor('synced', { timeout: 5000 });
    assert.deepEqual(r.items(), []);
    const pushed = r.waitFor('push', { timeout: 5000 });
    await r.set({ jid: 'friend@example.org', name: 'Friend', groups: ['Work', 'Chess'] });
    const p = await pushed;
    assert.equal(p.removed, false);
    assert.equal(p.item.jid, 'friend@example.org');
    assert.deepEqual(r.get('friend@example.org')?.groups.sort(), ['Chess', 'Work']);
    assert.equal(r.get('Friend@Example.org')?.name, 'Friend', 'lookups normalise JIDs');
    const pushed2 = r.waitFor('push', { timeout: 5000 });
    await r.set({ jid: 'friend@example.org', name: 'Renamed' });
    assert.equal((await pushed2).item.name, 'Renamed');
    const removed = r.waitFor('push', { timeout: 5000 });
    await r.remove('friend@example.org');
    assert.equal((await removed).removed, true);
    assert.equal(r.get('friend@example.org'), undefined);
  });

  test('RFC 6121 §3.1: a subscription request is accepted; both sides see subscriptions and presence', async () => {
    const a = await ctx.online({ plugins: { roster: roster() } });
    const b = await ctx.online({ plugins: { roster: roster() } });
    const aBare = a.account.toString();
    const bBare = b.account.toString();
    await Promise.all([a.plugins.roster.fetch(), b.plugins.roster.fetch()]);
    await available(a);
    await available(b);
    const request = b.plugins.roster.waitFor('request', { timeout: 5000 });
    await a.plugins.roster.subscribe(bBare, 'let me see');
    const req = await request;
    assert.equal(req.from, aBare);
    assert.equal(req.status, 'let me see');
    const subscribed = a.plugins.roster.waitFor('subscribed', { timeout: 5000 });
    const seen = a.plugins.roster.waitFor('presence', {
      filter: (p) => p.jid === b.jid!.toString(),
      timeout: 5000,
    });
    const itemTo = a.plugins.roster.waitFor('push', {
      filter: (p) => p.item.subscription === 'to' || p.item.subscription === 'both',
      timeout: 5000,
    });
    const bPush = b.plugins.roster.waitFor('push', {
      filter: (p) => p.item.jid === aBare && ['from', 'both'].includes(p.item.subscription),
      timeout: 5000,
    });
    await b.plugins.roster.accept(aBare);
    await bPush;
    assert.equal((await subscribed).from, bBare);
    await itemTo;
    assert.equal((await seen).available, true);
    assert.equal(a.plugins.roster.presences(bBare)[0]?.available, true);
    assert.ok(
      ['from', 'both'].includes(b.plugins.roster.get(aBare)?.subscription ?? ''),
      'b has a subscription from a',
    );
    const gone = a.plugins.roster.waitFor('presence', {
      filter: (p) => p.jid === b.jid!.toString() && !p.available,
      timeout: 5000,
    });
    await b.sendPresence({ type: 'unavailable' });
    await gone;
    assert.equal(a.plugins.roster.presences(bBare).length, 0);
    // RFC 6121 §3.3: a unsubscribes from b's presence; b (available again) is told, a's item loses its "to" part.
    await available(b);
    const told = b.plugins.roster.waitFor('unsubscribe', { timeout: 5000 });
    const downgraded = a.plugins.roster.waitFor('push', {
      filter: (p) =>
        p.item.jid === bBare && (p.item.subscription === 'none' || p.item.subscription === 'from'),
      timeout: 5000,
    });
    await a.plugins.roster.unsubscribe(bBare);
    assert.equal((await told).from, aBare);
    await downgraded;
  });

  test('RFC 6121 §3.2: a declined request reaches the requester as unsubscribed', async () => {
    const a = await ctx.online({ plugins: { roster: roster() } });
    const b = await ctx.online({ plugins: { roster: roster() } });
    // RFC 6121 §3.2.3: the answer goes to the requester's available resources.
    await available(a);
    await available(b);
    const request = b.plugins.roster.waitFor('request', { timeout: 5000 });
    await a.plugins.roster.subscribe(b.account);
    await request;
    const declined = a.plugins.roster.waitFor('unsubscribed', { timeout: 5000 });
    await b.plugins.roster.decline(a.account);
    assert.equal((await declined).from, b.account.toString());
  });

  test('RFC 6121 §2.6: with SQLite storage a restart shows the roster at once, then syncs by version', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'natter-roster-'));
    const file = join(dir, 'client.db');
    try {
      const acct = ctx.account();
      const c1 = ctx.client(acct, { plugins: { roster: roster({ storage: sqliteRosterStorage(file) }) } });
      await c1.connect();
      await c1.plugins.roster.waitFor('synced', { timeout: 5000 });
      const pushed = c1.plugins.roster.waitFor('push', { timeout: 5000 });
      await c1.plugins.roster.set({ jid: 'stored@example.org', name: 'Stored', groups: ['G'] });
      await pushed;
      const version = c1.plugins.roster.version;
      await c1.disconnect();

      // A restart: a new client on the same database knows the roster before connecting.
      const c2 = ctx.client(acct, { plugins: { roster: roster({ storage: sqliteRosterStorage(file) }) } });
      await c2.plugins.roster.ready;
      assert.equal(c2.plugins.roster.get('stored@example.org')?.name, 'Stored');
      assert.equal(c2.plugins.roster.version, version);
      const synced = c2.plugins.roster.waitFor('synced', { timeout: 5000 });
      await c2.connect();
      const s = await synced;
      if (version !== undefined) assert.equal(s.changed, false, 'the server confirmed our version');
      assert.equal(c2.plugins.roster.get('stored@example.org')?.name, 'Stored');

      // A change made elsewhere while we were away arrives on the next sync.
      await c2.disconnect();
      const other = ctx.client(acct, { resource: 'other', plugins: { roster: roster() } });
      await other.connect();
      await other.plugins.roster.fetch();
      await other.plugins.roster.set({ jid: 'added@example.org' });
      await other.plugins.roster.remove('stored@example.org');
      await other.disconnect();
      const c3 = ctx.client(acct, { plugins: { roster: roster({ storage: sqliteRosterStorage(file) }) } });
      await c3.connect();
      await c3.plugins.roster.waitFor('synced', { timeout: 5000 });
      // With versioning the changes may come as pushes after the (empty) result.
      for (let i = 0; i < 50 && c3.plugins.roster.get('added@example.org') === undefined; i++)
        await new Promise((r) => setTimeout(r, 50));
      assert.ok(c3.plugins.roster.get('added@example.org'));
      for (let i = 0; i < 50 && c3.plugins.roster.get('stored@example.org') !== undefined; i++)
        await new Promise((r) => setTimeout(r, 50));
      assert.equal(c3.plugins.roster.get('stored@example.org'), undefined);
    } finally {
      await closeSqlite(file);
      await rm(dir, { recursive: true, force: true });
    }
  });
}
