import { sql, type Kysely, type Migration } from 'kysely';

/**
 * `mam_messages`: one row per message per archive. `seq` orders an archive (strictly increasing
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
};
