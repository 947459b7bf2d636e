import type { Jid } from '@natter/jid';
import type { Session, SessionRecord } from './session.js';

/**
 * What modules see of the sessions (`ctx.sessions`): records, wherever the session lives
 * (docs/decisions/0009). A module delivers to one with `ctx.deliver` and never reaches its stream.
 */
export interface SessionDirectory {
  readonly size: number;
  get(full: Jid | string): SessionRecord | undefined;
  /** Every session of an account (available or not). */
  ofAccount(bare: Jid | string): readonly SessionRecord[];
  /** Sessions of an account that sent available presence. */
  available(bare: Jid | string): SessionRecord[];
  /** Sets or clears a flag on a session's record (what every node must know of it, e.g. carbons). */
  setFlag(session: SessionRecord, flag: string, on: boolean): void;
}

/** Bound sessions by full JID and by account. */
export class SessionRegistry implements SessionDirectory {
  private readonly byFull = new Map<string, Session>();
  private readonly byBare = new Map<string, Session[]>();

  get size(): number {
    return this.byFull.size;
  }

  get(full: Jid | string): Session | undefined {
    return this.byFull.get(typeof full === 'string' ? full : full.toString());
  }

  /** Every session of an account (available or not). */
  ofAccount(bare: Jid | string): readonly Session[] {
    return this.byBare.get(typeof bare === 'string' ? bare : bare.toBareString()) ?? [];
  }

  /** Sessions of an account that sent available presence. */
  available(bare: Jid | string): Session[] {
    return this.ofAccount(bare).filter((s) => s.available);
  }

  setFlag(session: SessionRecord, flag: string, on: boolean): void {
    const live = this.byFull.get(session.jid.toString());
    if (live === session) live.setFlag(flag, on);
  }

  add(session: Session): void {
    this.byFull.set(session.jid.toString(), session);
    const key = session.jid.toBareString();
    const list = this.byBare.get(key);
    if (list) list.push(session);
    else this.byBare.set(key, [session]);
  }

  remove(session: Session): boolean {
    const full = session.jid.toString();
    if (this.byFull.get(full) !== session) return false;
    this.byFull.delete(full);
    const key = session.jid.toBareString();
    const list = this.byBare.get(key);
    if (list) {
      const i = list.indexOf(session);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.byBare.delete(key);
    }
    return true;
  }

  all(): IterableIterator<Session> {
    return this.byFull.values();
  }

  accounts(): number {
    return this.byBare.size;
  }
}
