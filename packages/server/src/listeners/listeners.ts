import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { createServer as createTlsServer, type SecureContext, type TlsOptions } from 'node:tls';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type RequestListener,
  type Server as HttpServer,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { ListenerConfig } from '../config.js';
import type { ServerCore } from '../core/server-core.js';
import { C2SStream } from '../core/stream/c2s-stream.js';
import { ComponentStream } from '../core/stream/xep-0114-component-stream.js';
import { SocketTransport, TlsUpgrader } from './socket-transport.js';
import { RemoteRates, S2SInStream } from '../core/stream/s2s-in-stream.js';
import { WebSocketTransport } from './websocket-transport.js';
import { socketGuard } from './socket-guard.js';
import { ipKey } from '../util/ip-key.js';
import { TrustStore } from './trust-store.js';
import { TLS12_CIPHERS } from '../tls.js';
import type { Transport } from '../core/transport.js';
import { clientAddress, forwardedSecure, TrustedProxies } from './forwarded.js';
import { ProxiedAddresses, proxyProtocolFront } from './proxy-protocol.js';
import { startAdminListener } from './admin-listener.js';
import { BOSH_PATH, BoshSessions } from './bosh-sessions.js';
import {
  HOST_META_JSON_PATH,
  HOST_META_PATH,
  WEBSOCKET_PATH,
  hostMetaBody,
  listenerBase,
  listenerEndpoints,
} from './host-meta.js';

export { BOSH_PATH } from './bosh-sessions.js';
export { WEBSOCKET_PATH, HOST_META_PATH, HOST_META_JSON_PATH } from './host-meta.js';

export interface RunningListener {
  config: ListenerConfig;
  port: number;
  /** Stops accepting; resolves once every connection is gone. */
  close(): Promise<void>;
  /** Cuts every connection still open (end of shutdown). */
  abort(): void;
  /**
   * TLS listeners: new handshakes present the default certificate `tls.pem` holds now (after a
   * reload); open connections keep theirs. SNI needs nothing: the callback reads the live store.
   */
  refreshCertificate?(): void;
}

/**
 * Our default certificate as the listeners use it; read at each use (a new connection, a
 * STARTTLS), so that a reload reaches new connections without touching open ones.
 */
export interface ListenerTls {
  /** The default certificate's context (STARTTLS on client streams). */
  readonly context: SecureContext;
  /** The default certificate's PEM (a TLS server's own certificate). */
  readonly pem: { cert: Buffer; key: Buffer };
}

/** Admission control before a stream exists (connection caps per IP); implemented by limits. */
export type Admission = (ip: string) => boolean;

