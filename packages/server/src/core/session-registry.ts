import type { Jid } from '@natter/jid';
import { parseElement, type Element } from '@natter/xml';
import { LOCAL_NODE, Session, type RecordObserver, type SessionRecord } from './session.js';

/**
 * What modules see of the sessions (`ctx.sessions`): records, wherever the session lives
 * (docs/decisions/0009). A module delivers to one with `ctx.deliver` and never reaches its stream.
 */
export interface SessionDirectory {
  /** Sessions of the whole cluster. */
  readonly size: number;
  get(full: Jid | string): SessionRecord | undefined;
  /** Every session of an account (available or not). */
  ofAccount(bare: Jid | string): readonly SessionRecord[];
  /** Sessions of an account that sent available presence. */
  available(bare: Jid | string): SessionRecord[];
  /** Sets or clears a flag on a session's record (what every node must know of it, e.g. carbons). */
  setFlag(session: SessionRecord, flag: string, on: boolean): void;
}

/** The flags of the many records that have none. */
const NO_FLAGS: readonly string[] = Object.freeze([]);

/**
 * A session held by another node of the cluster, as replicated to this one. Every node keeps one
 * for each session of every other node (with 6 workers, five records per session), so it is kept
 * compact: the presence as the serialised text it travelled as, parsed when read (probes and
 * broadcasts, not routing); flags as a plain list, shared when empty; the bare JID made when asked.
 * A change on the owning node replaces the whole record.
 */
export class RemoteRecord implements SessionRecord {
  closed = false;
  private readonly flags: readonly string[];
  constructor(
    readonly id: string,
    readonly jid: Jid,
    readonly node: string,
    /** The last available presence, serialised (without `to`), or null. */
    private readonly presenceXml: string | null,
    readonly priority: number,
    readonly interested: boolean,
    flags: readonly string[],
  ) {
    this.flags = flags.length === 0 ? NO_FLAGS : flags;
  }

  get bare(): Jid {
    return this.jid.bare;
  }

  /** A fresh element at each read (callers copy or read it, never keep it). */
  get presence(): Element | null {
    return this.presenceXml === null ? null : parseElement(this.presenceXml);
  }

  get available(): boolean {
    return this.presenceXml !== null;
  }

  has(flag: string): boolean {
    return this.flags.includes(flag);
  }
}

/** Whether a record is a session of this process (with a stream). */
export function isLocal(record: SessionRecord): record is Session {
  return record instanceof Session;
}

/** Where a flag set on another node's session is sent (the cluster). */
export interface RemoteFlagSetter {
  setRemoteFlag(record: SessionRecord, flag: string, on: boolean): void;
}

/**
 * Bound sessions by full JID and by account: this node's live sessions and, in a cluster, the
 * records the other nodes replicate (docs/decisions/0009).
 */
export class SessionRegistry implements SessionDirectory {
  private readonly byFull = new Map<string, SessionRecord>();
  private readonly byBare = new Map<string, SessionRecord[]>();
  private readonly locals = new Set<Session>();
  /** In a cluster: told of every change to a local session's record, and of remote flag changes. */
  private replicator: (RecordObserver & RemoteFlagSetter & { recordRemoved(s: Session): void }) | undefined;

  constructor(readonly node = LOCAL_NODE) {}

  /** Sessions of the whole cluster. */
  get size(): number {
    return this.byFull.size;
  }

  /** Sessions held by this node. */
  get localSize(): number {
    return this.locals.size;
  }

  replicateTo(r: RecordObserver & RemoteFlagSetter & { recordRemoved(s: Session): void }): void {
    this.replicator = r;
    for (const s of this.locals) s.observer = r;
  }

  get(full: Jid | string): SessionRecord | undefined {
    return this.byFull.get(typeof full === 'string' ? full : full.toString());
  }

  /** The live session of this node bound to a full JID. */
  local(full: Jid | string): Session | undefined {
    const r = this.get(full);
    return r instanceof Session ? r : undefined;
  }

  /** Every session of an account (available or not). */
  ofAccount(bare: Jid | string): readonly SessionRecord[] {
    return this.byBare.get(typeof bare === 'string' ? bare : bare.toBareString()) ?? [];
  }

  /** This node's live sessions of an account. */
  localOfAccount(bare: Jid | string): Session[] {
    return this.ofAccount(bare).filter(isLocal);
  }

  /** Sessions of an account that sent available presence. */
  available(bare: Jid | string): SessionRecord[] {
    return this.ofAccount(bare).filter((s) => s.available);
  }

  setFlag(session: SessionRecord, flag: string, on: boolean): void {
    const current = this.byFull.get(session.jid.toString());
    if (current !== session) return;
    if (current instanceof Session) current.setFlag(flag, on);
    else this.replicator?.setRemoteFlag(current, flag, on);
  }

  add(session: Session): void {
    // Another node's record of the same full JID is being replaced (it was told to end it).
    const previous = this.byFull.get(session.jid.toString());
    if (previous && !(previous instanceof Session)) this.delete(previous);
    this.locals.add(session);
    session.observer = this.replicator;
    this.insert(session);
    this.replicator?.recordChanged(session);
  }

  remove(session: Session): boolean {
    if (!this.locals.delete(session)) return false;
    session.observer = undefined;
    this.delete(session);
    this.replicator?.recordRemoved(session);
    return true;
  }

  /** Adds or replaces another node's record. A live session of this node keeps its full JID. */
  putRemote(record: RemoteRecord): void {
    const current = this.byFull.get(record.jid.toString());
    if (current instanceof Session) return;
    if (current) this.delete(current);
    this.insert(record);
  }

  /** Removes another node's record (that session ended). */
  removeRemote(node: string, full: string, id: string): RemoteRecord | undefined {
    const current = this.byFull.get(full);
    if (!(current instanceof RemoteRecord) || current.node !== node || current.id !== id) return undefined;
    this.delete(current);
    current.closed = true;
    return current;
  }

  /** Removes every record of a node (it left the cluster or died); returns them. */
  dropNode(node: string): RemoteRecord[] {
    const gone: RemoteRecord[] = [];
    for (const r of this.byFull.values()) if (r instanceof RemoteRecord && r.node === node) gone.push(r);
    for (const r of gone) {
      this.delete(r);
      r.closed = true;
    }
    return gone;
  }

  /** The live sessions of this node. */
  all(): IterableIterator<Session> {
    return this.locals.values();
  }

  /** The records other nodes replicated here (the cluster's other sessions). */
  *remote(): IterableIterator<RemoteRecord> {
    for (const r of this.byFull.values()) if (r instanceof RemoteRecord) yield r;
  }

  /** Accounts with at least one session in the cluster. */
  accounts(): number {
    return this.byBare.size;
  }

  private insert(r: SessionRecord): void {
    this.byFull.set(r.jid.toString(), r);
    const key = r.jid.toBareString();
    const list = this.byBare.get(key);
    if (list) list.push(r);
    else this.byBare.set(key, [r]);
  }

  private delete(r: SessionRecord): void {
    const full = r.jid.toString();
    if (this.byFull.get(full) === r) this.byFull.delete(full);
    const key = r.jid.toBareString();
    const list = this.byBare.get(key);
    if (list) {
      const i = list.indexOf(r);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.byBare.delete(key);
    }
  }
}
