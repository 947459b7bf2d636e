// The MUC storage contract on every engine: SQLite, and PostgreSQL when reachable.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { xml } from '@natter/xml';
import { parseJid } from '@natter/jid';
import { Database } from '../../storage/database.js';
import { createTestDatabase } from '../../../test/support/postgres.js';
import { Room } from './room.js';
import { defaultConfig } from './room-config.js';
import { migrations, RoomStore } from './storage.js';

const engines: { name: string; open(): Promise<{ db: Database; cleanup(): Promise<void> } | undefined> }[] = [
  {
    name: 'sqlite',
    open: async () => ({
      db: Database.open({ engine: 'sqlite', path: ':memory:' }),
      cleanup: async () => {},
    }),
  },
  {
    name: 'postgres',
    async open() {
      const t = await createTestDatabase();
      if (!t) return undefined;
      return { db: Database.open({ engine: 'postgres', url: t.url }), cleanup: () => t.drop() };
    },
  },
];

for (const engine of engines) {
  describe(`MUC storage of persistent rooms on ${engine.name} (XEP-0045 §10.1.3 persistent rooms)`, () => {
    test('a room, its affiliations and its bounded history round-trip; other services do not see it', async (t) => {
      const opened = await engine.open();
      if (!opened) return t.skip('PostgreSQL is not reachable');
      const { db, cleanup } = opened;
      try {
        await db.migrate('muc', migrations);
        const store = new RoomStore(db.db);
        const room = new Room(
          parseJid('hall@muc.example'),
          { ...defaultConfig(50, 3), name: 'Hall', persistent: true },
          1_700_000_000_000,
        );
        room.affiliations.set('a@example', 'owner');
        room.affiliations.set('b@example', 'outcast', 'spam');
        room.subject = 'Welcome';
        room.subjectFrom = 'hall@muc.example/a';
        await store.save('muc.example', room);
        await store.save('muc.example', room); // idempotent
        for (let i = 1; i <= 5; i++)
          await store.addHistory(
            'hall@muc.example',
            1000 + i,
            xml('message', { type: 'groupchat' }, xml('body', null, `m${i}`)).toString(),
            3,
          );
        const [loaded] = await store.load('muc.example', defaultConfig(50, 3), (jid, err) =>
          assert.fail(`${jid}: ${String(err)}`),
        );
        assert.ok(loaded);
        assert.equal(loaded.config.name, 'Hall');
        assert.equal(loaded.createdAt, 1_700_000_000_000);
        assert.equal(loaded.subject, 'Welcome');
        assert.equal(loaded.affiliations.get('a@example'), 'owner');
        assert.equal(loaded.affiliations.reason('b@example'), 'spam');
        assert.deepEqual(
          loaded.history.select({}).map((h) => [h.stanza.getChildText('body'), h.at]),
          [
            ['m3', 1003],
            ['m4', 1004],
            ['m5', 1005],
          ],
        );
        assert.deepEqual(await store.load('other.example', defaultConfig(50, 3), () => {}), []);
        await store.remove('hall@muc.example');
        assert.deepEqual(await store.load('muc.example', defaultConfig(50, 3), () => {}), []);
      } finally {
        await db.close();
        await cleanup();
      }
    });
  });
}
