import { TLSSocket, connect as tlsConnect, type SecureContext, type Server as TlsServer } from 'node:tls';
import { connect as netConnect, type Socket } from 'node:net';
import type { X509Certificate } from 'node:crypto';
import type { Transport } from '../core/transport.js';
import { tlsChannelBinding } from './channel-binding.js';
import type { TrustStore } from './trust-store.js';
import type { Dialer } from '../core/s2s/federation.js';

/** A socket's errors are followed by 'close', which the stream hears; one function for all sockets. */
function ignoreError(): void {}

/** The transport a socket serves, for the listeners below (one set of functions for every socket). */
const TRANSPORT = Symbol('natter.transport');
type Served = Socket & { [TRANSPORT]?: SocketTransport };

/** TCP (STARTTLS-capable) or direct-TLS socket as a stream transport. */
export class SocketTransport implements Transport {
  readonly framed = false;
  readonly remoteAddress: string;
  readonly localPort: number;
  private socket: Socket;
  private dataCb: ((chunk: Buffer) => void) | undefined;
  private closeCb: ((hadError: boolean) => void) | undefined;
  private closeCalled = false;
  private drainCb: (() => void) | undefined;
  private upgraded = false;
  /** Inbound server-to-server: the CAs a client certificate may chain to (see TrustStore). */
  trust: TrustStore | undefined;
  /** Inbound: our certificate chosen by the name the client asks for (`tls.certificates`). */
  sni: ((servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void) | undefined;

  constructor(
    socket: Socket,
    readonly kind: 'tcp' | 'tls',
    private readonly context: SecureContext | undefined,
    /** The client's address when a proxy told it (PROXY protocol); else the TCP peer. */
    remoteAddress?: string,
    /** Outbound connections (connectTcp) upgrade as the TLS client, to this server name. */
    private readonly outbound?: { servername: string },
    /** Inbound server-to-server: STARTTLS hands the socket to this upgrader (client certificates). */
    private readonly upgrader?: TlsUpgrader,
  ) {
    this.socket = socket;
    this.remoteAddress = remoteAddress ?? socket.remoteAddress ?? '';
    this.localPort = socket.localPort ?? 0;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    this.attach(socket);
  }

  // Socket listeners shared by every transport (`this` is the socket): an idle connection keeps
  // no closures of its own for them.
  private static onSocketData(this: Served, chunk: Buffer): void {
    this[TRANSPORT]?.dataCb?.(chunk);
  }

  private static onSocketClose(this: Served, hadError: boolean): void {
    this[TRANSPORT]?.closed(hadError);
  }

  private static onSocketDrain(this: Served): void {
    this[TRANSPORT]?.drainCb?.();
  }

  private attach(socket: Socket): void {
    (socket as Served)[TRANSPORT] = this;
    socket.on('data', SocketTransport.onSocketData);
    socket.on('close', SocketTransport.onSocketClose);
    socket.on('drain', SocketTransport.onSocketDrain);
    socket.on('error', ignoreError);
  }

  /** The connection is gone: the stream hears of it once. */
  private closed(hadError: boolean): void {
    if (this.closeCalled) return;
    this.closeCalled = true;
    this.closeCb?.(hadError);
  }

  get secure(): boolean {
    return this.kind === 'tls' || this.upgraded;
  }

  channelBinding(type: string): Uint8Array | undefined {
    return this.secure && this.socket instanceof TLSSocket
      ? tlsChannelBinding(this.socket, type, 'server')
      : undefined;
  }

  get canStartTls(): boolean {
    return (
      this.kind === 'tcp' &&
      !this.upgraded &&
      (this.context !== undefined || this.outbound !== undefined || this.upgrader !== undefined)
    );
  }

  peerCertificate(): X509Certificate | undefined {
    if (!(this.socket instanceof TLSSocket)) return undefined;
    return this.socket.getPeerX509Certificate() ?? undefined;
  }

  peerVerification(): { authorized: boolean; error?: string | undefined } {
    if (!(this.socket instanceof TLSSocket)) return { authorized: false, error: 'no TLS' };
    const err = this.socket.authorizationError;
    const error = err === null || err === undefined ? undefined : String(err);
    // A server certificate without the clientAuth usage, presented as a client certificate
    // (XEP-0178): OpenSSL refuses the purpose, the chain is judged by our own check instead.
    if (!this.socket.authorized && error === 'INVALID_PURPOSE' && this.trust) {
      const peer = this.socket.getPeerCertificate(true);
      if (peer.raw && this.trust.verifies(peer)) return { authorized: true };
    }
    return { authorized: this.socket.authorized, error };
  }

  tlsVersion(): string | undefined {
    return this.socket instanceof TLSSocket ? (this.socket.getProtocol() ?? undefined) : undefined;
  }

  get bufferedBytes(): number {
    return this.socket.writableLength;
  }

  write(data: string): void {
    if (this.socket.destroyed) return;
    this.socket.write(data);
  }

  cork(): void {
    this.socket.cork();
  }

  uncork(): void {
    this.socket.uncork();
  }

  startTls(proceed: string, name?: string): Promise<void> {
    if (this.outbound) return this.startTlsClient(this.outbound.servername);
    const raw = this.socket;
    const upgrader = this.upgrader;
    if (upgrader) {
      return new Promise((resolve, reject) => {
        raw.pause();
        raw.write(proceed, (err) => {
          if (err || raw.destroyed) {
            reject(err ?? new Error('the connection closed before the TLS handshake'));
            return;
          }
          upgrader.upgrade(this.detach(raw), name).then(
            (tls) => {
              this.socket = tls;
              this.upgraded = true;
              this.attach(tls);
              resolve();
            },
            (e: Error) => {
              // Our close listener is off the raw socket now: the stream hears of the end here.
              raw.destroy();
              this.closed(true);
              reject(e);
            },
          );
        });
      });
    }
    return new Promise((resolve, reject) => {
      raw.pause();
      raw.write(proceed, () => {
        const tls = new TLSSocket(this.detach(raw), {
          isServer: true,
          secureContext: this.context!,
          ...(this.sni ? { SNICallback: this.sni } : {}),
        });
        this.upgradeTo(tls, 'secure').then(resolve, reject);
      });
    });
  }

  /** The outbound side of STARTTLS: the peer sent <proceed/>; the certificate is checked by the caller. */
  private startTlsClient(servername: string): Promise<void> {
    const tls = tlsConnect({
      socket: this.detach(this.socket),
      servername,
      minVersion: 'TLSv1.2',
      // Who the peer is, is decided from peerCertificate() (RFC 6125 / XEP-0178), not here.
      rejectUnauthorized: false,
      ...(this.context ? { secureContext: this.context } : {}),
    });
    return this.upgradeTo(tls, 'secureConnect');
  }

  /**
   * Takes the stream's own listeners off the plain socket before TLS wraps it. Only ours: others'
   * (the socket guard's and the listeners' connection counts) must still hear the socket close.
   */
  private detach(raw: Socket): Socket {
    raw.off('data', SocketTransport.onSocketData);
    raw.off('close', SocketTransport.onSocketClose);
    raw.off('drain', SocketTransport.onSocketDrain);
    return raw;
  }

  /** Uses `tls` from now on; resolves once its handshake completed (`ready`), rejects on failure. */
  private upgradeTo(tls: TLSSocket, ready: 'secure' | 'secureConnect'): Promise<void> {
    this.socket = tls;
    this.upgraded = true;
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => {
        tls.destroy();
        reject(err);
      };
      tls.once('error', onError);
      tls.once(ready, () => {
        tls.off('error', onError);
        this.attach(tls);
        resolve();
      });
      tls.on('close', (hadError: boolean) => this.closed(hadError));
    });
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  onData(cb: (chunk: Buffer) => void): void {
    this.dataCb = cb;
  }

