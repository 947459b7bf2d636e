import type { AdminCommandRunner } from './admin-commands.js';
import { xml, type Element } from '@natter/xml';
import { HttpRoutes } from './http-routes.js';
import { parseJid, type Jid } from '@natter/jid';
import { StanzaError, StreamError, delayElement, NS } from '@natter/protocol';
import type { Config } from '../config.js';
import type { AccountStore } from '../accounts/account-store.js';
import type { Registration } from './stream/steps/register.js';
import type { Database } from '../storage/database.js';
import type { RouteEvent } from './hooks.js';
import type { Host } from './host.js';
import { IqTimeoutError, type Router } from './router.js';
import { isLocal, type SessionRegistry } from './session-registry.js';
import { Session, type SessionRecord } from './session.js';
import { ServerMetrics } from './metrics.js';
import type { Cluster, ClusterHost } from './cluster/cluster.js';
import type { C2SStream } from './stream/c2s-stream.js';
import type { ComponentStream } from './stream/xep-0114-component-stream.js';
import type { ClientStreamView, CloseInterceptor, StreamLimiter } from './stream/stream-view.js';
import type { Logger, LogRing } from './logger.js';
import type { CertificateSource, Federation, S2SStreamHandle } from './s2s/federation.js';

export type { StreamLimiter, CloseInterceptor } from './stream/stream-view.js';

/** How long a bound component has to answer the ping sent when another connection claims its domain. */
export const COMPONENT_PROBE_MS = 10_000;

/**
 * What streams and modules share: hosts, router, sessions, accounts, storage, configuration.
 * One per process.
 */
export class ServerCore implements ClusterHost {
  readonly hosts = new Map<string, Host>();
  readonly streams = new Set<C2SStream>();
  /** Connected XEP-0114 components by domain (one stream per domain). */
  readonly components = new Map<string, ComponentStream>();
  /** Every open component stream, bound or still negotiating (closed on shutdown). */
  readonly componentStreams = new Set<ComponentStream>();
  /** Features offered after authentication (stream management, CSI, roster versioning …). */
  readonly streamFeatures: ((stream: ClientStreamView) => Element | null)[] = [];
  /** Run before a closed stream's session is ended; true keeps the session (hibernation). */
  readonly closeInterceptors: CloseInterceptor[] = [];
  /** HTTP paths served by modules on the http listeners. */
  readonly httpRoutes = new HttpRoutes();
  limiter: StreamLimiter | undefined;
  /** Admission of a new connection by IP (connection caps); set by the limits module. */
  admit: ((ip: string) => boolean) | undefined;
  registration!: Registration;
  stopping = false;
  /** Server-to-server: the outbound pool (core/s2s/outbound-pool.ts), when federation is on. */
  federation: Federation | undefined;
  /** Inbound server-to-server streams, negotiating or authenticated (operator view, shutdown). */
  readonly s2sInbound = new Set<S2SStreamHandle>();
  /**
   * XEP-0185: the secret keying our dialback keys (`s2s.dialbackSecret`, else random per process;
   * set by server.ts).
   */
  s2sSecret = '';
  /** Our certificates for server-to-server TLS, with the CAs peers are verified against (server.ts). */
  s2sCertificates: CertificateSource | undefined;
  /** The cluster this node belongs to (docs/decisions/0009), if any. */
  cluster: Cluster | undefined;
  /** Sessions being ended (their hooks, e.g. re-routing to offline storage, still running). */
  private readonly ending = new Map<Session, Promise<void>>();
  /** Stanzas from clients still being routed (awaited on shutdown). */
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Component domains whose bound stream is being pinged (probeComponent). */
  private readonly probing = new Set<string>();

  /** Prometheus metrics (admin listener, `/metrics`). */
  readonly metrics: ServerMetrics;
  /** When this server started (uptime in statistics). */
  readonly startedAt = Date.now();
  /** The administrator's commands (admin/registry.ts), as modules run them (XEP-0133); set by the server. */
  adminCommands: AdminCommandRunner | undefined;
  /**
   * The last log lines at info and above (the web console's "recent logs"), when the server's
   * logger was made by core/logger.ts; set by the server.
   */
  recentLogs: LogRing | undefined;

