import { join, resolve } from 'node:path';
import { parseConfig, ConfigError, type Config, type ConfigInput, type ListenerConfig } from './config.js';
import { Database } from './storage/database.js';
import { adminCommandRunner } from './admin/runner.js';
import { AccountStore, accountMigrations } from './accounts/account-store.js';
import { Registration } from './core/stream/steps/register.js';
import { Router } from './core/router.js';
import { SessionRegistry } from './core/session-registry.js';
import { ServerCore } from './core/server-core.js';
import { Host } from './core/host.js';
import { ModuleContext, type ModuleDefinition } from './core/module.js';
import { createLogger, logRingOf, type Logger } from './core/logger.js';
import { randomBytes } from 'node:crypto';
import { s2sTrustedCas, type CertificateFiles } from './tls.js';
import { ServerCertificates, type CertificateChange } from './certificates.js';
import { assignPath, describeChange, planReload, type ConfigChange } from './reload.js';
import { OutboundPool } from './core/s2s/outbound-pool.js';
import { dialServer } from './listeners/socket-transport.js';
import {
  startListener,
  s2sListenerEnv,
  type RunningListener,
  type Admission,
} from './listeners/listeners.js';
import { builtinModules } from './modules/index.js';
import { Cluster, STANDALONE } from './core/cluster/cluster.js';
import { AcmeManager } from './acme/acme-manager.js';
import { AcmeStore, acmeMigrations } from './acme/acme-store.js';
import { servedDomains } from './admin/cert-commands.js';
import type { NodeBus } from './core/cluster/node-bus.js';
import { RedisBus } from './core/cluster/redis-bus.js';
import { workerIndex } from './core/cluster/workers.js';
import { scrapeThroughPrimary } from './core/cluster/machine-metrics.js';
import { startSummary, type StartSummary } from './start-summary.js';

export interface StartOptions {
  /** Extra or replacement modules (tests, plugins). */
  modules?: ModuleDefinition[];
  logger?: Logger;
  /** Upper bound on `stop()`: work still running after it is abandoned (default 10 s). */
  shutdownTimeoutMs?: number;
  /** Runs as a node of a cluster over this bus (docs/decisions/0009): `--workers`, or Redis. */
  bus?: NodeBus;
  /** The dialback secret shared by every node of a cluster (else `s2s.dialbackSecret` or random). */
  s2sSecret?: string;
  /**
   * Says that the server runs, once every listener is up. Default: an info line "natter started"
   * with the summary as fields. `natter serve` passes a no-op and says it itself once its signal
   * handlers are set, with its start message (cli.ts).
   */
  announce?: (summary: StartSummary, log: Logger) => void;
}

/** What `reload()` did: applied settings, settings waiting for a restart, certificates. */
export interface ReloadReport {
  applied: ConfigChange[];
  restart: ConfigChange[];
  certificates: CertificateChange[];
}

export interface NatterServer {
  readonly core: ServerCore;
  /** The running configuration (a reload changes what it can in place). */
  readonly config: Config;
  /** The default certificate's files (tls.cert/tls.key, or the generated one). */
  readonly certificate: CertificateFiles;
  /** Every certificate served, by name (SNI) and for server-to-server. */
  readonly certificates: ServerCertificates;
  /** What runs and where (hosts, client addresses, services, storage): the start message's facts. */
  readonly summary: StartSummary;
  /** Certificates from ACME (`tls.acme`), when configured. */
  readonly acme: AcmeManager | undefined;
  /** Bound port of the first listener of a kind (useful with port 0). */
  port(kind: ListenerConfig['type']): number;
  /** Creates an account. */
  addUser(username: string, password: string, host?: string): Promise<void>;
  /**
   * Stops accepting, closes every stream with `system-shutdown`, ends every session (live and
   * hibernated: what they did not deliver goes to offline storage), waits for stanzas being
   * routed, flushes modules, closes storage; bounded by `shutdownTimeoutMs`.
   */
  stop(): Promise<void>;
  /**
   * SIGHUP (docs/certificates.md): applies `next` (validated: loadConfigFile) to the running
   * server without dropping a session, and re-reads every certificate file even when the
   * configuration is unchanged. Settings it cannot change are reported as needing a restart;
   * a certificate that fails to load keeps the previous one. One log line per change. When a
   * module's options are invalid nothing of `next` is applied (an error line says why). Without
   * `next` (the file is invalid), or then, only the certificates are re-read. Reloads run one at
   * a time.
   */
  reload(next?: Config): Promise<ReloadReport>;
}

