import type { Emitter } from '../core/emitter.js';

/** TLS settings for transports that do TLS themselves (Node TCP, Node WebSocket). */
export interface TlsOptions {
  /** Verify the server certificate (default true). */
  rejectUnauthorized?: boolean;
  /** Extra trusted CA certificate(s), PEM. */
  ca?: string | string[];
  /** Highest TLS version to negotiate (default: Node's, TLS 1.3). */
  maxVersion?: 'TLSv1.2' | 'TLSv1.3';
}

export interface TransportEvents {
  /** Bytes (TCP) or one text frame (WebSocket) from the server. */
  data: string | Uint8Array;
  /** The connection is gone; `error` is set when it did not close cleanly. */
  close: { error?: Error };
}

/**
 * A byte or frame pipe to the server, one implementation per runtime (see `*.node.ts`).
 * `framing` says how XMPP is carried: an XML stream (RFC 6120) or one element per WebSocket message (RFC 7395).
 */
export interface Transport {
  readonly framing: 'stream' | 'websocket';
  readonly events: Emitter<TransportEvents>;
  /** True once the channel is encrypted (direct TLS, STARTTLS done, or wss:). */
  readonly secure: boolean;
  connect(): Promise<void>;
  send(data: string): void;
  /**
   * Channel binding data of the TLS connection for a type (`tls-exporter`, `tls-server-end-point`),
   * for SCRAM-*-PLUS; absent or undefined where the runtime cannot provide it (browsers).
   */
  channelBinding?(type: string): Uint8Array | undefined;
  /** Upgrades the connection to TLS (STARTTLS, RFC 6120 §5); absent where the runtime cannot. */
  startTls?(): Promise<void>;
  /** Closes gracefully; the `close` event follows. */
  close(): void;
  /** Drops the connection at once, as a network failure would. */
  destroy(error?: Error): void;
}

export interface TransportContext {
  /** The XMPP domain (for TLS server name verification). */
  domain: string;
  tls: TlsOptions;
}

/** Creates transports for some URL schemes (`xmpp:`, `xmpps:`, `ws:`, `wss:`). */
export interface TransportFactory {
  readonly protocols: readonly string[];
  create(url: URL, ctx: TransportContext): Transport;
}
