import { readFileSync } from 'node:fs';
import type { Server as NetServer, Socket } from 'node:net';
import type { Server as HttpServer } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { ListenerConfig } from '../config.js';
import type { ServerCore } from '../core/server-core.js';
import { ipKey } from '../util/ip-key.js';
import { TrustedProxies } from './forwarded.js';

/**
 * Admission of raw sockets, before any TLS handshake or HTTP request: counts every open socket per
 * address (IPv6 grouped by `limits.ipv6Prefix`) on every listener of the process and refuses those
 * beyond `limits.maxSocketsPerIp`; holds the total below `limits.maxConnections` (below the
 * open-files limit, so the process never runs out of descriptors) by closing the oldest socket still
 * in its TLS handshake or HTTP request head to make room, else refusing; bounds the handshake and the
 * request head to `limits.handshakeTimeoutMs`; and logs what it refuses (rate-limited).
 */
export interface SocketGuard {
  /**
   * Installs the guard on a listener's server; call before it listens. `acceptor` is the server
   * that accepts the sockets when it is another (the PROXY protocol front): its accept errors
   * (EMFILE) are handled too.
   */
  attach(server: NetServer | HttpServer, type: ListenerConfig['type'], acceptor?: NetServer): void;
  /** Open sockets counted under an address's key (tests, admin). */
  count(address: string): number;
  readonly total: number;
  readonly maxConnections: number;
}

/** Descriptors kept for everything but client sockets (storage, logs, certificates, DNS). */
export function reserveFor(softLimit: number): number {
  return Math.max(100, Math.ceil(softLimit * 0.05));
}

