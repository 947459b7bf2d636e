import { SqliteAdapter, sql, type Kysely, type Migration } from 'kysely';

/**
 * Until 0003, `mam_messages`: one row per message per archive. `seq` orders an archive (strictly increasing
 * in arrival order, so equal timestamps keep their order, XEP-0313 §3.1); `id` is the
 * unpredictable UID clients see (it starts with `seq`, so it is found through the first index). `with_jid` is the remote bare JID, `with_full` the remote address
 * as it appeared on the stanza (for 'with' filters on a full JID).
 * `mam_prefs`: per-account archiving preferences (XEP-0441, formerly XEP-0313 §5).
 */
export const mamMigrations: Record<string, Migration> = {
  '0001-init': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('mam_messages')
        .addColumn('owner', 'text', (c) => c.notNull())
        .addColumn('id', 'varchar(64)', (c) => c.notNull())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addColumn('timestamp', 'bigint', (c) => c.notNull())
        .addColumn('with_jid', 'text', (c) => c.notNull())
        .addColumn('with_full', 'text', (c) => c.notNull())
        .addColumn('direction', 'varchar(3)', (c) => c.notNull())
        .addColumn('stanza', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('mam_messages_owner_time')
        .on('mam_messages')
        .columns(['owner', 'timestamp', 'seq'])
        .execute();
      await db.schema
        .createIndex('mam_messages_owner_with_time')
        .on('mam_messages')
        .columns(['owner', 'with_jid', 'timestamp', 'seq'])
        .execute();
      await db.schema.createIndex('mam_messages_time').on('mam_messages').column('timestamp').execute();
      await db.schema
        .createTable('mam_prefs')
        .addColumn('owner', 'text', (c) => c.primaryKey())
        .addColumn('default_mode', 'varchar(8)', (c) => c.notNull())
        .addColumn('always_jids', 'text', (c) => c.notNull())
        .addColumn('never_jids', 'text', (c) => c.notNull())
        .execute();
    },
    async down(db: Kysely<any>) {
      await db.schema.dropTable('mam_prefs').execute();
      await db.schema.dropTable('mam_messages').execute();
    },
  },
  /** Per-archive byte quota (modules.mam.maxBytes): each row's size, kept so trimming needs no scan. */
  '0002-bytes': {
    async up(db: Kysely<any>) {
      await db.schema
        .alterTable('mam_messages')
        .addColumn('bytes', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      await db
        .updateTable('mam_messages')
        .set({ bytes: sql`length(stanza)` })
        .execute();
    },
    async down(db: Kysely<any>) {
      await db.schema.alterTable('mam_messages').dropColumn('bytes').execute();
    },
  },
  /**
   * One row per message (`mam_message`), listed in each archive that holds it (`mam_entry`): a
   * one-to-one message between two local accounts was written twice, indexes and all. An entry is
   * small and keyed by (owner, seq, id), clustered in SQLite (WITHOUT ROWID), so listing an archive
   * in order reads one index; `refs` counts the entries of a message, which is deleted with its last
   * entry. The time is no longer a column: `seq` is the arrival time in microseconds. Existing
   * archives are copied over, each old row becoming a message of its own.
   */
  '0003-shared-rows': {
    async up(db: Kysely<any>) {
      const sqlite = db.getExecutor().adapter instanceof SqliteAdapter;
      await db.schema
        .createTable('mam_message')
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addColumn('id', 'varchar(32)', (c) => c.notNull())
        .addColumn('stanza', 'text', (c) => c.notNull())
        .addColumn('bytes', 'integer', (c) => c.notNull())
        .addColumn('refs', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('mam_message_pk', ['seq', 'id'])
        .execute();
      let entry = db.schema
        .createTable('mam_entry')
        .addColumn('owner', 'text', (c) => c.notNull())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addColumn('id', 'varchar(32)', (c) => c.notNull())
        .addColumn('with_jid', 'text', (c) => c.notNull())
        .addColumn('with_full', 'text', (c) => c.notNull())
        .addColumn('direction', 'varchar(3)', (c) => c.notNull())
        .addColumn('bytes', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('mam_entry_pk', ['owner', 'seq', 'id']);
      if (sqlite) entry = entry.modifyEnd(sql`without rowid`);
      await entry.execute();
      await db.schema
        .createIndex('mam_entry_owner_with')
        .on('mam_entry')
        .columns(['owner', 'with_jid', 'seq', 'id'])
        .execute();
      await db
        .insertInto('mam_message')
        .columns(['seq', 'id', 'stanza', 'bytes', 'refs'])
        .expression((eb) =>
          eb.selectFrom('mam_messages').select(['seq', 'id', 'stanza', 'bytes', sql<number>`1`.as('refs')]),
        )
        .execute();
      await db
        .insertInto('mam_entry')
        .columns(['owner', 'seq', 'id', 'with_jid', 'with_full', 'direction', 'bytes'])
        .expression((eb) =>
          eb
            .selectFrom('mam_messages')
            .select(['owner', 'seq', 'id', 'with_jid', 'with_full', 'direction', 'bytes']),
        )
        .execute();
      await db.schema.dropTable('mam_messages').execute();
    },
    async down(db: Kysely<any>) {
      await db.schema
        .createTable('mam_messages')
        .addColumn('owner', 'text', (c) => c.notNull())
        .addColumn('id', 'varchar(64)', (c) => c.notNull())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addColumn('timestamp', 'bigint', (c) => c.notNull())
        .addColumn('with_jid', 'text', (c) => c.notNull())
        .addColumn('with_full', 'text', (c) => c.notNull())
        .addColumn('direction', 'varchar(3)', (c) => c.notNull())
        .addColumn('stanza', 'text', (c) => c.notNull())
        .addColumn('bytes', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      await db
        .insertInto('mam_messages')
        .columns(['owner', 'id', 'seq', 'timestamp', 'with_jid', 'with_full', 'direction', 'stanza', 'bytes'])
        .expression((eb) =>
          eb
            .selectFrom('mam_entry as e')
            .innerJoin('mam_message as m', (j) => j.onRef('m.seq', '=', 'e.seq').onRef('m.id', '=', 'e.id'))
            .select([
              'e.owner',
              'e.id',
              'e.seq',
              sql<number>`e.seq / 1000`.as('timestamp'),
              'e.with_jid',
              'e.with_full',
              'e.direction',
              'm.stanza',
              'e.bytes',
            ]),
        )
        .execute();
      for (const [name, cols] of [
        ['mam_messages_owner_time', ['owner', 'timestamp', 'seq']],
        ['mam_messages_owner_with_time', ['owner', 'with_jid', 'timestamp', 'seq']],
        ['mam_messages_time', ['timestamp']],
      ] as const)
        await db.schema
          .createIndex(name)
          .on('mam_messages')
          .columns([...cols])
          .execute();
      await db.schema.dropTable('mam_entry').execute();
      await db.schema.dropTable('mam_message').execute();
    },
  },
};
