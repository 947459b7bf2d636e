#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { importRosters, rosterMigrations } from './modules/roster/roster-store.js';
import { findConfigFile, loadConfigFile, parseConfig, ConfigError, type Config } from './config.js';
import { startServer, type NatterServer } from './server.js';
import { certificateStatus, formatImport, formatStatus, importCertificates } from './admin/cert-commands.js';
import { openLogOutput, type LogOutput, type Logger } from './core/logger.js';
import { addUserCommand, startMessage, type StartContext, type StartSummary } from './start-summary.js';
import {
  nodeCluster,
  parseWorkers,
  runPrimary,
  workerBus,
  workerIndex,
  workerReady,
} from './core/cluster/workers.js';
import { RedisBus } from './core/cluster/redis-bus.js';
import { Database } from './storage/database.js';
import { AccountStore, accountMigrations, AccountExistsError } from './accounts/account-store.js';
import { NATTER_VERSION } from './version.js';
import { adminBaseUrl, adminToken, hostedAccount } from './admin/user-commands.js';
import { cliUsage, findCliCommand, runCliCommand } from './admin/cli-runner.js';
import { backup, restore, storageCopy } from './admin/backup.js';
import { progress } from './admin/progress.js';
import { checkCommand } from './check-warnings.js';
import { initCommand } from './init.js';
import { MIGRATE_USAGE, migrateCommand } from './admin/migrate.js';
import type { S2SReport, S2SStreamReport } from './listeners/admin-listener.js';
import { join, resolve } from 'node:path';

const USAGE = `natter ${NATTER_VERSION} — XMPP server

Usage:
  natter serve [--config FILE] [--workers N]   start the server (default config: ./natter.json,
                                               natter.yaml or natter.yml if present);
                                               --workers N|auto runs N processes sharing the ports
  natter check [--config FILE]                 validate the configuration (JSON, or YAML: .yaml/.yml), print
                                               warnings about risky settings; exit 1 when invalid
  natter init DOMAIN [--dir DIR] [--postgres] [--force]
                                               write natter.yaml, a systemd unit, a Dockerfile and compose.yaml
                                               into DIR (default ./natter-DOMAIN); print the DNS records
  natter cert status [--config FILE] [--json]  the certificates served: names, issuer, expiry, the hosted
                                               domains (and conference., pubsub., upload.) each covers;
                                               warns 14 days before expiry; exit 1 if a hosted domain has
                                               no valid certificate
  natter cert import DIR… [--config FILE]      copy certificates covering the hosted domains from certbot's
                                               live directory (one subdirectory per certificate, with
                                               fullchain.pem and privkey.pem) into dataDir/certs; then
                                               reload the server: kill -HUP (systemctl reload natter)
  natter sessions [--url URL] [--token T] [--list] [--json]
                                               live and hibernated sessions of the running server (asks
                                               GET /admin/sessions on the admin listener, default 127.0.0.1:5281;
                                               token from --token, NATTER_ADMIN_TOKEN or the listener's config)
  natter s2s [--url URL] [--token T] [--json]  server-to-server streams of the running server (federation:
                                               direction, remote and local domains, authentication, TLS,
                                               address, state, stanzas in/out; asks GET /admin/s2s)
  natter user add-bulk --prefix P --count N --password P [--domain HOST] [--iterations N]
                                               create P1..PN (benchmarks)
${MIGRATE_USAGE}
  natter roster import FILE.json               load rosters: {"u@host": [{"jid": "c@host", "subscription": "both"}]}
  natter backup DIR                            the SQLite database (online, consistent), uploads and certificates
  natter restore DIR [--force]                 put a backup back (server stopped; what it replaces is kept aside)
  natter storage copy --to postgres://…        copy SQLite storage into an empty PostgreSQL database, verified
  natter version

SIGHUP reloads the configuration file and re-reads every certificate without dropping sessions;
the log says what changed and what needs a restart.

The administrator's commands (also the HTTP API /api/ and XEP-0133; docs/administration.md) ask the
running server through its admin listener (--url URL, --token T; default the configured one) and run
on the storage when no server answers; --json prints the answer as JSON. A password is typed twice,
unseen, at a terminal, or read from stdin's first line (--password P leaves it in the shell history):
${cliUsage()}

With no configuration, natter serves "localhost" on ports 5222 (STARTTLS), 5223 (direct TLS) and
5280 (WebSocket at /xmpp-websocket, BOSH at /http-bind, XEP-0156 host-meta), with the admin API on
127.0.0.1:5281, storing data in ./data (SQLite) with a generated certificate. An "https" listener
serves the same paths over TLS (wss://, BOSH over https).`;

