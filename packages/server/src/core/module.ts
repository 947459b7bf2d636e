import type { AdminCommandRunner } from './admin-commands.js';
import type { Kysely, Migration } from 'kysely';
import type { z } from 'zod';
import type { Element } from '@natter/xml';
import type { HookMap, HookName, RouteEvent } from './hooks.js';
import type { IqHandler } from './iq-dispatcher.js';
import { STANDALONE, type ClusterView } from './cluster/cluster.js';
import type { Host, Identity } from './host.js';
import type { ServerCore } from './server-core.js';
import type { ServiceHandler } from './router.js';
import type { Logger } from './logger.js';
import type { ClientStreamView, Admission, CloseInterceptor, StreamLimiter } from './stream/stream-view.js';
import type { Config, Limits } from '../config.js';
import type { StorageConfig } from '../storage/database.js';
import type { HttpHandler } from './http-routes.js';
import type { Jid } from '@natter/jid';
import type { Session, SessionRecord } from './session.js';
import { isLocal, type SessionDirectory } from './session-registry.js';
import type { Bind2Feature, Sasl2Extension } from './sasl2-extension.js';

/**
 * A server module: one protocol feature, in one folder named after it. It declares its name
 * (= folder = config key), the specs it implements, validated options with defaults, its
 * dependencies and its storage migrations; `setup` registers handlers through the context,
 * which records them so they can be undone.
 */
export interface ModuleDefinition<O extends z.ZodType = z.ZodType> {
  name: string;
  description: string;
  /** e.g. ['RFC 6121 §2', 'XEP-0237'] */
  specs: string[];
  options?: O;
  /**
   * Options a reload (SIGHUP) may change while the server runs: only those the module reads from
   * `ctx.options` when it uses them (limits, rates, sizes), never those it copied at setup. Any
   * other option change waits for a restart (the reload says so).
   */
  reloadable?: readonly (keyof z.infer<O> & string)[];
  dependencies?: string[];
  /** Versioned migrations, applied in name order at start-up, once per database. */
  migrations?: Record<string, Migration>;
  /** Enabled without configuration. */
  enabledByDefault?: boolean;
  /** Called once per virtual host. May return a teardown function. */
  setup(
    ctx: ModuleContext<z.infer<O>>,
  ): void | (() => void | Promise<void>) | Promise<void | (() => void | Promise<void>)>;
}

export function defineModule<O extends z.ZodType>(def: ModuleDefinition<O>): ModuleDefinition<O> {
  return def;
}

/** The server's configuration as a module sees it: read-only, all the way down. */
export type ServerConfigView = DeepReadonly<Config>;
type DeepReadonly<T> = T extends (...args: any[]) => unknown
  ? T
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

/** A session's connection as `ModuleContext.sessionInfo` describes it. */
export interface SessionInfo {
  ip: string;
  /** When the session was bound (ms since the epoch). */
  since: number;
  secure: boolean;
  credentialsAllowed: boolean;
  hibernated: boolean;
}

/** Values a module keeps once per server process (see `ModuleContext.processScoped`). */
const processStores = new WeakMap<ServerCore, Map<string, unknown>>();

/** Where an IQ handler listens: the server's domain, or any account's bare JID. */
export type IqTarget = 'host' | 'account';

export class ModuleContext<Options> {
  private readonly undo: (() => void)[] = [];
  private readonly teardowns: (() => void | Promise<void>)[] = [];

  constructor(
    readonly module: string,
    readonly host: Host,
    readonly options: Options,
    readonly server: ServerCore,
    readonly log: Logger,
  ) {}

  get domain(): string {
    return this.host.domain;
  }

  get db(): Kysely<any> {
    return this.server.database.db;
  }

  /** The storage `db` was opened on, for a module that needs a connection of its own (a writer thread). */
  get storage(): StorageConfig {
    return this.server.database.config;
  }

  /**
   * This node's place in a cluster (docs/decisions/0009): its name, whether it acts for the
   * cluster, and messages to the same module on the other nodes (cache invalidation). Without a
   * cluster: one node, the leader, and messages go nowhere.
   */
  get cluster(): ClusterView {
    return (this.clusterView ??= this.server.cluster?.view(this.module, this.domain) ?? STANDALONE);
  }
  private clusterView: ClusterView | undefined;

  /** The sessions' records (docs/decisions/0009): read them, deliver to them with `deliver`. */
  get sessions(): SessionDirectory {
    return this.server.sessions;
  }

