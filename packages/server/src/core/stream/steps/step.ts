import type { Element, XmlError } from '@natter/xml';
import type { Jid } from '@natter/jid';
import type { StreamErrorCondition } from '@natter/protocol';
import type { Transport } from '../../transport.js';
import type { ServerCore } from '../../server-core.js';
import type { Host } from '../../host.js';
import type { Session } from '../../session.js';
import type { StreamState } from '../stream-machine.js';
import type { ClientStreamView } from '../stream-view.js';

/** Returned by a step's `handle` for an element that is not its own. */
export const NOT_MINE = Symbol('not this step');

/**
 * One negotiation step of a stream profile (STARTTLS, SASL, registration, resource binding, the
 * component handshake; dialback later): the features it offers now, and the elements it handles.
 * A profile lists its steps per state and asks each in turn; one step object per stream keeps that
 * stream's step state (a SASL exchange in progress, failures counted).
 */
export interface NegotiationStep {
  readonly name: string;
  /** Stream features this step offers in the stream's current state (none: empty). */
  features(): Element[];
  /** Handles `el` when it belongs to this step; NOT_MINE otherwise. */
  handle(el: Element): typeof NOT_MINE | void | Promise<void>;
}

/** What the client profile lets its steps see and do. */
export interface ClientNegotiation extends ClientStreamView {
  readonly id: string;
  readonly transport: Transport;
  readonly server: ServerCore;
  readonly host: Host | undefined;
  readonly account: Jid | undefined;
  readonly state: StreamState;
  credentialsAllowed(): boolean;
  writeElement(el: Element): void;
  fail(condition: StreamErrorCondition | XmlError['condition'], text?: string): void;
  close(): void;
  /** After <starttls/>: input in the clear is dropped until the stream restarts over TLS. */
  tlsStarting(): void;
  /** The TLS handshake is done: the stream restarts (RFC 6120 §5.4.3.3). */
  tlsEstablished(): void;
  /**
   * SASL succeeded for `account`: the stream restarts (RFC 6120 §6.4.6), or goes on without a
   * restart (`restart` false: XEP-0388).
   */
  authenticatedAs(account: Jid, restart?: boolean): void;
  /** Sends the stream features of the stream's current state (after SASL2 without a restart). */
  sendFeatures(): void;
  /** Runs `fn` with the transport's writes held, so that they leave in one piece. */
  corked(fn: () => void): void;
  /** A resource was bound: stanzas may flow. */
  boundTo(session: Session): void;
}