/** The configuration file in use: --config, else ./natter.json (or .yaml, .yml) if present, else none (defaults). */
function configPathFrom(path: string | undefined): string | undefined {
  if (path) return resolve(path);
  const found = findConfigFile();
  return found === undefined ? undefined : resolve(found);
}

function configFrom(path: string | undefined): Config {
  const file = configPathFrom(path);
  return file ? loadConfigFile(file) : parseConfig({});
}

/**
 * Steps SIGHUP runs, in order, before the configuration and certificates are reloaded: whatever
 * holds a process-wide resource that an operator rotates reopens it here.
 * `log.file` registers its reopening here (logrotate sends SIGHUP after moving the file).
 */
interface Reloader {
  name: string;
  run(): void | Promise<void>;
}
const reloaders: Reloader[] = [];

/**
 * SIGHUP on `natter serve` (one process, or a worker): reopen what `reloaders` hold, read the
 * configuration file again and apply it. An invalid file changes nothing but the certificates,
 * which are re-read anyway (certbot renews them in place).
 */
async function reloadFromFile(server: NatterServer, configPath: string | undefined): Promise<void> {
  const log = server.core.log;
  log.info({ signal: 'SIGHUP', config: configPath ?? null }, 'signal received: reloading');
  for (const r of reloaders) {
    try {
      await r.run();
    } catch (err) {
      log.error({ err, step: r.name }, `reload: ${r.name} failed: ${(err as Error).message}`);
    }
  }
  let next: Config | undefined;
  try {
    next = configPath ? loadConfigFile(configPath) : parseConfig({});
  } catch (err) {
    log.error(
      { config: configPath ?? null, err: (err as Error).message },
      `reload: the configuration is not applied (the server keeps running with the previous one): ${(err as Error).message}`,
    );
  }
  try {
    await server.reload(next);
  } catch (err) {
    log.error(
      { err: (err as Error).message },
      `reload: the configuration is not applied (the server keeps running with the previous one): ${(err as Error).message}`,
    );
  }
}

async function openAccounts(config: Config): Promise<{ store: AccountStore; db: Database }> {
  const db = Database.open(
    config.storage.engine === 'sqlite'
      ? { engine: 'sqlite', path: config.storage.path ?? join(resolve(config.dataDir), 'natter.sqlite') }
      : config.storage,
    (err) => console.error(`natter: storage connection failed: ${err.message}`),
  );
  await db.migrate('accounts', accountMigrations);
  return { store: new AccountStore(db.db, { iterations: config.auth.iterations }), db };
}

/**
 * The password: `--password` (it then shows in the shell's history and in what npm prints: for
 * scripts), else typed at a terminal without echo (twice when `confirm`), else the first line of
 * stdin (a pipe).
 */
async function readPassword(given: string | undefined, confirm = false): Promise<string> {
  if (given !== undefined) return given;
  if (process.stdin.isTTY) {
    const pw = await promptHidden('password: ');
    if (pw === '') throw new Error('no password given');
    if (confirm && (await promptHidden('password again: ')) !== pw) throw new Error('the passwords differ');
    return pw;
  }
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const pw = Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
  if (pw === '') throw new Error('no password given (use --password or pipe it on stdin)');
  return pw;
}

/** Reads one line from the terminal without showing it (raw mode: nothing is echoed). */
function promptHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  // Echo off before the prompt shows: what is typed (or pasted) after it is never echoed.
  stdin.setRawMode(true);
  process.stderr.write(prompt);
  return new Promise((resolve, reject) => {
    let line = '';
    const done = (err?: Error) => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(line);
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return done();
        if (ch === '\u0003') return done(new Error('interrupted'));
        if (ch === '\u007f' || ch === '\b') line = [...line].slice(0, -1).join('');
        else if (ch >= ' ') line += ch;
      }
    };
    stdin.setEncoding('utf8');
    stdin.resume();
    stdin.on('data', onData);
  });
}

