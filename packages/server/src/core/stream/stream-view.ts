import type { Element, XmlError } from '@natter/xml';
import type { Jid } from '@natter/jid';
import type { StreamErrorCondition } from '@natter/protocol';
import type { Session } from '../session.js';
import type { StreamPipeline } from './stream-pipeline.js';

/**
 * Where a stream is: before its header, negotiating (STARTTLS, SASL, handshake …), authenticated
 * (a client before binding), bound (stanzas flow), closing, closed. A profile uses the subset it needs.
 */
export type StreamState = 'header' | 'negotiating' | 'authenticated' | 'bound' | 'closing' | 'closed';

/**
 * A stream as modules see it (limits, stream management, CSI): who is on it, its state, its
 * per-module data, and the few verbs a module may use on it. Never the parser, the transport's
 * socket or the profile's negotiation state.
 */
export interface StreamView {
  readonly id: string;
  readonly kind: 'c2s' | 'component' | 's2s-in' | 's2s-out';
  readonly state: StreamState;
  /** The virtual host of a client stream; undefined before the header and on other kinds. */
  readonly host: { readonly domain: string } | undefined;
  /** Authenticated account (client) after SASL. */
  readonly account: Jid | undefined;
  /** The bound session of a client stream. */
  readonly session: Session | undefined;
  /** Negotiation done (SASL for a client, the handshake for a component). */
  readonly authenticated: boolean;
  readonly secure: boolean;
  readonly transport: {
    readonly kind: 'tcp' | 'tls' | 'websocket' | 'bosh';
    readonly remoteAddress: string;
    /** Bytes written and not yet handed to the kernel. */
    readonly bufferedBytes: number;
    /** Drops the connection now (after a stream error, when the peer will not read). */
    destroy(): void;
  };
  /** Per-module stream state, keyed by the module. */
  readonly data: Map<symbol, unknown>;
  /** The stream error the server closed this stream with, if any. */
  closeCondition: string | undefined;
  readonly readingPaused: boolean;
  fail(condition: StreamErrorCondition | XmlError['condition'], text?: string): void;
  close(): void;
  /** Writes a stanza now (counted by stream management). */
  writeStanza(el: Element): void;
  /** Writes a nonza (stream management's <r/>, <a/> …). */
  writeElement(el: Element): void;
  /** Back-pressure: stops reading for `reason` until resumed. */
  pauseReading(reason: string): void;
  resumeReading(reason: string): void;
}

/** A client stream (c2s profile) as modules see it: what stream management and CSI work with. */
export interface ClientStreamView extends StreamView {
  readonly kind: 'c2s';
  /** Outbound filters, counters and holders: where modules plug into the stream's output. */
  readonly pipeline: StreamPipeline;
  /** Last time bytes arrived from the client (idle detection, ping). */
  readonly lastReceived: number;
  /** May credentials be sent on this connection now (TLS, or the plaintext policy allows it)? */
  credentialsAllowed(): boolean;
  /**
   * This connection's channel binding data of `type` (XEP-0440), where SASL offers that type here
   * (a TLS socket; tls-exporter only on TLS 1.3); undefined otherwise.
   */
  channelBinding(type: string): Uint8Array | undefined;
  /** Writes a stanza through the outbound pipeline. */
  deliver(stanza: Element): void;
  /** Attaches a session resumed from another stream (XEP-0198). */
  adoptSession(session: Session): void;
  /**
   * Resolves true once at most `bytes` wait to be sent and the pipeline is not `busy` (the client
   * acknowledged enough), false when the stream is closing.
   */
  sendRoom(bytes: number): Promise<boolean>;
}

/** Rate limiting seen from a stream (implemented by the limits module). */
export interface StreamLimiter {
  /** Counts received bytes; may pause the transport. */
  consume(stream: StreamView, bytes: number): void;
  /** Admits one stanza from a bound client or component; false drops it (the limiter answered or closed). */
  stanza(stream: StreamView): boolean;
  /** A SASL exchange from `ip` failed with not-authorized. */
  authFailed(ip: string): void;
  /** Milliseconds before `ip` may try to authenticate again (0: now). */
  authWait?(ip: string): number;
  /** A stream was created (after admission) / finished. */
  opened?(stream: StreamView): void;
  closed?(stream: StreamView): void;
}

/** Admission of a new connection by IP address (connection caps), before any stream exists. */
export type Admission = (ip: string) => boolean;

/** Hands a stream to another owner instead of closing its session (stream management). */
export type CloseInterceptor = (stream: ClientStreamView, clean: boolean) => boolean | Promise<boolean>;
