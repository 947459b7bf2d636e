import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { createServer as createTlsServer, type SecureContext } from 'node:tls';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { WebSocketServer } from 'ws';
import type { ListenerConfig } from '../config.js';
import type { ServerCore } from '../core/server-core.js';
import { C2SStream } from '../core/c2s-stream.js';
import { SocketTransport } from './socket-transport.js';
import { WebSocketTransport } from './websocket-transport.js';
import { socketGuard } from './socket-guard.js';
import { TLS12_CIPHERS } from '../tls.js';
import type { Transport } from '../core/transport.js';

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

function isLoopback(address: string | undefined): boolean {
  const a = address?.startsWith('::ffff:') ? address.slice(7) : (address ?? '');
  return a === '::1' || a.startsWith('127.');
}

/** What `GET /admin/sessions` answers (loopback only): live and hibernated sessions, open streams. */
export function sessionsReport(core: ServerCore, list: boolean): unknown {
  let hibernated = 0;
  const sessions: { jid: string; state: string; ip: string; transport: string; since: string }[] = [];
  for (const s of core.sessions.all()) {
    if (s.hibernated) hibernated++;
    if (list) {
      sessions.push({
        jid: s.jid.toString(),
        state: s.hibernated ? 'hibernated' : s.available ? 'available' : 'connected',
        ip: s.ip,
        transport: s.stream.transport.kind,
        since: new Date(s.createdAt).toISOString(),
      });
    }
  }
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
    ...(list ? { sessions } : {}),
  };
}

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
      const [path, query] = (req.url ?? '').split('?');
      if (path === '/admin/sessions' && req.method === 'GET') {
        // Admin data only for the machine itself.
        if (!isLoopback(req.socket.remoteAddress) && req.socket.remoteAddress !== req.socket.localAddress) {
          res.writeHead(403, { 'content-type': 'text/plain' }).end('forbidden\n');
          return;
        }
        const list = new URLSearchParams(query ?? '').get('list') === '1';
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify(sessionsReport(core, list)));
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
      const ip = req.socket.remoteAddress ?? '';
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
        accept(core, new WebSocketTransport(ws, ip, req.socket.localPort ?? 0, false));
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
        accept(core, new SocketTransport(socket, 'tls', context));
      },
    );
  } else {
    server = createNetServer((socket) => {
      if (core.stopping || !admit(socket.remoteAddress ?? '')) {
        socket.destroy();
        return;
      }
      accept(core, new SocketTransport(socket, 'tcp', context));
    });
  }
  if (config.type === 'c2s-tls') {
    // Before the TLS handshake, so refused clients cost no crypto.
    server.on('connection', (socket) => {
      if (core.stopping || !admit(socket.remoteAddress ?? '')) socket.destroy();
    });
  }
  server.maxConnections = 100_000;
  socketGuard(core).attach(server, config.type);
  const sockets = new Set<import('node:net').Socket>();
  server.on('connection', (socket: import('node:net').Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: config.port, host: config.host, backlog: 1024 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  return {
    config,
    port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    abort: () => {
      for (const s of sockets) s.destroy();
    },
  };
}