/** `natter user remove X@D …` where D is not a hosted domain (the configuration as --config gives it). */
function notHosted(argv: string[]): boolean {
  const i = argv.findIndex((a) => a === '--config' || a === '-c');
  const config = configFrom(i >= 0 ? argv[i + 1] : undefined);
  const at = argv[2]!.lastIndexOf('@');
  return at >= 0 && !config.hosts.some((h) => h.toLowerCase() === argv[2]!.slice(at + 1).toLowerCase());
}

function splitAccount(arg: string | undefined, config: Config): { user: string; host: string } {
  if (!arg) throw new Error('missing USER@HOST');
  const at = arg.lastIndexOf('@');
  if (at < 0) return { user: arg, host: config.hosts[0]! };
  return { user: arg.slice(0, at), host: arg.slice(at + 1) };
}

/** GETs an admin endpoint of the running server (the admin listener, or --url) and parses its JSON. */
async function adminGet(
  config: Config,
  url: string | undefined,
  tokenArg: string | undefined,
  path: string,
): Promise<unknown> {
  const base = adminBaseUrl(config, url);
  if (!base) throw new Error('no admin listener configured: pass --url http://HOST:PORT');
  const token = adminToken(config, tokenArg);
  const res = await fetch(`${base.replace(/\/$/, '')}${path}`, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  }).catch((err: unknown) => {
    throw new Error(`cannot reach the server at ${base}: ${(err as Error).message}`);
  });
  if (!res.ok) {
    const why = await res
      .json()
      .then((b: unknown) => (b as { error?: unknown }).error)
      .catch(() => undefined);
    throw new Error(
      `the server answered ${res.status} ${res.statusText}${typeof why === 'string' ? `: ${why}` : ''}`,
    );
  }
  return res.json();
}

/** `natter sessions`: asks the running server's admin listener. */
async function sessionsCommand(
  config: Config,
  url: string | undefined,
  list: boolean,
  json: boolean,
  tokenArg: string | undefined,
): Promise<number> {
  const report = (await adminGet(config, url, tokenArg, `/admin/sessions${list ? '?list=1' : ''}`)) as {
    total: number;
    live: number;
    hibernated: number;
    streams: number;
    unauthenticated: number;
    /** In a cluster: the node that answered, and how many sessions it holds. */
    node?: string;
    local?: number;
    sessions?: {
      jid: string;
      state: string;
      ip: string;
      transport: string;
      since: string;
      node?: string;
    }[];
  };
  if (json) {
    console.log(JSON.stringify(report, null, 2));
    return 0;
  }
  console.log(`sessions: ${report.total} (live ${report.live}, hibernated ${report.hibernated})`);
  console.log(`streams: ${report.streams} (unauthenticated ${report.unauthenticated})`);
  if (report.node !== undefined)
    console.log(`cluster: answered by node ${report.node}, which holds ${report.local ?? 0} of them`);
  for (const s of report.sessions ?? [])
    console.log(
      `${s.jid}\t${s.state}\t${s.transport}\t${s.ip}\t${s.since}${s.node !== undefined ? `\t${s.node}` : ''}`,
    );
  return 0;
}