/** What the server-to-server listeners share: trusted CAs for peers' certificates, connection counts. */
export interface S2SListenerEnv {
  /** PEM CAs a peer's certificate may chain to (Node's roots plus `s2s.ca`). */
  ca: string[];
  rates: RemoteRates;
  /** The same CAs, for client certificates OpenSSL refuses for their purpose only (trust-store.ts). */
  trust: TrustStore;
  /** Our certificates by name for client listeners (SNI), without the peers' CAs. */
  clientSni: (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void;
  /** Open inbound s2s sockets per address. */
  perIp: Map<string, number>;
  total: number;
}

export function s2sListenerEnv(
  core: ServerCore,
  ca: string[],
  clientSni: S2SListenerEnv['clientSni'],
): S2SListenerEnv {
  return {
    ca,
    clientSni,
    rates: new RemoteRates(core.config.s2s.stanzasPerSecond),
    trust: new TrustStore(ca),
    perIp: new Map(),
    total: 0,
  };
}

/**
 * Server-to-server (RFC 6120, XEP-0368): plain TCP with STARTTLS (`s2s`) or TLS from the first
 * byte (`s2s-tls`, ALPN xmpp-server); either way the peer's certificate is requested (never
 * required: dialback peers may have none) and verified against `env.ca`, and ours is chosen by SNI
 * among `tls.certificates`. Connections are capped per address (`s2s.maxConnectionsPerIp`) and
 * in total (`s2s.maxInbound`).
 */
function s2sServer(
  core: ServerCore,
  type: 's2s' | 's2s-tls',
  tls: ListenerTls,
  env: S2SListenerEnv | undefined,
): { server: NetServer; refresh: () => void } {
  if (!env) throw new Error('s2s listeners need the server-to-server environment');
  const certificates = core.s2sCertificates;
  const tlsOptions: TlsOptions = {
    ...tls.pem,
    ca: env.ca,
    requestCert: true,
    rejectUnauthorized: false,
    minVersion: 'TLSv1.2',
    ciphers: TLS12_CIPHERS,
    ALPNProtocols: ['xmpp-server'],
    handshakeTimeout: core.config.limits.handshakeTimeoutMs,
    ...(certificates ? { SNICallback: certificates.sni } : {}),
  };
  const s2s = core.config.s2s;
  /** Counts the socket; false (and the socket is closed) when a cap is reached. */
  const admitted = (socket: import('node:net').Socket): boolean => {
    // Counted like the socket guard counts: IPv6 addresses grouped by limits.ipv6Prefix.
    const ip = ipKey(socket.remoteAddress ?? '', core.config.limits.ipv6Prefix);
    const n = env.perIp.get(ip) ?? 0;
    if (core.stopping || !s2s.enabled || n >= s2s.maxConnectionsPerIp || env.total >= s2s.maxInbound) {
      core.log.info({ ip, perIp: n, total: env.total }, 'inbound federation connection refused (s2s caps)');
      socket.destroy();
      return false;
    }
    env.perIp.set(ip, n + 1);
    env.total++;
    socket.once('close', () => {
      env.total--;
      const left = (env.perIp.get(ip) ?? 1) - 1;
      if (left <= 0) env.perIp.delete(ip);
      else env.perIp.set(ip, left);
    });
    return true;
  };
  if (type === 's2s-tls') {
    const server = createTlsServer(tlsOptions, (socket) => {
      const transport = new SocketTransport(socket, 'tls', undefined);
      transport.trust = env.trust;
      new S2SInStream(transport, core, { rates: env.rates });
    });
    server.prependListener('connection', (socket: import('node:net').Socket) => void admitted(socket));
    return { server, refresh: () => server.setSecureContext({ ...tlsOptions, ...tls.pem }) };
  }
  // STARTTLS: one (non-listening) TLS server per certificate, so that a peer sending no SNI still
  // gets the certificate of the domain it opened the stream to.
  const servers = new Map<string, import('node:tls').Server>();
  const upgrader = new TlsUpgrader((name) => {
    const files = certificates?.filesFor(name);
    const key = files ? files.cert : '';
    let server = servers.get(key);
    if (!server) {
      server = createTlsServer(
        files ? { ...tlsOptions, cert: files.certPem, key: files.keyPem } : { ...tlsOptions, ...tls.pem },
      );
      servers.set(key, server);
    }
    return server;
  });
  const server = createNetServer((socket) => {
    if (!admitted(socket)) return;
    const transport = new SocketTransport(socket, 'tcp', undefined, undefined, undefined, upgrader);
    transport.trust = env.trust;
    new S2SInStream(transport, core, { rates: env.rates });
  });
  // The upgrade servers are made again, from the files as they are now, at the next STARTTLS;
  // an upgrade under way finishes on the server it started with.
  return { server, refresh: () => servers.clear() };
}

/** One BOSH session manager per server, shared by its http and https listeners. */
const boshByCore = new WeakMap<ServerCore, BoshSessions>();

function boshSessions(core: ServerCore, admit: Admission): BoshSessions {
  let b = boshByCore.get(core);
  if (!b) boshByCore.set(core, (b = new BoshSessions(core, admit, (transport) => accept(core, transport))));
  return b;
}

/**
 * The http and https listeners: `/health`, XEP-0156 host-meta, BOSH at BOSH_PATH, then the
 * modules' routes; WebSocket upgrades at WEBSOCKET_PATH. On https every stream is `secure`; on
 * http only when a trusted proxy says the client reached it over TLS.
 */
function webHandlers(
  core: ServerCore,
  config: ListenerConfig,
  trusted: TrustedProxies,
  admit: Admission,
  tls: boolean,
): { request: RequestListener; upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void } {
  const bosh = boshSessions(core, admit);
  const client = (req: IncomingMessage) => ({
    ip: clientAddress(req.socket.remoteAddress, req.headers, trusted, core.config.trustedProxyHeader),
    secure:
      tls || forwardedSecure(req.socket.remoteAddress, req.headers, trusted, core.config.trustedProxyHeader),
  });
  const request: RequestListener = (req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (path === '/health') {
      const body = JSON.stringify({
        status: core.stopping ? 'stopping' : 'ok',
        sessions: core.sessions.size,
      });
      res.writeHead(core.stopping ? 503 : 200, { 'content-type': 'application/json' }).end(body);
      return;
    }
    if (path === HOST_META_PATH || path === HOST_META_JSON_PATH) {
      hostMeta(req, res, config, client(req).secure, path === HOST_META_JSON_PATH);
      return;
    }
    if (path === BOSH_PATH || path === `${BOSH_PATH}/`) {
      bosh.handle(req, res, client(req));
      return;
    }
    const route = core.httpRoutes.match(path);
    if (!route) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    const { ip, secure } = client(req);
    const base = listenerBase(config.publicUrl, req.headers.host, secure);
    const context = { ip, secure, endpoints: base === undefined ? undefined : listenerEndpoints(base) };
    Promise.resolve()
      .then(() => route.handler(req, res, context))
      .catch((err: unknown) => {
        core.log.error({ err, module: route.owner, url: req.url }, 'HTTP handler failed');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' }).end('internal error\n');
        else res.destroy();
      });
  };
  const wss = new WebSocketServer({
    noServer: true,
    // Twice the stanza limit: a frame a little over it reaches the parser, which answers with the
    // <policy-violation/> stream error (as on TCP); far larger ones are cut by ws itself (1009).
    maxPayload: core.config.limits.maxStanzaBytes * 2,
    handleProtocols: (protocols) => (protocols.has('xmpp') ? 'xmpp' : false),
  });
  const upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const { ip, secure } = client(req);
    const url = (req.url ?? '').split('?')[0];
    if (url !== WEBSOCKET_PATH || core.stopping || !admit(ip)) {
      socket.end(
        'HTTP/1.1 ' + (url !== WEBSOCKET_PATH ? '404 Not Found' : '503 Service Unavailable') + '\r\n\r\n',
      );
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      if (ws.protocol !== 'xmpp') {
        ws.close(1002, 'the xmpp subprotocol is required (RFC 7395)');
        return;
      }
      accept(core, new WebSocketTransport(ws, ip, req.socket.localPort ?? 0, secure));
    });
  };
  return { request, upgrade };
}

