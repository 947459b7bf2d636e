/**
 * The PostgreSQL database behind `--archive pg`: one fresh database per server and run, created on
 * the local PostgreSQL with the test suite's credentials (NATTER_BENCH_POSTGRES_URL, else
 * NATTER_TEST_POSTGRES_URL, else postgres://postgres@127.0.0.1:5432/postgres with trust
 * authentication, as in packages/server/test/support/postgres.ts) and dropped at the end of the run.
 *
 * The bench keeps one connection of its own, to the maintenance database (`postgres`), for
 * `pg_stat_activity` and the final DROP: it is never among the backends of the run's database, whose
 * CPU is billed to the server (see `extraCpu`).
 */
import { randomBytes } from 'node:crypto';
import type { Client } from 'pg';
import type { ExtraCpu } from '../engine/proc.js';
import type { ArchiveStats } from './types.js';
import { AdapterError } from './common.js';

export const POSTGRES_ADMIN_URL =
  process.env['NATTER_BENCH_POSTGRES_URL'] ??
  process.env['NATTER_TEST_POSTGRES_URL'] ??
  'postgres://postgres@127.0.0.1:5432/postgres';

/** host:port of the PostgreSQL server the run's databases are created on. */
export function postgresAt(): string {
  const u = new URL(POSTGRES_ADMIN_URL);
  return `${u.hostname || '127.0.0.1'}:${u.port || 5432}`;
}

/** The tuning line every adapter prints with `--archive pg`. */
export const PG_CPU_NOTE =
  'server CPU includes PostgreSQL: the server process tree + the PostgreSQL backends serving the run database (pids from pg_stat_activity WHERE datname = the run database, utime+stime from /proc/PID/stat, sampled at the start and end of every phase; a backend that appears mid-phase is counted from 0)';

/** The URL without its password, for messages. */
function shown(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}

async function connect(url: string): Promise<Client> {
  // `pg` is @natter/server's driver (installed at the workspace root); only `--archive pg` loads it.
  const { default: pg } = await import('pg');
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await c.connect();
  return c;
}

export class BenchDatabase {
  private dropped = false;

  private constructor(
    /** Database name, `natter_bench_<server>_<random>`. */
    readonly name: string,
    /** Connection URL of the run's database (same server and credentials as the admin URL). */
    readonly url: string,
    private readonly admin: Client,
  ) {}

  /** Creates a fresh, empty database for `server`; throws a clear error when PostgreSQL is unreachable. */
  static async create(server: string): Promise<BenchDatabase> {
    let admin: Client;
    try {
      admin = await connect(POSTGRES_ADMIN_URL);
    } catch (e) {
      throw new AdapterError(
        'no-postgres',
        `--archive pg: PostgreSQL is not reachable at ${shown(POSTGRES_ADMIN_URL)} (${(e as Error).message}); set NATTER_BENCH_POSTGRES_URL`,
      );
    }
    admin.on('error', () => {}); // a dropped connection: the next query fails and says so
    const name = `natter_bench_${server}_${randomBytes(4).toString('hex')}`;
    try {
      await admin.query(`CREATE DATABASE ${name}`);
    } catch (e) {
      await admin.end().catch(() => {});
      throw new AdapterError('postgres', `CREATE DATABASE ${name} failed: ${(e as Error).message}`);
    }
    const url = new URL(POSTGRES_ADMIN_URL);
    url.pathname = `/${name}`;
    return new BenchDatabase(name, url.toString(), admin);
  }

  /** Host, port, user and password of the connection URL (for servers configured field by field). */
  get params(): { host: string; port: number; user: string; password: string } {
    const u = new URL(this.url);
    return {
      host: u.hostname || '127.0.0.1',
      port: Number(u.port || 5432),
      user: decodeURIComponent(u.username || 'postgres'),
      password: decodeURIComponent(u.password),
    };
  }

  /** PIDs of the backends connected to the run's database right now. */
  async backendPids(): Promise<number[]> {
    const r = await this.admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1', [
      this.name,
    ]);
    return r.rows.map((x) => Number(x.pid));
  }

  /** The backends serving the run's database, whose CPU is added to the server's. */
  extraCpu(): ExtraCpu {
    return {
      label: `PostgreSQL backends of database ${this.name}`,
      pids: () => this.backendPids(),
    };
  }

  /** Runs SQL text (e.g. a schema file of several statements) in the run's database. */
  async exec(sql: string): Promise<void> {
    const c = await connect(this.url);
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  }

  /** Row counts of those `tables` that exist (names of our own: letters and underscores). */
  async countRows(tables: string[]): Promise<{ table: string; rows: number }[]> {
    const c = await connect(this.url);
    try {
      const out: { table: string; rows: number }[] = [];
      for (const t of tables) {
        if (!/^[a-z_]+$/.test(t)) throw new Error(`bad table name ${t}`);
        const exists = await c.query<{ r: string | null }>('SELECT to_regclass($1) AS r', [t]);
        if (!exists.rows[0]?.r) continue;
        const n = await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${t}`);
        out.push({ table: t, rows: Number(n.rows[0]?.n ?? 0) });
      }
      return out;
    } finally {
      await c.end();
    }
  }

  /** Drops the database (closing its connections) and the bench's own connection. Idempotent. */
  async drop(): Promise<void> {
    if (this.dropped) return;
    this.dropped = true;
    try {
      await this.admin.query(`DROP DATABASE IF EXISTS ${this.name} WITH (FORCE)`);
    } finally {
      await this.admin.end().catch(() => {});
    }
  }
}

/**
 * Archive stats from row counts: `rows` is the count of the first table of `entries` found (the table
 * with one row per message per archive), the text lists every table counted.
 */
export function rowsStats(
  counts: { table: string; rows: number }[],
  where: string,
  entries: string[] = counts.map((c) => c.table),
): ArchiveStats {
  const main = entries.map((t) => counts.find((c) => c.table === t)).find((c) => c !== undefined);
  if (counts.length === 0) return { rows: null, text: `archived rows: none (no archive table in ${where})` };
  const text =
    counts.length === 1
      ? `archived rows: ${counts[0]!.rows} (table ${counts[0]!.table} in ${where})`
      : `archived rows: ${counts.map((c) => `${c.table} ${c.rows}`).join(', ')} (tables in ${where})`;
  return { rows: main?.rows ?? null, text };
}
