import type { Kysely, Migration } from 'kysely';

export const lastMigrations: Record<string, Migration> = {
  '0001-last-activity': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('last_activity')
        .addColumn('owner', 'varchar(3071)', (c) => c.primaryKey())
        .addColumn('logout_at', 'bigint', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .execute();
    },
  },
};

export interface LastActivity {
  /** Epoch milliseconds of the last logout. */
  at: number;
  /** Status text of the last unavailable presence ('' when none). */
  status: string;
}

/** The last logout of each account (bare JID string). */
export class LastStore {
  constructor(private readonly db: Kysely<any>) {}

  async get(owner: string): Promise<LastActivity | undefined> {
    const row = await this.db
      .selectFrom('last_activity')
      .select(['logout_at', 'status'])
      .where('owner', '=', owner)
      .executeTakeFirst();
    return row && { at: Number(row.logout_at), status: String(row.status) };
  }

  async set(owner: string, at: number, status: string): Promise<void> {
    await this.db
      .insertInto('last_activity')
      .values({ owner, logout_at: at, status })
      .onConflict((oc) => oc.column('owner').doUpdateSet({ logout_at: at, status }))
      .execute();
  }

  /** Writes several logouts in one transaction. */
  async setMany(entries: [string, LastActivity][]): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      for (const [owner, { at, status }] of entries) {
        await trx
          .insertInto('last_activity')
          .values({ owner, logout_at: at, status })
          .onConflict((oc) => oc.column('owner').doUpdateSet({ logout_at: at, status }))
          .execute();
      }
    });
  }

  async remove(owner: string): Promise<void> {
    await this.db.deleteFrom('last_activity').where('owner', '=', owner).execute();
  }
}