  constructor(
    readonly config: Config,
    readonly router: Router,
    readonly sessions: SessionRegistry,
    readonly accounts: AccountStore,
    readonly database: Database,
    readonly log: Logger,
  ) {
    this.metrics = new ServerMetrics({
      sessions: () => {
        let hibernated = 0;
        for (const s of this.sessions.all()) if (s.hibernated) hibernated++;
        return { live: this.sessions.localSize - hibernated, hibernated };
      },
      streams: () => {
        let negotiating = 0;
        for (const st of this.streams) if (!st.authenticated) negotiating++;
        return {
          'c2s-negotiating': negotiating,
          component: this.components.size,
          's2s-in': this.s2sInbound.size,
          's2s-out': this.federation?.list().length ?? 0,
        };
      },
    });
  }

  get defaultHost(): Host {
    return this.hosts.values().next().value as Host;
  }

  /** Binds a resource (RFC 6120 §7.7.2.2: a conflicting resource replaces the older session). */
  async bind(stream: ClientStreamView, full: Jid): Promise<Session | StanzaError> {
    if (this.stopping) return new StanzaError('service-unavailable', { text: 'the server is shutting down' });
    const existing = this.sessions.get(full);
    if (existing) {
      this.log.info(
        { jid: full.toString(), node: existing.node },
        'resource conflict: replacing the older session',
      );
      if (isLocal(existing)) {
        existing.stream.fail('conflict', 'replaced by a new connection with the same resource');
        await this.endSession(existing, false);
      } else this.cluster?.kick(existing, 'conflict', 'replaced by a new connection with the same resource');
    }
    if (this.sessions.ofAccount(full.bare).length >= this.config.limits.maxResourcesPerAccount) {
      // A hibernated session (XEP-0198) gives way to a live client: its queue is routed again.
      const oldest = this.sessions
        .localOfAccount(full.bare)
        .filter((s) => s.hibernated)
        .sort((a, b) => a.createdAt - b.createdAt)[0];
      if (oldest) await this.endSession(oldest, false);
    }
    if (this.sessions.ofAccount(full.bare).length >= this.config.limits.maxResourcesPerAccount) {
      return new StanzaError('resource-constraint', {
        text: 'too many resources connected for this account',
      });
    }
    const session = new Session(full, stream, this.sessions.node);
    this.sessions.add(session);
    this.log.info(
      { jid: full.toString(), ip: stream.transport.remoteAddress, transport: stream.transport.kind },
      'session bound',
    );
    return session;
  }

  // The entry points of stanzas, one per origin. Each ends in `router.dispatch`, whose filter stage
  // (`stanza/in`, on the recipient's host) every stanza meets, whatever its origin. A local
  // account's own stanzas meet its host's `stanza/out` (the sending account's stage: carbons,
  // archives, not-acceptable to a contact the sender blocked) first; components and remote servers
  // have no account here, so they have no sending stage.

  /** A stanza from a local client, validated and stamped: its account's `stanza/out`, then the router. */
  routeFromClient(ev: RouteEvent): void | Promise<void> {
    return this.routeFromAccount(this.hosts.get(ev.from.domain)!, ev);
  }

  /**
   * A stanza in the name of an account of `host`: from its client, or from a privileged component
   * (XEP-0356, `ev.onBehalfOf`). The host's `stanza/out` hooks first, then the router.
   */
  routeFromAccount(host: Host, ev: RouteEvent): void | Promise<void> {
    const start = performance.now();
    if (!host.hooks.has('stanza/out')) return this.track(this.router.dispatch(ev), start);
    const r = host.hooks.run('stanza/out', ev);
    if (r instanceof Promise)
      return this.track(
        r.then((handled) => (handled ? undefined : this.router.dispatch(ev))),
        start,
      );
    if (!r) return this.track(this.router.dispatch(ev), start);
    this.metrics.routed(performance.now() - start);
  }

  /** A stanza from a connected component, validated (its `from` is on its domain): the router. */
  routeFromComponent(ev: RouteEvent): void | Promise<void> {
    return this.track(this.router.dispatch(ev), performance.now());
  }

  /**
   * A stanza from a remote server, validated by its s2s stream (`from` on a domain authenticated on
   * that stream, `to` on one of ours): the router.
   */
  routeFromRemote(ev: RouteEvent): void | Promise<void> {
    return this.track(this.router.dispatch(ev), performance.now());
  }

  /**
   * Binds a component's domain to its stream; false when another stream holds it (conflict), on
   * this node or another node of the cluster.
   */
  bindComponent(domain: string, stream: ComponentStream): boolean {
    if (this.components.has(domain) || this.cluster?.componentNode(domain) !== undefined) return false;
    this.components.set(domain, stream);
    this.router.connectComponent(domain, (stanza) => stream.deliver(stanza));
    this.cluster?.componentUp(domain);
    return true;
  }

