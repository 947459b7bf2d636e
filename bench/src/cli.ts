/**
 * natter-bench: XMPP load generator and server comparison.
 *
 *   natter-bench compare [--servers prosody,ejabberd,natter] [--scenarios …] [--reps 3] [--archive off|default|pg] [scale flags]
 *   natter-bench <login|idle|chat|muc|roster-login|flood|muc-flood> --server prosody|ejabberd|natter [flags]
 *   natter-bench <scenario> --server external --host H --port P --domain D --users N [--pid PID] …
 *
 * Every run is bounded: a global deadline (--max-minutes) stops new repetitions, and a hard timer
 * stops the servers and exits if anything hangs.
 */
import { parseArgs } from 'node:util';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULTS, type BenchOptions } from './scenarios/context.js';
import {
  COMPARE_SCENARIOS,
  isAbuseScenario,
  SCENARIOS,
  runServer,
  stopCurrent,
  type RunRequest,
  type ScenarioName,
} from './runner.js';
import { machine, renderText, writeResults, type Results } from './report.js';
import type { TlsMode } from './xmpp/session.js';
import { ARCHIVE_MODES, type ArchiveMode } from './servers/types.js';

const USAGE = `usage:
  natter-bench compare [--servers prosody,ejabberd,natter] [--scenarios ${COMPARE_SCENARIOS.join(',')}] [--reps 3]
  natter-bench <${SCENARIOS.join('|')}> --server prosody|ejabberd|natter [--reps 1]
  natter-bench <scenario> --server external --host 127.0.0.1 --port 5222 --domain example.org \\
      --users N [--user-prefix user] [--password P] [--pid SERVER_PID] [--muc-domain conference.example.org]

scale and mode flags (defaults in brackets):
  --tls none|starttls|direct [none]       TLS for idle, chat, muc, roster-login
  --login-tls none|starttls|direct [starttls]
  --mech SCRAM-SHA-1|SCRAM-SHA-256|PLAIN  force a SASL mechanism (default: best offered)
  --workers N [2]   --login-k K [32]   --login-pool N [500]   --login-seconds S [6]
  --idle-counts 2000,5000,10000[,18000]   --chat-users C [1000]   --chat-window W [1024]   --chat-seconds S [6]
  --chat-common-rate R [5000; 300 with --archive: msg/s, latency also measured at this rate on every
      server, skipped on a server that saturates below it; 0 = off]
  --muc-rooms R [50]  --muc-occupants K [20]  --muc-window W [48]  --muc-seconds S [6]
  --roster-users N [505]  --roster-size S [100]  --roster-k K [32]
  --flood-pairs P [20]  --flood-rate R [5, msg/s per pair]  --flooders F [10]  --flood-unauth U [1000]
  --flood-unauth-ips N [25]  --flood-seconds S [15, per phase]   (flood runs with default limits ON)
  --muc-flood-occupants K [200]   (muc-flood: one of K occupants floods the room; pairs as in flood)
  --body-pad N [64]  --drain-seconds S [3]  --max-minutes M [25]  --quick (few-second smoke scale)
  --archive off|default|pg [off]   message archiving (XEP-0313) on every server, every chat message
      archived: default = each server's own storage (Natter SQLite, ejabberd Mnesia, Prosody files),
      pg = a fresh PostgreSQL database per server (its backends' CPU counted as the server's)
  --prosody-gc incremental|generational [incremental]  --natter-from source|dist [source]
  --natter-workers N [1]   natter serve --workers N (N processes sharing the ports; docs/decisions/0009)
  --out DIR [bench/results]  --keep (keep the temporary run folder)`;

function list(s: string | undefined): string[] | undefined {
  return s
    ? s
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean)
    : undefined;
}

function num(v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`not a number: ${v}`);
  return n;
}

/**
 * The common chat rate with archiving on: ejabberd and Prosody saturate at a few hundred to a couple of
 * thousand archived messages per second on 2 cores, so the default 5000 msg/s would be skipped on them.
 */
export const ARCHIVE_COMMON_RATE = 300;