/** The soft open-files limit of this process (Linux /proc), or undefined if unknown or unlimited. */
export function openFilesSoftLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    const n = m ? Number(m[1]) : NaN;
    return Number.isFinite(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** `limits.maxConnections`, with "auto" resolved from the open-files limit (no cap if unknown). */
export function resolveMaxConnections(configured: number | 'auto'): number {
  if (configured !== 'auto') return configured;
  const soft = openFilesSoftLimit();
  if (soft === undefined) return Number.POSITIVE_INFINITY;
  return Math.max(1, soft - reserveFor(soft));
}

/** Logs at most once per interval, counting what it left out. */
function rateLimited(intervalMs: number, log: (suppressed: number) => void): () => void {
  let last = 0;
  let suppressed = 0;
  return () => {
    const now = Date.now();
    if (now - last < intervalMs) {
      suppressed++;
      return;
    }
    log(suppressed);
    last = now;
    suppressed = 0;
  };
}

const guards = new WeakMap<ServerCore, SocketGuard>();

/** The process's guard for this server (one per core, shared by all its listeners). */
export function socketGuard(core: ServerCore): SocketGuard {
  let g = guards.get(core);
  if (!g) guards.set(core, (g = createGuard(core)));
  return g;
}

function exemptList(core: ServerCore): Set<string> {
  const o = core.config.modules.limits;
  const list = o && Array.isArray(o.exempt) ? o.exempt : [];
  return new Set(list.filter((x): x is string => typeof x === 'string').map((x) => ipKey(x, 128)));
}

function createGuard(core: ServerCore): SocketGuard {
  const limits = core.config.limits;
  const log = core.log;
  const maxConnections = resolveMaxConnections(limits.maxConnections);
  const exempt = exemptList(core);
  // A reverse proxy or load balancer carries many clients: its sockets count towards the total only;
  // per-client caps apply to the address it reports (modules.limits, registration, auth failures).
  const trusted = new TrustedProxies(core.config.trustedProxies);
  const perKey = new Map<string, number>();
  let total = 0;
  /** Sockets not yet past their TLS handshake or HTTP request head, oldest first, by remote address and port. */
  const pending = new Map<string, Socket>();
  /** Request-head timers of http and https sockets, by connection (see attach). */
  const headTimers = new Map<string, NodeJS.Timeout>();
  const peer = (s: { remoteAddress?: string | undefined; remotePort?: number | undefined }) =>
    `${s.remoteAddress ?? ''}|${s.remotePort ?? 0}`;
  const key = (address: string) => ipKey(address, limits.ipv6Prefix);

  const logPerIp = rateLimited(10_000, (suppressed) =>
    log.warn(
      { ip: lastRefused, maxSocketsPerIp: limits.maxSocketsPerIp, suppressed },
      'connection refused: too many open sockets from this address',
    ),
  );
  const logTotal = rateLimited(10_000, (suppressed) =>
    log.error(
      { maxConnections, suppressed },
      'the server holds limits.maxConnections sockets (open-files limit): closing the oldest unfinished handshake, else refusing',
    ),
  );
  const logAcceptError = rateLimited(10_000, (suppressed) =>
    log.error(
      { code: lastAcceptError, suppressed },
      'cannot accept connections: the process is out of file descriptors (raise LimitNOFILE / ulimit -n, or lower limits.maxConnections)',
    ),
  );
  let lastRefused = '';
  let lastAcceptError = '';

  function admit(socket: Socket, handshake: boolean): void {
    const address = socket.remoteAddress ?? '';
    const k = key(address);
    const counted = !limits.disabled && !exempt.has(ipKey(address, 128)) && !trusted.trusts(address);
    // The per-address cap first: a socket that is refused anyway must not evict anyone.
    if (counted && (perKey.get(k) ?? 0) >= limits.maxSocketsPerIp) {
      lastRefused = k;
      logPerIp();
      socket.destroy();
      return;
    }
    if (total >= maxConnections) {
      logTotal();
      const [oldest] = pending;
      if (!oldest) {
        socket.destroy();
        return;
      }
      // Its descriptor is released as it closes; the reserve covers the moment in between.
      pending.delete(oldest[0]);
      oldest[1].destroy();
    }
    if (counted) perKey.set(k, (perKey.get(k) ?? 0) + 1);
    total++;
    const me = peer(socket);
    if (handshake) pending.set(me, socket);
    // 'close' comes once: `on` spares the once-wrapper every open connection would keep.
    socket.on('close', () => {
      total--;
      if (pending.get(me) === socket) pending.delete(me);
      if (!counted) return;
      const n = (perKey.get(k) ?? 1) - 1;
      if (n <= 0) perKey.delete(k);
      else perKey.set(k, n);
    });
  }

  return {
    get total() {
      return total;
    },
    maxConnections,
    count: (address) => perKey.get(key(address)) ?? 0,
    attach(server, type, acceptor) {
      // First of all 'connection' listeners, so a refused socket costs no TLS or HTTP work.
      const web = type === 'http' || type === 'https';
      // By remote and local address: on https a request's socket is the TLS socket over the one
      // accepted here, with the same addresses.
      const connection = (s: Socket) => `${peer(s)}|${s.localPort ?? 0}`;
      server.prependListener('connection', (socket: Socket) => {
        admit(socket, type !== 'c2s' && type !== 'component' && type !== 's2s');
        if (web && !socket.destroyed) {
          // Until a request or upgrade head has arrived complete (TLS handshake included); after
          // that, ws and http time it.
          const timer = setTimeout(() => socket.destroy(), limits.handshakeTimeoutMs);
          timer.unref();
          const key = connection(socket);
          headTimers.set(key, timer);
          socket.once('close', () => {
            clearTimeout(timer);
            if (headTimers.get(key) === timer) headTimers.delete(key);
          });
        }
      });
      if (web) {
        const http = server as HttpServer;
        http.headersTimeout = limits.handshakeTimeoutMs;
        // A whole request may take up to an hour: an upload (XEP-0363) of 100 MiB takes minutes.
        // Routes time their own bodies more tightly (BOSH: 10 s; uploads: a stall of 60 s).
        http.requestTimeout = 3_600_000;
        const headArrived = (req: { socket: Socket }) => {
          const key = connection(req.socket);
          clearTimeout(headTimers.get(key));
          headTimers.delete(key);
          pending.delete(peer(req.socket));
        };
        http.prependListener('request', headArrived);
        http.prependListener('upgrade', headArrived);
      }
      if (type === 'c2s-tls' || type === 's2s-tls' || type === 'https') {
        // A handshake that fails or times out (`handshakeTimeout`) must free its socket.
        server.on('tlsClientError', (_err: Error, socket: TLSSocket) => socket.destroy());
        server.on('secureConnection', (socket: TLSSocket) => pending.delete(peer(socket)));
      }
      for (const s of acceptor && acceptor !== server ? [server, acceptor] : [server])
        s.on('error', (err: NodeJS.ErrnoException) => {
          if (err.code === 'EMFILE' || err.code === 'ENFILE') {
            lastAcceptError = err.code;
            logAcceptError();
          } else if (s.listening) log.error({ err }, 'listener error');
        });
    },
  };
}
