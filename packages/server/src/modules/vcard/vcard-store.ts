import type { Kysely, Migration } from 'kysely';

export const vcardMigrations: Record<string, Migration> = {
  '0001-vcards': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('vcard_vcards')
        .addColumn('owner', 'varchar(3071)', (c) => c.primaryKey())
        .addColumn('vcard', 'text', (c) => c.notNull())
        // SHA-1 (hex) of the decoded PHOTO/BINVAL, '' when the vCard has no photo (XEP-0153).
        .addColumn('photo_hash', 'varchar(40)', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
    },
  },
};

export interface StoredVcard {
  vcard: string;
  photoHash: string;
}

/** One vCard per account (bare JID string), stored as its XML text. */
export class VcardStore {
  constructor(private readonly db: Kysely<any>) {}

  async get(owner: string): Promise<StoredVcard | undefined> {
    const row = await this.db
      .selectFrom('vcard_vcards')
      .select(['vcard', 'photo_hash'])
      .where('owner', '=', owner)
      .executeTakeFirst();
    return row && { vcard: String(row.vcard), photoHash: String(row.photo_hash) };
  }

  async photoHash(owner: string): Promise<string | undefined> {
    const row = await this.db
      .selectFrom('vcard_vcards')
      .select('photo_hash')
      .where('owner', '=', owner)
      .executeTakeFirst();
    return row === undefined ? undefined : String(row.photo_hash);
  }

  async set(owner: string, vcard: string, photoHash: string): Promise<void> {
    const now = Date.now();
    await this.db
      .insertInto('vcard_vcards')
      .values({ owner, vcard, photo_hash: photoHash, updated_at: now })
      .onConflict((oc) => oc.column('owner').doUpdateSet({ vcard, photo_hash: photoHash, updated_at: now }))
      .execute();
  }

  async remove(owner: string): Promise<void> {
    await this.db.deleteFrom('vcard_vcards').where('owner', '=', owner).execute();
  }
}
