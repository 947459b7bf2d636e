// The contract every MessageStore meets (memory, SQLite; IndexedDB runs a part of it in Chromium).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { MessageStore, StoredMessage } from '../src/index.node.js';

let unique = 0;

/** A message of `conversation` at `timestamp`, with whatever ids `extra` gives. */
export function message(
  conversation: string,
  timestamp: number,
  extra: Partial<StoredMessage> = {},
): StoredMessage {
  const body = extra.body ?? `m${++unique}`;
  return {
    conversation,
    timestamp,
    from: `${conversation}/r`,
    direction: 'in',
    body,
    xml: `<message xmlns="jabber:client"><body>${body}</body></message>`,
    ...extra,
  };
}

export function messageStoreContract(name: string, make: () => MessageStore): void {
  describe(`message store contract (${name})`, () => {
    test('messages are deduplicated by archive UID, and by origin id within a conversation', async () => {
      const s = make();
      const me = `me-${name}-${++unique}@x`;
      const peer = 'peer@x';
      assert.equal(await s.add(me, message(peer, 1000, { archive: me, archiveId: 'A1', body: 'one' })), true);
      assert.equal(
        await s.add(me, message(peer, 1000, { archive: me, archiveId: 'A1', body: 'again' })),
        false,
      );
      // the same UID in another archive is another message
      assert.equal(await s.add(me, message('room@x', 1000, { archive: 'room@x', archiveId: 'A1' })), true);
      // a message seen live (origin id, no UID) and then from the archive is stored once, and takes the UID
      assert.equal(await s.add(me, message(peer, 2000, { originId: 'o-2', body: 'live' })), true);
      assert.equal(await s.has(me, { archive: me, archiveId: 'A2' }), false);
      assert.equal(
        await s.add(me, message(peer, 2001, { originId: 'o-2', archive: me, archiveId: 'A2', body: 'live' })),
        false,
      );
      assert.equal(await s.has(me, { archive: me, archiveId: 'A2' }), true);
      assert.equal(await s.has(me, { conversation: peer, originId: 'o-2' }), true);
      assert.equal(await s.has(me, { conversation: 'room@x', originId: 'o-2' }), false);
      const list = await s.list(me, peer);
      assert.deepEqual(
        list.map((m) => [m.body, m.archiveId, m.timestamp]),
        [
          ['one', 'A1', 1000],
          ['live', 'A2', 2000],
        ],
      );
      // other accounts see nothing of it
      assert.deepEqual(await s.list(`other-${me}`, peer), []);
      assert.equal(await s.has(`other-${me}`, { archive: me, archiveId: 'A1' }), false);
      assert.equal(await s.add(`other-${me}`, message(peer, 1000, { archive: me, archiveId: 'A1' })), true);
    });

    test('stored messages keep every field', async () => {
      const s = make();
      const me = `me-${name}-${++unique}@x`;
      const m = message('peer@x', 5, {
        archive: me,
        archiveId: 'uid',
        originId: 'origin',
        messageId: 'mid',
        direction: 'out',
        from: `${me}/phone`,
        body: 'hello <&>',
      });
      await s.add(me, m);
      const [got] = await s.list(me, 'peer@x');
      assert.ok(got);
      const { seq, ...rest } = got;
      assert.equal(typeof seq, 'number');
      assert.deepEqual(rest, m);
      const bare = message('peer@x', 6, { body: undefined });
      delete bare.body;
      await s.add(me, bare);
      const last = (await s.list(me, 'peer@x', { limit: 1 }))[0]!;
      assert.equal(last.body, undefined);
      assert.equal(last.archiveId, undefined);
    });

    test('list pages a conversation by time, ties in the order stored, in both directions', async () => {
      const s = make();
      const me = `me-${name}-${++unique}@x`;
      const peer = 'peer@x';
      // stored out of order; 3 and 4 share a timestamp (servers may keep whole seconds)
      const stamps: [string, number][] = [
        ['m5', 5000],
        ['m1', 1000],
        ['m3', 3000],
        ['m4', 3000],
        ['m2', 2000],
        ['m6', 6000],
      ];
      for (const [body, t] of stamps)
        await s.add(me, message(peer, t, { body, archive: me, archiveId: body }));
      await s.add(me, message('elsewhere@x', 2500, { body: 'other' }));
      const bodies = (l: StoredMessage[]) => l.map((m) => m.body);
      assert.deepEqual(bodies(await s.list(me, peer)), ['m1', 'm2', 'm3', 'm4', 'm5', 'm6']);
      const latest = await s.list(me, peer, { limit: 2 });
      assert.deepEqual(bodies(latest), ['m5', 'm6']);
      const older = await s.list(me, peer, { limit: 2, before: latest[0]! });
      assert.deepEqual(bodies(older), ['m3', 'm4']);
      const oldest = await s.list(me, peer, { limit: 2, before: older[0]! });
      assert.deepEqual(bodies(oldest), ['m1', 'm2']);
      assert.deepEqual(await s.list(me, peer, { limit: 2, before: oldest[0]! }), []);
      const next = await s.list(me, peer, { limit: 2, after: oldest[1]! });
      assert.deepEqual(bodies(next), ['m3', 'm4']);
      assert.deepEqual(bodies(await s.list(me, peer, { limit: 10, after: next[0]! })), ['m4', 'm5', 'm6']);
      assert.deepEqual(bodies(await s.list(me, peer, { after: oldest[0]!, before: latest[1]! })), [
        'm2',
        'm3',
        'm4',
        'm5',
      ]);
      assert.deepEqual(await s.list(me, peer, { limit: 0 }), []);
    });

    test('sync points are kept per archive; clear forgets one account', async () => {
      const s = make();
      const me = `me-${name}-${++unique}@x`;
      const other = `other-${me}`;
      assert.equal(await s.syncPoint(me, me), undefined);
      await s.setSyncPoint(me, me, { id: 'u1', timestamp: 10 });
      await s.setSyncPoint(me, 'room@x', { id: 'r1', timestamp: 20 });
      await s.setSyncPoint(me, me, { id: 'u2', timestamp: 30 });
      await s.setSyncPoint(other, me, { id: 'x', timestamp: 1 });
      assert.deepEqual(await s.syncPoint(me, me), { id: 'u2', timestamp: 30 });
      assert.deepEqual(await s.syncPoint(me, 'room@x'), { id: 'r1', timestamp: 20 });
      await s.add(me, message('peer@x', 1, { archive: me, archiveId: 'u1' }));
      await s.add(other, message('peer@x', 1, { archive: me, archiveId: 'u1' }));
      await s.clear(me);
      assert.equal(await s.syncPoint(me, me), undefined);
      assert.equal(await s.syncPoint(me, 'room@x'), undefined);
      assert.deepEqual(await s.list(me, 'peer@x'), []);
      assert.equal(await s.has(me, { archive: me, archiveId: 'u1' }), false);
      assert.deepEqual(await s.syncPoint(other, me), { id: 'x', timestamp: 1 });
      assert.equal((await s.list(other, 'peer@x')).length, 1);
    });
  });
}
