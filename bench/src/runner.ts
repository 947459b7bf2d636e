/** Runs the chosen scenarios on one server, start to stop, repeating each figure. */
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { addFigures, type ServerResult } from './report.js';
import { runLogin } from './scenarios/login.js';
import { runIdle } from './scenarios/idle.js';
import { runChat } from './scenarios/chat.js';
import { runMuc } from './scenarios/muc.js';
import { runRosterLogin, cliqueRosters } from './scenarios/roster-login.js';
import { runFlood } from './scenarios/flood.js';
import { runMucFlood } from './scenarios/muc-flood.js';
import type { BenchOptions, Figure, ScenarioContext } from './scenarios/context.js';
import type { BenchUsers, ServerAdapter, ServerTarget } from './servers/types.js';
import { ProsodyAdapter } from './servers/prosody.js';
import { EjabberdAdapter } from './servers/ejabberd.js';
import { NatterAdapter } from './servers/natter.js';
import { ExternalAdapter, type ExternalTarget } from './servers/external.js';

export const SCENARIOS = ['login', 'idle', 'chat', 'muc', 'roster-login', 'flood', 'muc-flood'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];
/** What `compare` runs by default: `flood` needs the servers' default limits on, so it runs alone. */
export const COMPARE_SCENARIOS: ScenarioName[] = ['login', 'idle', 'chat', 'muc', 'roster-login'];

const RUN: Record<ScenarioName, (ctx: ScenarioContext) => Promise<Figure[]>> = {
  login: runLogin,
  idle: runIdle,
  chat: runChat,
  muc: runMuc,
  'roster-login': runRosterLogin,
  flood: runFlood,
  'muc-flood': runMucFlood,
};

export interface RunRequest {
  server: 'prosody' | 'ejabberd' | 'natter' | 'external';
  scenarios: ScenarioName[];
  opts: BenchOptions;
  runDir: string;
  domain: string;
  password: string;
  prefix: string;
  prosodyGc: 'incremental' | 'generational';
  natterFrom: 'source' | 'dist';
  /** `natter serve --workers N` (1: one process). */
  natterWorkers?: number;
  external?: ExternalTarget;
  /** Wall-clock deadline (ms since epoch): no new repetition starts after it. */
  deadline: number;
  log: (msg: string) => void;
}

/** Scenarios that measure the servers as shipped (default abuse limits on): each runs alone. */
export function isAbuseScenario(s: ScenarioName): boolean {
  return s === 'flood' || s === 'muc-flood';
}

export function makeAdapter(req: RunRequest): ServerAdapter {
  // The flood scenario measures the servers as shipped: default abuse limits on.
  const limits = req.scenarios.some(isAbuseScenario) ? 'default' : 'disabled';
  switch (req.server) {
    case 'prosody':
      return new ProsodyAdapter(req.prosodyGc, limits, req.opts.archive);
    case 'ejabberd':
      return new EjabberdAdapter(limits, req.opts.archive);
    case 'natter':
      return new NatterAdapter(req.natterFrom, limits, req.opts.archive, req.natterWorkers ?? 1);
    case 'external':
      if (!req.external) throw new Error('external target needs --host, --port, --domain, --users');
      return new ExternalAdapter(req.external);
  }
}

/** Users needed: plain users (ids 1..plain) for login/idle/chat/muc, then roster users after them. */
export function userPlan(scenarios: ScenarioName[], o: BenchOptions): { plain: number; roster: number } {
  let plain = 2;
  if (scenarios.includes('login')) plain = Math.max(plain, o.loginPool);
  if (scenarios.includes('idle')) plain = Math.max(plain, ...o.idleCounts);
  if (scenarios.includes('chat')) plain = Math.max(plain, o.chatUsers);
  if (scenarios.includes('muc')) plain = Math.max(plain, o.mucRooms * o.mucOccupants);
  if (scenarios.includes('flood')) plain = Math.max(plain, o.floodPairs * 2 + o.flooders);
  if (scenarios.includes('muc-flood')) plain = Math.max(plain, o.floodPairs * 2 + o.mucFloodOccupants);
  const roster = scenarios.includes('roster-login') ? o.rosterUsers : 0;
  return { plain, roster };
}

let current: ServerAdapter | null = null;
/**
 * Stops the server being benchmarked, if any (signal handlers, global timeout), and releases what it
 * holds outside the run folder (the run's PostgreSQL database).
 */
export async function stopCurrent(): Promise<void> {
  const a = current;
  current = null;
  if (a) {
    await a.stop().catch(() => {});
    await a.cleanup?.().catch(() => {});
  }
}