  /**
   * The live sessions held by this node, for what only the node holding a stream can do (pinging
   * its clients). Everything else reads records (`sessions`).
   */
  localSessions(): IterableIterator<Session> {
    return this.server.sessions.all();
  }

  /**
   * Delivers a stanza to one session, given its record or its full JID, as the last step of
   * routing (no hooks run): the one verb modules deliver with. A full JID with no session is ignored.
   */
  deliver(to: SessionRecord | Jid, stanza: Element): void {
    const session = 'node' in to ? this.server.sessions.get(to.jid) : this.server.sessions.get(to);
    if (session && (!('node' in to) || session === to)) this.router.deliver(session, stanza);
  }

  get router() {
    return this.server.router;
  }

  get accounts() {
    return this.server.accounts;
  }

  /** Registers a hook handler (higher priority runs first; the core's own handlers run at -1000). */
  hook<K extends HookName>(name: K, fn: HookMap[K], priority = 0): void {
    this.undo.push(this.host.hooks.add(name, fn, priority, this.module));
  }

  /**
   * Handles IQs of `type` whose payload is `<name xmlns=xmlns/>`, addressed to the domain or to
   * an account's bare JID. The namespace becomes a disco feature of that target unless `feature: false`.
   */
  iq(
    target: IqTarget,
    type: 'get' | 'set',
    xmlns: string,
    name: string,
    fn: IqHandler,
    opts: { feature?: boolean } = {},
  ): void {
    const table = target === 'host' ? this.host.hostIq : this.host.accountIq;
    this.undo.push(table.on(type, xmlns, name, fn, this.module));
    if (opts.feature !== false) this.feature(target, xmlns);
  }

  /**
   * Offers an API to other modules of this host (declare them as dependents so they load after).
   * Typed by the caller: `ctx.provide<RosterApi>('roster', api)` / `ctx.use<RosterApi>('roster')`.
   */
  provide<T>(name: string, api: T): void {
    if (this.host.provided.has(name)) throw new Error(`${name} is already provided on ${this.domain}`);
    this.host.provided.set(name, api);
    this.undo.push(() => this.host.provided.delete(name));
  }

  /** An API another module provides; undefined when that module is disabled. */
  use<T>(name: string): T | undefined {
    return this.host.provided.get(name) as T | undefined;
  }

  /**
   * Counts a limit acting on a peer, for operators (`natter_throttled_total{limit}` on the admin
   * listener's /metrics). `limit` is one of a few fixed names (never a value from the peer).
   */
  throttled(limit: string): void {
    this.server.metrics.throttled(limit);
  }

  /** Advertises a disco#info feature on the domain or on accounts. */
  feature(target: IqTarget, ...vars: string[]): void {
    const set = target === 'host' ? this.host.hostFeatures : this.host.accountFeatures;
    for (const v of vars) {
      if (set.has(v)) continue;
      set.add(v);
      this.undo.push(() => set.delete(v));
    }
  }

  identity(target: IqTarget, identity: Identity): void {
    const list = target === 'host' ? this.host.hostIdentities : this.host.accountIdentities;
    list.push(identity);
    this.undo.push(() => {
      const i = list.indexOf(identity);
      if (i >= 0) list.splice(i, 1);
    });
  }

  /**
   * Serves a whole domain (e.g. `conference.example.com`): every stanza to it reaches `handler`.
   * `perAddress`: in a cluster each bare JID of the domain runs on its own node (rooms placed by
   * rendezvous hashing, `ctx.cluster.ownerOf`); the handler then gets what is addressed to the
   * bare JIDs this node owns, and the service domain itself on the oldest node.
   */
  service(domain: string, handler: ServiceHandler, opts: { perAddress?: boolean } = {}): void {
    this.undo.push(this.router.addService(domain, this.host, handler, this.module, opts.perAddress));
    this.host.services.add(domain);
    this.undo.push(() => this.host.services.delete(domain));
  }

  /**
   * Serves HTTP requests under `prefix` (e.g. '/upload/') on the http listeners, for the whole server
   * (not per host): register it once per process (`processScoped`). Removed with the module.
   */
  httpRoute(prefix: string, handler: HttpHandler): void {
    this.undo.push(this.server.httpRoutes.add(prefix, handler, this.module));
  }

