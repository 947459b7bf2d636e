import { createHash } from 'node:crypto';
import SQLite from 'better-sqlite3';
import { Kysely, PostgresAdapter, SqliteDialect, sql } from 'kysely';

/**
 * Storage-level pieces of `natter backup`, `natter restore` and `natter storage copy`
 * (admin/backup.ts drives them): an online SQLite backup, an integrity check, the tables and row
 * counts of a database, and a table-by-table copy into another database, verified by counts and
 * an order-independent digest of every row.
 */

/** Prefix of the migration bookkeeping tables (storage/database.ts): not data. */
const MIGRATION_TABLES = 'natter_migrations_';

/** Pages copied per step of an online backup (4 KiB each): small steps let writers in between. */
const BACKUP_PAGES_PER_STEP = 1024;

/**
 * Copies a live SQLite database into `dest` with SQLite's online backup API: a consistent
 * snapshot, taken while the server keeps writing (WAL). `progress` hears the fraction done.
 */
export async function backupSqlite(
  src: string,
  dest: string,
  progress?: (done: number) => void,
): Promise<void> {
  const db = new SQLite(src, { readonly: true, fileMustExist: true });
  try {
    await db.backup(dest, {
      progress({ totalPages, remainingPages }) {
        progress?.(totalPages === 0 ? 1 : (totalPages - remainingPages) / totalPages);
        return BACKUP_PAGES_PER_STEP;
      },
    });
  } finally {
    db.close();
  }
  // A file on its own, without a write-ahead log beside it (the live database's WAL mode is
  // copied with its pages): readers of the backup then need write access to nothing.
  const copy = new SQLite(dest);
  try {
    copy.pragma('journal_mode = DELETE');
  } finally {
    copy.close();
  }
}

/** A database file opened read-only, for reading a backup or the source of a copy. */
export function openSqliteReadonly(file: string): Kysely<any> {
  return new Kysely({
    dialect: new SqliteDialect({ database: new SQLite(file, { readonly: true, fileMustExist: true }) }),
  });
}

/** SQLite's own check of a database file: undefined when sound, else what it found. */
export function sqliteIntegrity(file: string): string | undefined {
  const db = new SQLite(file, { readonly: true, fileMustExist: true });
  try {
    const rows = db.pragma('integrity_check') as { integrity_check: string }[];
    const problems = rows.map((r) => r.integrity_check).filter((r) => r !== 'ok');
    return problems.length ? problems.slice(0, 5).join('; ') : undefined;
  } finally {
    db.close();
  }
}

/** The data tables of a database (not the migration bookkeeping), sorted. */
export async function dataTables(db: Kysely<any>): Promise<string[]> {
  const tables = await db.introspection.getTables();
  return tables
    .filter((t) => !t.isView && !t.name.startsWith(MIGRATION_TABLES) && !t.name.startsWith('sqlite_'))
    .map((t) => t.name)
    .sort();
}

/** The migrations applied, per module: `{ accounts: ['0001-accounts', '0002-disabled'], … }`. */
export async function appliedMigrations(db: Kysely<any>): Promise<Record<string, string[]>> {
  const tables = await db.introspection.getTables();
  const out: Record<string, string[]> = {};
  for (const t of tables) {
    if (!t.name.startsWith(MIGRATION_TABLES) || t.name.endsWith('_lock')) continue;
    const rows = await db.selectFrom(t.name).select('name').orderBy('name').execute();
    out[t.name.slice(MIGRATION_TABLES.length)] = rows.map((r) => r.name as string);
  }
  return out;
}

/** Row counts of the given tables. */
export async function rowCounts(db: Kysely<any>, tables: readonly string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of tables) {
    const row = await db
      .selectFrom(t)
      .select(sql<number>`count(*)`.as('n'))
      .executeTakeFirst();
    out[t] = Number(row?.n ?? 0);
  }
  return out;
}

/**
 * A digest of a table's rows that does not depend on their order (SQLite and PostgreSQL sort text
 * differently, and a copy need not keep an order): the sum, modulo 2^256, of each row's SHA-256
 * over its columns in name order, every value written as text (PostgreSQL gives bigints as
 * strings, SQLite as numbers). Rows are streamed, never all in memory.
 */
