import type { Element } from '@natter/xml';
import type { Jid } from '@natter/jid';
import type { ClientStreamView } from './stream/stream-view.js';

let counter = 0;

/**
 * A bound resource: what the router delivers to. It outlives its stream only while hibernated
 * (stream management); modules keep per-session state in their own WeakMaps keyed by session.
 */
export class Session {
  readonly id = `s${(++counter).toString(36)}`;
  readonly createdAt = Date.now();
  /** Last available presence sent by the client (without to), or null before initial presence. */
  presence: Element | null = null;
  priority = 0;
  /** Requested the roster (RFC 6121 §2.1.6: roster pushes go to interested resources). */
  interested = false;
  /** Ended: no longer routed to. */
  closed = false;
  /**
   * While set, stanzas for this session are handed here instead of to a stream: the session is
   * hibernated (XEP-0198) and its stream is gone. Set and cleared by the stream management module.
   */
  holder: ((stanza: Element) => void) | undefined;
  /**
   * Messages that reached this session after its stream had started closing, or that were still
   * in the send buffer when a slow reader was cut off: routed again once the session has ended.
   */
  readonly undelivered: Element[] = [];

  constructor(
    readonly jid: Jid,
    public stream: ClientStreamView,
  ) {}

  get bare(): Jid {
    return this.jid.bare;
  }

  /** Sent available presence and not yet unavailable. */
  get available(): boolean {
    return this.presence !== null;
  }

  /** Writes a stanza to the client (through the stream's outbound filters). */
  send(stanza: Element): void {
    if (this.closed) return;
    if (this.holder) {
      this.holder(stanza);
      return;
    }
    this.stream.deliver(stanza);
  }

  /** Hibernated: kept for resumption (XEP-0198) while no stream is attached. */
  get hibernated(): boolean {
    return this.holder !== undefined;
  }

  get ip(): string {
    return this.stream.transport.remoteAddress;
  }
}