  /** Offers a stream feature after authentication. */
  streamFeature(fn: (stream: ClientStreamView) => Element | null): void {
    this.server.streamFeatures.push(fn);
    this.undo.push(() => {
      const i = this.server.streamFeatures.indexOf(fn);
      if (i >= 0) this.server.streamFeatures.splice(i, 1);
    });
  }

  /**
   * Takes part in SASL2 (XEP-0388) on this host's client streams: inline features, mechanisms of
   * its own, what happens once a client is authenticated. Removed with the module.
   */
  sasl2(ext: Sasl2Extension): void {
    const list = this.host.sasl2Extensions;
    list.push(ext);
    this.undo.push(() => {
      const i = list.indexOf(ext);
      if (i >= 0) list.splice(i, 1);
    });
  }

  /** Offers a Bind2 inline feature (XEP-0386 §2.3) on this host. Removed with the module. */
  bind2Feature(feature: Bind2Feature): void {
    const list = this.host.bind2Features;
    if (list.some((f) => f.var === feature.var))
      throw new Error(`a Bind2 feature ${feature.var} is already offered on ${this.domain}`);
    list.push(feature);
    this.undo.push(() => {
      const i = list.indexOf(feature);
      if (i >= 0) list.splice(i, 1);
    });
  }

  // --- streams and sessions (stream management, limits) ----------------------------------------

  /**
   * Runs `fn` when a client stream of this host closes, before its session ends; `fn` returning
   * true keeps the session (XEP-0198 hibernation). Removed with the module.
   */
  onStreamClose(fn: CloseInterceptor): void {
    const guarded: CloseInterceptor = (stream, clean) =>
      stream.host?.domain === this.domain ? fn(stream, clean) : false;
    this.server.closeInterceptors.push(guarded);
    this.undo.push(() => {
      const i = this.server.closeInterceptors.indexOf(guarded);
      if (i >= 0) this.server.closeInterceptors.splice(i, 1);
    });
  }

  /** Ends a session (hibernated or live): presence unavailable, undelivered messages routed again. */
  endSession(session: Session, clean: boolean): Promise<void> {
    return this.server.endSession(session, clean);
  }

  /** Routes again a stanza a session accepted but never delivered (see ServerCore.reroute). */
  reroute(session: Session, stanza: Element, at?: number): void | Promise<void> {
    return this.server.reroute(session, stanza, at);
  }

  /** The server is shutting down. */
  get stopping(): boolean {
    return this.server.stopping;
  }

  /** The server-wide `limits` configuration. */
  get serverLimits(): Limits {
    return this.server.config.limits;
  }

  /**
   * Installs the process-wide stream limiter and connection admission (the limits module); false
   * when one is installed already. Removed with the module that installed it.
   */
  installLimiter(limiter: StreamLimiter, admit: Admission): boolean {
    if (this.server.limiter) return false;
    this.server.limiter = limiter;
    this.server.admit = admit;
    this.undo.push(() => {
      if (this.server.limiter !== limiter) return;
      this.server.limiter = undefined;
      this.server.admit = undefined;
    });
    return true;
  }

  /** Routes a server-originated stanza (its `from` must be set). */
  send(stanza: Element): void | Promise<void> {
    return this.router.route(stanza);
  }

  /** Sends an IQ from a server address and resolves with the result (rejects with a StanzaError). */
  sendIq(stanza: Element, timeoutMs?: number): Promise<Element> {
    return this.router.sendIq(stanza, timeoutMs);
  }

  /** Returns an error for a stanza to its sender. */
  bounce(ev: RouteEvent, condition: Parameters<ServerCore['router']['bounce']>[1], text?: string): void {
    this.router.bounce(ev, condition, text);
  }

  /** A repeating timer stopped with the module. */
  every(ms: number, fn: () => void | Promise<void>): void {
    const t = setInterval(() => {
      Promise.resolve()
        .then(fn)
        .catch((err: unknown) => this.log.error({ err }, 'timer failed'));
    }, ms);
    t.unref();
    this.undo.push(() => clearInterval(t));
  }

  /** Runs on stop (flush state, close resources). */
  onStop(fn: () => void | Promise<void>): void {
    this.teardowns.push(fn);
  }

  async stop(): Promise<void> {
    for (const t of this.teardowns.reverse()) await t();
    for (const u of this.undo.reverse()) u();
  }