/** The `natter s2s` table: one row a stream, columns padded; IN and OUT right-aligned. */
function s2sTable(streams: readonly S2SStreamReport[]): string {
  const head = ['DIRECTION', 'REMOTE', 'LOCAL', 'AUTH', 'TLS', 'ADDRESS', 'STATE', 'IN', 'OUT', 'SINCE'];
  const right = new Set([7, 8]);
  const rows = streams.map((s) => [
    s.direction,
    s.remoteDomains.join(',') || '-',
    s.localDomains.join(',') || '-',
    s.auth,
    s.tls ? (s.tlsVersion ?? 'yes') : 'no',
    s.address || '-',
    s.state,
    String(s.stanzasIn),
    String(s.stanzasOut),
    s.since,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [head, ...rows]
    .map((r) =>
      r
        .map((c, i) =>
          right.has(i) ? c.padStart(widths[i]!) : i === r.length - 1 ? c : c.padEnd(widths[i]!),
        )
        .join('  '),
    )
    .join('\n');
}

/** `natter s2s`: the running server's server-to-server streams, from its admin listener. */
async function s2sCommand(
  config: Config,
  url: string | undefined,
  json: boolean,
  tokenArg: string | undefined,
): Promise<number> {
  const report = (await adminGet(config, url, tokenArg, '/admin/s2s')) as S2SReport;
  if (json) {
    console.log(JSON.stringify(report, null, 2));
    return 0;
  }
  if (!report.enabled) console.log('federation is off');
  else if (report.streams.length === 0) console.log('no server-to-server streams');
  if (report.streams.length > 0) console.log(s2sTable(report.streams));
  return 0;
}

/**
 * `natter cert status`: every certificate the server would serve, and for each hosted domain and
 * service subdomain whether one covers it (exit 1 when a hosted domain has none valid).
 * `natter cert import DIR…`: copies certbot's certificates into dataDir/certs (exit 1 when none of
 * the hosted domains has one).
 */
function certCommand(sub: string | undefined, dirs: string[], config: Config, json: boolean): number {
  if (sub === 'status') {
    const report = certificateStatus(config);
    console.log(json ? JSON.stringify(report, null, 2) : formatStatus(report));
    return report.ok ? 0 : 1;
  }
  if (sub === 'import') {
    if (dirs.length === 0) throw new Error('usage: natter cert import DIR… (e.g. /etc/letsencrypt/live)');
    const report = importCertificates(config, dirs);
    console.log(json ? JSON.stringify(report, null, 2) : formatImport(report));
    return report.imported.length + report.current.length > 0 ? 0 : 1;
  }
  throw new Error(`unknown cert command "${sub ?? ''}" (status, import)`);
}

/**
 * Says that the server runs, once every listener is up: an info log line `msg` carrying the
 * summary as fields (in pretty mode the line alone: the start message says the same in words),
 * then, when `message` and stdout is not a stream of JSON log lines (`LogOutput.plainStdout`: a
 * terminal, pretty lines, or logs in a file), the start message on stdout. JSON lines on a pipe
 * thus stay JSON only, for log shippers.
 */
function announceStart(
  out: LogOutput,
  log: Logger,
  msg: string,
  summary: StartSummary,
  ctx: StartContext,
  message = true,
): void {
  // `node` is on every line of a cluster node already (the logger's binding): once is enough.
  const { node: _node, ...facts } = summary;
  if (out.format === 'pretty') log.info(msg);
  else
    log.info(
      { ...facts, addUser: ctx.addUser, ...(ctx.workers !== undefined ? { workers: ctx.workers } : {}) },
      msg,
    );
  if (message && out.plainStdout) out.print(startMessage(summary, ctx));
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'init') return initCommand(argv.slice(1));
  // The administrator's commands (admin/registry.ts): the same as the HTTP API and XEP-0133.
  if (argv[0] === 'import' || argv[0] === 'export') return migrateCommand(argv, configFrom);
  const registered = findCliCommand(argv);
  const hostedElsewhere =
    registered?.id === 'user.remove' && argv[2] !== undefined && !argv.includes('--help') && notHosted(argv);
  if (registered && !hostedElsewhere && !argv.includes('--help') && !argv.includes('-h'))
    return runCliCommand(registered, argv, {
      readSecret: (given) => readPassword(given, true),
      loadConfig: configFrom,
    });
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      password: { type: 'string', short: 'p' },
      prefix: { type: 'string' },
      count: { type: 'string' },
      domain: { type: 'string' },
      iterations: { type: 'string' },
      url: { type: 'string' },
      token: { type: 'string' },
      list: { type: 'boolean' },
      json: { type: 'boolean' },
      'shutdown-timeout': { type: 'string' },
      workers: { type: 'string', short: 'w' },
      force: { type: 'boolean' },
      to: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, sub, arg] = positionals;
  if (values.help || !command) {
    console.log(USAGE);
    return command ? 0 : 1;
  }
  if (command === 'version') {
    console.log(NATTER_VERSION);
    return 0;
  }
  if (command === 'check') return checkCommand(values.config);
  const config = configFrom(values.config);
  if (command === 'cert') return certCommand(sub, positionals.slice(2), config, values.json === true);
  if (command === 'sessions')
    return sessionsCommand(config, values.url, values.list === true, values.json === true, values.token);
  if (command === 's2s') return s2sCommand(config, values.url, values.json === true, values.token);
  if (command === 'serve') {
    const shutdownTimeoutMs = Number(values['shutdown-timeout'] ?? '10000');
    if (!Number.isFinite(shutdownTimeoutMs) || shutdownTimeoutMs < 0)
      throw new Error('--shutdown-timeout must be a number of milliseconds');
    const workers = values.workers === undefined ? 1 : parseWorkers(values.workers);
    const addUser = addUserCommand(
      {
        script: process.argv[1],
        configPath: values.config ?? findConfigFile(),
        cwd: process.cwd(),
      },
      config.hosts[0]!,
    );
    // --workers N: this process forks N workers sharing the ports (docs/decisions/0009).
    if (workers > 1 && nodeCluster.isPrimary) {
      // The primary's few lines (workers started, died, restarted) are logged at least at info.
      const level = ['warn', 'error', 'fatal'].includes(config.log.level) ? 'info' : config.log.level;
      const out = openLogOutput({ ...config.log, level });
      return runPrimary({
        count: workers,
        log: out.logger,
        shutdownTimeoutMs,
        // logrotate's SIGHUP: the primary appends to the same file as the workers.
        onReload: () => out.reopen(),
        // Once, when every worker serves, with what the first one runs (its node is not ours).
        announce: (started) => {
          if (started === undefined) return out.logger.info({ workers }, 'natter started with workers');
          const { node: _node, ...summary } = started as StartSummary;
          announceStart(out, out.logger, 'natter started with workers', summary, {
            addUser,
            ...(out.file !== undefined ? { logFile: out.file } : {}),
            workers,
          });
        },
      });
    }
    // SIGHUP's default action ends the process: from here on it is ours (held until started).
    const hangup: { reload: (() => void) | undefined; early: boolean } = { reload: undefined, early: false };
    process.on('SIGHUP', () => (hangup.reload ? hangup.reload() : (hangup.early = true)));
    const out = openLogOutput(config.log);
    // logrotate moves the file, then sends SIGHUP: the first thing a reload does is reopen it.
    if (out.file !== undefined) reloaders.push({ name: 'log file', run: () => out.reopen() });
    const index = workerIndex();
    // One root logger for the process: a reload changes its level, and every child's with it.
    const log = out.logger;
    // A worker joins its siblings over the mesh, or, with `cluster` configured, the Redis cluster
    // as a node of its own (`<nodeId>-w<index>`), like a process on another machine.
    const worker = index === undefined || config.cluster ? undefined : workerBus(log);
    const redisWorkerBus =
      index !== undefined && config.cluster
        ? new RedisBus({
            nodeId: `${config.cluster.nodeId}-w${index}`,
            url: config.cluster.redis,
            prefix: config.cluster.prefix,
            log: out.logger,
          })
        : undefined;
    const server = await startServer(config, {
      logger: out.logger,
      shutdownTimeoutMs,
      bus: worker?.bus ?? redisWorkerBus,
      s2sSecret: worker?.s2sSecret,
      // Said below, once SIGTERM and SIGINT stop it cleanly.
      announce: () => undefined,
    });
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      server.core.log.info({ signal }, 'signal received: shutting down');
      // stop() is bounded by shutdownTimeoutMs; this is the last resort if storage hangs.
      const force = setTimeout(() => process.exit(1), shutdownTimeoutMs + 5000);
      force.unref();
      void server.stop().then(
        () => process.exit(0),
        (err: unknown) => {
          server.core.log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    // A worker whose primary is gone stops too (its ports are closed with the primary).
    if (index !== undefined) process.on('disconnect', () => stop('primary gone'));
    // SIGHUP (`systemctl reload`, the primary forwarding it to workers): reload, one at a time.
    const configPath = configPathFrom(values.config);
    let reloading = Promise.resolve();
    hangup.reload = () => {
      if (stopping) return;
      reloading = reloading.then(() => reloadFromFile(server, configPath));
    };
    if (hangup.early) hangup.reload();
    // A worker logs its line; the primary prints the start message once for all of them.
    announceStart(
      out,
      server.core.log,
      'natter started',
      server.summary,
      { addUser, ...(out.file !== undefined ? { logFile: out.file } : {}) },
      index === undefined,
    );
    if (server.certificate.generated)
      server.core.log.info(
        { cert: server.certificate.cert },
        'using a generated self-signed certificate (set tls.cert/tls.key for production)',
      );
    if (index !== undefined)
      workerReady(
        server.core.cluster?.nodeId ?? String(index),
        Object.fromEntries(
          server.config.listeners.flatMap((l) => {
            try {
              return [[l.type, server.port(l.type)]];
            } catch {
              return [];
            }
          }),
        ),
        server.summary,
      );
    return new Promise<number>(() => {});
  }
  if (command === 'backup') {
    if (!sub) throw new Error('usage: natter backup DIR');
    const m = await backup(config, sub, { progress: progress() });
    const rows = Object.values(m.tables).reduce((a, b) => a + b, 0);
    console.log(
      `backed up ${rows} rows in ${Object.keys(m.tables).length} tables` +
        `${m.directories.length ? ` and ${m.directories.map((d) => `${d}/`).join(', ')}` : ''} to ${sub}`,
    );
    return 0;
  }
  if (command === 'restore') {
    if (!sub) throw new Error('usage: natter restore DIR [--force]');
    const { manifest, movedAside } = await restore(config, sub, { force: values.force === true });
    const rows = Object.values(manifest.tables).reduce((a, b) => a + b, 0);
    console.log(`restored ${rows} rows from the backup of ${manifest.createdAt} (Natter ${manifest.natter})`);
    for (const p of movedAside) console.log(`kept what it replaced as ${p}`);
    return 0;
  }
  if (command === 'storage') {
    if (sub !== 'copy' || !values.to)
      throw new Error('usage: natter storage copy --to postgres://USER@HOST/DATABASE');
    const r = await storageCopy(config, values.to, { progress: progress() });
    for (const t of r.tables) console.log(`${t.name}: ${t.rows} rows`);
    console.log(
      `copied and verified ${r.tables.reduce((a, t) => a + t.rows, 0)} rows into ${r.target}; ` +
        'to use it, set "storage": { "engine": "postgres", "url": "…" } in the configuration',
    );
    return 0;
  }
  if (command === 'roster') {
    if (sub !== 'import' || !arg) throw new Error('usage: natter roster import FILE.json');
    // { "user@host": [ { "jid": "contact@host", "subscription": "both", "name"?, "groups"? } ] }
    const data = JSON.parse(readFileSync(arg, 'utf8')) as Parameters<typeof importRosters>[1];
    const { db } = await openAccounts(config);
    try {
      await db.migrate('roster', rosterMigrations);
      const n = await importRosters(db.db, data);
      console.log(`imported ${n} roster items for ${Object.keys(data).length} accounts`);
      return 0;
    } finally {
      await db.close();
    }
  }
  if (command === 'user') {
    const { store, db } = await openAccounts(config);
    try {
      switch (sub) {
        case 'remove': {
          // An account of a domain not hosted (older versions let `user add` create one) has no
          // data: removed from the store directly. Hosted accounts go through `natter user remove`.
          const { user, host } = splitAccount(arg, config);
          if (!(await store.remove(user, host))) throw new Error(`no account ${user}@${host}`);
          console.log(`removed ${user}@${host} (not a hosted domain: it had no data and no sessions)`);
          return 0;
        }
        case 'add-bulk': {
          const prefix = values.prefix ?? 'user';
          const count = Number(values.count ?? '0');
          const host = values.domain ?? config.hosts[0]!;
          hostedAccount(config, 'x', host);
          const iterations = Number(values.iterations ?? config.auth.iterations);
          if (!Number.isInteger(count) || count <= 0) throw new Error('--count must be a positive integer');
          if (!values.password) throw new Error('--password is required');
          let created = 0;
          const batch = 32;
          const shown = progress();
          for (let i = 1; i <= count; i += batch) {
            shown.update('accounts', i - 1, count);
            await Promise.all(
              Array.from({ length: Math.min(batch, count - i + 1) }, async (_, k) => {
                try {
                  await store.create(`${prefix}${i + k}`, host, values.password!, iterations);
                  created++;
                } catch (err) {
                  if (!(err instanceof AccountExistsError)) throw err;
                }
              }),
            );
          }
          shown.end();
          console.log(`created ${created} accounts (${count - created} existed)`);
          return 0;
        }
        default:
          throw new Error(
            `unknown user command "${sub ?? ''}" (add, passwd, remove, disable, enable, info, list, add-bulk)`,
          );
      }
    } finally {
      await db.close();
    }
  }
  console.error(`unknown command "${command}"\n\n${USAGE}`);
  return 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof ConfigError) console.error(err.message);
    else console.error(`error: ${(err as Error).message}`);
    process.exit(2);
  },
);
