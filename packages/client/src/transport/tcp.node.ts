import net from 'node:net';
import tls from 'node:tls';
import { Emitter } from '../core/emitter.js';
import type { Transport, TransportContext, TransportEvents, TransportFactory } from './transport.js';
import { tlsChannelBinding } from './channel-binding.node.js';

/** TCP with STARTTLS (`xmpp://host:5222`) or direct TLS (`xmpps://host:5223`, XEP-0368), for Node. */
export class TcpTransport implements Transport {
  readonly framing = 'stream' as const;
  readonly events = new Emitter<TransportEvents>();
  #socket: net.Socket | undefined;
  #secure = false;
  #closed = false;
  readonly #direct: boolean;
  readonly #host: string;
  readonly #port: number;

  constructor(
    url: URL,
    private readonly ctx: TransportContext,
  ) {
    this.#direct = url.protocol === 'xmpps:';
    this.#host = url.hostname.replace(/^\[|\]$/g, '') || ctx.domain;
    this.#port = url.port ? Number(url.port) : this.#direct ? 5223 : 5222;
  }

  get secure(): boolean {
    return this.#secure;
  }

  #tlsOptions(): tls.ConnectionOptions {
    return {
      servername: this.ctx.domain,
      rejectUnauthorized: this.ctx.tls.rejectUnauthorized ?? true,
      ca: this.ctx.tls.ca,
      ALPNProtocols: this.#direct ? ['xmpp-client'] : undefined,
      ...(this.ctx.tls.maxVersion ? { maxVersion: this.ctx.tls.maxVersion } : {}),
    };
  }

  channelBinding(type: string): Uint8Array | undefined {
    const s = this.#socket;
    return this.#secure && s instanceof tls.TLSSocket ? tlsChannelBinding(s, type) : undefined;
  }

  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      let socket: net.Socket;
      if (this.#direct) {
        socket = tls.connect({ host: this.#host, port: this.#port, ...this.#tlsOptions() }, () => {
          this.#secure = true;
          socket.off('error', onError);
          resolve();
        });
      } else {
        socket = net.connect({ host: this.#host, port: this.#port }, () => {
          socket.off('error', onError);
          resolve();
        });
      }
      socket.once('error', onError);
      this.#attach(socket);
    });
  }

  #attach(socket: net.Socket): void {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Uint8Array) => {
      if (this.#socket === socket) this.events.emit('data', chunk);
    });
    let error: Error | undefined;
    socket.on('error', (err) => {
      error = err;
    });
    socket.on('close', () => {
      if (this.#socket !== socket) return; // replaced by the TLS socket
      this.#finish(error);
    });
  }

  startTls(): Promise<void> {
    const plain = this.#socket;
    if (!plain) return Promise.reject(new Error('not connected'));
    return new Promise((resolve, reject) => {
      plain.removeAllListeners('data');
      const secure = tls.connect({ socket: plain, ...this.#tlsOptions() }, () => {
        this.#secure = true;
        secure.off('error', reject);
        resolve();
      });
      secure.once('error', reject);
      this.#attach(secure);
    });
  }

  #finish(error?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.events.emit('close', error ? { error } : {});
  }

  send(data: string): void {
    const s = this.#socket;
    if (!s || s.destroyed) throw new Error('socket is closed');
    s.write(data);
  }

  close(): void {
    const s = this.#socket;
    if (!s) return;
    s.end();
    setTimeout(() => s.destroy(), 2000).unref();
  }

  destroy(error?: Error): void {
    this.#socket?.destroy();
    this.#finish(error ?? new Error('connection dropped'));
  }
}

export function tcpTransport(): TransportFactory {
  return { protocols: ['xmpp:', 'xmpps:'], create: (url, ctx) => new TcpTransport(url, ctx) };
}
