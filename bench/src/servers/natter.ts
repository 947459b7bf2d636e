/**
 * Natter (this repository's server) as a benchmark target. Uses only the server's public command
 * line: `serve --config FILE`, `user add-bulk …` and `roster import …`, run from the repository root
 * either from sources (tsx, `source` condition) or from the build (`packages/server/dist/cli.js`)
 * when it exists and `NATTER_BENCH_FROM=dist` (or `--natter-from dist`) asks for it.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  AdapterError,
  execFileP,
  freePorts,
  makeCert,
  spawnServer,
  stopSpawned,
  waitForPort,
  type Spawned,
  localTarget,
} from './common.js';
import { BenchDatabase, PG_CPU_NOTE, postgresAt, rowsStats } from './postgres.js';
import type {
  AdapterOptions,
  ArchiveMode,
  ArchiveStats,
  BenchUsers,
  Rosters,
  ServerAdapter,
  ServerTarget,
} from './types.js';

const REPO = fileURLToPath(new URL('../../..', import.meta.url));
const SRC_CLI = join(REPO, 'packages/server/src/cli.ts');
/**
 * The built server; `NATTER_BENCH_DIST=/path/to/other/checkout/packages/server/dist/cli.js` runs
 * another build (e.g. the commit before a change) under this generator, for before/after ratios.
 */
const DIST_CLI = process.env['NATTER_BENCH_DIST'] ?? join(REPO, 'packages/server/dist/cli.js');

/** Modules the other servers' benchmark configurations do not load; off on Natter too. */
const PARITY_OFF = ['mam', 'offline', 'carbons', 'sm', 'csi'];
const ENABLED = (process.env['NATTER_BENCH_ENABLE'] ?? '')
  .split(',')
  .map((m) => m.trim())
  .filter(Boolean);
/**
 * Archive tables counted at the end of a run, whichever layout the server has: `mam_messages` (one row
 * per message per archive) or `mam_message` (one per message) + `mam_entry` (one per archive holding it).
 */
const MAM_TABLES = ['mam_messages', 'mam_message', 'mam_entry'];
/** The tables with one row per message per archive, comparable with the other servers' rows. */
const MAM_ENTRY_TABLES = ['mam_entry', 'mam_messages'];
/** NATTER_BENCH_MUC_FLOOD_CONTROL=off: MUC fan-out uncharged, to measure what flood control buys. */
const MUC_FLOOD_CONTROL = process.env['NATTER_BENCH_MUC_FLOOD_CONTROL'] !== 'off';

export class NatterAdapter implements ServerAdapter {
  readonly name = 'natter' as const;
  private o!: AdapterOptions;
  private port = 0;
  private tlsPort = 0;
  private httpPort = 0;
  private proc: Spawned | null = null;
  private db: BenchDatabase | null = null;

  constructor(
    private readonly from: 'source' | 'dist' = process.env['NATTER_BENCH_FROM'] === 'dist'
      ? 'dist'
      : 'source',
    /** `default` (flood scenario only): the server's default rate limits and connection caps, on. */
    private readonly limits: 'disabled' | 'default' = 'disabled',
    /** `--archive`: `default` keeps mam on (SQLite), `pg` puts all storage, archive included, in PostgreSQL. */
    private readonly archive: ArchiveMode = 'off',
    /** `--natter-workers N`: `natter serve --workers N` (N processes sharing the ports). */
    private readonly workers = 1,
  ) {}

  /** Modules turned off: the parity list, less those kept on by NATTER_BENCH_ENABLE or `--archive`. */
  private get off(): string[] {
    return PARITY_OFF.filter((m) => !ENABLED.includes(m) && !(m === 'mam' && this.archive !== 'off'));
  }

  private cli(): string[] {
    if (this.from === 'dist') return [process.execPath, DIST_CLI];
    return [process.execPath, '--import', 'tsx', '--conditions=source', SRC_CLI];
  }

  private get configFile(): string {
    return join(this.o.dir, 'natter.json');
  }

  async ensureInstalled(): Promise<void> {
    const cli = this.from === 'dist' ? DIST_CLI : SRC_CLI;
    if (!existsSync(cli))
      throw new AdapterError(
        'not-installed',
        `Natter server CLI not found at ${cli}${this.from === 'dist' ? ' (run npm run build)' : ''}`,
      );
  }

