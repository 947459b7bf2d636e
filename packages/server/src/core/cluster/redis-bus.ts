import { randomBytes } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import type { BusEvents, BusMessage, Member, NodeBus } from './node-bus.js';
import type { Logger } from '../logger.js';

/**
 * The bus between Natter processes on several machines (docs/decisions/0009, `cluster.redis`):
 * Redis pub/sub for messages, a sorted set for membership and liveness.
 *
 * Identity. A node's id is `<configured nodeId>.<6 random hex>`: the configured part is for the
 * operator (it starts every `node` field of the logs); the suffix makes each start of the process a
 * new member, so that the others drop everything they knew of the previous incarnation (its
 * sessions are gone with it) instead of mixing it with the new one's.
 *
 * Messages. One channel per node (`<prefix>:node:<id>`) and one for all (`<prefix>:all`); a message
 * is the JSON `{ from, msg }`. Redis delivers what one client connection published to a subscriber
 * in publish order, so every publish of this node goes through ONE connection (`pub`): that is the
 * per-pair ordering NodeBus promises (a record's `put` before its `del`, a snapshot before later
 * changes). A broadcast also reaches its sender, which ignores it. Pub/sub channels are not
 * partitioned by database index: the prefix (`cluster.prefix`) is what separates two clusters (or
 * two test runs) on one Redis.
 *
 * Membership and liveness. Every second a node runs one script (atomic, on Redis' clock so that
 * machines' clocks need not agree): it refreshes the node's score in `<prefix>:nodes` to now + 3 s,
 * records its rank in `<prefix>:ranks` (assigned once, at join, by INCR `<prefix>:rank`: the lowest
 * rank is the oldest live node, which owns the services), removes the members whose score is past
 * (dead: they did not refresh for 3 s) and returns the live ones. A member that appears is reported
 * with `nodeUp`, one that disappears (expired, whoever removed it, or left with `stop()`) with
 * `nodeDown`: a node killed is noticed within 3–4 s.
 *
 * Joining. The others see a new node at their next poll; to know the cluster's sessions before it
 * accepts clients, a joining node also broadcasts a resync request (with its rank): each node that
 * receives it takes the sender as a member at once, calls `nodeUp` (the Cluster sends its snapshot)
 * and answers `synced` on the same connection, so after the snapshot. start() waits for every
 * peer's answer, at most 3 s.
 *
 * Outages. When the connection to Redis is lost, nothing is queued: publishes fail at once (and are
 * counted), commands in flight are failed rather than re-sent later out of order, and ioredis
 * reconnects every second at most (one log line on loss, one on recovery with the outage's length
 * and the number of messages lost). Messages published meanwhile, by this node and to it, are lost;
 * what they carried is restored on recovery as follows:
 * - this node calls `nodeUp` again for every member it knows: the Cluster sends each a snapshot of
 *   this node's sessions and components, which replaces what the member knew of this node (cluster.ts,
 *   `snap`: dropNode + put);
 * - it broadcasts a resync request (as at join): every node that receives it calls `nodeUp` for this
 *   node, so this node gets their snapshots too. Both halves are needed: a snapshot sent to a node
 *   whose subscriber is not back yet is lost, but that node asks again when its own connection is
 *   back.
 * - For one TTL (3 s) after its recovery a node declares nobody dead: the others' scores aged, or
 *   vanished with a Redis restarted without persistence, while Redis was down, not because they
 *   died; they refresh within a second of reconnecting.
 * A node that could not refresh its score for more than 3 s while Redis was reachable to others
 * (its own network, a blocked event loop) was declared dead by them: they dropped its records and
 * sent its users' unavailable presence. Its next refresh finds its id absent: it re-adds itself
 * under the SAME id (session ids, IQ ids and its sessions' records carry it, so it cannot change
 * while the process runs) but with a NEW rank (the youngest: the services moved to the next oldest
 * node when it was found dead, and stay there), and resynchronises as above: the others see it appear (`nodeUp`) and
 * re-learn its sessions from its snapshot. Messages from a node before it (re)appears in the set
 * are accepted: its snapshot may arrive before the next poll shows it.
 * A subscriber too slow for the traffic is disconnected by Redis (`client-output-buffer-limit
 * pubsub`): that is an outage of this node's connection, recovered the same way.
 * If Redis lost its data, the rank counter is raised back to the node's rank when it rejoins, so a
 * node joining later still ranks after it. Members are listed by (rank, id), so that every node
 * picks the same oldest node even if two ranks collide.
 */

