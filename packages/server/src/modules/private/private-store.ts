import type { Kysely, Migration } from 'kysely';

export const privateMigrations: Record<string, Migration> = {
  '0001-private-storage': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('private_storage')
        .addColumn('owner', 'varchar(3071)', (c) => c.notNull())
        // XEP-0049 keys a fragment by the namespace of its root element.
        .addColumn('namespace', 'varchar(1023)', (c) => c.notNull())
        // The fragment's element(s), serialised one after the other.
        .addColumn('xml', 'text', (c) => c.notNull())
        // What the fragment counts against the account's quota (UTF-8 bytes of `xml`).
        .addColumn('bytes', 'integer', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('private_storage_pk', ['owner', 'namespace'])
        .execute();
    },
  },
};

export interface PrivateEntry {
  namespace: string;
  xml: string;
}

/** Private XML fragments (XEP-0049), one row per account (bare JID string) and namespace. */
export class PrivateStore {
  constructor(private readonly db: Kysely<any>) {}

  async get(owner: string, namespace: string): Promise<string | undefined> {
    const row = await this.db
      .selectFrom('private_storage')
      .select('xml')
      .where('owner', '=', owner)
      .where('namespace', '=', namespace)
      .executeTakeFirst();
    return row === undefined ? undefined : String(row.xml);
  }

  /** Bytes stored by the account, by namespace. */
  async usage(owner: string): Promise<Map<string, number>> {
    const rows = await this.db
      .selectFrom('private_storage')
      .select(['namespace', 'bytes'])
      .where('owner', '=', owner)
      .execute();
    return new Map(rows.map((r) => [String(r.namespace), Number(r.bytes)]));
  }

  /** Stores (replaces) several fragments of one account at once. */
  async put(owner: string, entries: PrivateEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const now = Date.now();
    await this.db.transaction().execute(async (tx) => {
      for (const { namespace, xml } of entries) {
        const bytes = Buffer.byteLength(xml, 'utf8');
        await tx
          .insertInto('private_storage')
          .values({ owner, namespace, xml, bytes, updated_at: now })
          .onConflict((oc) => oc.columns(['owner', 'namespace']).doUpdateSet({ xml, bytes, updated_at: now }))
          .execute();
      }
    });
  }

  async removeOwner(owner: string): Promise<void> {
    await this.db.deleteFrom('private_storage').where('owner', '=', owner).execute();
  }
}