  async version(): Promise<string> {
    try {
      const { stdout } = await execFileP(this.cli()[0]!, [...this.cli().slice(1), 'version'], {
        cwd: REPO,
        timeout: 30_000,
      });
      return `Natter ${stdout.trim().split('\n')[0] ?? ''} (${this.from})`;
    } catch {
      return `Natter (${this.from})`;
    }
  }

  tuning(): string[] {
    return [
      this.limits === 'default'
        ? 'limits: server defaults (rate limits and connection caps ON, nothing exempt)'
        : 'limits.disabled = true (every rate limit off, as on the other servers)',
      'auth.allowPlaintext = always (loopback bench only; login scenario uses STARTTLS)',
      `modules ${this.off.join(', ')} off (as on the other servers)${ENABLED.length ? `; KEPT ON by NATTER_BENCH_ENABLE: ${ENABLED.join(', ')} (not a like-for-like comparison)` : ''}; log level warn; ${this.archive === 'pg' ? 'PostgreSQL storage (below)' : 'SQLite storage in the run folder'}`,
      ...this.archiveTuning(),
      ...(MUC_FLOOD_CONTROL ? [] : ['muc.floodControl.enabled = false (NATTER_BENCH_MUC_FLOOD_CONTROL=off)']),
      `run from ${this.from === 'dist' ? 'packages/server/dist (built)' : 'sources through tsx'}`,
      ...(this.workers > 1
        ? [
            `natter serve --workers ${this.workers}: a primary and ${this.workers} worker processes sharing the ports (node:cluster round-robin), sessions replicated between them over Unix sockets; CPU counted over the whole process tree`,
          ]
        : []),
    ];
  }

  private archiveTuning(): string[] {
    if (this.archive === 'off') return [];
    return [
      ...(this.archive === 'pg'
        ? [
            `storage.engine = postgres: ALL storage (accounts, rosters, MUC rooms and the archive) in a fresh PostgreSQL database on ${postgresAt()}, created for the run and dropped after it (pool of 10 connections, the default)`,
          ]
        : []),
      `archive ON (--archive ${this.archive}): module mam, defaultArchive = always, archiveStrangers = true (every one-to-one chat message archived for sender and recipient, in each other's roster or not; by default messages from non-contacts are archived at most 30/min per archive); other mam options default (queued writes flushed every 100 ms or per 1000); archive in ${this.archive === 'pg' ? 'PostgreSQL' : 'the SQLite file natter.sqlite in the run folder'}`,
      ...(this.archive === 'pg' ? [PG_CPU_NOTE] : []),
    ];
  }

  async configure(o: AdapterOptions): Promise<void> {
    this.o = o;
    [this.port, this.tlsPort, this.httpPort] = await freePorts();
    mkdirSync(join(o.dir, 'data'), { recursive: true });
    if (this.archive === 'pg') this.db = await BenchDatabase.create('natter');
    const { cert, key } = await makeCert(join(o.dir, 'certs'), o.domain);
    const config = {
      hosts: [o.domain],
      dataDir: join(o.dir, 'data'),
      ...(this.db ? { storage: { engine: 'postgres', url: this.db.url } } : {}),
      listeners: [
        { type: 'c2s', port: this.port, host: '127.0.0.1' },
        { type: 'c2s-tls', port: this.tlsPort, host: '127.0.0.1' },
        { type: 'http', port: this.httpPort, host: '127.0.0.1' },
      ],
      tls: { cert, key },
      auth: { allowPlaintext: 'always' },
      ...(this.limits === 'disabled' ? { limits: { disabled: true } } : {}),
      // The same feature set as the other servers' benchmark configurations, which load no
      // archive (unless --archive), offline storage, carbons or stream management (see their notes).
      // NATTER_BENCH_ENABLE=mam,offline keeps some on, to measure what they cost (not for comparisons).
      modules: {
        muc: MUC_FLOOD_CONTROL ? {} : { floodControl: { enabled: false } },
        roster: {},
        // Like ejabberd's `default: always` and Prosody's `default_archive_policy = true`: every
        // message archived, also between users who are not in each other's roster.
        ...(this.archive !== 'off' ? { mam: { defaultArchive: 'always', archiveStrangers: true } } : {}),
        ...Object.fromEntries(this.off.map((m) => [m, false] as const)),
      },
      log: { level: 'warn' },
    };
    writeFileSync(this.configFile, JSON.stringify(config, null, 2));
  }

