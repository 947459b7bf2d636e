import { parseElement, type Element } from '@natter/xml';
import { parseJid, type Jid } from '@natter/jid';
import type { RouteEvent } from '../hooks.js';
import type { Logger } from '../logger.js';
import type { Router } from '../router.js';
import type { SessionRegistry } from '../session-registry.js';
import { RemoteRecord, isLocal } from '../session-registry.js';
import type { Session, SessionRecord } from '../session.js';
import type { BusMessage, Member, NodeBus } from './node-bus.js';
import { rendezvousOwner } from './rendezvous.js';

/** A session record as it travels between nodes. */
interface WireRecord {
  i: string;
  j: string;
  p: string | null;
  pr: number;
  in: boolean;
  f: string[];
}

/** A stanza a node did not receive, kept until that node is found dead or is back. */
type Parked = { kind: 'session'; full: Jid; id: string; stanza: Element } | { kind: 'route'; ev: RouteEvent };

/**
 * Stanzas held for unreachable nodes, all nodes together: past it, a stanza is returned to its
 * sender with an error rather than held. A node found dead within its 3–4 s (Redis) at a few
 * thousand stanzas per second stays well below.
 */
const MAX_PARKED = 50_000;
/** How long stanzas stay held for a node that is neither found dead nor back before a new try. */
const PARKED_MAX_MS = 10_000;

/** What the cluster needs of the server core (ServerCore implements it). */
export interface ClusterHost {
  readonly router: Router;
  readonly sessions: SessionRegistry;
  /** Ends a local session, as when its stream fails with `condition`. */
  kickLocal(session: Session, condition: string, text: string): void;
  /** A stanza for a session that ended before the stanza reached it: routed as for an ended session. */
  rerouteEnded(jid: Jid, stanza: Element): void;
  /** Delivers to a component connected to this node; false when it is not (any more). */
  deliverToComponent(domain: string, stanza: Element): boolean;
  /** The component domains connected to this node. */
  localComponents(): string[];
  /** A record of another node was removed: `lost` when its node died (no unavailable was sent). */
  recordGone(record: SessionRecord, lost: boolean): void;
  /** A record of a node found dead earlier is back (the node was cut off, not dead). */
  recordReturned(record: SessionRecord): void;
}

/** A change of the cluster's membership (`ClusterView.onMembership`). */
export interface MembershipChange {
  joined?: string;
  left?: string;
  draining?: string;
}

/** What a module sees of the cluster (`ctx.cluster`). */
export interface ClusterView {
  /** This node's name (`local` when not clustered). */
  readonly nodeId: string;
  /** Whether this node acts for the cluster where one node must (the oldest live node). */
  isLeader(): boolean;
  /** Sends a message to the same module on every other node (cache invalidation). */
  broadcast(topic: string, data: unknown): void;
  /** Receives the messages the same module broadcast on other nodes. */
  on(topic: string, fn: (data: unknown, from: string) => void): () => void;
  /** Runs `fn` when this node becomes the leader (the previous one left or died). */
  onLeader(fn: () => void): () => void;
  /**
   * Runs `fn` when messages from another node may have been lost (a Redis outage): a module drops
   * every cache another node could have invalidated meanwhile.
   */
  onResync(fn: () => void | Promise<void>): () => void;
  /** The live nodes, this one included. */
  members(): string[];
  /**
   * The live node that owns `key` (rendezvous hashing, rendezvous.ts): every node with the same
   * member list agrees. With `also`, as if that node were still alive (who owned a key before it left).
   */
  ownerOf(key: string, also?: string): string;
  /**
   * Whether this node knows every session of `node` (itself, or a node whose snapshot arrived): a
   * session of such a node missing from `ctx.sessions` has ended.
   */
  knowsSessionsOf(node: string): boolean;
  /**
   * Runs `fn` on every membership change: a node joined, left (stopped or found dead), or is
   * draining (stopping: `ownerOf` no longer picks it, and it hands its state over before it leaves).
   */
  onMembership(fn: (change: MembershipChange) => void): () => void;
  /**
   * What this module hands over when this node stops gracefully, before it says goodbye (`fn`
   * resolves once sent); the node waits for it, within its shutdown budget.
   */
  onDrain(fn: () => Promise<void>): () => void;
  /** Sends a message to the same module on one node (ordered after earlier ones to that node). */
  send(node: string, topic: string, data: unknown): void;
  /**
   * Asks the same module on another node and waits for its answer; undefined when the node has no
   * answerer, leaves, or does not answer within `timeoutMs`.
   */
  ask(node: string, topic: string, data: unknown, timeoutMs: number): Promise<unknown>;
  /** What this module answers other nodes' `ask` with (one answerer per topic). */
  answer(topic: string, fn: (data: unknown, from: string) => Promise<unknown>): void;
}

