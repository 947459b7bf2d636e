import { createServer, connect, type Server, type Socket } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import type { BusEvents, BusMessage, Member, NodeBus } from './node-bus.js';
import type { Logger } from '../logger.js';

/** What the primary of `--workers` tells each worker (workers.ts). */
export interface MeshMember extends Member {
  /** The Unix socket (abstract on Linux) the node accepts its peers on. */
  path: string;
}

/** Messages between the primary and a worker over node:cluster's IPC channel. */
export type PrimaryMessage = { natter: 'members'; members: MeshMember[] };
export type WorkerMessage = { natter: 'joined'; id: string; path: string } | { natter: 'ready'; id: string };

/**
 * Frames end with NUL, which neither JSON (it escapes control characters) nor XML 1.0 nor a JID can
 * contain. A stanza for a session (`t: 'd'`, most of the traffic) travels as `D<jid>\x01<id>\x01<xml>`
 * instead of JSON, which would escape every quote of the XML on one side and unescape it on the other.
 */
const END = '\0';
const SEP = '\x01';

function encode(msg: BusMessage): string {
  if (msg.t === 'd') {
    const { j, i, s } = msg as unknown as { j: string; i: string; s: string };
    if (s.indexOf(END) < 0 && s.indexOf(SEP) < 0 && i.indexOf(SEP) < 0 && j.indexOf(SEP) < 0)
      return `D${j}${SEP}${i}${SEP}${s}`;
  }
  return JSON.stringify(msg);
}

function decode(frame: string): BusMessage {
  if (frame.charCodeAt(0) !== 68 /* D */) return JSON.parse(frame) as BusMessage;
  const a = frame.indexOf(SEP);
  const b = frame.indexOf(SEP, a + 1);
  if (a < 0 || b < 0) throw new Error('malformed stanza frame');
  return { t: 'd', j: frame.slice(1, a), i: frame.slice(a + 1, b), s: frame.slice(b + 1) };
}

/** Past this many bytes queued for one peer, messages to it are dropped (and logged): a bound. */
const MAX_QUEUED_BYTES = 64 * 1024 * 1024;
/** A line longer than this from a peer is a protocol error: the connection is closed. */
const MAX_LINE_BYTES = 128 * 1024 * 1024;

interface Peer {
  member: MeshMember;
  socket: Socket | undefined;
  /** Lines waiting for the next flush. */
  pending: string[];
  pendingBytes: number;
  /** The `undelivered` callbacks of pending lines: run if the peer leaves before they are written. */
  pendingFails: (() => void)[];
  dropped: number;
}

/**
 * The bus between the workers of one machine: each worker listens on a Unix socket and opens one
 * connection to every other worker; messages are JSON lines, written in batches once per turn of
 * the event loop. A connection starts with the shared key the primary gave every worker (abstract
 * sockets are reachable by any local user). Membership comes from the primary, which sees workers
 * start and exit.
 */
export class MeshBus implements NodeBus {
  private readonly peers = new Map<string, Peer>();
  private server: Server | undefined;
  private events: BusEvents | undefined;
  private flushScheduled = false;
  private readonly inbound = new Set<Socket>();
  private rank = Number.MAX_SAFE_INTEGER;
  private stopped = false;
  /** Resolves once the primary listed this node: until then it would not know who runs the services. */
  private listed!: () => void;

  constructor(
    readonly nodeId: string,
    readonly path: string,
    private readonly key: string,
    private readonly log: Logger,
    /** Sends to the primary (process.send in a worker). */
    private readonly toPrimary: (msg: WorkerMessage) => void,
  ) {}

  members(): Member[] {
    return [{ id: this.nodeId, rank: this.rank }, ...[...this.peers.values()].map((p) => p.member)];
  }