export async function tableDigest(
  db: Kysely<any>,
  table: string,
  columns: readonly string[],
): Promise<string> {
  const mod = 1n << 256n;
  let sum = 0n;
  const order = [...columns].sort();
  for await (const row of db.selectFrom(table).select(order).stream(STREAM_ROWS)) {
    const h = createHash('sha256');
    for (const c of order) {
      const v = (row as Record<string, unknown>)[c];
      h.update(v === null || v === undefined ? '\u0000null' : `\u0001${String(v)}`);
      h.update('\u0002');
    }
    sum = (sum + BigInt(`0x${h.digest('hex')}`)) % mod;
  }
  return sum.toString(16).padStart(64, '0');
}

/** Rows fetched at a time when streaming a table (PostgreSQL: a cursor; SQLite: a statement iterator). */
const STREAM_ROWS = 1000;

/** The columns of each table, from the database's catalogue. */
async function columnsOf(db: Kysely<any>): Promise<Map<string, string[]>> {
  const tables = await db.introspection.getTables();
  return new Map(tables.map((t) => [t.name, t.columns.map((c) => c.name)]));
}

export interface CopyReport {
  tables: { name: string; rows: number }[];
}

/**
 * Copies every data table of `from` into the same table of `to` (which must have the schema:
 * migrations run first, and be empty), in batches, in one transaction on `to`, then checks that
 * both sides hold the same rows (counts and digests). `progress` hears each table as it goes.
 */
export async function copyTables(
  from: Kysely<any>,
  to: Kysely<any>,
  progress?: (table: string, copied: number, total: number) => void,
): Promise<CopyReport> {
  const tables = await dataTables(from);
  const source = await columnsOf(from);
  const target = await columnsOf(to);
  for (const t of tables) {
    const have = target.get(t);
    if (!have) throw new Error(`the target has no table ${t}: is it from an older Natter than the source?`);
    const missing = source.get(t)!.filter((c) => !have.includes(c));
    if (missing.length) throw new Error(`the target's table ${t} lacks the columns ${missing.join(', ')}`);
  }
  const serialColumns = (await to.introspection.getTables())
    .filter((t) => tables.includes(t.name))
    .flatMap((t) => t.columns.filter((c) => c.isAutoIncrementing).map((c) => [t.name, c.name] as const));
  const counts = await rowCounts(from, tables);
  const nonEmpty = Object.entries(await rowCounts(to, tables)).filter(([, n]) => n > 0);
  if (nonEmpty.length)
    throw new Error(
      `the target is not empty (${nonEmpty.map(([t, n]) => `${t}: ${n} rows`).join(', ')}): copy into a new database`,
    );
  // Rows per INSERT: PostgreSQL takes at most 65535 parameters in one statement.
  const batch = 500;
  await to.transaction().execute(async (trx) => {
    for (const t of tables) {
      const cols = source.get(t)!;
      let copied = 0;
      let rows: Record<string, unknown>[] = [];
      const flush = async () => {
        if (rows.length) await trx.insertInto(t).values(rows).execute();
        copied += rows.length;
        rows = [];
        progress?.(t, copied, counts[t]!);
      };
      progress?.(t, 0, counts[t]!);
      for await (const row of from.selectFrom(t).select(cols).stream(STREAM_ROWS)) {
        rows.push(row as Record<string, unknown>);
        if (rows.length >= batch) await flush();
      }
      await flush();
    }
    // The rows came with their ids, so PostgreSQL's sequences never moved: set each past the
    // largest id copied, or the next row stored (an offline message) would collide with a copied
    // one or sort before it.
    if (to.getExecutor().adapter instanceof PostgresAdapter)
      for (const [t, c] of serialColumns)
        await sql`select setval(pg_get_serial_sequence(${t}, ${c}), coalesce(max(${sql.ref(c)}), 0) + 1, false) from ${sql.table(t)}`.execute(
          trx,
        );
  });
  const after = await rowCounts(to, tables);
  for (const t of tables) {
    if (after[t] !== counts[t])
      throw new Error(`verification failed: ${t} has ${after[t]} rows, the source ${counts[t]}`);
    const cols = source.get(t)!;
    const [a, b] = [await tableDigest(from, t, cols), await tableDigest(to, t, cols)];
    if (a !== b) throw new Error(`verification failed: the rows of ${t} differ from the source's`);
  }
  return { tables: tables.map((name) => ({ name, rows: counts[name]! })) };
}
