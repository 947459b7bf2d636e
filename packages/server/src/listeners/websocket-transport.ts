import type { WebSocket } from 'ws';
import type { Transport } from '../core/transport.js';

/** XMPP over WebSocket (RFC 7395): one element per text frame. */
export class WebSocketTransport implements Transport {
  readonly kind = 'websocket' as const;
  readonly framed = true;
  readonly canStartTls = false;

  /** TLS, if any, ends at the HTTP server or a proxy in front: no peer certificate here. */
  peerCertificate(): undefined {
    return undefined;
  }
  peerVerification(): { authorized: boolean; error?: string } {
    return { authorized: false, error: 'no TLS client certificates over WebSocket' };
  }
  private dataCb: (chunk: string) => void = () => {};
  private closeCb: (hadError: boolean) => void = () => {};

  constructor(
    private readonly ws: WebSocket,
    readonly remoteAddress: string,
    readonly localPort: number,
    readonly secure: boolean,
  ) {
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        // RFC 7395 §3.3.3: XMPP frames are text frames.
        ws.close(1003, 'binary frames are not XMPP');
        return;
      }
      this.dataCb(data.toString());
    });
    let closed = false;
    const close = (hadError: boolean) => {
      if (closed) return;
      closed = true;
      this.closeCb(hadError);
    };
    ws.on('close', () => close(false));
    ws.on('error', () => close(true));
  }

  get bufferedBytes(): number {
    return this.ws.bufferedAmount;
  }

  write(data: string): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(data);
  }

  startTls(): Promise<void> {
    return Promise.reject(new Error('STARTTLS is not available over WebSocket'));
  }

  pause(): void {
    this.ws.pause();
  }

  resume(): void {
    this.ws.resume();
  }

  end(): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.close(1000);
  }

  destroy(): void {
    this.ws.terminate();
  }

  onData(cb: (chunk: string) => void): void {
    this.dataCb = cb;
  }

  onClose(cb: (hadError: boolean) => void): void {
    this.closeCb = cb;
  }

  onDrain(): void {
    // ws has no drain event; the send buffer is checked on every write.
  }
}
