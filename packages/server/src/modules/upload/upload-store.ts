import { sql, type ExpressionBuilder, type Kysely, type Migration } from 'kysely';

/**
 * `upload_files`: one row per slot, from the slot request to the file's expiry. `id` is the
 * SHA-256 of the secret in the slot's URL (hex): the table and the disk (files are named by `id`)
 * never hold the URLs themselves, so a leaked backup does not leak download links. `state` goes
 * `pending` (slot handed out) → `uploading` (a PUT claimed it: single use) → `stored`; a failed
 * upload deletes the row. Sizes and dates are bigint (bytes, epoch milliseconds).
 */
export const uploadMigrations: Record<string, Migration> = {
  '0001-upload-files': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('upload_files')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        // The bare JID of the account (or the component's domain) that requested the slot.
        .addColumn('owner', 'varchar(3071)', (c) => c.notNull())
        .addColumn('filename', 'varchar(1023)', (c) => c.notNull())
        .addColumn('size', 'bigint', (c) => c.notNull())
        // As requested (XEP-0363 §4); null when the request named none.
        .addColumn('content_type', 'varchar(255)')
        .addColumn('state', 'varchar(16)', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('stored_at', 'bigint')
        .execute();
      await db.schema.createIndex('upload_files_owner').on('upload_files').column('owner').execute();
      await db.schema
        .createIndex('upload_files_state_created')
        .on('upload_files')
        .columns(['state', 'created_at'])
        .execute();
    },
    async down(db: Kysely<any>) {
      await db.schema.dropTable('upload_files').execute();
    },
  },
};

export type UploadState = 'pending' | 'uploading' | 'stored';

export interface UploadRow {
  id: string;
  owner: string;
  filename: string;
  size: number;
  contentType: string | undefined;
  state: UploadState;
  createdAt: number;
  storedAt: number | undefined;
}

/** The lifetimes that decide what still counts (a slot's TTL, a stored file's expiry). */
export interface Lifetimes {
  slotTtlMs: number;
  expiryMs: number;
}

/** How long a claimed upload may stay unfinished before the sweep takes it for a crash's leftover. */
const STALE_UPLOAD_MS = 3600_000;

function toRow(r: Record<string, unknown>): UploadRow {
  return {
    id: String(r.id),
    owner: String(r.owner),
    filename: String(r.filename),
    size: Number(r.size),
    contentType: r.content_type === null || r.content_type === undefined ? undefined : String(r.content_type),
    state: String(r.state) as UploadState,
    createdAt: Number(r.created_at),
    storedAt: r.stored_at === null || r.stored_at === undefined ? undefined : Number(r.stored_at),
  };
}

/** Queries on `upload_files`, written once for SQLite and PostgreSQL. */
export class UploadStore {
  constructor(
    private readonly db: Kysely<any>,
    private readonly life: Lifetimes,
  ) {}

  async create(row: Omit<UploadRow, 'state' | 'storedAt'>): Promise<void> {
    await this.db
      .insertInto('upload_files')
      .values({
        id: row.id,
        owner: row.owner,
        filename: row.filename,
        size: row.size,
        content_type: row.contentType ?? null,
        state: 'pending',
        created_at: row.createdAt,
        stored_at: null,
      })
      .execute();
  }

  async find(id: string): Promise<UploadRow | undefined> {
    const r = await this.db.selectFrom('upload_files').selectAll().where('id', '=', id).executeTakeFirst();
    return r ? toRow(r) : undefined;
  }

  /**
   * Single use: moves a slot that is still pending and not expired to `uploading`, atomically, so
   * that of two PUTs to one slot only one gets it. False when the slot was used or expired.
   */
  async claim(id: string, now: number): Promise<boolean> {
    const r = await this.db
      .updateTable('upload_files')
      .set({ state: 'uploading' })
      .where('id', '=', id)
      .where('state', '=', 'pending')
      .where('created_at', '>', now - this.life.slotTtlMs)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** The upload completed; false when the row is gone meanwhile (the account was deleted). */
  async stored(id: string, now: number): Promise<boolean> {
    const r = await this.db
      .updateTable('upload_files')
      .set({ state: 'stored', stored_at: now })
      .where('id', '=', id)
      .where('state', '=', 'uploading')
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async remove(id: string): Promise<void> {
    await this.db.deleteFrom('upload_files').where('id', '=', id).execute();
  }

  /** Rows that still take room: stored and not expired, being uploaded, or slots not yet expired. */
  private live(now: number) {
    const { slotTtlMs, expiryMs } = this.life;
    return (eb: ExpressionBuilder<any, any>) =>
      eb.or([
        eb('state', '=', 'uploading'),
        eb.and([eb('state', '=', 'pending'), eb('created_at', '>', now - slotTtlMs)]),
        eb.and([eb('state', '=', 'stored'), eb('stored_at', '>', now - expiryMs)]),
      ]);
  }

  /** Bytes an owner uses or has reserved with slots (what the quota counts). */
  async usedBy(owner: string, now: number): Promise<number> {
    const r = await this.db
      .selectFrom('upload_files')
      .select(sql<string | number>`coalesce(sum(size), 0)`.as('total'))
      .where('owner', '=', owner)
      .where(this.live(now))
      .executeTakeFirst();
    return Number(r?.total ?? 0);
  }

  /** Bytes used or reserved by everyone (the service's disk budget). */
  async usedByAll(now: number): Promise<number> {
    const r = await this.db
      .selectFrom('upload_files')
      .select(sql<string | number>`coalesce(sum(size), 0)`.as('total'))
      .where(this.live(now))
      .executeTakeFirst();
    return Number(r?.total ?? 0);
  }

  /** An owner's stored files, oldest first (when will room be freed?). */
  async storedBy(owner: string, now: number): Promise<{ size: number; storedAt: number }[]> {
    const rows = await this.db
      .selectFrom('upload_files')
      .select(['size', 'stored_at'])
      .where('owner', '=', owner)
      .where('state', '=', 'stored')
      .where('stored_at', '>', now - this.life.expiryMs)
      .orderBy('stored_at')
      .execute();
    return rows.map((r) => ({ size: Number(r.size), storedAt: Number(r.stored_at) }));
  }

  async idsOf(owner: string): Promise<string[]> {
    const rows = await this.db.selectFrom('upload_files').select('id').where('owner', '=', owner).execute();
    return rows.map((r) => String(r.id));
  }

  /**
   * Rows the sweep removes, at most `limit`: stored files past their expiry, slots never used
   * before their TTL, and uploads left unfinished for an hour past their TTL (a crash).
   */
  async expired(now: number, limit: number): Promise<string[]> {
    const { slotTtlMs, expiryMs } = this.life;
    const rows = await this.db
      .selectFrom('upload_files')
      .select('id')
      .where((eb) =>
        eb.or([
          eb.and([eb('state', '=', 'stored'), eb('stored_at', '<=', now - expiryMs)]),
          eb.and([eb('state', '=', 'pending'), eb('created_at', '<=', now - slotTtlMs)]),
          eb.and([eb('state', '=', 'uploading'), eb('created_at', '<=', now - slotTtlMs - STALE_UPLOAD_MS)]),
        ]),
      )
      .limit(limit)
      .execute();
    return rows.map((r) => String(r.id));
  }
}
