import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Kysely } from 'kysely';

/**
 * The web console's login sessions, in the server's storage (table `console_sessions`, migration
 * accounts/0004): every worker of `--workers N`, and every node of a cluster on PostgreSQL, knows
 * every session, so a page's requests may reach any of them (node:cluster hands each connection to
 * the next worker). A session is stored under the SHA-256 of its cookie value: the database (and a
 * backup of it) holds no cookie that would log anyone in, and a lookup reveals nothing through
 * timing about the values that exist. The per-address login delays stay in memory (below).
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

interface Row {
  id_hash: string;
  jid: string;
  csrf: string;
  created_at: number | string;
  last_seen: number | string;
}

export class ConsoleSessions {
  /**
   * @param idleMs a session unused this long ends
   * @param maxAgeMs a session ends this long after its login, used or not
   */
  constructor(
    private readonly db: Kysely<any>,
    private readonly idleMs: number,
    private readonly maxAgeMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** A new session: its cookie value (256 random bits) and the session. */
  async create(jid: string): Promise<{ id: string; session: ConsoleSession }> {
    await this.sweep();
    const [{ n }] = (await this.db
      .selectFrom('console_sessions')
      .select((e) => e.fn.countAll<number | string>().as('n'))
      .execute()) as [{ n: number | string }];
    if (Number(n) >= MAX_SESSIONS) {
      const oldest = await this.db
        .selectFrom('console_sessions')
        .select('id_hash')
        .orderBy('last_seen')
        .limit(Number(n) - MAX_SESSIONS + 1)
        .execute();
      await this.db
        .deleteFrom('console_sessions')
        .where(
          'id_hash',
          'in',
          oldest.map((r) => r.id_hash as string),
        )
        .execute();
    }
    const id = randomBytes(32).toString('base64url');
    const t = this.now();
    const session = { jid, csrf: randomBytes(32).toString('base64url'), createdAt: t, lastSeen: t };
    await this.db
      .insertInto('console_sessions')
      .values({ id_hash: hash(id), jid, csrf: session.csrf, created_at: t, last_seen: t })
      .execute();
    return { id, session };
  }

  /** The live session of a cookie value, its idle time restarted; undefined when none or expired. */
  async use(id: string | undefined): Promise<ConsoleSession | undefined> {
    if (!id) return undefined;
    const key = hash(id);
    const row = (await this.db
      .selectFrom('console_sessions')
      .selectAll()
      .where('id_hash', '=', key)
      .executeTakeFirst()) as Row | undefined;
    if (!row) return undefined;
    const s: ConsoleSession = {
      jid: row.jid,
      csrf: row.csrf,
      createdAt: Number(row.created_at),
      lastSeen: Number(row.last_seen),
    };
    const t = this.now();
    if (this.expired(s, t)) {
      await this.db.deleteFrom('console_sessions').where('id_hash', '=', key).execute();
      return undefined;
    }
    s.lastSeen = t;
    await this.db.updateTable('console_sessions').set({ last_seen: t }).where('id_hash', '=', key).execute();
    return s;
  }

  /** Ends the session of a cookie value (logout). */
  async end(id: string | undefined): Promise<void> {
    if (id) await this.db.deleteFrom('console_sessions').where('id_hash', '=', hash(id)).execute();
  }

  /** Ends every session of an administrator (removed from `admins`, or disabled). */
  async endAll(jid: string): Promise<void> {
    await this.db.deleteFrom('console_sessions').where('jid', '=', jid).execute();
  }

  private expired(s: ConsoleSession, t: number): boolean {
    return t - s.lastSeen >= this.idleMs || t - s.createdAt >= this.maxAgeMs;
  }

  /** Forgets the sessions that have ended (idle too long, or too old). */
  private async sweep(): Promise<void> {
    const t = this.now();
    await this.db
      .deleteFrom('console_sessions')
      .where((e) => e.or([e('last_seen', '<=', t - this.idleMs), e('created_at', '<=', t - this.maxAgeMs)]))
      .execute();
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