  // ---------------------------------------------------------------------------------------------
  // What a module may know of the server beyond its host (rule 5: modules never hold `ServerCore`).
  // Kept at the end of the class, in one block, so it merges cleanly with stream-side changes.
  // ---------------------------------------------------------------------------------------------

  /**
   * The administrator's commands (admin/registry.ts: the same as the CLI and the HTTP API), run by
   * name. Undefined only in a core built without them (tests).
   */
  get adminCommands(): AdminCommandRunner | undefined {
    return this.server.adminCommands;
  }

  /** Whether `jid` (any resource) is one of the server's administrators (`admins`). */
  isAdmin(jid: Jid): boolean {
    const bare = jid.bare.toString();
    return this.server.config.admins.some((a) => a.toLowerCase() === bare);
  }

  /** The server's whole configuration, read-only (a module's own options are `options`). */
  get config(): ServerConfigView {
    return this.server.config;
  }

  /**
   * Ends every session of an account but `except` (account removed: `not-authorized`; password
   * changed: `reset`, RFC 6120 §4.9.3.16). Resolves with how many sessions were ended.
   */
  kickAccount(
    bare: Jid,
    condition: 'not-authorized' | 'conflict' | 'reset' = 'not-authorized',
    opts: { except?: Session; text?: string } = {},
  ): Promise<number> {
    return this.server.kickAccount(bare, condition, opts);
  }

  /**
   * Ends one session, live or hibernated, here or on another node of the cluster, with a stream
   * error (`not-authorized` by default): what `kickAccount` does for one resource. Resolves false
   * when the session was already gone.
   */
  async kickSession(
    record: SessionRecord,
    condition: 'not-authorized' | 'conflict' | 'reset' = 'not-authorized',
    text = 'session ended',
  ): Promise<boolean> {
    if (record.closed) return false;
    if (!isLocal(record)) {
      if (!this.server.cluster) return false;
      this.server.cluster.kick(record, condition, text);
      return true;
    }
    record.stream.fail(condition, text);
    await this.server.endSession(record, false);
    return true;
  }

  /**
   * What this node knows of the connection behind a session it holds: the client's address, when the
   * session began, whether the stream is encrypted and whether credentials may travel on it (TLS, or
   * `auth.allowPlaintext`), whether it is hibernated (XEP-0198). Undefined for another node's session.
   */
  sessionInfo(record: SessionRecord): SessionInfo | undefined {
    if (!isLocal(record)) return undefined;
    return {
      ip: record.ip,
      since: record.createdAt,
      secure: record.stream.secure,
      credentialsAllowed: record.stream.credentialsAllowed(),
      hibernated: record.hibernated,
    };
  }

  /**
   * One value per server process and key, shared by every virtual host's instance of a module
   * (rule 7: process-wide concerns register at process scope, never as "the first host configures
   * it"). `factory` runs once, for whichever host asks first; later calls get the same value.
   * Key it with the module's name, e.g. `ctx.processScoped('blocking:store', () => open())`.
   */
  processScoped<T>(key: string, factory: () => T): T {
    let store = processStores.get(this.server);
    if (!store) processStores.set(this.server, (store = new Map()));
    if (!store.has(key)) store.set(key, factory());
    return store.get(key) as T;
  }

  // ---------------------------------------------------------------------------------------------
  // External components (XEP-0114) as modules see them (gateway helper's block).
  // ---------------------------------------------------------------------------------------------

  /**
   * Routes a stanza as if the account in `ev.from` (of this host) had sent it: the host's
   * `stanza/out` hooks first (carbons, blocking, archives), then the router. For stanzas a
   * privileged entity sends in a user's name (XEP-0356); `ev.origin` is undefined.
   */
  routeAs(ev: RouteEvent): void | Promise<void> {
    return this.server.routeFromAccount(this.host, ev);
  }

  /** Does the account `ev.to` names exist (a live session, or a stored account)? */
  accountExists(ev: RouteEvent): Promise<boolean> {
    return this.host.accountExists(ev);
  }

  /** The account's sessions that requested the roster (RFC 6121 §2.1.6: they get roster pushes). */
  interestedSessions(bare: string): SessionRecord[] {
    return this.host.interestedSessions(bare);
  }

  /** Runs every handler of a notification hook of this host (e.g. `user/deleted`). */
  notify<K extends HookName>(name: K, event: Parameters<HookMap[K]>[0]): Promise<void> {
    return this.host.hooks.notify(name, event);
  }
}