export const QUICK: Partial<BenchOptions> = {
  reps: 1,
  loginK: 8,
  loginPool: 40,
  loginSeconds: 2,
  idleCounts: [200],
  chatUsers: 40,
  chatWindow: 32,
  chatSeconds: 2,
  chatCommonRate: 200,
  mucRooms: 4,
  mucOccupants: 5,
  mucWindow: 4,
  mucSeconds: 2,
  rosterUsers: 22,
  rosterSize: 10,
  rosterK: 8,
  drainSeconds: 2,
  loginTimeoutMs: 10_000,
  floodPairs: 4,
  flooders: 2,
  floodUnauth: 50,
  floodUnauthIps: 2,
  floodSeconds: 2,
  mucFloodOccupants: 20,
};

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      servers: { type: 'string' },
      server: { type: 'string' },
      scenarios: { type: 'string' },
      reps: { type: 'string' },
      quick: { type: 'boolean' },
      tls: { type: 'string' },
      'login-tls': { type: 'string' },
      mech: { type: 'string' },
      workers: { type: 'string' },
      'natter-workers': { type: 'string' },
      'login-k': { type: 'string' },
      'login-pool': { type: 'string' },
      'login-seconds': { type: 'string' },
      'idle-counts': { type: 'string' },
      'chat-users': { type: 'string' },
      'chat-window': { type: 'string' },
      'chat-seconds': { type: 'string' },
      'chat-common-rate': { type: 'string' },
      'muc-rooms': { type: 'string' },
      'muc-occupants': { type: 'string' },
      'muc-window': { type: 'string' },
      'muc-seconds': { type: 'string' },
      'roster-users': { type: 'string' },
      'roster-size': { type: 'string' },
      'roster-k': { type: 'string' },
      'body-pad': { type: 'string' },
      'flood-pairs': { type: 'string' },
      'flood-rate': { type: 'string' },
      flooders: { type: 'string' },
      'flood-unauth': { type: 'string' },
      'flood-unauth-ips': { type: 'string' },
      'flood-seconds': { type: 'string' },
      'muc-flood-occupants': { type: 'string' },
      'drain-seconds': { type: 'string' },
      'max-minutes': { type: 'string' },
      'prosody-gc': { type: 'string' },
      'natter-from': { type: 'string' },
      archive: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      'tls-port': { type: 'string' },
      domain: { type: 'string' },
      'muc-domain': { type: 'string' },
      'user-prefix': { type: 'string' },
      password: { type: 'string' },
      users: { type: 'string' },
      pid: { type: 'string' },
      out: { type: 'string' },
      keep: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const command = positionals[0];
  if (values.help || !command) {
    console.log(USAGE);
    return command ? 0 : 1;
  }
  const isCompare = command === 'compare';
  if (!isCompare && !SCENARIOS.includes(command as ScenarioName)) {
    console.error(`unknown command ${command}\n${USAGE}`);
    return 1;
  }
  const archive = (values.archive as ArchiveMode | undefined) ?? DEFAULTS.archive;
  if (!ARCHIVE_MODES.includes(archive))
    throw new Error(`bad --archive ${archive} (${ARCHIVE_MODES.join(', ')})`);
  const base: BenchOptions = {
    ...DEFAULTS,
    ...(archive !== 'off' ? { archive, chatCommonRate: ARCHIVE_COMMON_RATE } : {}),
    ...(values.quick ? QUICK : {}),
  };
  const o: BenchOptions = {
    ...base,
    reps: num(values.reps, isCompare ? base.reps : 1),
    tls: (values.tls as TlsMode) ?? base.tls,
    loginTls: (values['login-tls'] as TlsMode) ?? base.loginTls,
    mech: values.mech,
    workers: num(values.workers, base.workers),
    loginK: num(values['login-k'], base.loginK),
    loginPool: num(values['login-pool'], base.loginPool),
    loginSeconds: num(values['login-seconds'], base.loginSeconds),
    idleCounts: list(values['idle-counts'])?.map(Number) ?? base.idleCounts,
    chatUsers: num(values['chat-users'], base.chatUsers),
    chatWindow: num(values['chat-window'], base.chatWindow),
    chatSeconds: num(values['chat-seconds'], base.chatSeconds),
    chatCommonRate: num(values['chat-common-rate'], base.chatCommonRate),
    mucRooms: num(values['muc-rooms'], base.mucRooms),
    mucOccupants: num(values['muc-occupants'], base.mucOccupants),
    mucWindow: num(values['muc-window'], base.mucWindow),
    mucSeconds: num(values['muc-seconds'], base.mucSeconds),
    rosterUsers: num(values['roster-users'], base.rosterUsers),
    rosterSize: num(values['roster-size'], base.rosterSize),
    rosterK: num(values['roster-k'], base.rosterK),
    bodyPad: num(values['body-pad'], base.bodyPad),
    drainSeconds: num(values['drain-seconds'], base.drainSeconds),
    floodPairs: num(values['flood-pairs'], base.floodPairs),
    floodPairRate: num(values['flood-rate'], base.floodPairRate),
    flooders: num(values.flooders, base.flooders),
    floodUnauth: num(values['flood-unauth'], base.floodUnauth),
    floodUnauthIps: num(values['flood-unauth-ips'], base.floodUnauthIps),
    floodSeconds: num(values['flood-seconds'], base.floodSeconds),
    mucFloodOccupants: num(values['muc-flood-occupants'], base.mucFloodOccupants),
    archive,
  };
  if (o.floodUnauth > 5000) throw new Error('--flood-unauth above 5000 (open-files limit 20,000 is shared)');
  for (const t of [o.tls, o.loginTls])
    if (!['none', 'starttls', 'direct'].includes(t)) throw new Error(`bad TLS mode ${t}`);
  if (o.idleCounts.some((c) => c > 19_000 * 8)) throw new Error('idle count too large');
  const scenarios = (list(values.scenarios) ??
    (isCompare ? [...COMPARE_SCENARIOS] : [command])) as ScenarioName[];
  for (const s of scenarios) if (!SCENARIOS.includes(s)) throw new Error(`unknown scenario ${s}`);
  if (scenarios.some(isAbuseScenario) && scenarios.length > 1)
    throw new Error(
      "flood and muc-flood run alone: they need the servers' default limits on, the other scenarios need them off",
    );
  const servers = isCompare
    ? (list(values.servers) ?? ['prosody', 'ejabberd', 'natter'])
    : [values.server ?? 'prosody'];
  const maxMinutes = num(values['max-minutes'], 25);
  const startedAt = new Date();
  const deadline = startedAt.getTime() + maxMinutes * 60_000;
  const runDir = mkdtempSync(join(tmpdir(), 'natter-bench-'));
  const log = (m: string): void => console.log(`${new Date().toISOString().slice(11, 19)} ${m}`);

  // Hard stop: whatever hangs, the run ends (servers stopped) 3 minutes after the deadline.
  const hard = setTimeout(
    () => {
      log(`hard timeout (${maxMinutes} min + 3) reached: stopping`);
      void stopCurrent().finally(() => process.exit(3));
    },
    maxMinutes * 60_000 + 180_000,
  );
  hard.unref();
  const onSignal = (sig: string): void => {
    log(`${sig}: stopping the server under test`);
    void stopCurrent().finally(() => process.exit(130));
  };
  process.once('SIGINT', () => onSignal('SIGINT'));
  process.once('SIGTERM', () => onSignal('SIGTERM'));

  log(
    `natter-bench ${command}: servers ${servers.join(', ')}; scenarios ${scenarios.join(', ')}; ${o.reps} repetition(s); run folder ${runDir}`,
  );
  if (o.archive !== 'off')
    log(
      `message archiving ON (--archive ${o.archive}): every one-to-one chat message archived on every server, ${o.archive === 'pg' ? 'in a fresh PostgreSQL database per server (its backends count as server CPU)' : "in each server's default archive storage"}`,
    );
  log(
    scenarios.some(isAbuseScenario)
      ? 'all traffic on loopback; flood: every server keeps its default abuse limits (listed per server below)'
      : 'all traffic on loopback; rate limits and traffic shapers are disabled on every server (listed per server below)',
  );
  const results: Results = {
    startedAt: startedAt.toISOString(),
    finishedAt: '',
    machine: machine(),
    options: { ...o, scenarios, servers, prosodyGc: values['prosody-gc'] ?? 'incremental' },
    servers: [],
  };
  for (const server of servers) {
    const req: RunRequest = {
      server: server as RunRequest['server'],
      scenarios,
      opts: o,
      runDir,
      domain: values.domain ?? 'bench.local',
      password: values.password ?? 'bench-password-1',
      prefix: values['user-prefix'] ?? 'user',
      prosodyGc: values['prosody-gc'] === 'generational' ? 'generational' : 'incremental',
      natterFrom: values['natter-from'] === 'dist' ? 'dist' : 'source',
      natterWorkers: num(values['natter-workers'], 1),
      deadline,
      log,
    };
    if (server === 'external') {
      if (!values.host || !values.port || !values.domain || !values.users)
        throw new Error('--server external needs --host, --port, --domain and --users');
      req.external = {
        host: values.host,
        port: Number(values.port),
        tlsPort: values['tls-port'] ? Number(values['tls-port']) : undefined,
        domain: values.domain,
        mucDomain: values['muc-domain'] ?? `conference.${values.domain}`,
        pid: Number(values.pid ?? 0),
      };
      // External users are 1..N; the plan must fit in them.
      const n = Number(values.users);
      o.loginPool = Math.min(o.loginPool, n);
      o.chatUsers = Math.min(o.chatUsers, n);
      o.idleCounts = o.idleCounts.filter((c) => c <= n);
    } else if (!['prosody', 'ejabberd', 'natter'].includes(server))
      throw new Error(`unknown server ${server}`);
    results.servers.push(await runServer(req));
  }
  results.finishedAt = new Date().toISOString();
  console.log('\n' + renderText(results) + '\n');
  const outDir = values.out ?? fileURLToPath(new URL('../results', import.meta.url));
  const files = writeResults(outDir, results);
  log(`results: ${files.json}\n         ${files.md}`);
  if (!values.keep) rmSync(runDir, { recursive: true, force: true });
  else log(`run folder kept: ${runDir}`);
  clearTimeout(hard);
  return results.servers.some((s) => s.errors.length > 0 && !s.skipped) ? 2 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`natter-bench: ${(e as Error).message}`);
    void stopCurrent().finally(() => process.exit(1));
  },
);
