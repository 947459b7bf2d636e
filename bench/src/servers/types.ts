/** What the scenarios need from a server under test, whatever its implementation. */
import type { ExtraCpu } from '../engine/proc.js';

/**
 * Message archiving (XEP-0313) during the run (`--archive`): `off` (no archive, the default), `default`
 * (each server's default archive storage) or `pg` (the archive in a PostgreSQL database created for
 * the run). Whatever is on, every one-to-one chat message is archived, without per-user preferences.
 */
export type ArchiveMode = 'off' | 'default' | 'pg';
export const ARCHIVE_MODES: readonly ArchiveMode[] = ['off', 'default', 'pg'];

/** Archive contents at the end of a run. */
export interface ArchiveStats {
  /** Archive entries (one per message per archive: about 2 per one-to-one message); null if unknown. */
  rows: number | null;
  /** e.g. `archived rows: 123456 (table archive in PostgreSQL database …)`. */
  text: string;
}

export interface BenchUsers {
  /** Users are `${prefix}${i}` for i in 1..count. */
  prefix: string;
  count: number;
  password: string;
  /** PBKDF2 iterations for SCRAM credentials (same on every server). */
  iterations: number;
}

/** Roster of user i: the ids of its contacts, all with subscription "both". Must be symmetric. */
export type Rosters = Map<number, number[]>;

export interface ServerTarget {
  name: string;
  host: string;
  /** Plain / STARTTLS client port. */
  port: number;
  /** Direct TLS client port (XEP-0368), if any. */
  tlsPort?: number;
  domain: string;
  mucDomain: string;
  /** PID whose process tree is the server, for /proc CPU and RSS. */
  pid: number;
  /** Processes outside that tree whose CPU counts as the server's (PostgreSQL backends with `--archive pg`). */
  extraCpu?: ExtraCpu;
}

export interface AdapterOptions {
  /** Temporary folder owned by this adapter: config, data, logs, certificates. */
  dir: string;
  domain: string;
  /** Folder of the generator's SCRAM cache; an adapter that knows the salts may pre-fill it. */
  scramCacheDir: string;
}

export interface ServerAdapter {
  readonly name: 'prosody' | 'ejabberd' | 'natter' | 'external';
  /** Installs the server if missing; throws a clear error if that is impossible. */
  ensureInstalled(): Promise<void>;
  /** Human-readable version string. */
  version(): Promise<string>;
  /** Writes the configuration (ports chosen at random) into `opts.dir`. */
  configure(opts: AdapterOptions): Promise<void>;
  /** Creates the accounts (and rosters). May start and stop the server itself. */
  provision(users: BenchUsers, rosters: Rosters | null): Promise<void>;
  start(): Promise<ServerTarget>;
  stop(): Promise<void>;
  /** Limits and tunings applied for the benchmark, one line each, printed with the results. */
  tuning(): string[];
  /**
   * What the message archive holds now, asked once at the end of the run, while the server still
   * runs, when archiving is on.
   */
  archiveStats?(): Promise<ArchiveStats>;
  /** Releases what lives outside the run folder (the run's PostgreSQL database); after the final stop. */
  cleanup?(): Promise<void>;
}