  onClose(cb: (hadError: boolean) => void): void {
    this.closeCb = cb;
  }

  onDrain(cb: () => void): void {
    this.drainCb = cb;
  }
}

/**
 * Opens an outbound TCP connection (server-to-server next) as a Transport; `servername` is the
 * name sent in SNI when the stream upgrades with STARTTLS. `context` adds our certificate (a TLS
 * client certificate, for SASL EXTERNAL between servers).
 */
export function connectTcp(opts: {
  host: string;
  port: number;
  servername: string;
  context?: SecureContext;
  timeoutMs?: number;
}): Promise<SocketTransport> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: opts.host, port: opts.port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connecting to ${opts.host}:${opts.port} timed out`));
    }, opts.timeoutMs ?? 10_000);
    timer.unref();
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(new SocketTransport(socket, 'tcp', opts.context, undefined, { servername: opts.servername }));
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/**
 * Dials a server-to-server peer (the core's `Dialer`): plain TCP that upgrades with STARTTLS to
 * `servername`, or direct TLS at once (XEP-0368, ALPN `xmpp-server`). The peer's certificate is
 * not judged here: the stream checks it against the domain (RFC 6125, XEP-0178).
 */
export function dialServer(opts: Parameters<Dialer>[0]): Promise<SocketTransport> {
  if (!opts.directTls) return connectTcp(opts);
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: opts.host,
      port: opts.port,
      servername: opts.servername,
      secureContext: opts.context,
      ALPNProtocols: ['xmpp-server'],
      minVersion: 'TLSv1.2',
      rejectUnauthorized: false,
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connecting to ${opts.host}:${opts.port} (direct TLS) timed out`));
    }, opts.timeoutMs);
    timer.unref();
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(new SocketTransport(socket, 'tls', opts.context, undefined, { servername: opts.servername }));
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/**
 * Server-side STARTTLS through a `tls.Server` that never listens: the plain socket is handed to it
 * as a new connection (Node's documented way to inject one), so that Node requests and verifies
 * the peer's client certificate (`authorized`, `authorizationError`) and picks our certificate by
 * SNI exactly as on a direct-TLS listener. Server-to-server needs both (XEP-0178).
 */