  async start(events: BusEvents): Promise<void> {
    this.events = events;
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const listed = new Promise<void>((resolve) => (this.listed = resolve));
    this.toPrimary({ natter: 'joined', id: this.nodeId, path: this.path });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error('cluster: the primary did not list this node within 10 s')),
        10_000,
      );
    });
    try {
      await Promise.race([listed, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The primary's list of live workers (this one included). */
  setMembers(list: MeshMember[]): void {
    if (this.stopped) return;
    const self = list.find((m) => m.id === this.nodeId);
    if (self) this.rank = self.rank;
    const seen = new Set<string>();
    for (const m of list) {
      if (m.id === this.nodeId) continue;
      seen.add(m.id);
      if (this.peers.has(m.id)) continue;
      const peer: Peer = {
        member: m,
        socket: undefined,
        pending: [],
        pendingBytes: 0,
        pendingFails: [],
        dropped: 0,
      };
      this.peers.set(m.id, peer);
      this.dial(peer);
      this.events?.nodeUp({ id: m.id, rank: m.rank });
    }
    for (const [id, peer] of this.peers) {
      if (seen.has(id)) continue;
      this.peers.delete(id);
      peer.socket?.destroy();
      this.events?.nodeDown(id);
      // Lines never written (the peer's socket was down): their senders learn it now.
      const fails = peer.pendingFails;
      peer.pendingFails = [];
      for (const fn of fails) fn();
    }
    if (self) this.listed?.();
  }

  send(node: string, msg: BusMessage, undelivered?: () => void): void {
    const peer = this.peers.get(node);
    if (!peer) {
      if (undelivered) queueMicrotask(undelivered);
      return;
    }
    this.enqueue(peer, encode(msg), undelivered);
  }

  broadcast(msg: BusMessage): void {
    if (this.peers.size === 0) return;
    const frame = encode(msg);
    for (const peer of this.peers.values()) this.enqueue(peer, frame);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.flush();
    await Promise.all(
      [...this.peers.values()].map(
        (p) =>
          new Promise<void>((resolve) => {
            if (!p.socket || p.socket.destroyed) return resolve();
            p.socket.end(resolve);
            setTimeout(resolve, 1000).unref();
          }),
      ),
    );
    for (const s of this.inbound) s.destroy();
    this.peers.clear();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private enqueue(peer: Peer, line: string, undelivered?: () => void): void {
    if (peer.pendingBytes + line.length > MAX_QUEUED_BYTES) {
      if (peer.dropped++ === 0)
        this.log.error(
          { node: peer.member.id },
          'cluster: a peer node is not reading; dropping messages to it',
        );
      if (undelivered) queueMicrotask(undelivered);
      return;
    }
    peer.pending.push(line);
    peer.pendingBytes += line.length + 1;
    if (undelivered) peer.pendingFails.push(undelivered);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    for (const peer of this.peers.values()) {
      // A socket being dialled again keeps its lines: written once it connects, or reported
      // undelivered if the primary says the peer is gone.
      if (peer.pending.length === 0 || !peer.socket || peer.socket.connecting || peer.socket.destroyed)
        continue;
      const data = peer.pending.join(END) + END;
      peer.pending = [];
      peer.pendingBytes = 0;
      peer.pendingFails = [];
      peer.dropped = 0;
      peer.socket.write(data);
    }
  }

  private dial(peer: Peer): void {
    const socket = connect(peer.member.path);
    peer.socket = socket;
    socket.setNoDelay?.(true);
    socket.on('connect', () => {
      socket.write(JSON.stringify({ t: 'hi', from: this.nodeId, key: this.key }) + END);
      this.flush();
    });
    socket.on('error', (err) => {
      if (this.peers.get(peer.member.id) === peer)
        this.log.warn({ err, node: peer.member.id }, 'cluster: connection to a peer node failed');
    });
    socket.on('close', () => {
      // The primary says when a node is gone; until then, dial again (it may be restarting its socket).
      if (this.stopped || this.peers.get(peer.member.id) !== peer) return;
      setTimeout(() => {
        if (!this.stopped && this.peers.get(peer.member.id) === peer) this.dial(peer);
      }, 200).unref();
    });
  }

  private accept(socket: Socket): void {
    this.inbound.add(socket);
    socket.on('close', () => this.inbound.delete(socket));
    socket.on('error', () => undefined);
    let from: string | undefined;
    let buffered = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      if (buffered.length > MAX_LINE_BYTES) {
        this.log.error('cluster: a peer sent an oversized message; closing its connection');
        socket.destroy();
        return;
      }
      let start = 0;
      for (;;) {
        const nl = buffered.indexOf(END, start);
        if (nl < 0) break;
        const line = buffered.slice(start, nl);
        start = nl + 1;
        let msg: BusMessage;
        try {
          msg = decode(line);
        } catch {
          this.log.error('cluster: a peer sent a malformed message; closing its connection');
          socket.destroy();
          return;
        }
        if (from === undefined) {
          if (msg.t !== 'hi' || typeof msg.from !== 'string' || !this.keyMatches(msg.key)) {
            this.log.error('cluster: a connection to the node socket did not present the cluster key');
            socket.destroy();
            return;
          }
          from = msg.from;
          continue;
        }
        try {
          this.events?.message(from, msg);
        } catch (err) {
          this.log.error({ err, type: msg.t }, 'cluster: handling a message from a peer failed');
        }
      }
      buffered = buffered.slice(start);
    });
  }

  private keyMatches(key: unknown): boolean {
    if (typeof key !== 'string') return false;
    const a = Buffer.from(key);
    const b = Buffer.from(this.key);
    return a.length === b.length && timingSafeEqual(a, b);
  }
}
