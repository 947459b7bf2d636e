/** What every scenario receives, and what it returns. */
import { WorkerPool } from '../engine/pool.js';
import { ProcWatch } from '../engine/proc.js';
import type { ArchiveMode, ServerTarget, BenchUsers } from '../servers/types.js';
import type { TlsMode } from '../xmpp/session.js';

export interface BenchOptions {
  reps: number;
  /** TLS for every scenario but `login` (none by default: loopback, measures XMPP work). */
  tls: TlsMode;
  /** TLS for the login scenario. */
  loginTls: TlsMode;
  mech?: string;
  workers: number;
  loginK: number;
  loginPool: number;
  loginSeconds: number;
  idleCounts: number[];
  chatUsers: number;
  chatWindow: number;
  chatSeconds: number;
  /** A second latency phase at this absolute rate (msg/s), the same for every server (0: none). */
  chatCommonRate: number;
  mucRooms: number;
  mucOccupants: number;
  mucWindow: number;
  mucSeconds: number;
  rosterUsers: number;
  rosterSize: number;
  rosterK: number;
  bodyPad: number;
  drainSeconds: number;
  loginTimeoutMs: number;
  /** `flood`: well-behaved pairs, messages per second per pair, flooders, unauthenticated connections. */
  floodPairs: number;
  floodPairRate: number;
  flooders: number;
  floodUnauth: number;
  /** Source addresses the unauthenticated connections are spread over (127.0.1.1 …). */
  floodUnauthIps: number;
  /** Length of each of the three phases. */
  floodSeconds: number;
  /** `muc-flood`: occupants of the flooded room (the flooder among them). */
  mucFloodOccupants: number;
  /** Message archiving on every server (`--archive`): off, each server's default storage, or PostgreSQL. */
  archive: ArchiveMode;
}

export const DEFAULTS: BenchOptions = {
  reps: 3,
  tls: 'none',
  loginTls: 'starttls',
  workers: 2,
  loginK: 32,
  loginPool: 500,
  loginSeconds: 6,
  idleCounts: [2000, 5000, 10000],
  chatUsers: 1000,
  chatWindow: 1024,
  chatSeconds: 6,
  chatCommonRate: 5000,
  mucRooms: 50,
  mucOccupants: 20,
  mucWindow: 48,
  mucSeconds: 6,
  rosterUsers: 505,
  rosterSize: 100,
  rosterK: 32,
  bodyPad: 64,
  drainSeconds: 3,
  loginTimeoutMs: 30_000,
  floodPairs: 20,
  floodPairRate: 5,
  flooders: 10,
  floodUnauth: 1000,
  floodUnauthIps: 25,
  floodSeconds: 15,
  mucFloodOccupants: 200,
  archive: 'off',
};

/** One measured number. */
export interface Figure {
  key: string;
  label: string;
  unit: string;
  value: number;
  /** Which direction is a win for the server. */
  better: 'higher' | 'lower' | 'zero' | 'info';
}

export interface ScenarioContext {
  target: ServerTarget;
  users: BenchUsers;
  /** Id range of users without rosters (1..plainUsers) and of roster users (rosterBase+1 …). */
  plainUsers: number;
  rosterBase: number;
  opts: BenchOptions;
  cacheDir: string;
  /** Restarts the server (fresh process, same data) and returns its new target. */
  restart: () => Promise<ServerTarget>;
  log: (msg: string) => void;
  /** Scenario runs are numbered so message phases never collide. */
  phaseSeq: { n: number };
}

export function startPool(
  ctx: ScenarioContext,
  workers: number,
  tls: TlsMode,
  firstAddress?: number,
): Promise<WorkerPool> {
  const t = ctx.target;
  return WorkerPool.start(
    workers,
    {
      host: t.host,
      port: t.port,
      tlsPort: t.tlsPort,
      domain: t.domain,
      userPrefix: ctx.users.prefix,
      password: ctx.users.password,
      tls,
      mech: ctx.opts.mech,
      cacheDir: ctx.cacheDir,
      loginTimeoutMs: ctx.opts.loginTimeoutMs,
    },
    firstAddress,
  );
}

export function range(from: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => from + i);
}

/** The server's CPU and memory: its process tree, plus what works for it outside (`target.extraCpu`). */
export function proc(ctx: ScenarioContext): ProcWatch {
  return new ProcWatch(ctx.target.pid, ctx.target.extraCpu);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Logs `ids` in over the pool (keeping them online); throws when more than `maxFailPct` % fail. */
export async function loginAll(
  ctx: ScenarioContext,
  pool: WorkerPool,
  ids: number[],
  concurrencyPerWorker: number,
  rosterGet = false,
  maxFailPct = 1,
): Promise<{ ok: number; failed: number; elapsedMs: number; errors: string[]; mech: string }> {
  const parts = pool.split(ids);
  const t0 = performance.now();
  const replies = await pool.all(
    (w) => ({ cmd: 'login', ids: parts[w]!, concurrency: concurrencyPerWorker, rosterGet }),
    ctx.opts.loginTimeoutMs + ids.length * 50 + 60_000,
  );
  let ok = 0;
  let failed = 0;
  const errors: string[] = [];
  let mech = '';
  for (const r of replies) {
    ok += (r['ok'] as number) ?? 0;
    failed += (r['failed'] as number) ?? 0;
    if (Array.isArray(r['errors'])) errors.push(...(r['errors'] as string[]));
    if (r['mech']) mech = r['mech'] as string;
  }
  if (failed > (ids.length * maxFailPct) / 100)
    throw new Error(
      `${failed} of ${ids.length} logins failed; first errors: ${errors.slice(0, 3).join(' | ')}`,
    );
  return { ok, failed, elapsedMs: performance.now() - t0, errors, mech };
}

/**
 * Waits until the server is idle (under 5 % of a core over half a second, at most `maxMs`), so that
 * work left over from the previous repetition — e.g. a thousand sessions closing and broadcasting
 * unavailable presence — is not billed to the next one.
 */
export async function quiesce(ctx: ScenarioContext, maxMs = 30_000): Promise<void> {
  const watch = proc(ctx);
  const until = Date.now() + maxMs;
  let last = await watch.cpu();
  if (!Number.isFinite(last)) return;
  while (Date.now() < until) {
    await sleep(500);
    const now = await watch.cpu();
    if (now - last < 0.025) return;
    last = now;
  }
  ctx.log(`server still busy after ${maxMs} ms of waiting for it to go idle; measuring anyway`);
}
