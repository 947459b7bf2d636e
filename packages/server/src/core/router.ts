import type { Element } from '@natter/xml';
import { parseJid, type Jid } from '@natter/jid';
import { StanzaError, errorReply, type StanzaErrorCondition } from '@natter/protocol';
import type { RouteEvent, MaybePromise } from './hooks.js';
import type { Host } from './host.js';
import { isLocal, type SessionRegistry } from './session-registry.js';
import type { Session, SessionRecord } from './session.js';
import type { Cluster } from './cluster/cluster.js';
import type { Logger } from './logger.js';
import type { Federation } from './s2s/federation.js';

export type ServiceHandler = (ev: RouteEvent) => MaybePromise<void>;

interface PendingIq {
  resolve: (el: Element) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
  to: string;
}

export class IqTimeoutError extends Error {
  readonly code = 'IQ_TIMEOUT';
}

/**
 * Delivery rules of RFC 6120 §10 and RFC 6121 §8: run the filter stage (`stanza/in`) once, then
 * classify the destination (host, bare JID, full JID, service, remote) and fire the matching hook;
 * the core's own delivery handlers sit at the lowest priority, so modules (offline, MAM, carbons)
 * act before them. Every origin (client, component, remote server, service, the server itself)
 * enters here, through `dispatch` or `route`.
 */
export class Router {
  readonly hosts = new Map<string, Host>();
  private readonly services = new Map<
    string,
    { handler: ServiceHandler; host: Host; owner: string; perAddress: boolean }
  >();
  /** XEP-0114 component domains (configured), with the function delivering to the connected one. */
  private readonly components = new Map<string, ((stanza: Element) => void) | undefined>();
  private readonly pending = new Map<string, PendingIq>();
  private iqCounter = 0;
  /** Server-to-server federation (core/s2s): every other domain goes there when set. */
  federation: Federation | undefined;
  /** The cluster this node belongs to (docs/decisions/0009), if any. */
  cluster: Cluster | undefined;

  constructor(
    readonly sessions: SessionRegistry,
    private readonly log: Logger,
  ) {}

  /**
   * `perAddress`: in a cluster, what is addressed to `name@domain` runs on the node that owns that
   * bare JID (rendezvous hashing: MUC rooms); otherwise the whole service runs on the oldest node.
   */
  addService(
    domain: string,
    host: Host,
    handler: ServiceHandler,
    owner: string,
    perAddress = false,
  ): () => void {
    if (this.hosts.has(domain) || this.services.has(domain) || this.components.has(domain))
      throw new Error(`domain ${domain} is already served`);
    this.services.set(domain, { handler, host, owner, perAddress });
    return () => this.services.delete(domain);
  }

  /** The domains modules serve (`conference.example.com`, by module `muc`), in order of registration. */
  serviceDomains(): { domain: string; module: string }[] {
    return [...this.services].map(([domain, s]) => ({ domain, module: s.owner }));
  }

  isLocalDomain(domain: string): boolean {
    return this.hosts.has(domain) || this.services.has(domain) || this.components.has(domain);
  }

  /** Declares a component domain (configuration): routed to its component, or bounced while it is away. */
  addComponent(domain: string): void {
    if (this.hosts.has(domain) || this.services.has(domain) || this.components.has(domain))
      throw new Error(`domain ${domain} is already served`);
    this.components.set(domain, undefined);
  }

  /** Sets (or clears, when the component disconnects) the delivery function of a component domain. */
  connectComponent(domain: string, deliver: ((stanza: Element) => void) | undefined): void {
    if (this.components.has(domain)) this.components.set(domain, deliver);
  }

  /** The configured component domains. */
  get componentDomains(): string[] {
    return [...this.components.keys()];
  }

  /** Routes a stanza whose `from` is trusted (stamped by the server or a service). */
  route(stanza: Element, origin?: Session): MaybePromise<void> {
    let from: Jid, to: Jid;
    try {
      from = parseJid(stanza.attrs.from ?? '');
      const toAttr = stanza.attrs.to;
      to = toAttr ? parseJid(toAttr) : from.bare;
    } catch {
      this.log.warn(
        { stanza: stanza.toString().slice(0, 300) },
        'dropping server stanza with invalid addresses',
      );
      return;
    }
    return this.dispatch({ stanza, from, to, origin });
  }

  /** Routes an event whose addresses are already parsed. */
  dispatch(ev: RouteEvent): MaybePromise<void> {
    if (ev.stanza.name !== 'message') return this.dispatchStanza(ev);
    const outcome = (ev.outcome ??= { bounced: false });
    const r = this.dispatchStanza(ev);
    if (r instanceof Promise) return r.then(() => this.routed(ev, outcome));
    return this.routed(ev, outcome);
  }

