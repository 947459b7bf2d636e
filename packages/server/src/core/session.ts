import type { Element } from '@natter/xml';
import type { Jid } from '@natter/jid';
import type { ClientStreamView } from './stream/stream-view.js';

let counter = 0;

/** The node name of a server that is not part of a cluster (docs/decisions/0009). */
export const LOCAL_NODE = 'local';

/** Told when a local session's record changes (the cluster replicates it to the other nodes). */
export interface RecordObserver {
  recordChanged(session: Session): void;
}

/**
 * What every node knows of a bound resource (docs/decisions/0009): its address, where it lives,
 * its presence for routing, and flags modules set on it. Modules read records and deliver to them
 * through `ctx.deliver`; only the node that holds a session has the live `Session` (its stream).
 */
export interface SessionRecord {
  readonly id: string;
  readonly jid: Jid;
  readonly bare: Jid;
  /** The node holding the live session. */
  readonly node: string;
  /** Last available presence sent by the client (without to), or null before initial presence. */
  readonly presence: Element | null;
  readonly priority: number;
  /** Sent available presence and not yet unavailable. */
  readonly available: boolean;
  /** Requested the roster (RFC 6121 §2.1.6: roster pushes go to interested resources). */
  readonly interested: boolean;
  /** Ended: no longer routed to. */
  readonly closed: boolean;
  /** A flag a module set on this session (`ctx.sessions.setFlag`), e.g. carbons enabled. */
  has(flag: string): boolean;
}

/**
 * A bound resource on this node: what the router delivers to. It outlives its stream only while
 * hibernated (stream management). Modules keep per-session state as record flags, or in their own
 * WeakMaps keyed by session when only the session's own node uses it.
 */
export class Session implements SessionRecord {
  readonly id: string;
  /** Created on the first flag: most sessions never get one, and idle sessions are counted in KiB. */
  private flags: Set<string> | undefined;
  readonly createdAt = Date.now();
  private presence_: Element | null = null;
  private priority_ = 0;
  private interested_ = false;
  /** Set while the session is in a clustered registry: its record's changes are replicated. */
  observer: RecordObserver | undefined;
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
    /** The node holding this session: this process. */
    readonly node = LOCAL_NODE,
  ) {
    // Unique across the cluster's nodes and their restarts (the node name carries an incarnation).
    this.id = node === LOCAL_NODE ? `s${(++counter).toString(36)}` : `${node}/s${(++counter).toString(36)}`;
  }

  get bare(): Jid {
    return this.jid.bare;
  }

  /** Last available presence sent by the client (without to), or null before initial presence. */
  get presence(): Element | null {
    return this.presence_;
  }

  set presence(p: Element | null) {
    this.presence_ = p;
    this.observer?.recordChanged(this);
  }

  get priority(): number {
    return this.priority_;
  }

  set priority(p: number) {
    if (p === this.priority_) return;
    this.priority_ = p;
    this.observer?.recordChanged(this);
  }

  /** Requested the roster (RFC 6121 §2.1.6: roster pushes go to interested resources). */
  get interested(): boolean {
    return this.interested_;
  }

  set interested(on: boolean) {
    if (on === this.interested_) return;
    this.interested_ = on;
    this.observer?.recordChanged(this);
  }

  has(flag: string): boolean {
    return this.flags?.has(flag) === true;
  }

  /** The flags set on this session (replicated with its record). */
  flagList(): string[] {
    return this.flags ? [...this.flags] : [];
  }

  setFlag(flag: string, on: boolean): void {
    if (on === this.has(flag)) return;
    if (on) (this.flags ??= new Set()).add(flag);
    else this.flags?.delete(flag);
    this.observer?.recordChanged(this);
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
