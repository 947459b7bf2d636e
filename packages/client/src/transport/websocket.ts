import { Emitter } from '../core/emitter.js';
import type { Transport, TransportContext, TransportEvents, TransportFactory } from './transport.js';

/** The part of the WHATWG WebSocket API this transport uses (also implemented by the `ws` package). */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open' | 'close' | 'error' | 'message', listener: (ev: any) => void): void;
}

export type WebSocketConstructor = (url: string, protocols: string[], ctx: TransportContext) => WebSocketLike;

/** RFC 7395 XMPP over WebSocket: subprotocol "xmpp", one XML element per text message. */
export class WebSocketTransport implements Transport {
  readonly framing = 'websocket' as const;
  readonly events = new Emitter<TransportEvents>();
  readonly secure: boolean;
  #ws: WebSocketLike | undefined;
  #closed = false;

  constructor(
    private readonly url: URL,
    private readonly ctx: TransportContext,
    private readonly make: WebSocketConstructor,
  ) {
    this.secure = url.protocol === 'wss:';
  }

  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      let opened = false;
      let ws: WebSocketLike;
      try {
        ws = this.make(this.url.toString(), ['xmpp'], this.ctx);
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      this.#ws = ws;
      ws.addEventListener('open', () => {
        opened = true;
        if (ws.protocol !== 'xmpp') {
          this.destroy(
            new Error(`server did not accept the "xmpp" WebSocket subprotocol (got "${ws.protocol}")`),
          );
          reject(new Error('WebSocket subprotocol "xmpp" refused'));
          return;
        }
        resolve();
      });
      ws.addEventListener('message', (ev: { data: unknown }) => {
        const data = ev.data;
        if (typeof data === 'string') this.events.emit('data', data);
        else if (data instanceof ArrayBuffer) this.events.emit('data', new TextDecoder().decode(data));
        else if (data instanceof Uint8Array) this.events.emit('data', new TextDecoder().decode(data));
      });
      ws.addEventListener('error', (ev: { message?: string; error?: unknown }) => {
        const err = new Error(`WebSocket error${ev.message ? `: ${ev.message}` : ''}`, { cause: ev.error });
        if (!opened) reject(err);
        this.#finish(err);
      });
      ws.addEventListener('close', (ev: { code?: number; wasClean?: boolean }) => {
        if (!opened) reject(new Error(`WebSocket closed before opening (code ${ev.code})`));
        this.#finish(
          ev.wasClean === false || ev.code === 1006
            ? new Error(`WebSocket closed abnormally (code ${ev.code})`)
            : undefined,
        );
      });
    });
  }

  #finish(error?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.events.emit('close', error ? { error } : {});
  }

  send(data: string): void {
    const ws = this.#ws;
    if (!ws || ws.readyState !== 1) throw new Error('WebSocket is not open');
    ws.send(data);
  }

  close(): void {
    try {
      this.#ws?.close(1000);
    } catch {
      /* already closing */
    }
  }

  destroy(error?: Error): void {
    try {
      this.#ws?.close(4000, 'dropped');
    } catch {
      /* already closed */
    }
    this.#finish(error ?? new Error('connection dropped'));
  }
}

/** WebSocket transport using the runtime's global `WebSocket` (browsers, Deno, Node ≥ 22). */
export function browserWebSocketTransport(): TransportFactory {
  return {
    protocols: ['ws:', 'wss:'],
    create(url, ctx) {
      return new WebSocketTransport(url, ctx, (u, protocols) => {
        const WS = (globalThis as { WebSocket?: new (url: string, protocols: string[]) => WebSocketLike })
          .WebSocket;
        if (!WS) throw new Error('no global WebSocket in this runtime');
        return new WS(u, protocols);
      });
    },
  };
}