export class TlsUpgrader {
  private readonly waiting = new Map<
    string,
    { resolve: (s: TLSSocket) => void; reject: (e: Error) => void }
  >();
  private readonly hooked = new WeakSet<TlsServer>();

  /**
   * `serverFor(name)`: the TLS server whose default certificate is the one for `name` (used when
   * the peer sends no SNI; with SNI, the servers' SNICallback chooses).
   */
  constructor(private readonly serverFor: (name: string | undefined) => TlsServer) {}

  private hook(server: TlsServer): void {
    if (this.hooked.has(server)) return;
    this.hooked.add(server);
    server.on('secureConnection', (tls: TLSSocket) => {
      const key = `${tls.remoteAddress}|${tls.remotePort}`;
      const w = this.waiting.get(key);
      this.waiting.delete(key);
      if (w) w.resolve(tls);
      else tls.destroy();
    });
    server.on('tlsClientError', (err: Error, tls: TLSSocket) => {
      const key = `${tls.remoteAddress}|${tls.remotePort}`;
      const w = this.waiting.get(key);
      this.waiting.delete(key);
      tls.destroy();
      w?.reject(err);
    });
  }

  upgrade(raw: Socket, name?: string): Promise<TLSSocket> {
    const key = `${raw.remoteAddress}|${raw.remotePort}`;
    const server = this.serverFor(name);
    this.hook(server);
    return new Promise((resolve, reject) => {
      this.waiting.set(key, { resolve, reject });
      raw.once('close', () => {
        if (this.waiting.get(key)?.reject === reject) {
          this.waiting.delete(key);
          reject(new Error('the connection closed during the TLS handshake'));
        }
      });
      server.emit('connection', raw);
    });
  }
}