  /** Tells the sender's and the recipient's hosts that a message finished routing (`message/routed`). */
  private routed(ev: RouteEvent, outcome: { bounced: boolean }): MaybePromise<void> {
    const from = this.hosts.get(ev.from.domain);
    const to = ev.to.domain === ev.from.domain ? undefined : this.hosts.get(ev.to.domain);
    const done = { ...ev, outcome };
    const a = from?.hooks.has('message/routed') ? from.hooks.notify('message/routed', done) : undefined;
    const b = to?.hooks.has('message/routed') ? to.hooks.notify('message/routed', done) : undefined;
    if (a instanceof Promise || b instanceof Promise) return Promise.all([a, b]).then(() => undefined);
  }

  private dispatchStanza(ev: RouteEvent): MaybePromise<void> {
    const { stanza } = ev;
    if (stanza.name === 'iq') {
      const type = stanza.attrs.type;
      if (type === 'result' || type === 'error') {
        if (this.pending.size > 0 && this.settle(ev)) return;
        // The answer to an IQ another node of the cluster sent: it waits there.
        const owner = this.cluster?.iqOwner(stanza.attrs.id ?? '');
        if (owner !== undefined) return this.cluster!.forward(owner, ev);
      }
    }
    const host = this.hosts.get(ev.to.domain);
    if (host) {
      // The filter stage (`stanza/in`), on the recipient's host, for every origin. Without a
      // handler it costs one map lookup.
      if (!host.hooks.has('stanza/in')) return this.local(host, ev);
      const filtered = host.hooks.run('stanza/in', ev);
      if (filtered instanceof Promise)
        return filtered.then((consumed) => (consumed ? undefined : this.local(host, ev)));
      return filtered ? undefined : this.local(host, ev);
    }
    // A stanza the server sends in a local account's name (a client's own stanzas met `stanza/out`
    // instead) to an address on no local host: the recipient has no host here, so the sender's
    // host filters it (no presence to a remote contact the user blocked).
    if (ev.origin === undefined && ev.onBehalfOf === undefined && ev.from.local !== '') {
      const sender = this.hosts.get(ev.from.domain);
      if (sender?.hooks.has('stanza/in')) {
        const filtered = sender.hooks.run('stanza/in', ev);
        if (filtered instanceof Promise)
          return filtered.then((consumed) => (consumed ? undefined : this.elsewhere(ev)));
        if (filtered) return;
      }
    }
    return this.elsewhere(ev);
  }

  /** A stanza for a domain that is not a local host: a service, a component, or another server. */
  private elsewhere(ev: RouteEvent): MaybePromise<void> {
    const service = this.services.get(ev.to.domain);
    if (service) {
      // Services keep their state (rooms, occupants) in memory: one node of a cluster runs each
      // room, or the whole service.
      const owner = this.cluster?.serviceNode(ev.to, service.perAddress);
      if (owner !== undefined && owner !== this.cluster!.nodeId) return this.cluster!.forward(owner, ev);
      return this.toService(service, ev);
    }
    if (this.components.has(ev.to.domain)) {
      const deliver = this.components.get(ev.to.domain);
      if (deliver) deliver(ev.stanza);
      // XEP-0114: the component is away; presence is state, not worth an error.
      else if (ev.stanza.name !== 'presence') this.bounce(ev, 'service-unavailable');
      return;
    }
    if (this.federation) {
      this.federation.send(ev);
      return;
    }
    // Federation is off: every remote domain is unreachable. Presence is state, not worth an error
    // (RFC 6121 §4.6: availability to an unreachable server is dropped), except a subscription request.
    if (ev.stanza.name === 'presence' && ev.stanza.attrs.type !== 'subscribe') return;
    this.bounce(ev, 'remote-server-not-found');
  }

  private toService(service: { handler: ServiceHandler; owner: string }, ev: RouteEvent): MaybePromise<void> {
    try {
      const r = service.handler(ev);
      if (r instanceof Promise) return r.catch((err: unknown) => this.serviceCrash(service.owner, ev, err));
    } catch (err) {
      this.serviceCrash(service.owner, ev, err);
    }
  }

  /**
   * A stanza another node of the cluster forwarded here, having run the hooks of its own stage:
   * the answer to an IQ this node sent, or a stanza for a service this node runs.
   */
  dispatchForwarded(ev: RouteEvent, hops = 0): MaybePromise<void> {
    const type = ev.stanza.attrs.type;
    if (ev.stanza.name === 'iq' && (type === 'result' || type === 'error')) {
      this.settle(ev);
      return;
    }
    const service = this.services.get(ev.to.domain);
    if (service) {
      // Sent by a node that saw another membership (a node just joined or left): passed on to the
      // owner this node sees, a few times at most (the service sorts out a room it does not hold).
      const cluster = this.cluster;
      const owner = cluster?.serviceNode(ev.to, service.perAddress);
      if (owner !== undefined && owner !== cluster!.nodeId && cluster!.mayPassOn(hops))
        return cluster!.forward(owner, ev, hops + 1);
      return this.toService(service, ev);
    }
    return this.dispatch(ev);
  }

