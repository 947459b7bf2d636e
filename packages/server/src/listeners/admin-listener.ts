import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import type { ListenerConfig } from '../config.js';
import type { ServerCore } from '../core/server-core.js';
import type { S2SStreamInfo } from '../core/s2s/federation.js';
import type { RunningListener } from './listeners.js';
import { isLoopbackHost } from './loopback.js';
import { AdminActionError, accountRoutes } from '../admin/actions.js';
import { apiRoutes } from '../admin/api-routes.js';
import { WebConsole } from '../admin/console/console.js';

/** One admin endpoint: method + exact path → handler writing a JSON answer (or throwing). */
export interface AdminRoute {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  handle(req: AdminRequest): unknown;
}

export interface AdminRequest {
  core: ServerCore;
  query: URLSearchParams;
  /** The request body parsed as JSON (POST/DELETE; undefined when empty). */
  body: unknown;
  /** The client's address (the audit log's `by`). */
  address: string;
}

/** An answer that is not JSON (Prometheus text): returned by a handler as is. */
export class RawAnswer {
  constructor(
    readonly contentType: string,
    readonly body: string,
  ) {}
}

/** An admin answer other than 200: `throw new AdminError(404, 'no such user')`. */
export class AdminError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** What `GET /admin/sessions` answers: live and hibernated sessions, open streams. */
export function sessionsReport(core: ServerCore, list: boolean): unknown {
  let hibernated = 0;
  const node = core.cluster?.nodeId;
  const sessions: {
    jid: string;
    state: string;
    ip: string;
    transport: string;
    since: string;
    node?: string;
  }[] = [];
  for (const s of core.sessions.all()) {
    if (s.hibernated) hibernated++;
    if (list) {
      sessions.push({
        jid: s.jid.toString(),
        state: s.hibernated ? 'hibernated' : s.available ? 'available' : 'connected',
        ip: s.ip,
        transport: s.stream.transport.kind,
        since: new Date(s.createdAt).toISOString(),
        ...(node ? { node } : {}),
      });
    }
  }
  // In a cluster, the other nodes' sessions as this node knows them (their records): whichever
  // node answers, the list covers the cluster. What only their node knows is left empty.
  if (list && node)
    for (const r of core.sessions.remote())
      sessions.push({
        jid: r.jid.toString(),
        state: r.available ? 'available' : 'connected',
        ip: '',
        transport: '',
        since: '',
        node: r.node,
      });
  let unauthenticated = 0;
  for (const st of core.streams) if (!st.authenticated) unauthenticated++;
  return {
    total: core.sessions.size,
    live: core.sessions.size - hibernated,
    hibernated,
    accounts: core.sessions.accounts(),
    streams: core.streams.size,
    unauthenticated,
    stopping: core.stopping,
    ...(node ? { node, local: core.sessions.localSize } : {}),
    ...(list ? { sessions } : {}),
  };
}

/** A server-to-server stream as `GET /admin/s2s` lists it: `since` as an ISO 8601 string. */
export type S2SStreamReport = Omit<S2SStreamInfo, 'since'> & { since: string };

/** What `GET /admin/s2s` answers. */
export interface S2SReport {
  /** `s2s.enabled`: with federation off there are no streams. */
  enabled: boolean;
  /** Inbound streams first, then outbound, each sorted by remote domain. */
  streams: S2SStreamReport[];
}

function s2sStream(i: S2SStreamInfo): S2SStreamReport {
  return {
    id: i.id,
    direction: i.direction,
    localDomains: [...i.localDomains],
    remoteDomains: [...i.remoteDomains],
    auth: i.auth,
    tls: i.tls,
    ...(i.tlsVersion ? { tlsVersion: i.tlsVersion } : {}),
    address: i.address,
    since: new Date(i.since).toISOString(),
    stanzasIn: i.stanzasIn,
    stanzasOut: i.stanzasOut,
    state: i.state,
  };
}

/** Sorted by remote domain (a stream not yet authenticated has none: first), then age, then id. */
function byRemote(a: S2SStreamInfo, b: S2SStreamInfo): number {
  const ka = [...a.remoteDomains].sort().join(',');
  const kb = [...b.remoteDomains].sort().join(',');
  if (ka !== kb) return ka < kb ? -1 : 1;
  if (a.since !== b.since) return a.since - b.since;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** What `GET /admin/s2s` answers: federation on or off and the live server-to-server streams. */
export function s2sReport(core: ServerCore): S2SReport {
  const inbound = [...core.s2sInbound].map((h) => h.info()).sort(byRemote);
  const outbound = (core.federation?.list() ?? []).slice().sort(byRemote);
  return { enabled: core.config.s2s.enabled, streams: [...inbound, ...outbound].map(s2sStream) };
}

/** The admin API. New endpoints are one entry here. */
export const ADMIN_ROUTES: AdminRoute[] = [
  {
    method: 'GET',
    path: '/admin/sessions',
    handle: ({ core, query }) => sessionsReport(core, query.get('list') === '1'),
  },
  { method: 'GET', path: '/admin/s2s', handle: ({ core }) => s2sReport(core) },
  /**
   * Prometheus/OpenMetrics scrape (docs/monitoring.md): this process's metrics, names prefixed
   * natter_; with `--workers`, every worker's and the primary's (cluster/machine-metrics.ts).
   */
  {
    method: 'GET',
    path: '/metrics',
    handle: async ({ core }) => {
      const m = await core.metrics.render();
      return new RawAnswer(m.contentType, m.body);
    },
  },
  ...accountRoutes,
  /** The administrator's commands (admin/registry.ts) under /api/, described by /api/openapi.json. */
  ...apiRoutes,
];

function sameToken(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

const MAX_BODY = 64 * 1024;

function readBody(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new AdminError(413, 'request body too large'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (!text) return resolve(undefined);
      try {
        resolve(JSON.parse(text));
      } catch {
        reject(new AdminError(400, 'the body is not JSON'));
      }
    });
    req.on('error', reject);
  });
}

