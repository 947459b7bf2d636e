import { mkdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql, type LogEvent, type Migration } from 'kysely';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import Cursor from 'pg-cursor';
import { SqliteCheckpointer } from './checkpointer.js';

export type StorageConfig =
  { engine: 'sqlite'; path: string } | { engine: 'postgres'; url: string; poolSize?: number };

/**
 * The storage layer: one Kysely instance over SQLite (default) or PostgreSQL. Modules write
 * their queries once against Kysely and declare their own versioned migrations.
 */
export class Database {
  readonly db: Kysely<any>;
  readonly engine: 'sqlite' | 'postgres';
  /** How it was opened (a module that runs its own connection, e.g. on a worker thread, opens the same). */
  readonly config: StorageConfig;

  /** SQLite only: the thread that checkpoints the write-ahead log. */
  private checkpointer: SqliteCheckpointer | undefined;

  /** PostgreSQL only: resolves once every pooled connection has really closed its socket. */
  private readonly drained: () => Promise<void>;

  private constructor(
    db: Kysely<any>,
    config: StorageConfig,
    drained: () => Promise<void> = () => Promise.resolve(),
  ) {
    this.db = db;
    this.config = config;
    this.engine = config.engine;
    this.drained = drained;
  }

  /**
   * `onConnectionError` hears about pooled PostgreSQL connections that broke while idle (the
   * server restarted, an administrator terminated the backend): the pool drops them and opens new
   * ones on demand. Without a listener, node-postgres would raise them as uncaught exceptions and
   * take the whole XMPP server down.
   */
  static open(
    config: StorageConfig,
    onConnectionError?: (err: Error) => void,
    /** Hears each query's duration (a metric), and whether it failed. */
    observe?: (ms: number, failed: boolean) => void,
  ): Database {
    const log = observe
      ? (event: LogEvent) => observe(event.queryDurationMillis, event.level === 'error')
      : undefined;
    if (config.engine === 'sqlite') {
      const sqlite = openSqlite(config.path);
      const db = new Database(new Kysely({ dialect: new SqliteDialect({ database: sqlite }), log }), config);
      if (config.path !== ':memory:')
        db.checkpointer = new SqliteCheckpointer(config.path, WAL_CHECKPOINT_BYTES, 250, (message) =>
          onConnectionError?.(new Error(`SQLite checkpoint failed: ${message}`)),
        );
      return db;
    }
    const pool = new pg.Pool({ connectionString: config.url, max: config.poolSize ?? 10 });
    // Errors of idle connections reach the pool too; they are reported by the client listener below.
    pool.on('error', () => undefined);
    // pg-pool's end() resolves once its client list is empty, while the removed clients are still
    // closing their sockets; an error on one of those (the backend terminated meanwhile) would
    // surface after close(). Count connections down to zero before close() resolves.
    let open = 0;
    const waiters: (() => void)[] = [];
    pool.on('connect', (client) => {
      open++;
      // Whether idle, checked out or being closed by end(): a broken connection is reported here
      // and discarded by the pool, never thrown.
      client.on('error', (err) => onConnectionError?.(err));
    });
    pool.on('remove', () => {
      open--;
      if (open === 0) for (const w of waiters.splice(0)) w();
    });
    const drained = () =>
      open === 0 ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve));
    // `cursor`: queries may be streamed (`.stream()`), as storage copies and checks do.
    return new Database(
      new Kysely({ dialect: new PostgresDialect({ pool, cursor: Cursor }), log }),
      config,
      drained,
    );
  }

  /** Runs a module's pending migrations, in name order, each recorded in the module's own table. */
  async migrate(module: string, migrations: Record<string, Migration>): Promise<void> {
    if (Object.keys(migrations).length === 0) return;
    const migrator = new Migrator({
      db: this.db,
      provider: { getMigrations: () => Promise.resolve(migrations) },
      migrationTableName: `natter_migrations_${module}`,
      migrationLockTableName: `natter_migrations_${module}_lock`,
    });
    const { error, results } = await migrator.migrateToLatest();
    if (error) {
      const failed = results?.find((r) => r.status === 'Error')?.migrationName;
      throw new Error(`storage migration ${module}/${failed ?? '?'} failed: ${String(error)}`, {
        cause: error,
      });
    }
  }

  /** Current time as stored: milliseconds since the epoch (a portable integer column). */
  now(): number {
    return Date.now();
  }

  async ping(): Promise<void> {
    await sql`select 1`.execute(this.db);
  }

  async close(): Promise<void> {
    await this.db.destroy();
    await this.checkpointer?.stop();
    await this.drained();
  }
}

/** WAL size past which the checkpointer thread copies it into the database (see checkpointer-thread.ts). */
const WAL_CHECKPOINT_BYTES = 64 * 1024 * 1024;
/** Size the WAL file is truncated to after a checkpoint. */
const WAL_KEEP_BYTES = 16 * 1024 * 1024;

/**
 * Opens (creating it and its directory if needed) an SQLite database in WAL mode. A directory that
 * cannot be created or written is reported with its path: SQLite's own message ("unable to open
 * database file", "attempt to write a readonly database") names neither the file nor the cause.
 */
function openSqlite(path: string): SQLite.Database {
  if (path === ':memory:') return new SQLite(path);
  const dir = dirname(path);
  let sqlite: SQLite.Database | undefined;
  try {
    mkdirSync(dir, { recursive: true });
    // A probe file: access(2) says yes to root even where writing fails (read-only mounts,
    // immutable directories), and SQLite needs to create its -wal and -shm files beside the database.
    const probe = join(dir, `.natter-write-test-${process.pid}`);
    writeFileSync(probe, '');
    unlinkSync(probe);
    sqlite = new SQLite(path);
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('busy_timeout = 5000');
    // Checkpoints run on a thread of their own (SqliteCheckpointer), never inside a commit here;
    // the log is truncated back to this size after each.
    sqlite.pragma('wal_autocheckpoint = 0');
    sqlite.pragma(`journal_size_limit = ${WAL_KEEP_BYTES}`);
    return sqlite;
  } catch (err) {
    sqlite?.close();
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new Error(
      `cannot open the SQLite database ${path}: the directory ${dir} must exist or be creatable, and be ` +
        `writable by the user running natter (${reason}); change its permissions, or set dataDir or storage.path`,
      { cause: err },
    );
  }
}