  private serviceCrash(owner: string, ev: RouteEvent, err: unknown): void {
    this.log.error(
      { err, module: owner, stanza: ev.stanza.toString().slice(0, 500) },
      'service handler failed',
    );
    this.bounce(ev, 'internal-server-error');
  }

  private local(host: Host, ev: RouteEvent): MaybePromise<void> {
    const { to, stanza } = ev;
    const kind = stanza.name as 'message' | 'presence' | 'iq';
    const dest = to.local === '' ? 'host' : to.resource === '' ? 'bare' : 'full';
    // The filter stage ran already, so the IQ handlers answering for an account (vCard, last
    // activity, disco) never answer a sender the account refuses.
    if (kind === 'iq' && dest !== 'full') return this.accountIq(host, ev, dest);
    const r = host.hooks.run(`${kind}/${dest}`, ev);
    if (r instanceof Promise) return r.then(() => undefined);
  }

  /** An IQ to the host or an account's bare JID: its IQ handler answers, or the `iq/…` hooks run. */
  private accountIq(host: Host, ev: RouteEvent, dest: 'host' | 'bare'): MaybePromise<void> {
    const table = dest === 'host' ? host.hostIq : host.accountIq;
    const reply = table.dispatch(ev);
    if (reply !== undefined) {
      if (reply instanceof Promise) return reply.then((r) => this.reply(ev, r));
      return this.reply(ev, reply);
    }
    const r = host.hooks.run(`iq/${dest}`, ev);
    if (r instanceof Promise) return r.then(() => undefined);
  }

  /**
   * Sends the server's answer to an IQ. A request without `to` is answered without `from`
   * (RFC 6120 §10.3.3: handled on behalf of the account), straight to the requesting session.
   */
  private reply(ev: RouteEvent, reply: Element): void | Promise<void> {
    if (reply.attrs.from === undefined) {
      if (ev.origin) ev.origin.send(reply);
      return;
    }
    return this.route(reply);
  }

  /**
   * Returns an error to the sender (RFC 6120 §8.3.1), unless the stanza is itself an error or an
   * IQ response, which are never answered with errors.
   */
  bounce(ev: RouteEvent, condition: StanzaErrorCondition, text?: string): void {
    if (ev.outcome) ev.outcome.bounced = true;
    const type = ev.stanza.attrs.type;
    if (type === 'error' || (ev.stanza.name === 'iq' && type === 'result')) return;
    const reply = errorReply(ev.stanza, new StanzaError(condition, { text }));
    if (!ev.stanza.attrs.to) reply.attrs.from = ev.to.toString();
    void this.route(reply);
  }

  /** Delivers to one session, the last step of every path: here, or through its node. */
  deliver(session: SessionRecord, stanza: Element): void {
    if (isLocal(session)) session.send(stanza);
    else this.cluster?.deliverRemote(session, stanza);
  }

  /** Sends an IQ from a server address and waits for its response. */
  sendIq(stanza: Element, timeoutMs = 30_000): Promise<Element> {
    // In a cluster the id names this node, so that an answer reaching another node comes back here.
    const node = this.cluster ? `${this.cluster.nodeId}-` : '';
    const id = stanza.attrs.id ?? `natter-${node}${(++this.iqCounter).toString(36)}`;
    stanza.attrs.id = id;
    const to = stanza.attrs.to ?? '';
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new IqTimeoutError(`no response to IQ ${id} from ${to} within ${timeoutMs} ms`));
      }, timeoutMs);
      timer.unref();
      this.pending.set(id, { resolve, reject, timer, to });
      void this.route(stanza);
    });
  }

  private settle(ev: RouteEvent): boolean {
    const id = ev.stanza.attrs.id;
    if (id === undefined) return false;
    const p = this.pending.get(id);
    if (!p) return false;
    // Only the addressee may answer (a bare-JID request may be answered by the full JID).
    const fromStr = ev.from.toString();
    if (p.to !== '' && p.to !== fromStr && p.to !== ev.from.toBareString() && p.to !== ev.from.domain)
      return false;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (ev.stanza.attrs.type === 'result') p.resolve(ev.stanza);
    else p.reject(StanzaError.fromStanza(ev.stanza));
    return true;
  }

  /** Fails every outstanding server IQ (shutdown). */
  cancelPending(): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new Error(`IQ ${id} cancelled: server stopping`));
    }
    this.pending.clear();
  }
}
