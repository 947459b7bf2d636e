import type { X509Certificate } from 'node:crypto';

/**
 * What a stream needs from its connection: bytes or frames out, bytes or frames in. TCP (with
 * STARTTLS), direct TLS, WebSocket and BOSH (a session of HTTP requests, framed like WebSocket)
 * implement it; the stream state machine never sees sockets or HTTP.
 */
export interface Transport {
  readonly kind: 'tcp' | 'tls' | 'websocket' | 'bosh';
  /** RFC 7395 framing: one element per frame, `<open/>`/`<close/>` instead of a stream header. */
  readonly framed: boolean;
  readonly remoteAddress: string;
  readonly localPort: number;
  /** Encrypted now (direct TLS, after STARTTLS, wss or BOSH over https, or a TLS proxy in front). */
  readonly secure: boolean;
  /**
   * Channel binding data of the TLS connection for a type (`tls-exporter`, `tls-server-end-point`),
   * or undefined when this connection cannot provide it (not TLS, wrong TLS version).
   */
  channelBinding?(type: string): Uint8Array | undefined;
  /**
   * The TLS peer's certificate (a server's, on an outbound connection; a client certificate, if one
   * was presented, inbound), or undefined without TLS or certificate. Server-to-server needs it.
   */
  peerCertificate(): X509Certificate | undefined;
  /**
   * Whether the TLS peer's certificate chain verified against the trusted CAs (Node's roots plus
   * `s2s.ca`), and why not. Names are checked separately (s2s/peer-certificate.ts).
   */
  peerVerification(): { authorized: boolean; error?: string | undefined };
  /** The negotiated TLS version (`TLSv1.3`), when encrypted and known. */
  tlsVersion?(): string | undefined;
  /** True when this transport can be upgraded with STARTTLS now. */
  readonly canStartTls: boolean;
  /** Bytes queued for writing and not yet handed to the kernel. */
  readonly bufferedBytes: number;
  write(data: string): void;
  /**
   * Holds writes until `uncork`, so that what is written in between leaves together (one TLS
   * record): a client that reacts to the first element while parsing still has the rest in the
   * same read. Optional: transports that frame each element ignore it.
   */
  cork?(): void;
  uncork?(): void;
  /**
   * Inbound: writes `<proceed/>` then upgrades as the TLS server. Outbound (`connectTcp`): the peer
   * sent `<proceed/>`; upgrades as the TLS client (`proceed` is not written). Incoming data after
   * the upgrade arrives decrypted. Inbound, `name` (the domain the stream was opened to) picks our
   * certificate when the peer sends no SNI (Prosody does not, on STARTTLS).
   */
  startTls(proceed: string, name?: string): Promise<void>;
  /** Stops reading (back-pressure) / resumes. */
  pause(): void;
  resume(): void;
  /** Closes after flushing what was written. */
  end(): void;
  /** Closes now. */
  destroy(): void;
  onData(cb: (chunk: Buffer | string) => void): void;
  onClose(cb: (hadError: boolean) => void): void;
  /** Called when the write buffer drained below the high-water mark. */
  onDrain(cb: () => void): void;
}