  private async run(args: string[]): Promise<string> {
    const [cmd, ...pre] = this.cli();
    try {
      const { stdout } = await execFileP(cmd!, [...pre, ...args], {
        cwd: REPO,
        timeout: 600_000,
        maxBuffer: 16 * 1024 * 1024,
      });
      return stdout;
    } catch (e) {
      const err = e as Error & { stderr?: string };
      throw new AdapterError(
        'natter-cli',
        `natter ${args.slice(0, 2).join(' ')} failed: ${(err.stderr || err.message).slice(0, 500)}`,
      );
    }
  }

  async provision(users: BenchUsers, rosters: Rosters | null): Promise<void> {
    await this.run([
      'user',
      'add-bulk',
      '--config',
      this.configFile,
      '--prefix',
      users.prefix,
      '--count',
      String(users.count),
      '--password',
      users.password,
      '--domain',
      this.o.domain,
      '--iterations',
      String(users.iterations),
    ]);
    if (rosters) {
      const data: Record<string, { jid: string; subscription: 'both' }[]> = {};
      for (const [id, contacts] of rosters) {
        data[`${users.prefix}${id}@${this.o.domain}`] = contacts.map((c) => ({
          jid: `${users.prefix}${c}@${this.o.domain}`,
          subscription: 'both',
        }));
      }
      const file = join(this.o.dir, 'rosters.json');
      writeFileSync(file, JSON.stringify(data));
      await this.run(['roster', 'import', '--config', this.configFile, file]);
    }
  }

  async start(): Promise<ServerTarget> {
    // NATTER_BENCH_NODE_FLAGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") profiles the server.
    const [node, ...rest] = this.cli();
    const flags = (process.env.NATTER_BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);
    const workers = this.workers > 1 ? ['--workers', String(this.workers)] : [];
    const logFile = join(this.o.dir, 'stdout.log');
    this.proc = spawnServer([node!, ...flags, ...rest, 'serve', '--config', this.configFile, ...workers], {
      cwd: REPO,
      logFile,
    });
    const proc = this.proc;
    await waitForPort(this.port, 60_000, () => !proc.exited);
    await waitForPort(this.tlsPort, 10_000, () => !proc.exited);
    // The port opens with the first worker; the load starts once every worker serves.
    if (this.workers > 1) {
      const end = Date.now() + 60_000;
      while (!readFileSync(logFile, 'utf8').includes('natter started with workers')) {
        if (proc.exited || Date.now() > end)
          throw new AdapterError('natter-start', 'the workers did not start');
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const target = localTarget(this.name, this.port, this.tlsPort, this.o.domain, proc.child.pid!);
    if (this.db) target.extraCpu = this.db.extraCpu();
    return target;
  }

  async stop(): Promise<void> {
    await stopSpawned(this.proc);
    this.proc = null;
  }

  async archiveStats(): Promise<ArchiveStats> {
    if (this.db)
      return rowsStats(
        await this.db.countRows(MAM_TABLES),
        `PostgreSQL database ${this.db.name}`,
        MAM_ENTRY_TABLES,
      );
    const file = join(this.o.dir, 'data', 'natter.sqlite');
    // better-sqlite3 is the server's SQLite driver (installed at the workspace root).
    const { default: SQLite } = await import('better-sqlite3');
    const db = new SQLite(file, { readonly: true, fileMustExist: true });
    try {
      const counts: { table: string; rows: number }[] = [];
      for (const table of MAM_TABLES) {
        const found = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table);
        if (!found) continue;
        const row = db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number };
        counts.push({ table, rows: row.n });
      }
      return rowsStats(counts, `SQLite ${file}`, MAM_ENTRY_TABLES);
    } finally {
      db.close();
    }
  }

  async cleanup(): Promise<void> {
    const db = this.db;
    this.db = null;
    await db?.drop();
  }
}
