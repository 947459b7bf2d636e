import type { Jid } from '@natter/jid';
import type { Session } from './session.js';

/** Bound sessions by full JID and by account. */
export class SessionRegistry {
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
