import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { createServer as createTlsServer, type SecureContext } from 'node:tls';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { WebSocketServer } from 'ws';
import type { ListenerConfig } from '../config.js';
import type { ServerCore } from '../core/server-core.js';
import { C2SStream } from '../core/stream/c2s-stream.js';
import { ComponentStream } from '../core/stream/xep-0114-component-stream.js';
import { SocketTransport } from './socket-transport.js';
import { WebSocketTransport } from './websocket-transport.js';
import { socketGuard } from './socket-guard.js';
import { TLS12_CIPHERS } from '../tls.js';
import type { Transport } from '../core/transport.js';
import { clientAddress, forwardedSecure, TrustedProxies } from './forwarded.js';
import { ProxiedAddresses, proxyProtocolFront } from './proxy-protocol.js';
import { startAdminListener } from './admin-listener.js';

export const WEBSOCKET_PATH = '/xmpp-websocket';

export interface RunningListener {
  config: ListenerConfig;
  port: number;
  /** Stops accepting; resolves once every connection is gone. */
  close(): Promise<void>;
  /** Cuts every connection still open (end of shutdown). */
  abort(): void;
}

/** Admission control before a stream exists (connection caps per IP); implemented by limits. */
export type Admission = (ip: string) => boolean;

function accept(core: ServerCore, transport: Transport): void {
  const stream = new C2SStream(transport, core);
  core.streams.add(stream);
}

export async function startListener(
  core: ServerCore,
  config: ListenerConfig,
  context: SecureContext,
  tlsFiles: { cert: Buffer; key: Buffer },
  admit: Admission,
): Promise<RunningListener> {
  if (config.type === 'admin') return startAdminListener(core, config);
  // Client addresses: from trusted proxies' headers (http) or PROXY headers (proxyProtocol).
  const trusted = new TrustedProxies(core.config.trustedProxies);
  const proxied = new ProxiedAddresses();
  let server: NetServer | HttpServer;
  if (config.type === 'http') {
    const http = createHttpServer((req, res) => {
      if (req.url === '/health') {
        const body = JSON.stringify({
          status: core.stopping ? 'stopping' : 'ok',
          sessions: core.sessions.size,
        });
        res.writeHead(core.stopping ? 503 : 200, { 'content-type': 'application/json' }).end(body);
        return;
      }
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    });
    const wss = new WebSocketServer({
      noServer: true,
      // Twice the stanza limit: a frame a little over it reaches the parser, which answers with the
      // <policy-violation/> stream error (as on TCP); far larger ones are cut by ws itself (1009).
      maxPayload: core.config.limits.maxStanzaBytes * 2,
      handleProtocols: (protocols) => (protocols.has('xmpp') ? 'xmpp' : false),
    });
    http.on('upgrade', (req, socket, head) => {
      const ip = clientAddress(
        req.socket.remoteAddress,
        req.headers,
        trusted,
        core.config.trustedProxyHeader,
      );
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
        const secure = forwardedSecure(
          req.socket.remoteAddress,
          req.headers,
          trusted,
          core.config.trustedProxyHeader,
        );
        accept(core, new WebSocketTransport(ws, ip, req.socket.localPort ?? 0, secure));
      });
    });
    server = http;
  } else if (config.type === 'c2s-tls') {
    server = createTlsServer(
      {
        ...tlsFiles,
        minVersion: 'TLSv1.2',
        ALPNProtocols: ['xmpp-client'],
        ciphers: TLS12_CIPHERS,
        handshakeTimeout: core.config.limits.handshakeTimeoutMs,
      },
      (socket) => {
        accept(core, new SocketTransport(socket, 'tls', context, proxied.of(socket)));
      },
    );
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
      accept(core, new SocketTransport(socket, 'tcp', context, proxied.of(socket)));
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
  front.on('connection', (socket: import('node:net').Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
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
  };
}
