import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * The web console's login sessions and its per-address login delays, in memory (a restart logs
 * every administrator out). A session is known by the SHA-256 of its cookie value, so that looking
 * one up reveals nothing through timing about the values that exist.
 */

/** Most sessions kept at once: past it, the least recently used one is dropped. */
const MAX_SESSIONS = 1000;

export interface ConsoleSession {
  /** The administrator's bare JID. */
  readonly jid: string;
  /** The CSRF token the page sends back in `x-csrf-token` with every change. */
  readonly csrf: string;
  readonly createdAt: number;
  lastSeen: number;
}

export class ConsoleSessions {
  private readonly byHash = new Map<string, ConsoleSession>();

  /**
   * @param idleMs a session unused this long ends
   * @param maxAgeMs a session ends this long after its login, used or not
   */
  constructor(
    private readonly idleMs: number,
    private readonly maxAgeMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** A new session: its cookie value (256 random bits) and the session. */
  create(jid: string): { id: string; session: ConsoleSession } {
    this.sweep();
    if (this.byHash.size >= MAX_SESSIONS) {
      const oldest = this.byHash.keys().next().value;
      if (oldest !== undefined) this.byHash.delete(oldest);
    }
    const id = randomBytes(32).toString('base64url');
    const t = this.now();
    const session = { jid, csrf: randomBytes(32).toString('base64url'), createdAt: t, lastSeen: t };
    this.byHash.set(hash(id), session);
    return { id, session };
  }

  /** The live session of a cookie value, its idle time restarted; undefined when none or expired. */
  use(id: string | undefined): ConsoleSession | undefined {
    if (!id) return undefined;
    const key = hash(id);
    const s = this.byHash.get(key);
    if (!s) return undefined;
    const t = this.now();
    if (this.expired(s, t)) {
      this.byHash.delete(key);
      return undefined;
    }
    s.lastSeen = t;
    // Most recently used last: the eviction above drops the least recently used.
    this.byHash.delete(key);
    this.byHash.set(key, s);
    return s;
  }

  /** Ends the session of a cookie value (logout). */
  end(id: string | undefined): void {
    if (id) this.byHash.delete(hash(id));
  }

  /** Ends every session of an administrator (removed from `admins`, or disabled). */
  endAll(jid: string): void {
    for (const [k, s] of this.byHash) if (s.jid === jid) this.byHash.delete(k);
  }

  get size(): number {
    this.sweep();
    return this.byHash.size;
  }

  private expired(s: ConsoleSession, t: number): boolean {
    return t - s.lastSeen >= this.idleMs || t - s.createdAt >= this.maxAgeMs;
  }

  private sweep(): void {
    const t = this.now();
    for (const [k, s] of this.byHash) if (this.expired(s, t)) this.byHash.delete(k);
  }
}

/** Whether the CSRF token the page sent is the session's (constant time). */
export function sameCsrf(given: string | undefined, session: ConsoleSession): boolean {
  if (!given) return false;
  return timingSafeEqual(
    createHash('sha256').update(given).digest(),
    createHash('sha256').update(session.csrf).digest(),
  );
}

function hash(id: string): string {
  return createHash('sha256').update(id).digest('hex');
}

/** Addresses tracked at once by `LoginDelays`: past it, the oldest entry is dropped. */
const MAX_ADDRESSES = 10_000;
/** Longest wait between two attempts from one address. */
const MAX_DELAY_MS = 5 * 60_000;
/** An address's failures are forgotten this long after its last one. */
const FORGET_MS = 60 * 60_000;

/**
 * Growing delays after failed console logins, per address: the first failure costs nothing (a
 * typo), each further one doubles the wait before the next attempt is even checked — 1 s, 2 s,
 * 4 s … up to 5 minutes. A success clears the address.
 */
export class LoginDelays {
  private readonly failures = new Map<string, { count: number; last: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Milliseconds the address must still wait before its next attempt (0: go ahead). */
  wait(address: string): number {
    const f = this.failures.get(address);
    if (!f) return 0;
    const t = this.now();
    if (t - f.last >= FORGET_MS) {
      this.failures.delete(address);
      return 0;
    }
    return Math.max(0, f.last + delayAfter(f.count) - t);
  }

  failed(address: string): void {
    const f = this.failures.get(address) ?? { count: 0, last: 0 };
    f.count++;
    f.last = this.now();
    this.failures.delete(address);
    if (this.failures.size >= MAX_ADDRESSES) {
      const oldest = this.failures.keys().next().value;
      if (oldest !== undefined) this.failures.delete(oldest);
    }
    this.failures.set(address, f);
  }

  succeeded(address: string): void {
    this.failures.delete(address);
  }
}

/** The wait after `count` consecutive failures: none after one, then 1 s doubling, at most 5 min. */
export function delayAfter(count: number): number {
  return count < 2 ? 0 : Math.min(MAX_DELAY_MS, 1000 * 2 ** Math.min(count - 2, 20));
}
