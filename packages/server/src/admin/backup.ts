import { connect } from 'node:net';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import type { Config } from '../config.js';
import { accountMigrations } from '../accounts/account-store.js';
import { acmeMigrations } from '../acme/acme-store.js';
import { builtinModules } from '../modules/index.js';
import { Database, type StorageConfig } from '../storage/database.js';
import {
  appliedMigrations,
  backupSqlite,
  copyTables,
  dataTables,
  openSqliteReadonly,
  rowCounts,
  sqliteIntegrity,
} from '../storage/backup.js';
import { NATTER_VERSION } from '../version.js';
import type { Progress } from './progress.js';

/**
 * `natter backup DIR`, `natter restore DIR` and `natter storage copy --to URL` (docs/backup.md).
 * A backup is a directory: the SQLite database copied online (a consistent snapshot while the
 * server runs), the uploaded files and certificates of the data directory, and a manifest with the
 * schema's migrations and every table's row count, checked again on restore.
 */

const FORMAT = 'natter-backup';
const FORMAT_VERSION = 1;
const DATABASE_FILE = 'natter.sqlite';
/** Directories of dataDir that a backup carries beside the database. */
const DATA_DIRS = ['upload', 'certs'] as const;

export interface Manifest {
  format: typeof FORMAT;
  formatVersion: number;
  natter: string;
  createdAt: string;
  engine: 'sqlite';
  database: string;
  migrations: Record<string, string[]>;
  tables: Record<string, number>;
  /** Which of DATA_DIRS it holds. */
  directories: string[];
}

/** Where the configured SQLite database is. */
export function sqlitePath(config: Config): string {
  if (config.storage.engine !== 'sqlite') throw new Error('not SQLite storage');
  return resolve(config.storage.path ?? join(resolve(config.dataDir), DATABASE_FILE));
}

/** A PostgreSQL URL without its password, for messages. */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://…';
  }
}

const PG_GUIDANCE = (url: string) =>
  `the storage is PostgreSQL: back it up with PostgreSQL's own tools, e.g.\n` +
  `  pg_dump --format=custom --file natter.dump '${redactUrl(url)}'\n` +
  `and restore with\n` +
  `  pg_restore --clean --if-exists --no-owner --dbname '${redactUrl(url)}' natter.dump\n` +
  `(uploaded files are in ${'dataDir'}/upload: copy that directory too)`;

/** Whether something answers on the admin listener: a running server. Undefined when none is configured. */
export async function serverRunning(config: Config): Promise<boolean | undefined> {
  const l = config.listeners.find((x) => x.type === 'admin');
  if (!l) return undefined;
  const host = l.host === '::' || l.host === '0.0.0.0' || l.host === '' ? '127.0.0.1' : l.host;
  return new Promise((done) => {
    const s = connect({ host, port: l.port });
    const finish = (up: boolean) => {
      s.destroy();
      done(up);
    };
    s.setTimeout(1000, () => finish(false));
    s.once('connect', () => finish(true));
    s.once('error', () => finish(false));
  });
}

/** Every migration this version knows, per module (accounts and each built-in module). */
function knownMigrations(): Record<string, string[]> {
  const out: Record<string, string[]> = {
    accounts: Object.keys(accountMigrations).sort(),
    acme: Object.keys(acmeMigrations).sort(),
  };
  for (const m of builtinModules) if (m.migrations) out[m.name] = Object.keys(m.migrations).sort();
  return out;
}

/** Migrations of `applied` this version does not know (a database from a newer Natter). */
function unknownMigrations(applied: Record<string, string[]>): string[] {
  const known = knownMigrations();
  return Object.entries(applied).flatMap(([module, names]) =>
    names.filter((n) => !known[module]?.includes(n)).map((n) => `${module}/${n}`),
  );
}

async function describeDatabase(file: string): Promise<Pick<Manifest, 'migrations' | 'tables'>> {
  const db = openSqliteReadonly(file);
  try {
    const tables = await dataTables(db);
    return { migrations: await appliedMigrations(db), tables: await rowCounts(db, tables) };
  } finally {
    await db.destroy();
  }
}

function isEmptyDir(dir: string): boolean {
  return !existsSync(dir) || readdirSync(dir).length === 0;
}