  /**
   * Another connection proved the secret of a bound domain (and was refused with conflict): the
   * bound stream is kept if it still answers a ping (XEP-0199; an error answer counts), and closed
   * if it stays silent for COMPONENT_PROBE_MS, so that a connection whose peer vanished without a
   * FIN (a crashed host, a dropped NAT mapping) does not lock the gateway out until TCP notices.
   */
  probeComponent(domain: string): void {
    const stream = this.components.get(domain);
    if (!stream || this.probing.has(domain)) return;
    this.probing.add(domain);
    const ping = xml(
      'iq',
      { xmlns: NS.client, type: 'get', from: this.defaultHost.domain, to: domain },
      xml('ping', { xmlns: NS.ping }),
    );
    this.router
      .sendIq(ping, COMPONENT_PROBE_MS)
      .catch((err: unknown) => {
        if (!(err instanceof IqTimeoutError) || this.components.get(domain) !== stream) return;
        this.log.warn({ component: domain }, 'component does not answer while another connection claims it');
        stream.fail('connection-timeout', 'no answer to a ping while another connection claimed the domain');
      })
      .finally(() => this.probing.delete(domain));
  }

  /** The component's stream ended: its domain is unreachable (service-unavailable) until it is back. */
  unbindComponent(domain: string, stream: ComponentStream): void {
    if (this.components.get(domain) !== stream) return;
    this.components.delete(domain);
    this.router.connectComponent(domain, undefined);
    this.cluster?.componentDown(domain);
    this.log.info({ component: domain }, 'component disconnected');
    this.notifyHosts('component/disconnected', domain);
  }

  /** The component's handshake was answered: every host's modules hear of it (XEP-0356 advertises). */
  componentReady(domain: string): void {
    this.notifyHosts('component/connected', domain);
  }

  private notifyHosts(hook: 'component/connected' | 'component/disconnected', domain: string): void {
    for (const host of this.hosts.values()) {
      if (!host.hooks.has(hook)) continue;
      void this.track(
        host.hooks
          .notify(hook, { domain })
          .catch((err: unknown) => this.log.error({ err, hook }, 'hook failed')),
      );
    }
  }

  /**
   * Follows work in flight (shutdown waits for it); for a stanza from a stream, its routing time
   * from `start` (the routing latency metric).
   */
  private track<T>(r: T | Promise<T>, start?: number): T | Promise<T> {
    if (!(r instanceof Promise)) {
      if (start !== undefined) this.metrics.routed(performance.now() - start);
      return r;
    }
    this.inFlight.add(r);
    const done = () => {
      this.inFlight.delete(r);
      if (start !== undefined) this.metrics.routed(performance.now() - start);
    };
    r.then(done, done);
    return r;
  }

