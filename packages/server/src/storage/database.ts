import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql, type Migration } from 'kysely';
import SQLite from 'better-sqlite3';
import pg from 'pg';

export type StorageConfig =
  { engine: 'sqlite'; path: string } | { engine: 'postgres'; url: string; poolSize?: number };

/**
 * The storage layer: one Kysely instance over SQLite (default) or PostgreSQL. Modules write
 * their queries once against Kysely and declare their own versioned migrations.
 */
export class Database {
  readonly db: Kysely<any>;
  readonly engine: 'sqlite' | 'postgres';

  private constructor(db: Kysely<any>, engine: 'sqlite' | 'postgres') {
    this.db = db;
    this.engine = engine;
  }

  static open(config: StorageConfig): Database {
    if (config.engine === 'sqlite') {
      if (config.path !== ':memory:') mkdirSync(dirname(config.path), { recursive: true });
      const sqlite = new SQLite(config.path);
      sqlite.pragma('journal_mode = WAL');
      sqlite.pragma('synchronous = NORMAL');
      sqlite.pragma('foreign_keys = ON');
      sqlite.pragma('busy_timeout = 5000');
      return new Database(new Kysely({ dialect: new SqliteDialect({ database: sqlite }) }), 'sqlite');
    }
    const pool = new pg.Pool({ connectionString: config.url, max: config.poolSize ?? 10 });
    return new Database(new Kysely({ dialect: new PostgresDialect({ pool }) }), 'postgres');
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
  }
}
