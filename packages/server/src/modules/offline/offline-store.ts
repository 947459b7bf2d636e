import { PostgresAdapter, type Kysely, type Migration } from 'kysely';

/** One stored message: its row id, when it was stored (epoch ms) and its serialised stanza. */
export interface StoredMessage {
  id: number;
  storedAt: number;
  stanza: string;
}

export const offlineMigrations: Record<string, Migration> = {
  '0001-offline-messages': {
    async up(db: Kysely<any>) {
      const pg = db.getExecutor().adapter instanceof PostgresAdapter;
      await db.schema
        .createTable('offline_messages')
        .addColumn('id', pg ? 'bigserial' : 'integer', (c) =>
          pg ? c.primaryKey() : c.primaryKey().autoIncrement(),
        )
        .addColumn('owner', 'varchar(3071)', (c) => c.notNull())
        .addColumn('stored_at', 'bigint', (c) => c.notNull())
        .addColumn('stanza', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('offline_messages_owner')
        .on('offline_messages')
        .columns(['owner', 'id'])
        .execute();
    },
  },
};

/** Offline messages per account (bare JID string), oldest first. */
export class OfflineStore {
  constructor(private readonly db: Kysely<any>) {}

  async count(owner: string): Promise<number> {
    const row = await this.db
      .selectFrom('offline_messages')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('owner', '=', owner)
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  async add(owner: string, stanza: string, storedAt: number): Promise<void> {
    await this.db.insertInto('offline_messages').values({ owner, stored_at: storedAt, stanza }).execute();
  }

  async list(owner: string): Promise<StoredMessage[]> {
    const rows = await this.db
      .selectFrom('offline_messages')
      .select(['id', 'stored_at', 'stanza'])
      .where('owner', '=', owner)
      .orderBy('id', 'asc')
      .execute();
    return rows.map((r) => ({ id: Number(r.id), storedAt: Number(r.stored_at), stanza: String(r.stanza) }));
  }

  /**
   * Takes up to `limit` of the oldest messages out of storage: read and deleted in one statement,
   * so that two sessions of the account (on two nodes of a cluster) never take the same message.
   * Oldest first.
   */
  async claim(owner: string, limit: number): Promise<StoredMessage[]> {
    const rows = await this.db
      .deleteFrom('offline_messages')
      .where('owner', '=', owner)
      .where(
        'id',
        'in',
        this.db
          .selectFrom('offline_messages')
          .select('id')
          .where('owner', '=', owner)
          .orderBy('id', 'asc')
          .limit(limit),
      )
      .returning(['id', 'stored_at', 'stanza'])
      .execute();
    // RETURNING lists rows in no promised order.
    return rows
      .map((r) => ({ id: Number(r.id), storedAt: Number(r.stored_at), stanza: String(r.stanza) }))
      .sort((a, b) => a.id - b.id);
  }

  /**
   * Puts taken messages back (not handed over: the session ended first), under their old ids, so
   * in their old place: ids are never reused, by SQLite's AUTOINCREMENT as by a PostgreSQL sequence.
   */
  async restore(owner: string, messages: StoredMessage[]): Promise<void> {
    // Chunked: SQLite limits bound parameters per statement.
    for (let i = 0; i < messages.length; i += 200) {
      await this.db
        .insertInto('offline_messages')
        .values(
          messages
            .slice(i, i + 200)
            .map((m) => ({ id: m.id, owner, stored_at: m.storedAt, stanza: m.stanza })),
        )
        .execute();
    }
  }

  async removeAll(owner: string): Promise<void> {
    await this.db.deleteFrom('offline_messages').where('owner', '=', owner).execute();
  }
}
