import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  carbons,
  mam,
  muc,
  memoryMessageStore,
  xml,
  type Client,
  type MamResult,
  type PluginDefinition,
  type MamApi,
} from '../../src/index.node.js';
import { available, type SuiteContext } from '../helpers.js';

type MamClient = Client<{ mam: PluginDefinition<MamApi> }>;

/** Sends `bodies` from `from` to `to` (a full JID) and waits until `to` has received them all. */
async function exchange(from: Client, to: Client, bodies: string[]): Promise<void> {
  const want = new Set(bodies);
  const all = to.waitFor('message', {
    filter: (m) => {
      want.delete(m.getChildText('body') ?? '');
      return want.size === 0;
    },
    timeout: 5000,
  });
  for (const body of bodies) await from.sendMessage({ to: to.jid!, body });
  await all;
}

async function collect(pages: AsyncGenerator<{ results: MamResult[] }>): Promise<MamResult[][]> {
  const out: MamResult[][] = [];
  for await (const p of pages) out.push(p.results);
  return out;
}

const bodiesOf = (rs: MamResult[]) => rs.map((r) => r.message.body);

export function mamSuite(ctx: SuiteContext): void {
  /** Two accounts online and available, `a` with the mam module. */
  async function pair(): Promise<{ a: MamClient; b: Client }> {
    const a = await ctx.online({ plugins: { mam: mam() } });
    const b = await ctx.online();
    await available(a);
    await available(b);
    return { a, b };
  }

  test('XEP-0313 §4.2-4.3: typed results, paged forward and backward with RSM; complete on the last page', async () => {
    const { a, b } = await pair();
    await exchange(a, b, ['a1', 'a2', 'a3', 'a4', 'a5']);
    await exchange(b, a, ['b1', 'b2']);
    const all = ['a1', 'a2', 'a3', 'a4', 'a5', 'b1', 'b2'];

    const forward = await collect(a.plugins.mam.pages({ max: 3 }));
    assert.deepEqual(
      forward.map((p) => p.length),
      [3, 3, 1],
    );
    assert.deepEqual(bodiesOf(forward.flat()), all);
    const backward = await collect(a.plugins.mam.pages({ max: 3, before: '' }));
    assert.deepEqual(
      backward.map((p) => p.length),
      [3, 3, 1],
    );
    // each page is in archive order; the pages go from the end
    assert.deepEqual(bodiesOf(backward.reverse().flat()), all);

    const first = await a.plugins.mam.query({ max: 2 });
    assert.equal(first.complete, false);
    assert.equal(first.first, first.results[0]!.id);
    assert.equal(first.last, first.results[1]!.id);
    assert.equal(first.count, 7);
    const rest = await a.plugins.mam.query({ after: first.last!, max: 10 });
    assert.equal(rest.complete, true);
    assert.deepEqual(bodiesOf(rest.results), all.slice(2));

    const [out, , , , , inc] = forward.flat();
    assert.ok(out && inc);
    assert.ok(out.timestamp instanceof Date && !Number.isNaN(out.timestamp.getTime()));
    assert.ok(Math.abs(out.timestamp.getTime() - Date.now()) < 60_000);
    assert.equal(out.archive, a.account.toString());
    assert.equal(out.message.fromJid?.toBareString(), a.account.toString());
    assert.equal(out.message.toJid?.toBareString(), b.account.toString());
    assert.equal(out.message.type, 'chat');
    assert.equal(inc.message.fromJid?.toBareString(), b.account.toString());
    assert.equal(inc.message.body, 'b1');
    assert.equal(new Set(forward.flat().map((r) => r.id)).size, 7);
    // results are not chat messages: they never reach the client's `message` event
    let leaked = 0;
    a.on('message', () => leaked++);
    await a.plugins.mam.query({});
    assert.equal(leaked, 0);
  });

  test('XEP-0313 §4.1: filters by correspondent, time and archive UID', async () => {
    const { a, b } = await pair();
    const c = await ctx.online();
    await available(c);
    await exchange(a, b, ['to-b-1', 'to-b-2']);
    await exchange(a, c, ['to-c-1']);
    await exchange(c, a, ['from-c-1']);
    await exchange(a, b, ['to-b-3']);

    const withB = await a.plugins.mam.query({ with: b.account });
    assert.deepEqual(bodiesOf(withB.results), ['to-b-1', 'to-b-2', 'to-b-3']);
    const withC = await a.plugins.mam.query({ with: c.account.toString() });
    assert.deepEqual(bodiesOf(withC.results), ['to-c-1', 'from-c-1']);

    const all = (await a.plugins.mam.query({})).results;
    assert.equal(all.length, 5);
    // Time filters are inclusive; servers may keep only whole seconds, so compare with what they return.
    const pivot = all[2]!.timestamp;
    const since = await a.plugins.mam.query({ start: pivot });
    assert.deepEqual(
      bodiesOf(since.results),
      bodiesOf(all.filter((r) => r.timestamp.getTime() >= pivot.getTime())),
    );
    assert.ok(since.results.some((r) => r.message.body === 'to-b-3'));
    const until = await a.plugins.mam.query({ end: pivot });
    assert.deepEqual(
      bodiesOf(until.results),
      bodiesOf(all.filter((r) => r.timestamp.getTime() <= pivot.getTime())),
    );
    const nothing = await a.plugins.mam.query({ end: new Date(Date.now() - 86_400_000) });
    assert.deepEqual(nothing.results, []);
    assert.equal(nothing.complete, true);

    // urn:xmpp:mam:2#extended: after-id / before-id
    const info = await a.request(
      'get',
      a.account,
      xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' }),
    );
    const extended = info?.getChildren('feature').some((f) => f.attr('var') === 'urn:xmpp:mam:2#extended');
    if (extended) {
      const after = await a.plugins.mam.query({ afterId: all[1]!.id });
      assert.deepEqual(bodiesOf(after.results), bodiesOf(all.slice(2)));
      const before = await a.plugins.mam.query({ beforeId: all[3]!.id });
      assert.deepEqual(bodiesOf(before.results), bodiesOf(all.slice(0, 3)));
    }
  });

  test('catchUp: after a disconnect it stores exactly the missed messages, once', async () => {
    const store = memoryMessageStore();
    const account = ctx.account();
    const peer = await ctx.online();
    await available(peer);
    const b1 = ctx.client(account, {
      resource: 'phone',
      // Only what catch-up stores (the live messages would be stored as they come, by default).
      plugins: { mam: mam({ store, pageSize: 2, initialSync: 10, overlap: 0, storeLive: false }) },
    });
    await b1.connect();
    await available(b1);
    await exchange(peer, b1, ['before-1', 'before-2']);
    await exchange(b1, peer, ['before-3']);
    const first = await b1.plugins.mam.catchUp();
    assert.equal(first.added, 3);
    const me = b1.account.toString();
    const conversation = peer.account.toString();
    assert.deepEqual(
      (await store.list(me, conversation)).map((m) => [m.body, m.direction]),
      [
        ['before-1', 'in'],
        ['before-2', 'in'],
        ['before-3', 'out'],
      ],
    );
    await b1.disconnect();

    // While the phone is away, another resource of the account keeps talking.
    const b2 = ctx.client(account, { resource: 'desktop' });
    await b2.connect();
    await available(b2);
    await exchange(peer, b2, ['missed-1', 'missed-2', 'missed-3']);
    await exchange(b2, peer, ['missed-4']);

    const synced = b1.plugins.mam.waitFor('synced', { timeout: 5000 });
    await b1.connect();
    const again = await b1.plugins.mam.catchUp();
    assert.equal((await synced).added, 4);
    assert.deepEqual(
      { fetched: again.fetched, added: again.added, fellBack: again.fellBack },
      {
        fetched: 4,
        added: 4,
        fellBack: false,
      },
    );
    assert.ok(again.pages >= 2); // pages of 2 (a server may need an empty page to say complete)
    const stored = await store.list(me, conversation);
    assert.deepEqual(
      stored.map((m) => m.body),
      ['before-1', 'before-2', 'before-3', 'missed-1', 'missed-2', 'missed-3', 'missed-4'],
    );
    assert.equal(new Set(stored.map((m) => m.archiveId)).size, 7);
    const nothingNew = await b1.plugins.mam.catchUp();
    assert.deepEqual([nothingNew.fetched, nothingNew.added], [0, 0]);
    assert.equal((await store.syncPoint(me, me))?.id, stored[6]!.archiveId);
  });

  test('storeLive: carbons and live messages go into the store with their archive UID, once, also after a catch-up', async () => {
    const store = memoryMessageStore();
    const account = ctx.account();
    const peer = await ctx.online();
    await available(peer);
    const phone = ctx.client(account, { resource: 'phone' });
    await phone.connect();
    await available(phone);
    const laptop = ctx.client(account, {
      resource: 'laptop',
      plugins: { carbons: carbons(), mam: mam({ store }) },
    });
    const enabled = laptop.plugins.carbons.waitFor('enabled', { timeout: 5000 });
    await laptop.connect();
    await enabled;
    await available(laptop);
    const me = account.jid;
    const conversation = peer.account.toString();
    const nextStored = (body: string) =>
      laptop.plugins.mam.waitFor('stored', { filter: (m) => m.body === body, timeout: 5000 });

    // The phone writes: the laptop gets a sent carbon.
    let stored = nextStored('from the phone');
    await phone.sendMessage({ to: peer.jid!, body: 'from the phone' });
    await stored;
    // The peer writes to the phone: the laptop gets a received carbon.
    stored = nextStored('to the phone');
    await peer.sendMessage({ to: phone.jid!, body: 'to the phone' });
    await stored;
    // The peer writes to the laptop itself.
    stored = nextStored('to the laptop');
    await peer.sendMessage({ to: laptop.jid!, body: 'to the laptop' });
    await stored;

    const live = await store.list(me, conversation);
    assert.deepEqual(
      live.map((m) => [m.body, m.direction, m.from]),
      [
        ['from the phone', 'out', phone.jid!.toString()],
        ['to the phone', 'in', peer.jid!.toString()],
        ['to the laptop', 'in', peer.jid!.toString()],
      ],
    );
    assert.ok(live.every((m) => m.archive === me && m.archiveId !== undefined));
    // The UIDs are the archive's own: a catch-up finds every message already there.
    const page = await laptop.plugins.mam.query({ with: conversation });
    assert.deepEqual(
      page.results.map((r) => r.id),
      live.map((m) => m.archiveId),
    );
    const caught = await laptop.plugins.mam.catchUp();
    assert.deepEqual([caught.fetched, caught.added], [3, 0]);
    assert.deepEqual(
      (await store.list(me, conversation)).map((m) => m.body),
      ['from the phone', 'to the phone', 'to the laptop'],
    );

    // And after the next catch-up, with one more message from the phone in between.
    stored = nextStored('again from the phone');
    await phone.sendMessage({ to: peer.jid!, body: 'again from the phone' });
    await stored;
    const again = await laptop.plugins.mam.catchUp();
    // (the overlap reads the earlier ones again too: none is stored twice)
    assert.equal(again.added, 0);
    assert.ok(again.fetched >= 1);
    assert.deepEqual(
      (await store.list(me, conversation)).map((m) => m.body),
      ['from the phone', 'to the phone', 'to the laptop', 'again from the phone'],
    );
  });

  test('catchUp: a sync point the archive does not know falls back to a query by time, without duplicates', async () => {
    const store = memoryMessageStore();
    const { a, b } = await pair();
    const client = ctx.client(
      { jid: a.account.toString(), password: a.options.password! },
      { resource: 'second', plugins: { mam: mam({ store, overlap: 0 }) } },
    );
    await client.connect();
    await exchange(b, a, ['old-1', 'old-2', 'old-3']);
    await client.plugins.mam.catchUp();
    const me = a.account.toString();
    const before = await store.list(me, b.account.toString());
    assert.equal(before.length, 3);
    await exchange(b, a, ['new-1', 'new-2']);
    await store.setSyncPoint(me, me, { id: 'no-such-archive-id', timestamp: before[1]!.timestamp });
    const fallback = client.plugins.mam.waitFor('fallback', { timeout: 5000 });
    const r = await client.plugins.mam.catchUp();
    assert.equal((await fallback).id, 'no-such-archive-id');
    assert.equal(r.fellBack, true);
    assert.equal(r.added, 2);
    assert.deepEqual(
      (await store.list(me, b.account.toString())).map((m) => m.body),
      ['old-1', 'old-2', 'old-3', 'new-1', 'new-2'],
    );
    // the sync point is a real UID again
    const again = await client.plugins.mam.catchUp();
    assert.deepEqual([again.fellBack, again.added], [false, 0]);
  });

  test('catchUp reads again the seconds before its sync point (overlap), storing nothing twice', async () => {
    const store = memoryMessageStore();
    const { a, b } = await pair();
    const client = ctx.client(
      { jid: a.account.toString(), password: a.options.password! },
      { resource: 'overlap', plugins: { mam: mam({ store, overlap: 60_000 }) } },
    );
    await client.connect();
    await exchange(b, a, ['o-1', 'o-2']);
    const first = await client.plugins.mam.catchUp();
    assert.equal(first.added, 2);
    await exchange(b, a, ['o-3']);
    const r = await client.plugins.mam.catchUp();
    // o-1 and o-2 are within the last minute before the sync point: read again, not stored again.
    assert.deepEqual([r.fetched, r.added, r.fellBack], [3, 1, false]);
    assert.deepEqual(
      (await store.list(a.account.toString(), b.account.toString())).map((m) => m.body),
      ['o-1', 'o-2', 'o-3'],
    );
  });

  test('autoCatchUp syncs after each new session', async () => {
    const store = memoryMessageStore();
    const account = ctx.account();
    const peer = await ctx.online();
    await available(peer);
    const other = ctx.client(account, { resource: 'other' });
    await other.connect();
    await available(other);
    await exchange(peer, other, ['while-away']);
    const c = ctx.client(account, { plugins: { mam: mam({ store, autoCatchUp: true }) } });
    const synced = c.plugins.mam.waitFor('synced', { timeout: 5000 });
    await c.connect();
    assert.equal((await synced).added, 1);
    assert.deepEqual(
      (await store.list(c.account.toString(), peer.account.toString())).map((m) => m.body),
      ['while-away'],
    );
  });

  test('XEP-0441: preferences are read and replaced', async () => {
    const a = await ctx.online({ plugins: { mam: mam() } });
    const initial = await a.plugins.mam.getPreferences();
    assert.ok(['always', 'never', 'roster'].includes(initial.default));
    const applied = await a.plugins.mam.setPreferences({
      default: 'roster',
      always: ['friend@localhost'],
      never: ['spammer@localhost'],
    });
    assert.equal(applied.default, 'roster');
    const read = await a.plugins.mam.getPreferences();
    assert.deepEqual(read, { default: 'roster', always: ['friend@localhost'], never: ['spammer@localhost'] });
  });

  test('XEP-0313 §5: a room archive is queried at the room, paged, and caught up into the store', async () => {
    const store = memoryMessageStore();
    const owner = await ctx.online({ plugins: { muc: muc() } });
    const reader = await ctx.online({
      plugins: { muc: muc(), mam: mam({ store, pageSize: 2, initialSync: 10 }) },
    });
    const room = `mam-${Math.random().toString(36).slice(2, 8)}@${ctx.target.mucDomain}`;
    await owner.plugins.muc.createInstant(room, 'owner');
    await reader.plugins.muc.join(room, 'reader');
    const bodies = ['r1', 'r2', 'r3'];
    const heard = new Set(bodies);
    const all = reader.plugins.muc.waitFor('message', {
      filter: (m) => {
        heard.delete(m.body ?? '');
        return heard.size === 0;
      },
      timeout: 5000,
    });
    for (const b of bodies) await owner.plugins.muc.send(room, b);
    await all;

    const pages = await collect(reader.plugins.mam.pages({ to: room, max: 2 }));
    const results = pages.flat().filter((r) => r.message.type === 'groupchat' && r.message.body);
    assert.deepEqual(bodiesOf(results), bodies);
    assert.ok(results.every((r) => r.archive === room));
    assert.equal(results[0]!.message.fromJid?.toString(), `${room}/owner`);

    const synced = await reader.plugins.mam.catchUp({ archive: room });
    assert.equal(synced.archive, room);
    const me = reader.account.toString();
    const stored = (await store.list(me, room)).filter((m) => m.body);
    assert.deepEqual(
      stored.map((m) => m.body),
      bodies,
    );
    assert.ok(stored.every((m) => m.archive === room && m.conversation === room));
    assert.equal((await store.syncPoint(me, room))?.id, pages.flat().at(-1)!.id);
    // nothing archived in the room since: nothing new
    assert.equal((await reader.plugins.mam.catchUp({ archive: room })).added, 0);
  });
}