/** Orders modules so that dependencies come first; errors name the missing or cyclic module. */
function orderModules(defs: ModuleDefinition[]): ModuleDefinition[] {
  const byName = new Map(defs.map((d) => [d.name, d]));
  const out: ModuleDefinition[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (d: ModuleDefinition, path: string[]) => {
    if (state.get(d.name) === 'done') return;
    if (state.get(d.name) === 'visiting')
      throw new ConfigError(`module dependency cycle: ${[...path, d.name].join(' → ')}`);
    state.set(d.name, 'visiting');
    for (const dep of d.dependencies ?? []) {
      const dd = byName.get(dep);
      if (!dd) throw new ConfigError(`module ${d.name} needs module ${dep}, which is disabled or unknown`);
      visit(dd, [...path, d.name]);
    }
    state.set(d.name, 'done');
    out.push(d);
  };
  for (const d of defs) visit(d, []);
  return out;
}

/** Picks the enabled modules and validates their options (errors name the option). */
function selectModules(
  config: Config,
  available: ModuleDefinition[],
): { def: ModuleDefinition; options: unknown }[] {
  const byName = new Map(available.map((d) => [d.name, d]));
  for (const name of Object.keys(config.modules)) {
    if (!byName.has(name))
      throw new ConfigError(
        `unknown module "${name}" in modules (known: ${[...byName.keys()].sort().join(', ')})`,
      );
  }
  const enabled = available.filter((d) => {
    const c = config.modules[d.name];
    return c === undefined ? d.enabledByDefault !== false : c !== false;
  });
  return orderModules(enabled).map((def) => {
    const raw = config.modules[def.name] ?? {};
    if (!def.options) return { def, options: raw };
    const r = def.options.safeParse(raw);
    if (!r.success) {
      const lines = r.error.issues.map((i) => `  modules.${def.name}.${i.path.join('.')}: ${i.message}`);
      throw new ConfigError(`invalid options for module ${def.name}:\n${lines.join('\n')}`);
    }
    return { def, options: r.data };
  });
}

export async function startServer(
  input: ConfigInput | Config = {},
  opts: StartOptions = {},
): Promise<NatterServer> {
  const config = parseConfig(input);
  const baseLog = opts.logger ?? createLogger(config.log.level);
  // A cluster of machines (`cluster` in the configuration) talks over Redis, unless the caller
  // brought its bus (`--workers` without Redis, tests). Nothing connects before cluster.start().
  const bus =
    opts.bus ??
    (config.cluster
      ? new RedisBus({
          nodeId: config.cluster.nodeId,
          url: config.cluster.redis,
          prefix: config.cluster.prefix,
          log: baseLog,
        })
      : undefined);
  // Every line of a cluster node names it (`natter serve --workers` interleaves them on one stdout).
  const log = bus ? baseLog.child({ node: bus.nodeId }) : baseLog;
  const dataDir = resolve(config.dataDir);
  const available = [
    ...builtinModules.filter((m) => !opts.modules?.some((o) => o.name === m.name)),
    ...(opts.modules ?? []),
  ];
  const modules = selectModules(config, available);

  // Set once the core exists (storage is opened first); until then queries are not measured.
  // eslint-disable-next-line prefer-const
  let core: ServerCore | undefined;
  const database = Database.open(
    config.storage.engine === 'sqlite'
      ? { engine: 'sqlite', path: config.storage.path ?? join(dataDir, 'natter.sqlite') }
      : config.storage,
    (err) => log.warn({ err }, 'a storage connection failed; the pool replaces it'),
    (ms, failed) => core?.metrics.query(ms, failed),
  );
  try {
    await database.migrate('accounts', accountMigrations);
    await database.migrate('acme', acmeMigrations);
    for (const { def } of modules) if (def.migrations) await database.migrate(def.name, def.migrations);
  } catch (err) {
    await database.close();
    throw err;
  }

  const accounts = new AccountStore(database.db, { iterations: config.auth.iterations });
  const sessions = new SessionRegistry(bus?.nodeId);
  const router = new Router(sessions, log);
  core = new ServerCore(config, router, sessions, accounts, database, log);
  if (bus) core.metrics.registry.setDefaultLabels({ node: bus.nodeId });
  // A worker of `natter serve --workers N` (the mesh or Redis): the workers share the admin port,
  // so a scrape of any of them answers for the machine, gathered by the primary (docs/monitoring.md).
  if (workerIndex() !== undefined) scrapeThroughPrimary(core.metrics);
  const cluster = bus ? new Cluster(bus, log) : undefined;
  core.cluster = router.cluster = cluster;
  core.registration = new Registration(core);
  core.adminCommands = adminCommandRunner(core);
  core.recentLogs = logRingOf(baseLog);

  // XEP-0114 component domains are routed (or bounced while away) from the start.
  for (const domain of Object.keys(config.components)) router.addComponent(domain);

  const contexts: ModuleContext<unknown>[] = [];
  const teardowns: (() => void | Promise<void>)[] = [];
  const listeners: RunningListener[] = [];
  let clusterJoined = false;
  /**
   * A start that fails part-way gives back what it took (listeners, the cluster, modules' timers
   * and threads, storage), so that a program embedding the server can go on, or exit by itself.
   */
  const abandon = async (err: unknown): Promise<never> => {
    const quietly = async (step: () => unknown) => {
      try {
        await step();
      } catch {
        // the error that stopped the start is the one to report
      }
    };
    for (const l of listeners) await quietly(() => l.close());
    if (clusterJoined) await quietly(() => cluster?.stop());
    for (const td of teardowns.reverse()) await quietly(td);
    for (const ctx of contexts.reverse()) await quietly(() => ctx.stop());
    await quietly(() => database.close());
    throw err;
  };
  for (const domain of config.hosts.map((h) => h.toLowerCase())) {
    const host = new Host(domain, router, sessions, accounts, log.child({ host: domain }));
    core.hosts.set(domain, host);
    router.hosts.set(domain, host);
  }
  for (const host of core.hosts.values()) {
    for (const { def, options } of modules) {
      const ctx = new ModuleContext(
        def.name,
        host,
        options,
        core,
        log.child({ host: host.domain, module: def.name }),
      );
      contexts.push(ctx);
      let td: Awaited<ReturnType<typeof def.setup>>;
      try {
        td = await def.setup(ctx);
      } catch (err) {
        return abandon(err);
      }
      if (typeof td === 'function') teardowns.push(td);
    }
  }

  // Federation (docs/federation.md): our certificates by domain, verifying peers against Node's
  // roots plus s2s.ca; dialback keys under s2s.dialbackSecret (random per process by default).
  core.s2sSecret = config.s2s.dialbackSecret ?? opts.s2sSecret ?? randomBytes(32).toString('hex');
  const s2sCas = s2sTrustedCas(config.s2s.ca);
  // tls.cert (or the generated one), those imported into dataDir/certs, tls.certificates.
  const certificates = await ServerCertificates.open(dataDir, config.hosts, config.tls, s2sCas).catch(
    abandon,
  );
  const certificate = certificates.files;
  core.s2sCertificates = certificates.s2s;
  // Client listeners choose among the same certificates by SNI (no CAs: they ask for no certificate).
  const s2sEnv = s2sListenerEnv(core, s2sCas, certificates.client.sni);
  if (config.s2s.enabled) core.federation = router.federation = new OutboundPool(core, dialServer);
  const admit: Admission = (ip) => core.admit?.(ip) ?? true;
  try {
    // Joins before accepting clients, so that the first sessions already see the other nodes'.
    clusterJoined = cluster !== undefined;
    await cluster?.start(core);
    for (const l of listenersOf(config))
      listeners.push(await startListener(core, l, certificates, admit, s2sEnv));
  } catch (err) {
    await abandon(err);
  }
  const summary = startSummary({
    config,
    listeners,
    modules: modules.map((m) => m.def.name),
    certificate,
    services: router.serviceDomains(),
    ...(cluster ? { node: cluster.nodeId } : {}),
  });
  // The line names the node through the logger's binding (a key twice confuses JSON parsers).
  const { node: _node, ...facts } = summary;
  (opts.announce ?? ((_s, l) => l.info(facts, 'natter started')))(summary, log);

  let stopped: Promise<void> | undefined;
  let reloading: Promise<unknown> = Promise.resolve();
  const reload = async (file: Config | undefined): Promise<ReloadReport> => {
    let next = file;
    let plan: ReturnType<typeof planReload> = { apply: [], moduleOptions: new Map(), restart: [] };
    try {
      if (next) plan = planReload(config, next, modules, selectModules(next, available));
    } catch (err) {
      // A module's options are invalid (or a module unknown): nothing of the file is applied.
      log.error(
        { err: (err as Error).message },
        `reload: the configuration is not applied (the server keeps running with the previous one): ${(err as Error).message}`,
      );
      next = undefined;
    }
    for (const change of plan.apply) {
      if (change.path !== 'log.level') assignPath(config, change.path, change.to);
      log.info({ reload: change.path }, `reload: ${describeChange(change)}`);
    }
    for (const [name, changed] of plan.moduleOptions) {
      const running = modules.find((m) => m.def.name === name);
      if (running) Object.assign(running.options as object, changed);
    }
    // Certificates: always re-read (renewed in place by certbot, or imported into dataDir/certs).
    const changes = await certificates.reload(config.tls);
    for (const c of changes) {
      const what = `${c.names?.join(', ') ?? ''}${c.notAfter ? `; valid until ${c.notAfter}` : ''}`;
      if (c.change === 'failed')
        log.error(
          { reload: 'tls', cert: c.cert, err: c.error },
          `reload: certificate ${c.cert} not loaded: ${c.error}; ${c.kept ? 'still serving the previous one' : 'not served'}`,
        );
      else if (c.change === 'unchanged')
        log.debug({ reload: 'tls', cert: c.cert }, `reload: certificate ${c.cert} unchanged`);
      else log.info({ reload: 'tls', cert: c.cert }, `reload: certificate ${c.cert} ${c.change} (${what})`);
    }
    for (const l of listeners) l.refreshCertificate?.();
    if (plan.restart.length > 0)
      log.warn(
        { restartNeeded: plan.restart.map((c) => c.path) },
        `reload: these changes need a restart: ${plan.restart.map((c) => c.path).join(', ')}`,
      );
    log.info(
      {
        applied: plan.apply.length,
        restartNeeded: plan.restart.length,
        certificates: changes.filter((c) => c.change !== 'unchanged' && c.change !== 'failed').length,
        certificateErrors: changes.filter((c) => c.change === 'failed').length,
      },
      next ? 'configuration reloaded' : 'certificates reloaded; configuration unchanged',
    );
    // Last, so that the lines above show at the level the operator had when sending SIGHUP.
    const level = plan.apply.find((c) => c.path === 'log.level');
    if (next && level) {
      config.log.level = next.log.level;
      baseLog.level = next.log.level;
    }
    return { applied: plan.apply, restart: plan.restart, certificates: changes };
  };

  // ACME (tls.acme): HTTP-01 answers on the http listeners, from storage (any worker or node may
  // be the one the CA reaches); certificates ordered by the leader, installed by every node.
  let acmeManager: AcmeManager | undefined;
  if (config.tls.acme) {
    const acmeStore = new AcmeStore(database.db);
    core.httpRoutes.add(
      '/.well-known/acme-challenge/',
      async (req, res) => {
        const token = (req.url ?? '').split('?')[0]!.slice('/.well-known/acme-challenge/'.length);
        const answer = await acmeStore.challenge(token);
        if (answer === undefined)
          res.writeHead(404, { 'content-type': 'text/plain' }).end('no such challenge\n');
        else res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(answer);
      },
      'acme',
    );
    acmeManager = new AcmeManager({
      config,
      store: acmeStore,
      log: log.child({ component: 'acme' }),
      served: servedDomains(config),
      cluster: cluster?.view('acme', '*') ?? STANDALONE,
      servedPem: (file) => certificates.served(file),
      reloadCertificates: async () => {
        const run = reloading.then(() => reload(undefined));
        reloading = run.catch(() => undefined);
        await run;
      },
    });
    await acmeManager.start();
  }
  return {
    core,
    config,
    certificate,
    certificates,
    acme: acmeManager,
    reload(next) {
      const run = reloading.then(() => reload(next));
      reloading = run.catch(() => undefined);
      return run;
    },
    summary,
    port(kind) {
      const l = listeners.find((x) => x.config.type === kind);
      if (!l) throw new Error(`no ${kind} listener configured`);
      return l.port;
    },
    async addUser(username, password, hostName) {
      await accounts.create(username, hostName ?? config.hosts[0]!, password);
    },
    stop() {
      stopped ??= (async () => {
        core.stopping = true;
        const budget = opts.shutdownTimeoutMs ?? 10_000;
        const deadline = Date.now() + budget;
        const left = () => Math.max(0, deadline - Date.now());
        log.info({ sessions: sessions.size, streams: core.streams.size }, 'natter stopping');
        // Nothing is ordered from here on; an order in flight is waited for before storage closes.
        const acmeStopped = acmeManager?.stop() ?? Promise.resolve();
        // 1. No new connections (existing ones are closed below, so close() can complete).
        const closing = Promise.all(listeners.map((l) => l.close().catch(() => undefined)));
        // 2. In a cluster, what this node owns goes to the others first (MUC rooms with their
        //    occupants: a rolling restart does not make anyone join again).
        // At most half the budget: what is not handed over by then is announced gone (332) below.
        await withTimeout(
          cluster?.drain() ?? Promise.resolve(),
          Math.min(left(), budget / 2),
          log,
          'handing over to the other nodes',
        );
        // 3. Modules say goodbye while streams are open (MUC: 332 for rooms still here), then every client is told
        //    (XEP-0198 sessions are not hibernated after system-shutdown).
        for (const host of core.hosts.values())
          await withTimeout(host.hooks.notify('server/stopping', {}), left(), log, 'announcing the shutdown');
        for (const stream of [...core.streams]) stream.fail('system-shutdown', 'the server is shutting down');
        for (const stream of [...core.componentStreams])
          stream.fail('system-shutdown', 'the server is shutting down');
        for (const stream of [...core.s2sInbound])
          stream.fail('system-shutdown', 'the server is shutting down');
        // 4. End every session, hibernated ones included: unacknowledged and undelivered messages are
        //    routed again, to offline storage, while the database is still open.
        const ending = [...sessions.all()].map((s) =>
          core.endSession(s, false).catch((err: unknown) => log.error({ err }, 'ending a session failed')),
        );
        await withTimeout(Promise.all(ending), left(), log, 'ending sessions');
        await core.settle(Math.max(0, left() - 2000));
        await withTimeout(
          core.federation?.stop() ?? Promise.resolve(),
          left(),
          log,
          'closing federation streams',
        );
        // The other nodes have seen every session end; now leave the cluster.
        await withTimeout(cluster?.stop() ?? Promise.resolve(), left(), log, 'leaving the cluster');
        router.cancelPending();
        await withTimeout(acmeStopped, left(), log, 'finishing an ACME order');
        for (const td of teardowns.reverse())
          await withTimeout(Promise.resolve().then(td), left(), log, 'module teardown');
        for (const ctx of contexts.reverse()) await withTimeout(ctx.stop(), left(), log, 'module stop');
        // Clients got </stream:stream>: give them a moment to read what is buffered, then cut.
        await withTimeout(closing, Math.min(2000, left()), log, 'closing connections');
        for (const stream of [...core.streams]) stream.transport.destroy();
        for (const stream of [...core.componentStreams]) stream.transport.destroy();
        for (const l of listeners) l.abort();
        await database.close();
        log.info('natter stopped');
      })();
      return stopped;
    },
  };
}

async function withTimeout(p: Promise<unknown>, ms: number, log: Logger, what: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), ms)));
  try {
    const r = await Promise.race([p.then(() => 'done' as const), timeout]);
    if (r === 'timeout') log.warn({ what, ms }, 'shutdown step timed out');
  } catch (err) {
    log.error({ err, what }, 'shutdown step failed');
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The listeners to start: those configured, plus a component listener on 127.0.0.1:5347 when
 * components are configured and no component listener is listed.
 */
function listenersOf(config: Config): ListenerConfig[] {
  // With federation off, no server-to-server listener starts (remote domains are unreachable).
  const list = config.listeners.filter(
    (l) => config.s2s.enabled || (l.type !== 's2s' && l.type !== 's2s-tls'),
  );
  if (Object.keys(config.components).length > 0 && !list.some((l) => l.type === 'component'))
    list.push({ type: 'component', port: 5347, host: '127.0.0.1', proxyProtocol: false });
  return list;
}