export async function runServer(req: RunRequest): Promise<ServerResult> {
  const adapter = makeAdapter(req);
  const result: ServerResult = {
    name: adapter.name,
    version: '',
    archive: req.opts.archive,
    tuning: [],
    errors: [],
    metrics: {},
  };
  const log = (m: string): void => req.log(`[${adapter.name}] ${m}`);
  try {
    await adapter.ensureInstalled();
  } catch (e) {
    result.skipped = (e as Error).message;
    log(`skipped: ${result.skipped}`);
    return result;
  }
  result.version = await adapter.version();
  result.tuning = adapter.tuning();
  log(`${result.version}; limits and tunings for this benchmark:`);
  for (const t of result.tuning) log(`  - ${t}`);

  const dir = join(req.runDir, adapter.name);
  const cacheDir = join(req.runDir, `${adapter.name}-scram-cache`);
  mkdirSync(dir, { recursive: true });
  mkdirSync(cacheDir, { recursive: true });
  chmodSync(req.runDir, 0o755);
  // From here on the adapter may hold resources outside the run folder (a PostgreSQL database).
  current = adapter;
  try {
    await adapter.configure({ dir, domain: req.domain, scramCacheDir: cacheDir });
  } catch (e) {
    await stopCurrent();
    throw e;
  }
  const plan = userPlan(req.scenarios, req.opts);
  const users: BenchUsers = {
    prefix: req.prefix,
    count: plan.plain + plan.roster,
    password: req.password,
    iterations: 4096,
  };
  const rosters = plan.roster > 0 ? cliqueRosters(plan.plain, plan.roster, req.opts.rosterSize) : null;
  let started = false;
  try {
    let t = Date.now();
    let rosterError: string | null = null;
    try {
      await adapter.provision(users, rosters);
    } catch (e) {
      if (!rosters) throw e;
      // A server without roster import still runs every other scenario.
      rosterError = (e as Error).message;
      log(
        `roster provisioning failed (${rosterError}); provisioning accounts only, roster-login will not run`,
      );
      await adapter.provision(users, null);
    }
    log(
      `provisioned ${users.count} users${rosters ? ` and ${rosters.size} rosters of ${req.opts.rosterSize}` : ''} in ${((Date.now() - t) / 1000).toFixed(1)} s`,
    );
    t = Date.now();
    let target: ServerTarget = await adapter.start();
    started = true;
    log(`started (pid ${target.pid}, c2s port ${target.port}) in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    if (target.extraCpu) log(`server CPU includes ${target.extraCpu.label}`);
    const ctx: ScenarioContext = {
      target,
      users,
      plainUsers: plan.plain,
      rosterBase: plan.plain,
      opts: req.opts,
      cacheDir,
      restart: async () => {
        await adapter.stop();
        target = await adapter.start();
        ctx.target = target;
        return target;
      },
      log,
      phaseSeq: { n: 0 },
    };
    for (const sc of req.scenarios) {
      if (sc === 'roster-login' && rosterError) {
        result.errors.push(`roster-login: not run, rosters could not be provisioned: ${rosterError}`);
        continue;
      }
      for (let rep = 1; rep <= req.opts.reps; rep++) {
        if (Date.now() > req.deadline) {
          result.errors.push(`${sc} rep ${rep}: not run (time budget exhausted)`);
          log(`${sc} rep ${rep}: skipped, time budget exhausted`);
          continue;
        }
        const t0 = Date.now();
        try {
          const figs = await RUN[sc](ctx);
          addFigures(result, figs);
          const main = figs
            .filter((f) => f.better !== 'info')
            .slice(0, 4)
            .map((f) => `${f.key}=${Number.isFinite(f.value) ? +f.value.toPrecision(4) : f.value}`);
          log(
            `${sc} rep ${rep}/${req.opts.reps} (${((Date.now() - t0) / 1000).toFixed(0)} s): ${main.join(' ')}`,
          );
        } catch (e) {
          const msg = `${sc} rep ${rep}: ${(e as Error).message}`;
          result.errors.push(msg);
          log(`ERROR ${msg}`);
          // A failed scenario may leave the server in a bad state: restart it for the next one, and
          // do not repeat a scenario that failed (it would fail again and waste the time budget).
          try {
            await ctx.restart();
          } catch (e2) {
            result.errors.push(`restart failed: ${(e2 as Error).message}`);
            return result;
          }
          break;
        }
      }
    }
  } catch (e) {
    result.errors.push((e as Error).message);
    log(`ERROR ${(e as Error).message}`);
    if (result.metrics && Object.keys(result.metrics).length === 0 && !result.skipped)
      result.skipped = (e as Error).message;
  } finally {
    // What the archive received, asked while the server still runs (and before its database is dropped).
    if (started && req.opts.archive !== 'off' && adapter.archiveStats) {
      try {
        const stats = await adapter.archiveStats();
        result.archiveStats = stats.text;
        log(stats.text);
        // A server that was asked to archive and archived nothing is not measured with its archive.
        const chatted = req.scenarios.some((sc) => sc === 'chat' || sc === 'flood' || sc === 'muc-flood');
        if (stats.rows === 0 && chatted && Object.keys(result.metrics).length > 0)
          result.errors.push(
            `--archive ${req.opts.archive}: the server archived nothing (check its log in the run folder, --keep)`,
          );
      } catch (e) {
        result.archiveStats = `archived rows: unknown (${(e as Error).message.slice(0, 200)})`;
        log(`could not count the archived rows: ${(e as Error).message}`);
      }
    }
    await stopCurrent();
  }
  return result;
}