/** The view of a server that is not clustered. */
export const STANDALONE: ClusterView = {
  nodeId: 'local',
  isLeader: () => true,
  broadcast: () => undefined,
  on: () => () => undefined,
  onLeader: () => () => undefined,
  onResync: () => () => undefined,
  members: () => ['local'],
  ownerOf: () => 'local',
  knowsSessionsOf: (node) => node === 'local',
  onMembership: () => () => undefined,
  onDrain: () => () => undefined,
  send: () => undefined,
  ask: () => Promise.resolve(undefined),
  answer: () => undefined,
};

/** How many times a stanza for a service may be passed on between nodes that disagree on its owner. */
const MAX_HOPS = 3;

/**
 * One node's part in a cluster (docs/decisions/0009): publishes its sessions' records, keeps the
 * others' (the registry), forwards stanzas for sessions, components and services held elsewhere,
 * and delivers what other nodes forward to it. Stanzas travel serialised, with the addresses the
 * sending node already validated; the receiving node delivers them without running hooks again.
 */
export class Cluster {
  private readonly dirty = new Set<Session>();
  private flushScheduled = false;
  /** Component domains connected to other nodes. */
  private readonly remoteComponents = new Map<string, string>();
  private readonly topics = new Map<string, Set<(data: unknown, from: string) => void>>();
  /** Requests to other nodes waiting for their answer, by number. */
  private readonly requests = new Map<
    number,
    { node: string; resolve: (answer: unknown) => void; timer: NodeJS.Timeout }
  >();
  private requestCounter = 0;
  /** What this node answers other nodes' requests with, by kind (e.g. forwarded BOSH requests). */
  private readonly answerers = new Map<string, (data: unknown, from: string) => Promise<unknown>>();
  private host!: ClusterHost;
  /** Whether this node was the leader after the last membership change (undefined: not known yet). */
  private leader: boolean | undefined;
  private readonly leaderHooks = new Set<() => void>();
  private readonly membershipHooks = new Set<(change: MembershipChange) => void>();
  private readonly drainHooks = new Set<() => Promise<void>>();
  /** Nodes stopping gracefully (this one included): `ownerOf` no longer picks them. */
  private readonly draining = new Set<string>();
  private readonly resyncHooks = new Set<() => void | Promise<void>>();
  /** Nodes whose snapshot this node has: a second one (without a departure between) is a resync. */
  private readonly synced = new Set<string>();
  /** Stanzas for nodes the bus could not reach, by node (see `park`). */
  private readonly parked = new Map<string, Parked[]>();
  /** Nodes declared dead (most recent last, bounded): one that sends a snapshot again was cut off. */
  private readonly foundDead = new Set<string>();
  private parkedCount = 0;
  /** When each node's held list began: past PARKED_MAX_MS it is tried again (see `start`). */
  private readonly parkedSince = new Map<string, number>();
  private parkedSweep: NodeJS.Timeout | undefined;

  constructor(
    readonly bus: NodeBus,
    private readonly log: Logger,
  ) {}

  get nodeId(): string {
    return this.bus.nodeId;
  }