/** A node's score is refreshed to now + TTL every HEARTBEAT: after TTL without refresh it is dead. */
const TTL_MS = 3000;
const HEARTBEAT_MS = 1000;
/** Larger messages are refused (logged, not sent): Redis holds each in memory once per subscriber. */
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/**
 * KEYS: nodes (zset id → expiry), ranks (hash id → rank), rank counter, gone (zset id → when it was
 * found dead, kept an hour).
 * ARGV: id, TTL in ms, rank ('' at join: assigned), '1' to remove expired members.
 * Returns [present before this call (0|1), rank, id1, rank1, id2, rank2 …] of the live members.
 */
const HEARTBEAT = `
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id = ARGV[1]
local present = redis.call('ZSCORE', KEYS[1], id)
local rank = tonumber(ARGV[3])
-- Found dead by the others, who moved the services to the next oldest node: rejoins as the youngest
-- (a node that was only cut off with everyone else, or lost with Redis' data, keeps its rank).
if not present and redis.call('ZSCORE', KEYS[4], id) then
  rank = nil
  redis.call('ZREM', KEYS[4], id)
end
if not rank then
  rank = redis.call('INCR', KEYS[3])
else
  local c = tonumber(redis.call('GET', KEYS[3]) or '0')
  if c < rank then redis.call('SET', KEYS[3], rank) end
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), id)
redis.call('HSET', KEYS[2], id, rank)
if ARGV[4] == '1' then
  for _, d in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)) do
    redis.call('ZREM', KEYS[1], d)
    redis.call('HDEL', KEYS[2], d)
    redis.call('ZADD', KEYS[4], now, d)
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - 3600000)
end
local out = { present and 1 or 0, rank }
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')) do
  out[#out + 1] = m
  out[#out + 1] = redis.call('HGET', KEYS[2], m) or ''
end
return out
`;

export interface RedisBusOptions {
  /** The configured node id (`cluster.nodeId`); the bus adds a suffix per start. */
  nodeId: string;
  /** `redis://[:password@]host:port/db` or `rediss://…` (may carry a password: never logged). */
  url: string;
  /** Prefix of the keys and channels (`cluster.prefix`, default `natter`). */
  prefix?: string;
  log: Logger;
}

interface Envelope {
  from: string;
  msg?: BusMessage;
  /** A node joining, or whose connection came back, asks everyone for a snapshot; its rank. */
  resync?: number;
  /** The answer to `resync`, after the snapshot (same connection: it arrives after it). */
  synced?: true;
}