  /** Waits (at most `timeoutMs`) for stanzas being routed and sessions being ended (shutdown). */
  async settle(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.inFlight.size > 0 || this.ending.size > 0) {
      const left = deadline - Date.now();
      if (left <= 0) {
        this.log.warn(
          { routing: this.inFlight.size, ending: this.ending.size },
          'shutdown: gave up waiting for work in progress',
        );
        return;
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...this.inFlight, ...this.ending.values()]),
        new Promise((r) => (timer = setTimeout(r, left))),
      ]);
      clearTimeout(timer);
    }
  }

  /**
   * Routes again a message that a session accepted but never delivered (stream died, slow reader,
   * unacknowledged under stream management), as if newly sent to the bare JID: another resource or
   * offline storage gets it, or the sender an error. Stamped with XEP-0203 delay. IQ requests are
   * answered with an error; presence and errors are dropped (they are state, not content).
   */
  reroute(session: Session, stanza: Element, at = Date.now()): void | Promise<void> {
    return this.rerouteFor(session.jid, stanza, at);
  }

  /** `reroute` for a full JID; without `at`, the copy gets no delay stamp. */
  private rerouteFor(jid: Jid, stanza: Element, at?: number): void | Promise<void> {
    const type = stanza.attrs.type;
    if (type === 'error') return;
    let from: Jid;
    try {
      from = parseJid(stanza.attrs.from ?? jid.domain);
    } catch {
      return;
    }
    if (stanza.name === 'iq') {
      if (type === 'get' || type === 'set')
        this.router.bounce({ stanza, from, to: jid, origin: undefined }, 'service-unavailable');
      return;
    }
    if (stanza.name !== 'message' || type === 'groupchat' || jid.local === '') return;
    const copy = stanza.clone();
    copy.attrs.to = jid.bare.toString();
    if (at !== undefined && !copy.getChild('delay', NS.delay))
      copy.append(delayElement(new Date(at), jid.domain, 'Resent'));
    return this.router.dispatch({ stanza: copy, from, to: jid.bare, origin: undefined, resent: true });
  }

  // --- the cluster's view of this node (ClusterHost) --------------------------------------------

  kickLocal(session: Session, condition: string, text: string): void {
    if (session.closed) return;
    session.stream.fail(condition as 'conflict', text);
    void this.endSession(session, false);
  }

  /**
   * A stanza forwarded to a session of this node that ended meanwhile: a message goes to the bare
   * JID (another resource, or offline storage), an IQ request is answered with an error.
   */
  rerouteEnded(jid: Jid, stanza: Element): void {
    void this.track(this.rerouteFor(jid, stanza));
  }

  deliverToComponent(domain: string, stanza: Element): boolean {
    const stream = this.components.get(domain);
    if (!stream) return false;
    stream.deliver(stanza);
    return true;
  }

  localComponents(): string[] {
    return [...this.components.keys()];
  }

  recordReturned(record: SessionRecord): void {
    const host = this.hosts.get(record.jid.domain);
    if (!host?.hooks.has('session/returned')) return;
    void this.track(
      host.hooks
        .notify('session/returned', { record })
        .catch((err: unknown) => this.log.error({ err, hook: 'session/returned' }, 'hook failed')),
    );
  }

  recordGone(record: SessionRecord, lost: boolean): void {
    const host = this.hosts.get(record.jid.domain);
    if (!host?.hooks.has('session/gone')) return;
    void this.track(
      host.hooks
        .notify('session/gone', { record, lost })
        .catch((err: unknown) => this.log.error({ err, hook: 'session/gone' }, 'hook failed')),
    );
  }

  async streamClosed(stream: C2SStream, clean: boolean): Promise<void> {
    this.streams.delete(stream);
    const session = stream.session;
    if (!session || session.stream !== stream || session.closed) return;
    for (const intercept of this.closeInterceptors) {
      if (await intercept(stream, clean)) return;
    }
    await this.endSession(session, clean);
  }

  /**
   * Removes a session from routing and tells the modules (presence broadcasts unavailable, stream
   * management re-routes what was not acknowledged); then routes again the messages it never
   * delivered. Calls for a session being ended share one promise.
   */
  endSession(session: Session, clean: boolean): Promise<void> {
    const pending = this.ending.get(session);
    if (pending) return pending;
    if (session.closed) return Promise.resolve();
    session.closed = true;
    session.holder = undefined;
    this.sessions.remove(session);
    const host = this.hosts.get(session.jid.domain);
    this.log.info({ jid: session.jid.toString(), clean }, 'session ended');
    const run = (async () => {
      try {
        if (host) await host.hooks.notify('session/closed', { session, clean });
        const late = session.undelivered.splice(0);
        for (const stanza of late) {
          try {
            await this.reroute(session, stanza);
          } catch (err) {
            this.log.error({ err }, 'could not route an undelivered message again');
          }
        }
      } finally {
        this.ending.delete(session);
      }
    })();
    this.ending.set(session, run);
    return run;
  }

  /**
   * Disconnects every session of an account, live or hibernated, but `except` (account removed:
   * not-authorized; password changed: reset, RFC 6120 §4.9.3.16). Returns how many were ended.
   */
  async kickAccount(
    bare: Jid,
    condition: 'not-authorized' | 'conflict' | 'reset' = 'not-authorized',
    opts: { except?: Session; text?: string } = {},
  ): Promise<number> {
    let ended = 0;
    for (const s of [...this.sessions.ofAccount(bare)]) {
      if (s === opts.except) continue;
      if (!isLocal(s)) {
        this.cluster?.kick(s, condition, opts.text ?? 'account changed');
        ended++;
        continue;
      }
      s.stream.fail(condition, opts.text ?? 'account changed');
      await this.endSession(s, false);
      ended++;
    }
    return ended;
  }

  /** For a module that needs a stream error object. */
  streamError(condition: ConstructorParameters<typeof StreamError>[0], text?: string): StreamError {
    return new StreamError(condition, text);
  }
}