  async start(host: ClusterHost): Promise<void> {
    this.host = host;
    // A node that never comes back nor is found dead (a worker that does not read, a publish
    // answered 0 after the node's snapshot): its held stanzas are tried again now and then.
    this.parkedSweep = setInterval(() => {
      const old = Date.now() - PARKED_MAX_MS;
      for (const [node, since] of this.parkedSince) if (since < old) this.unpark(node);
    }, PARKED_MAX_MS / 2);
    this.parkedSweep.unref();
    host.sessions.replicateTo(this);
    await this.bus.start({
      message: (from, msg) => this.receive(from, msg),
      nodeUp: (m) => this.nodeUp(m),
      nodeDown: (id) => this.nodeDown(id),
    });
  }

  /** Leaves the cluster once this node's sessions ended (their removals are sent first). */
  async stop(): Promise<void> {
    clearInterval(this.parkedSweep);
    // A last try for what is held (routed again for nodes already gone).
    for (const node of [...this.parked.keys()]) this.unpark(node);
    this.flush();
    await this.bus.stop();
  }

  /** The node that owns the services (MUC, pubsub …): the oldest live node. */
  serviceOwner(): string {
    let best: Member | undefined;
    for (const m of this.bus.members()) if (!best || m.rank < best.rank) best = m;
    return best?.id ?? this.nodeId;
  }

  isLeader(): boolean {
    return this.serviceOwner() === this.nodeId;
  }

  /**
   * The live node owning `key` by rendezvous hashing (counting `also` as alive). Draining nodes own
   * nothing, unless every node is draining (the whole cluster stops).
   */
  ownerOf(key: string, also?: string): string {
    const ids = this.bus.members().map((m) => m.id);
    if (also !== undefined && !ids.includes(also)) ids.push(also);
    const staying = this.draining.size === 0 ? ids : ids.filter((id) => !this.draining.has(id));
    return rendezvousOwner(staying.length > 0 ? staying : ids, key) ?? this.nodeId;
  }

  /**
   * This node stops gracefully: the others are told to stop picking it as an owner, and the
   * modules hand over what it owns (MUC rooms, with their occupants) before its sessions end.
   */
  async drain(): Promise<void> {
    if (this.bus.members().length <= 1) return;
    this.draining.add(this.nodeId);
    this.bus.broadcast({ t: 'drain' });
    this.log.info('cluster: draining: handing over to the other nodes');
    this.membershipChanged({ draining: this.nodeId });
    await Promise.all(
      [...this.drainHooks].map((fn) =>
        fn().catch((err: unknown) => this.log.error({ err }, 'cluster: a module failed to hand over')),
      ),
    );
  }

  /**
   * The node that runs what is addressed to `to` on a service: the service's rooms are placed one
   * by one (`perAddress`: by bare JID, rendezvous hashing), the rest runs on the oldest node.
   */
  serviceNode(to: Jid, perAddress: boolean): string {
    return perAddress && to.local !== '' ? this.ownerOf(`${to.local}@${to.domain}`) : this.serviceOwner();
  }

  // --- records --------------------------------------------------------------------------------