/** The URL without credentials, for logs. */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.hostname}${u.port ? `:${u.port}` : ''}${u.pathname === '/' ? '' : u.pathname}`;
  } catch {
    return '(unparseable Redis URL)';
  }
}

export class RedisBus implements NodeBus {
  readonly nodeId: string;
  private readonly configuredId: string;
  private readonly target: string;
  private readonly log: Logger;
  private readonly prefix: string;
  private readonly k: {
    nodes: string;
    ranks: string;
    rank: string;
    gone: string;
    all: string;
    self: string;
  };
  /** Every command and publish of this node: one connection keeps publish order. */
  private readonly pub: Redis;
  /** Subscribed to this node's channel and the broadcast channel. */
  private readonly sub: Redis;
  private events: BusEvents | undefined;
  private rank = Number.MAX_SAFE_INTEGER;
  /** The other live nodes and their ranks. */
  private readonly peers = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private joined = false;
  private stopped = false;
  private pubReady = false;
  private subReady = false;
  private up = false;
  private downSince = 0;
  private lost = 0;
  private lastError: string | undefined;
  /** No member is declared dead before this time (after a recovery). */
  private judgeAfter = 0;
  private resyncPending = false;
  /** At join: the peers whose snapshot has not arrived yet. */
  private readonly awaitingSync = new Set<string>();
  private synced: (() => void) | undefined;

  constructor(opts: RedisBusOptions) {
    this.configuredId = opts.nodeId;
    this.nodeId = `${opts.nodeId}.${randomBytes(3).toString('hex')}`;
    this.target = redactRedisUrl(opts.url);
    this.log = opts.log.child({ node: this.nodeId });
    const p = (this.prefix = opts.prefix ?? 'natter');
    this.k = {
      nodes: `${p}:nodes`,
      ranks: `${p}:ranks`,
      rank: `${p}:rank`,
      gone: `${p}:gone`,
      all: `${p}:all`,
      self: `${p}:node:${this.nodeId}`,
    };
    const options: RedisOptions = {
      // Connected in start(), so that a failure there is an error of start.
      lazyConnect: true,
      // Nothing waits for a connection: a publish while Redis is away fails at once (and is counted)
      // instead of piling up in memory without bound and arriving after the recovery's snapshots.
      enableOfflineQueue: false,
      // Commands in flight when the connection drops fail rather than being re-sent on reconnect.
      maxRetriesPerRequest: 0,
      // Reconnects for ever, at most a second apart, so that a recovery is noticed within a second.
      retryStrategy: (times) => (this.stopped ? null : Math.min(times * 100, 1000)),
      // The channels are subscribed again by 'ready' below (knowing when that is done matters).
      autoResubscribe: false,
      connectTimeout: 5000,
      // A connection whose replies stop (peer machine gone without a reset) is dropped and redialled;
      // the heartbeat (pub) and a ping (sub) keep a command pending every second.
      socketTimeout: 5000,
      connectionName: `natter-${this.nodeId}`,
    };
    this.pub = new Redis(opts.url, options);
    this.sub = new Redis(opts.url, options);
  }

  members(): Member[] {
    const list = [{ id: this.nodeId, rank: this.rank }];
    for (const [id, rank] of this.peers) list.push({ id, rank });
    return list.sort((a, b) => a.rank - b.rank || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async start(events: BusEvents): Promise<void> {
    this.events = events;
    for (const c of [this.pub, this.sub]) {
      // ioredis reports every failed reconnection as an error: kept for the loss line, not logged each.
      c.on('error', (err: Error) => (this.lastError = err.message));
      c.on('close', () => {
        if (c === this.pub) this.pubReady = false;
        else this.subReady = false;
        this.connectionChanged();
      });
    }
    this.pub.on('ready', () => {
      this.pubReady = true;
      this.connectionChanged();
    });
    // On a reconnection (the first subscription is start's).
    this.sub.on('ready', () => {
      if (this.joined) void this.subscribe();
    });
    this.sub.on('message', (channel: string, data: string) => this.received(data));
    try {
      await Promise.all([this.pub.connect(), this.sub.connect()]);
      await this.subscribe();
      if (!this.up) throw new Error(this.lastError ?? 'the connection closed');
      const r = await this.heartbeat(true);
      this.rank = r.rank;
      for (const [id, rank] of r.live) this.peers.set(id, rank);
    } catch (err) {
      this.stopped = true;
      this.pub.disconnect();
      this.sub.disconnect();
      throw new Error(`cluster: cannot join over Redis at ${this.target}: ${(err as Error).message}`);
    }
    this.joined = true;
    this.log.info(
      { cluster: this.configuredId, rank: this.rank, redis: this.target, peers: [...this.peers.keys()] },
      'cluster: joined over Redis',
    );
    for (const [id, rank] of this.peers) this.events.nodeUp({ id, rank });
    this.timer = setInterval(() => void this.tick(), HEARTBEAT_MS);
    this.timer.unref();
    // The others learn of this node at their next poll; asked now, they send their snapshots at
    // once, and this node accepts clients only once it knows the cluster's sessions (or after a
    // bound, if a peer does not answer: the peer then sends its snapshot when it sees us).
    for (const id of this.peers.keys()) this.awaitingSync.add(id);
    if (this.awaitingSync.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      const done = new Promise<void>((r) => (this.synced = r));
      this.publish(this.k.all, { from: this.nodeId, resync: this.rank });
      await Promise.race([done, new Promise((r) => (timer = setTimeout(r, TTL_MS)))]);
      clearTimeout(timer);
      if (this.awaitingSync.size > 0)
        this.log.warn(
          { peers: [...this.awaitingSync] },
          'cluster: some nodes did not send their sessions in time; they will when they see this node',
        );
      this.awaitingSync.clear();
      this.synced = undefined;
    }
  }

  send(node: string, msg: BusMessage, undelivered?: () => void): void {
    this.publish(`${this.prefix}:node:${node}`, { from: this.nodeId, msg }, undelivered);
  }

  broadcast(msg: BusMessage): void {
    this.publish(this.k.all, { from: this.nodeId, msg });
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    // Leaving: the others see us gone at their next poll (a second), not after the TTL.
    if (this.up)
      await this.pub
        .multi()
        .zrem(this.k.nodes, this.nodeId)
        .hdel(this.k.ranks, this.nodeId)
        .exec()
        .catch(() => undefined);
    await Promise.all([this.pub, this.sub].map((c) => close(c)));
    this.peers.clear();
  }

  // --- connection -----------------------------------------------------------------------------

  private async subscribe(): Promise<void> {
    if (this.stopped) return;
    try {
      await this.sub.subscribe(this.k.self, this.k.all);
    } catch {
      return; // the connection dropped again: the next 'ready' subscribes
    }
    this.subReady = true;
    this.connectionChanged();
  }

  /** Both connections usable, or not: logs the loss and the recovery once each. */
  private connectionChanged(): void {
    const up = this.pubReady && this.subReady;
    if (up === this.up) return;
    this.up = up;
    if (!this.joined || this.stopped) return;
    if (!up) {
      this.downSince = Date.now();
      this.lost = 0;
      this.log.warn(
        { redis: this.target, error: this.lastError },
        'cluster: lost the connection to Redis; messages between nodes are lost until it is back (retrying every second)',
      );
      return;
    }
    this.log.info(
      { redis: this.target, outageMs: Date.now() - this.downSince, messagesLost: this.lost },
      'cluster: connection to Redis is back; exchanging snapshots with the other nodes',
    );
    this.lastError = undefined;
    this.judgeAfter = Date.now() + TTL_MS;
    this.resyncPending = true;
    void this.tick();
  }

  // --- membership -----------------------------------------------------------------------------

  private async heartbeat(
    judge: boolean,
  ): Promise<{ present: boolean; rank: number; live: Map<string, number> }> {
    const r = (await this.pub.eval(
      HEARTBEAT,
      4,
      this.k.nodes,
      this.k.ranks,
      this.k.rank,
      this.k.gone,
      this.nodeId,
      String(TTL_MS),
      this.joined ? String(this.rank) : '',
      judge ? '1' : '0',
    )) as (string | number)[];
    const live = new Map<string, number>();
    for (let i = 2; i + 1 < r.length; i += 2) {
      const id = String(r[i]);
      if (id === this.nodeId) continue;
      const rank = Number(r[i + 1]);
      live.set(id, r[i + 1] === '' || !Number.isFinite(rank) ? Number.MAX_SAFE_INTEGER : rank);
    }
    return { present: Number(r[0]) === 1, rank: Number(r[1]), live };
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.stopped || !this.up) return;
    this.ticking = true;
    try {
      // Keeps a command pending on the subscriber too, so that its socketTimeout sees a dead peer.
      this.sub.ping().catch(() => undefined);
      const judge = Date.now() >= this.judgeAfter;
      const { present, rank, live } = await this.heartbeat(judge);
      if (this.stopped) return;
      if (rank !== this.rank) {
        this.log.warn({ rank, was: this.rank }, 'cluster: this node rejoined as the youngest member');
        this.rank = rank;
      }
      const events = this.events!;
      let resync = this.resyncPending;
      this.resyncPending = false;
      if (!present) {
        this.log.warn(
          { redis: this.target },
          resync
            ? 'cluster: this node was no longer listed in Redis after the outage (found dead by the others, or Redis lost its data); rejoined under the same id'
            : 'cluster: the other nodes had found this node dead (no refresh for 3 s: a blocked event loop?); rejoined under the same id, sending them its sessions again',
        );
        resync = true;
      }
      if (judge)
        for (const id of [...this.peers.keys()])
          if (!live.has(id)) {
            this.peers.delete(id);
            this.syncedBy(id);
            events.nodeDown(id);
          }
      for (const [id, rank] of live) {
        const known = this.peers.has(id);
        this.peers.set(id, rank);
        // After a resync every member gets a snapshot below: once is enough.
        if (!known && !resync) events.nodeUp({ id, rank });
      }
      if (resync) {
        for (const [id, rank] of this.peers) events.nodeUp({ id, rank });
        this.publish(this.k.all, { from: this.nodeId, resync: this.rank });
      }
    } catch (err) {
      // A heartbeat that fails while connected (a timeout): the connection's events say the rest.
      if (this.up) this.log.debug({ err }, 'cluster: heartbeat failed');
    } finally {
      this.ticking = false;
    }
  }

  // --- messages -------------------------------------------------------------------------------

  private publish(channel: string, env: Envelope, undelivered?: () => void): void {
    if (this.stopped) return;
    const data = JSON.stringify(env);
    // A string's length bounds its UTF-8 size from below and a third of it from above.
    if (data.length * 3 > MAX_MESSAGE_BYTES && Buffer.byteLength(data) > MAX_MESSAGE_BYTES) {
      this.log.error(
        { type: env.msg?.t, bytes: Buffer.byteLength(data), max: MAX_MESSAGE_BYTES },
        'cluster: a message to other nodes is too large; not sent',
      );
      return;
    }
    if (!this.up) {
      this.lost++;
      if (undelivered) queueMicrotask(undelivered);
      return;
    }
    if (!undelivered) {
      this.pub.publish(channel, data).catch(() => this.lost++);
      return;
    }
    // PUBLISH answers how many subscribers got the message: none means the node's channel has no
    // reader (the node died and is not declared dead yet, or it is resubscribing).
    this.pub.publish(channel, data).then(
      (receivers) => {
        if (receivers === 0) undelivered();
      },
      () => {
        this.lost++;
        undelivered();
      },
    );
  }

  private syncedBy(id: string): void {
    if (this.awaitingSync.delete(id) && this.awaitingSync.size === 0) this.synced?.();
  }

  private received(data: string): void {
    let env: Envelope;
    try {
      env = JSON.parse(data) as Envelope;
    } catch {
      this.log.error('cluster: a malformed message on the cluster channels; ignored');
      return;
    }
    if (typeof env?.from !== 'string' || env.from === this.nodeId) return;
    if (typeof env.resync === 'number') {
      // The sender joined or its connection came back: it needs our snapshot. A joining node is
      // not in our list before our next poll: taken from its request (the poll confirms it).
      this.peers.set(env.from, env.resync);
      this.events?.nodeUp({ id: env.from, rank: env.resync });
      this.publish(`${this.prefix}:node:${env.from}`, { from: this.nodeId, synced: true });
      return;
    }
    if (env.synced) {
      this.syncedBy(env.from);
      return;
    }
    const msg = env.msg;
    if (!msg || typeof msg.t !== 'string') return;
    try {
      this.events?.message(env.from, msg);
    } catch (err) {
      this.log.error({ err, type: msg.t }, 'cluster: handling a message from a peer failed');
    }
  }
}

/** Closes a connection politely when it is up (QUIT after the pending replies), else at once. */
async function close(c: Redis): Promise<void> {
  if (c.status !== 'ready') {
    c.disconnect();
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([c.quit().catch(() => undefined), new Promise((r) => (timer = setTimeout(r, 2000)))]);
  clearTimeout(timer);
  c.disconnect();
}