/**
 * XEP-0156 §3: the WebSocket and BOSH URLs of this listener as host-meta, XRD (RFC 6415) or JSON,
 * from the listener's `publicUrl`, else from the Host the client asked for and whether it came
 * over TLS. Any origin may read it (CORS), since web clients ask from theirs.
 */
function hostMeta(
  req: IncomingMessage,
  res: import('node:http').ServerResponse,
  config: ListenerConfig,
  secure: boolean,
  json: boolean,
): void {
  const cors = { 'access-control-allow-origin': '*' };
  if (req.method === 'OPTIONS') {
    res
      .writeHead(204, {
        ...cors,
        'access-control-allow-methods': 'GET, HEAD, OPTIONS',
        'access-control-max-age': '86400',
      })
      .end();
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { ...cors, allow: 'GET, HEAD, OPTIONS', 'content-type': 'text/plain' }).end();
    return;
  }
  const base = listenerBase(config.publicUrl, req.headers.host, secure);
  if (base === undefined) {
    res.writeHead(400, { ...cors, 'content-type': 'text/plain' }).end('a valid Host header is required\n');
    return;
  }
  const body = hostMetaBody(base, json);
  res.writeHead(200, {
    ...cors,
    'content-type': json ? 'application/json' : 'application/xrd+xml; charset=utf-8',
    'content-length': Buffer.byteLength(body),
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

function accept(core: ServerCore, transport: Transport, sni?: S2SListenerEnv['clientSni']): void {
  if (sni && transport instanceof SocketTransport) transport.sni = sni;
  const stream = new C2SStream(transport, core);
  core.streams.add(stream);
}

export async function startListener(
  core: ServerCore,
  config: ListenerConfig,
  tls: ListenerTls,
  admit: Admission,
  s2s?: S2SListenerEnv,
): Promise<RunningListener> {
  if (config.type === 'admin') return startAdminListener(core, config);
  // Client addresses: from trusted proxies' headers (http) or PROXY headers (proxyProtocol).
  const trusted = new TrustedProxies(core.config.trustedProxies);
  const proxied = new ProxiedAddresses();
  let server: NetServer | HttpServer;
  let refreshCertificate: (() => void) | undefined;
  if (config.type === 'http' || config.type === 'https') {
    const web = webHandlers(core, config, trusted, admit, config.type === 'https');
    let http: HttpServer;
    if (config.type === 'https') {
      const options: TlsOptions = {
        minVersion: 'TLSv1.2',
        ciphers: TLS12_CIPHERS,
        ALPNProtocols: ['http/1.1'],
        handshakeTimeout: core.config.limits.handshakeTimeoutMs,
        ...(s2s ? { SNICallback: s2s.clientSni } : {}),
      };
      const https = createHttpsServer({ ...options, ...tls.pem }, web.request);
      refreshCertificate = () => https.setSecureContext({ ...options, ...tls.pem });
      http = https;
    } else http = createHttpServer(web.request);
    http.on('upgrade', web.upgrade);
    server = http;
  } else if (config.type === 'c2s-tls') {
    const options: TlsOptions = {
      minVersion: 'TLSv1.2',
      ALPNProtocols: ['xmpp-client'],
      ...(s2s ? { SNICallback: s2s.clientSni } : {}),
      ciphers: TLS12_CIPHERS,
      handshakeTimeout: core.config.limits.handshakeTimeoutMs,
    };
    const direct = createTlsServer({ ...options, ...tls.pem }, (socket) => {
      accept(core, new SocketTransport(socket, 'tls', tls.context, proxied.of(socket)));
    });
    refreshCertificate = () => direct.setSecureContext({ ...options, ...tls.pem });
    server = direct;
  } else if (config.type === 's2s' || config.type === 's2s-tls') {
    const s2sListener = s2sServer(core, config.type, tls, s2s);
    server = s2sListener.server;
    refreshCertificate = s2sListener.refresh;
  } else if (config.type === 'component') {
    // XEP-0114: plain TCP (loopback by default); the shared secret authenticates the component.
    server = createNetServer((socket) => {
      if (core.stopping || !admit(socket.remoteAddress ?? '')) {
        socket.destroy();
        return;
      }
      new ComponentStream(new SocketTransport(socket, 'tcp', undefined), core);
    });
  } else {
    server = createNetServer((socket) => {
      if (core.stopping || !admit(proxied.of(socket))) {
        socket.destroy();
        return;
      }
      accept(core, new SocketTransport(socket, 'tcp', tls.context, proxied.of(socket)), s2s?.clientSni);
    });
  }
  if (config.type === 'c2s-tls') {
    // Before the TLS handshake, so refused clients cost no crypto.
    server.on('connection', (socket) => {
      if (core.stopping || !admit(proxied.of(socket))) socket.destroy();
    });
  }
  // PROXY protocol: a front server reads the header, then hands the connection to `server`.
  const front = config.proxyProtocol
    ? proxyProtocolFront(server, {
        trusted,
        addresses: proxied,
        timeoutMs: core.config.limits.handshakeTimeoutMs,
        resume: config.type === 'c2s',
      })
    : server;
  front.maxConnections = 100_000;
  // Raw sockets per address and in total, handshake timeouts (trusted proxies are not capped).
  socketGuard(core).attach(server, config.type, front);
  const sockets = new Set<import('node:net').Socket>();
  // One listener function for every socket ('close' comes once): no closure kept per connection.
  function forget(this: import('node:net').Socket): void {
    sockets.delete(this);
  }
  front.on('connection', (socket: import('node:net').Socket) => {
    sockets.add(socket);
    socket.on('close', forget);
  });
  await new Promise<void>((resolve, reject) => {
    front.once('error', reject);
    front.listen({ port: config.port, host: config.host, backlog: 1024 }, () => {
      front.off('error', reject);
      resolve();
    });
  });
  const address = front.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  return {
    config,
    port,
    close: () => new Promise<void>((resolve) => front.close(() => resolve())),
    abort: () => {
      for (const s of sockets) s.destroy();
    },
    ...(refreshCertificate ? { refreshCertificate } : {}),
  };
}