  recordChanged(session: Session): void {
    this.dirty.add(session);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => this.flush());
  }

  recordRemoved(session: Session): void {
    // Changes queued before the removal go first, so that a peer never re-adds an ended session.
    this.flush();
    this.bus.broadcast({ t: 'del', j: session.jid.toString(), i: session.id });
  }

  setRemoteFlag(record: SessionRecord, flag: string, on: boolean): void {
    this.bus.send(record.node, { t: 'flag', j: record.jid.toString(), i: record.id, f: flag, on });
  }

  private flush(): void {
    this.flushScheduled = false;
    for (const s of this.dirty) if (!s.closed) this.bus.broadcast({ t: 'put', r: wire(s) });
    this.dirty.clear();
  }

  // --- forwarding -----------------------------------------------------------------------------

  /** Delivers to a session held by another node. */
  deliverRemote(record: SessionRecord, stanza: Element): void {
    const { node, jid, id } = record;
    this.bus.send(node, { t: 'd', j: jid.toString(), i: id, s: stanza.toString() }, () =>
      this.park(node, { kind: 'session', full: jid, id, stanza }),
    );
  }

  /** Ends a session held by another node (resource conflict, account removed, password changed). */
  kick(record: SessionRecord, condition: string, text: string): void {
    this.bus.send(record.node, { t: 'kick', j: record.jid.toString(), i: record.id, c: condition, x: text });
  }

  /**
   * Routes a stanza on the node that owns its destination (a service, a pending IQ). `hops`: how
   * many nodes passed it on already (nodes disagree on an owner while a membership change spreads).
   */
  forward(node: string, ev: RouteEvent, hops = 0): void {
    const msg: BusMessage = { t: 'r', s: ev.stanza.toString(), f: ev.from.toString(), to: ev.to.toString() };
    if (hops > 0) msg.h = hops;
    this.bus.send(node, msg, () => this.park(node, { kind: 'route', ev }));
  }

  /** Whether a forwarded stanza may be passed on once more (see `forward`). */
  mayPassOn(hops: number): boolean {
    return hops < MAX_HOPS;
  }

  /**
   * A stanza the bus could not give to `node`: nobody reads that node's channel. Between a node's
   * death and the moment the others declare it dead (Redis: 3–4 s), its sessions' records are still
   * here and stanzas keep going to it; they are held instead of lost, and routed again once the
   * node is found dead (to the account's other resources or offline storage, as for an ended
   * session) or is back (its snapshot arrived: sent to it again).
   */
  private park(node: string, p: Parked): void {
    if (this.parkedCount >= MAX_PARKED) {
      // Presence is state, not worth an error (and routing it again would drop it anyway).
      if ((p.kind === 'route' ? p.ev.stanza : p.stanza).name === 'presence') return;
      if (p.kind === 'route')
        this.host.router.bounce(p.ev, 'recipient-unavailable', 'a cluster node is unreachable');
      else
        this.host.router.bounce(
          { stanza: p.stanza, from: senderOf(p.stanza, p.full), to: p.full, origin: undefined },
          'recipient-unavailable',
          'a cluster node is unreachable',
        );
      return;
    }
    let list = this.parked.get(node);
    if (!list) {
      this.parked.set(node, (list = []));
      this.parkedSince.set(node, Date.now());
      this.log.warn(
        { peer: node },
        'cluster: a node does not receive; holding its stanzas until it is back or found dead',
      );
    }
    list.push(p);
    this.parkedCount++;
    // Already gone (the bus learnt it first): nothing more will come for it.
    if (!this.isMember(node)) setImmediate(() => this.unpark(node));
  }

  /** Routes again what was held for `node`, now found dead or back. */
  private unpark(node: string): void {
    const list = this.parked.get(node);
    if (!list) return;
    this.parked.delete(node);
    this.parkedSince.delete(node);
    this.parkedCount -= list.length;
    const alive = this.isMember(node);
    // Records of a node that is not a member are stale (its departure dropped them): without them,
    // routing again cannot pick that node a second time.
    if (!alive) for (const r of this.host.sessions.dropNode(node)) this.host.recordGone(r, true);
    for (const p of list) {
      if (p.kind === 'route') {
        if (alive) {
          this.forward(node, p.ev);
          continue;
        }
        // The answer to an IQ the dead node sent: nobody waits for it any more.
        const type = p.ev.stanza.attrs.type;
        if (p.ev.stanza.name === 'iq' && (type === 'result' || type === 'error')) continue;
        // A stanza for a service the dead node ran: to the node that runs it now (the router
        // passes it on when that is another node).
        void Promise.resolve(this.host.router.dispatchForwarded(p.ev)).catch((err: unknown) =>
          this.log.error({ err }, 'cluster: a stanza held for a dead node could not be routed'),
        );
        continue;
      }
      const r = this.host.sessions.get(p.full);
      if (alive && r && r.id === p.id && !isLocal(r)) this.deliverRemote(r, p.stanza);
      else this.host.rerouteEnded(p.full, p.stanza);
    }
    this.log.info(
      { peer: node, stanzas: list.length, alive },
      alive
        ? 'cluster: a node is back; sent it the stanzas held for it'
        : 'cluster: routed again the stanzas held for a dead node',
    );
  }

  /** The node a component domain is connected to, when another. */
  componentNode(domain: string): string | undefined {
    return this.remoteComponents.get(domain);
  }

  componentUp(domain: string): void {
    this.bus.broadcast({ t: 'comp', d: domain, on: true });
  }

  componentDown(domain: string): void {
    this.bus.broadcast({ t: 'comp', d: domain, on: false });
  }

  /** The node a server IQ id (`natter-<node>-<n>`) was sent from, when another live node. */
  iqOwner(id: string): string | undefined {
    if (!id.startsWith('natter-')) return undefined;
    for (const m of this.bus.members())
      if (m.id !== this.nodeId && id.startsWith(`natter-${m.id}-`)) return m.id;
    return undefined;
  }

  // --- requests between nodes -------------------------------------------------------------------

  /**
   * Asks another node and waits for its answer; undefined when the node leaves or does not answer
   * within `timeoutMs` (a node that dies mid-request never answers).
   */
  request(node: string, kind: string, data: unknown, timeoutMs: number): Promise<unknown> {
    const q = ++this.requestCounter;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.requests.delete(q);
        resolve(undefined);
      }, timeoutMs);
      timer.unref();
      this.requests.set(q, { node, resolve, timer });
      this.bus.send(node, { t: 'req', q, k: kind, v: data });
    });
  }

  /** Answers the requests of one kind other nodes send (one answerer per kind). */
  answer(kind: string, fn: (data: unknown, from: string) => Promise<unknown>): void {
    this.answerers.set(kind, fn);
  }

  /** Whether a node is a live member of the cluster. */
  isMember(node: string): boolean {
    return this.bus.members().some((m) => m.id === node);
  }

  // --- modules --------------------------------------------------------------------------------

  /** The view a module of `host` gets (`ctx.cluster`). */
  view(module: string, host: string): ClusterView {
    const key = (topic: string) => `${module}\n${host}\n${topic}`;
    return {
      nodeId: this.nodeId,
      isLeader: () => this.isLeader(),
      broadcast: (topic, data) => this.bus.broadcast({ t: 'm', k: key(topic), v: data }),
      onResync: (fn) => subscribe(this.resyncHooks, fn),
      onLeader: (fn) => subscribe(this.leaderHooks, fn),
      members: () => this.bus.members().map((m) => m.id),
      ownerOf: (k, also) => this.ownerOf(k, also),
      knowsSessionsOf: (node) => node === this.nodeId || this.synced.has(node),
      onMembership: (fn) => subscribe(this.membershipHooks, fn),
      onDrain: (fn) => subscribe(this.drainHooks, fn),
      send: (node, topic, data) => this.bus.send(node, { t: 'm', k: key(topic), v: data }),
      ask: (node, topic, data, timeoutMs) => this.request(node, key(topic), data, timeoutMs),
      answer: (topic, fn) => this.answer(key(topic), fn),
      on: (topic, fn) => {
        const k = key(topic);
        let set = this.topics.get(k);
        if (!set) this.topics.set(k, (set = new Set()));
        set.add(fn);
        return () => set.delete(fn);
      },
    };
  }

  // --- receiving ------------------------------------------------------------------------------

  private receive(from: string, msg: BusMessage): void {
    switch (msg.t) {
      case 'd':
        return this.delivered(msg.j as string, msg.i as string, msg.s as string);
      case 'put':
        return this.put(from, msg.r as WireRecord);
      case 'del': {
        const gone = this.host.sessions.removeRemote(from, msg.j as string, msg.i as string);
        if (gone) this.host.recordGone(gone, false);
        return;
      }
      case 'snap': {
        // Replaces what this node knew of the sender. Sessions missing from it ended while their
        // removal could not travel (a Redis outage): they are gone as with a dead node.
        const before = this.host.sessions.dropNode(from);
        const rs = msg.rs as WireRecord[];
        for (const r of rs) this.put(from, r);
        // A node this one found dead was only cut off (a partition, a stalled process): its
        // sessions were announced gone; they are announced again.
        if (this.foundDead.delete(from))
          for (const r of rs) {
            const record = this.host.sessions.get(r.j);
            if (record && record.node === from && record.id === r.i) this.host.recordReturned(record);
          }
        const still = new Set(rs.map((r) => r.i));
        for (const r of before) if (!still.has(r.id)) this.host.recordGone(r, true);
        const comps = new Set(msg.comps as string[]);
        for (const [d, node] of this.remoteComponents)
          if (node === from && !comps.has(d)) {
            this.remoteComponents.delete(d);
            this.syncComponent(d);
          }
        for (const d of comps) {
          this.remoteComponents.set(d, from);
          this.syncComponent(d);
        }
        // A second snapshot from a node that never left: messages from it were lost meanwhile,
        // cache invalidations among them.
        if (this.synced.has(from)) this.resynced(from);
        this.synced.add(from);
        this.unpark(from);
        return;
      }
      case 'flag': {
        const s = this.host.sessions.local(msg.j as string);
        if (s && s.id === msg.i) s.setFlag(msg.f as string, msg.on === true);
        return;
      }
      case 'kick': {
        const s = this.host.sessions.local(msg.j as string);
        if (s && s.id === msg.i) this.host.kickLocal(s, msg.c as string, msg.x as string);
        return;
      }
      case 'r':
        return this.routed(msg);
      case 'drain':
        if (this.draining.has(from)) return;
        this.draining.add(from);
        this.log.info({ peer: from }, 'cluster: a node is draining (stopping)');
        return this.membershipChanged({ draining: from });
      case 'c': {
        const stanza = parseElement(msg.s as string);
        if (this.host.deliverToComponent(msg.d as string, stanza) || stanza.name === 'presence') return;
        // The component left meanwhile (XEP-0114: away): as the router answers for an away one.
        try {
          const ev = {
            stanza,
            from: parseJid(stanza.attrs.from ?? ''),
            to: parseJid(stanza.attrs.to ?? (msg.d as string)),
            origin: undefined,
          };
          this.host.router.bounce(ev, 'service-unavailable');
        } catch {
          /* unaddressable: nobody to answer */
        }
        return;
      }
      case 'comp':
        if (msg.on === true) this.remoteComponents.set(msg.d as string, from);
        else if (this.remoteComponents.get(msg.d as string) === from)
          this.remoteComponents.delete(msg.d as string);
        this.syncComponent(msg.d as string);
        return;
      case 'req': {
        const fn = this.answerers.get(msg.k as string);
        const q = msg.q as number;
        if (!fn) return this.bus.send(from, { t: 'res', q, v: null });
        fn(msg.v, from).then(
          (v) => this.bus.send(from, { t: 'res', q, v: v ?? null }),
          (err: unknown) => {
            this.log.error({ err, kind: msg.k }, 'cluster: answering a request from another node failed');
            this.bus.send(from, { t: 'res', q, v: null });
          },
        );
        return;
      }
      case 'res': {
        const r = this.requests.get(msg.q as number);
        if (!r || r.node !== from) return;
        this.requests.delete(msg.q as number);
        clearTimeout(r.timer);
        r.resolve(msg.v ?? undefined);
        return;
      }
      case 'm': {
        for (const fn of this.topics.get(msg.k as string) ?? []) {
          try {
            fn(msg.v, from);
          } catch (err) {
            this.log.error({ err, topic: msg.k }, 'cluster: a module failed on a message from another node');
          }
        }
        return;
      }
      default:
        this.log.warn({ type: msg.t, node: from }, 'cluster: unknown message type from a peer');
    }
  }

  private delivered(full: string, id: string, xml: string): void {
    const stanza = parseElement(xml);
    const s = this.host.sessions.local(full);
    if (s && s.id === id) {
      this.host.router.deliver(s, stanza);
      return;
    }
    // The session ended while the stanza travelled: routed as for an ended session.
    this.host.rerouteEnded(parseJid(full), stanza);
  }

  private routed(msg: BusMessage): void {
    let from: Jid, to: Jid;
    try {
      from = parseJid(msg.f as string);
      to = parseJid(msg.to as string);
    } catch {
      return;
    }
    void this.host.router.dispatchForwarded(
      { stanza: parseElement(msg.s as string), from, to, origin: undefined },
      typeof msg.h === 'number' ? msg.h : 0,
    );
  }

  private put(node: string, w: WireRecord): void {
    let jid: Jid;
    try {
      jid = parseJid(w.j);
    } catch {
      return;
    }
    // Checked here, kept as text: a record's presence is parsed again when read.
    if (w.p !== null) parseElement(w.p);
    this.host.sessions.putRemote(new RemoteRecord(w.i, jid, node, w.p, w.pr, w.in, w.f));
  }

  /** After a membership change: tells the modules when this node has just become the leader. */
  private leadership(): void {
    const now = this.isLeader();
    const before = this.leader;
    this.leader = now;
    if (!now || before !== false) return;
    this.log.info('cluster: this node is now the oldest: it runs the services');
    for (const fn of this.leaderHooks) {
      try {
        fn();
      } catch (err) {
        this.log.error({ err }, 'cluster: a module failed to take over as leader');
      }
    }
  }

  private resynced(from: string): void {
    const done = [...this.resyncHooks].map((fn) =>
      Promise.resolve()
        .then(fn)
        .catch((err: unknown) => this.log.error({ err }, 'cluster: a module failed to drop its caches')),
    );
    void Promise.all(done).then(() =>
      this.log.info({ peer: from }, 'cluster: resynchronised with a node; caches dropped'),
    );
  }

  private nodeUp(m: Member): void {
    this.draining.delete(m.id);
    this.leadership();
    this.log.info({ peer: m.id }, 'cluster: node joined');
    // Everything this node holds, in one message: the peer replaces what it knew of us.
    const rs = [...this.host.sessions.all()].filter((s) => !s.closed).map(wire);
    this.bus.send(m.id, { t: 'snap', rs, comps: this.host.localComponents() });
    // After the snapshot: what modules send the newcomer (rooms it now owns) finds our sessions there.
    this.membershipChanged({ joined: m.id });
  }

  private membershipChanged(change: MembershipChange): void {
    for (const fn of this.membershipHooks) {
      try {
        fn(change);
      } catch (err) {
        this.log.error({ err }, 'cluster: a module failed on a membership change');
      }
    }
  }

  private nodeDown(id: string): void {
    this.leadership();
    this.synced.delete(id);
    this.foundDead.add(id);
    if (this.foundDead.size > 1000) this.foundDead.delete(this.foundDead.values().next().value!);
    const gone = this.host.sessions.dropNode(id);
    for (const [d, node] of this.remoteComponents)
      if (node === id) {
        this.remoteComponents.delete(d);
        this.syncComponent(d);
      }
    this.log.warn({ peer: id, sessions: gone.length }, 'cluster: node left; its sessions are gone');
    for (const [q, r] of this.requests)
      if (r.node === id) {
        this.requests.delete(q);
        clearTimeout(r.timer);
        r.resolve(undefined);
      }
    for (const r of gone) this.host.recordGone(r, true);
    this.membershipChanged({ left: id });
    this.draining.delete(id);
    this.unpark(id);
  }

  private syncComponent(domain: string): void {
    const node = this.remoteComponents.get(domain);
    const router = this.host.router;
    if (!router.componentDomains.includes(domain)) return;
    if (this.host.localComponents().includes(domain)) return;
    router.connectComponent(
      domain,
      node === undefined
        ? undefined
        : (stanza) => this.bus.send(node, { t: 'c', d: domain, s: stanza.toString() }),
    );
  }
}

/** The sender of a stanza held for a session, for its error (the session's domain if unaddressed). */
function senderOf(stanza: Element, to: Jid): Jid {
  try {
    return parseJid(stanza.attrs.from ?? to.domain);
  } catch {
    return to.bare;
  }
}

function wire(s: Session): WireRecord {
  return {
    i: s.id,
    j: s.jid.toString(),
    p: s.presence ? s.presence.toString() : null,
    pr: s.priority,
    in: s.interested,
    f: s.flagList(),
  };
}

/** Adds a hook to its set; the function returned removes it. */
function subscribe<F>(hooks: Set<F>, fn: F): () => void {
  hooks.add(fn);
  return () => hooks.delete(fn);
}