/** `natter backup DIR`: returns the manifest written. */
export async function backup(config: Config, dir: string, opts: { progress: Progress }): Promise<Manifest> {
  if (config.storage.engine === 'postgres') throw new Error(PG_GUIDANCE(config.storage.url));
  const src = sqlitePath(config);
  if (!existsSync(src)) throw new Error(`there is no database at ${src} (nothing to back up)`);
  const out = resolve(dir);
  if (!isEmptyDir(out)) throw new Error(`${out} exists and is not empty: back up into a new directory`);
  // It holds password keys and certificate keys: the owner's only.
  mkdirSync(out, { recursive: true, mode: 0o700 });
  chmodSync(out, 0o700);
  const dbFile = join(out, DATABASE_FILE);
  await backupSqlite(src, dbFile, (f) => opts.progress.update('database', f, 1));
  opts.progress.end();
  chmodSync(dbFile, 0o600);
  const problem = sqliteIntegrity(dbFile);
  if (problem) throw new Error(`the copy of the database is damaged (${problem}); ${out} is not a backup`);
  const directories: string[] = [];
  for (const name of DATA_DIRS) {
    const from = join(resolve(config.dataDir), name);
    if (!existsSync(from)) continue;
    cpSync(from, join(out, name), { recursive: true, preserveTimestamps: true });
    directories.push(name);
  }
  const manifest: Manifest = {
    format: FORMAT,
    formatVersion: FORMAT_VERSION,
    natter: NATTER_VERSION,
    createdAt: new Date().toISOString(),
    engine: 'sqlite',
    database: DATABASE_FILE,
    ...(await describeDatabase(dbFile)),
    directories,
  };
  writeFileSync(join(out, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n', { mode: 0o600 });
  return manifest;
}

/** Reads and checks a backup directory: its manifest, its database's integrity and row counts. */
export async function checkBackup(dir: string): Promise<Manifest> {
  const file = join(resolve(dir), 'manifest.json');
  let manifest: Manifest;
  try {
    manifest = JSON.parse(readFileSync(file, 'utf8')) as Manifest;
  } catch (err) {
    throw new Error(`${dir} is not a Natter backup: cannot read ${file} (${(err as Error).message})`);
  }
  if (manifest.format !== FORMAT)
    throw new Error(`${dir} is not a Natter backup (format ${String(manifest.format)})`);
  if (manifest.formatVersion > FORMAT_VERSION)
    throw new Error(
      `${dir} was written by a newer Natter (${manifest.natter}, format ${manifest.formatVersion})`,
    );
  // The manifest names what restore copies into the data directory: only the names Natter writes,
  // so that a crafted backup cannot reach outside it ("directories": ["../../.ssh"]).
  if (manifest.database !== DATABASE_FILE)
    throw new Error(
      `${dir}: the manifest names the database ${JSON.stringify(manifest.database)}, not ${DATABASE_FILE}`,
    );
  const strange = (
    Array.isArray(manifest.directories) ? manifest.directories : [String(manifest.directories)]
  ).filter((d) => !(DATA_DIRS as readonly string[]).includes(d));
  if (strange.length || !Array.isArray(manifest.directories))
    throw new Error(
      `${dir}: the manifest names directories Natter does not back up (${strange.map((d) => JSON.stringify(d)).join(', ')}); only ${DATA_DIRS.join(', ')}`,
    );
  const dbFile = join(resolve(dir), manifest.database);
  if (!existsSync(dbFile)) throw new Error(`the backup's database ${dbFile} is missing`);
  const problem = sqliteIntegrity(dbFile);
  if (problem) throw new Error(`the backup's database is damaged: ${problem}`);
  const found = await describeDatabase(dbFile);
  for (const [t, n] of Object.entries(manifest.tables))
    if (found.tables[t] !== n)
      throw new Error(
        `the backup's database does not match its manifest: ${t} has ${found.tables[t] ?? 0} rows, not ${n}`,
      );
  const unknown = unknownMigrations(manifest.migrations);
  if (unknown.length)
    throw new Error(
      `the backup comes from a newer Natter (${manifest.natter}): this one (${NATTER_VERSION}) does not know ${unknown.join(', ')}`,
    );
  return manifest;
}

/** Moves `path` aside as `path.before-restore-STAMP` (nothing is deleted); returns the new name. */
function moveAside(path: string, stamp: string): string {
  const aside = `${path}.before-restore-${stamp}`;
  renameSync(path, aside);
  return aside;
}

/** `natter restore DIR`: returns what it replaced (moved aside) and the manifest restored. */
export async function restore(
  config: Config,
  dir: string,
  opts: { force: boolean },
): Promise<{ manifest: Manifest; movedAside: string[] }> {
  if (config.storage.engine === 'postgres') throw new Error(PG_GUIDANCE(config.storage.url));
  const manifest = await checkBackup(dir);
  if ((await serverRunning(config)) === true)
    throw new Error('the server is running (its admin listener answers): stop it before restoring');
  const target = sqlitePath(config);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const present = [
    target,
    ...DATA_DIRS.filter((d) => manifest.directories.includes(d)).map((d) => join(resolve(config.dataDir), d)),
  ].filter((p) => existsSync(p));
  if (present.length && !opts.force)
    throw new Error(
      `restoring would replace ${present.join(', ')}: pass --force (they are kept, renamed *.before-restore-…)`,
    );
  mkdirSync(resolve(config.dataDir), { recursive: true });
  // The database first, through a temporary name: a crash leaves the old one or the new one.
  const tmp = `${target}.restoring`;
  cpSync(join(resolve(dir), manifest.database), tmp);
  chmodSync(tmp, 0o600);
  const movedAside: string[] = [];
  if (existsSync(target)) {
    movedAside.push(moveAside(target, stamp));
    // The old database's write-ahead log belongs to it, not to the restored one.
    for (const suffix of ['-wal', '-shm'])
      if (existsSync(target + suffix))
        renameSync(target + suffix, `${target}.before-restore-${stamp}${suffix}`);
  }
  renameSync(tmp, target);
  for (const name of DATA_DIRS.filter((d) => manifest.directories.includes(d))) {
    const to = join(resolve(config.dataDir), name);
    if (existsSync(to)) movedAside.push(moveAside(to, stamp));
    cpSync(join(resolve(dir), name), to, { recursive: true, preserveTimestamps: true });
  }
  return { manifest, movedAside };
}

/** `natter storage copy --to URL`: the SQLite database into an empty PostgreSQL database, verified. */
export async function storageCopy(
  config: Config,
  to: string,
  opts: { progress: Progress },
): Promise<{ tables: { name: string; rows: number }[]; target: string }> {
  if (config.storage.engine !== 'sqlite')
    throw new Error('storage copy reads SQLite storage: the configuration uses PostgreSQL already');
  if (!/^postgres(ql)?:\/\//.test(to))
    throw new Error('--to must be a PostgreSQL URL (postgres://user@host/database)');
  const src = sqlitePath(config);
  if (!existsSync(src)) throw new Error(`there is no database at ${src}`);
  if ((await serverRunning(config)) === true)
    throw new Error(
      'the server is running (its admin listener answers): stop it first, so that nothing is written after the copy',
    );
  const source = openSqliteReadonly(src);
  const unknown = unknownMigrations(
    await appliedMigrations(source).catch(async (err: unknown) => {
      await source.destroy();
      throw err;
    }),
  );
  if (unknown.length) {
    await source.destroy();
    throw new Error(`the database comes from a newer Natter: this one does not know ${unknown.join(', ')}`);
  }
  const targetConfig: StorageConfig = { engine: 'postgres', url: to };
  let connectionError: Error | undefined;
  const target = Database.open(targetConfig, (err) => (connectionError = err));
  try {
    // The target gets this version's whole schema (every module's, on or off), then the rows.
    await target.migrate('accounts', accountMigrations);
    await target.migrate('acme', acmeMigrations);
    for (const m of builtinModules) if (m.migrations) await target.migrate(m.name, m.migrations);
    const report = await copyTables(source, target.db, (table, done, total) =>
      opts.progress.update(table, done, Math.max(total, 1)),
    );
    opts.progress.end();
    if (connectionError) throw connectionError;
    return { tables: report.tables, target: redactUrl(to) };
  } finally {
    opts.progress.end();
    await source.destroy();
    await target.close();
  }
}

/** Removes a directory a failed backup left half-written (only one this run created). */
export function discardBackup(dir: string): void {
  rmSync(resolve(dir), { recursive: true, force: true });
}