/** The host name of a Host header value: `127.0.0.1:5281` → `127.0.0.1`, `[::1]:5281` → `::1`. */
function hostName(host: string): string {
  if (host.startsWith('[')) return host.slice(1, Math.max(1, host.indexOf(']')));
  const colon = host.indexOf(':');
  return colon >= 0 && host.indexOf(':', colon + 1) < 0 ? host.slice(0, colon) : host;
}

function answer(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

/**
 * The `admin` listener (default 127.0.0.1:5281): the HTTP admin API, apart from the public HTTP
 * listener so that a reverse proxy forwarding every path of the latter cannot expose it. With
 * `token` set, every request needs `Authorization: Bearer <token>`; off loopback the token is
 * required (the configuration is refused without one). The web console (`/console/`, unless
 * `console: false`) authenticates its own way: an admin's login, not the token.
 */
export async function startAdminListener(
  core: ServerCore,
  config: ListenerConfig,
  routes: readonly AdminRoute[] = ADMIN_ROUTES,
): Promise<RunningListener> {
  const token = config.token;
  if (!token && !isLoopbackHost(config.host))
    throw new Error(
      `the admin listener on ${config.host}:${config.port} is not on loopback: set a "token" on it ` +
        '(requests then need "Authorization: Bearer <token>") or bind it to 127.0.0.1',
    );
  // Private unless configured: off loopback (where anyone reaching the port could try admins'
  // passwords) the console is served only when the listener's `console` block asks for it.
  const consoleOptions =
    config.console === false
      ? undefined
      : (config.console ??
        (isLoopbackHost(config.host) ? { idleTimeout: 30 * 60, maxAge: 12 * 60 * 60 } : undefined));
  const webConsole = consoleOptions && new WebConsole(core, consoleOptions, { s2s: s2sReport });
  const http = createHttpServer((req, res) => {
    // DNS rebinding (a name of the attacker's resolving to 127.0.0.1) sends that name in Host.
    if (!token && !isLoopbackHost(hostName(req.headers.host ?? ''))) {
      answer(res, 403, { error: 'without a token the admin API answers only for a loopback Host' });
      return;
    }
    const url = new URL(req.url ?? '/', 'http://admin');
    // The web console answers browsers under /console/ with rules of its own (a login of an account
    // in `admins`, a session cookie, its own Origin only, a CSRF token): admin/console/console.ts.
    if (webConsole && WebConsole.owns(url.pathname)) {
      webConsole.handle(req, res, url);
      return;
    }
    // Everything else is not for browsers: a web page the administrator visits could otherwise POST
    // here (a "simple" cross-site request needs no preflight). Browsers always send Origin on a
    // POST; the CLI and scripts send none.
    if (req.headers.origin !== undefined) {
      answer(res, 403, { error: 'the admin API does not answer browsers (Origin header present)' });
      return;
    }
    if (token) {
      const auth = req.headers.authorization ?? '';
      const given = auth.startsWith('Bearer ') ? auth.slice(7).trim() : '';
      if (!given || !sameToken(given, token)) {
        res.setHeader('www-authenticate', 'Bearer realm="natter-admin"');
        answer(res, 401, { error: 'a valid admin token is required (Authorization: Bearer …)' });
        return;
      }
    }
    const onPath = routes.filter((r) => r.path === url.pathname);
    const route = onPath.find((r) => r.method === req.method);
    if (!route) {
      if (onPath.length) {
        res.setHeader('allow', onPath.map((r) => r.method).join(', '));
        answer(res, 405, { error: 'method not allowed' });
      } else answer(res, 404, { error: 'not found' });
      return;
    }
    void (async () => {
      try {
        const body = req.method === 'GET' ? undefined : await readBody(req);
        const out = await route.handle({
          core,
          query: url.searchParams,
          body,
          address: req.socket.remoteAddress ?? '',
        });
        if (out instanceof RawAnswer) res.writeHead(200, { 'content-type': out.contentType }).end(out.body);
        else answer(res, 200, out);
      } catch (err) {
        if (err instanceof AdminError || err instanceof AdminActionError)
          answer(res, err.status, { error: err.message });
        else {
          core.log.error({ err, path: url.pathname }, 'admin request failed');
          answer(res, 500, { error: (err as Error).message });
        }
      }
    })();
  });
  const sockets = new Set<Socket>();
  http.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  http.on('error', (err: NodeJS.ErrnoException) => {
    if (http.listening) core.log.error({ err }, 'admin listener error');
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen({ port: config.port, host: config.host }, () => {
      http.off('error', reject);
      resolve();
    });
  });
  const address = http.address();
  return {
    config,
    port: typeof address === 'object' && address ? address.port : config.port,
    close: () =>
      new Promise<void>((resolve) => {
        http.close(() => resolve());
        http.closeIdleConnections();
      }),
    abort: () => {
      for (const s of sockets) s.destroy();
    },
  };
}
