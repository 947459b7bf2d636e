import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Kysely } from 'kysely';

/**
 * The web console's login sessions, in the server's storage (table `console_sessions`, migration
 * accounts/0004): every worker of `--workers N`, and every node of a cluster on PostgreSQL, knows
 * every session, so a page's requests may reach any of them (node:cluster hands each connection to
 * the next worker). A session is stored under the SHA-256 of its cookie value: the database (and a
 * backup of it) holds no cookie that would log anyone in, and a lookup reveals nothing through
 * timing about the values that exist. The per-address login delays are in storage too (table
 * `console_logins`, `LoginGuard` below), so N workers do not give an address N times the guesses.
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

/** Addresses tracked at once by `LoginGuard`: past it, those whose last failure is oldest go. */
const MAX_ADDRESSES = 10_000;
/** Longest wait between two attempts from one address. */
const MAX_DELAY_MS = 5 * 60_000;
/** An address's failures are forgotten this long after its last one. */
const FORGET_MS = 60 * 60_000;
/** Longest a claimed check may take before another may start (a node that died while checking). */
const CHECK_MS = 30_000;
/** Least time between two sweeps of forgotten addresses. */
const SWEEP_MS = 60_000;

/** Why a login may not be checked now. */
export type Refusal = { waitMs: number; reason: 'delay' | 'checking' };

interface LoginRow {
  address: string;
  failures: number | string;
  last_failure: number | string;
  next_at: number | string;
  busy_until: number | string;
}

/**
 * Growing delays after failed console logins, per address, shared through storage by every
 * worker and node: the first failure costs nothing (a typo), each further one doubles the wait
 * before the next attempt is even checked — 1 s, 2 s, 4 s … up to 5 minutes. A success clears
 * the address. One check at a time per address (`claim`): the wait is read before the (slow)
 * password check and a failure counted after it, so parallel attempts would otherwise all pass the
 * same wait — on one worker or on several.
 */
export class LoginGuard {
  private lastSweep = 0;

  constructor(
    private readonly db: Kysely<any>,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Claims the check of one login from `address`: undefined when it may go ahead (then call
   * `failed`, `succeeded` or `release`), or why not and for how long. One conditional update
   * decides, so two workers claiming at once cannot both get it.
   */
  async claim(address: string): Promise<Refusal | undefined> {
    const t = this.now();
    if (t - this.lastSweep >= SWEEP_MS) await this.sweep(t);
    await this.db
      .insertInto('console_logins')
      .values({ address, failures: 0, last_failure: 0, next_at: 0, busy_until: 0 })
      .onConflict((oc) => oc.column('address').doNothing())
      .execute();
    const r = await this.db
      .updateTable('console_logins')
      .set({ busy_until: t + CHECK_MS })
      .where('address', '=', address)
      .where('busy_until', '<=', t)
      .where((eb) => eb.or([eb('next_at', '<=', t), eb('last_failure', '<=', t - FORGET_MS)]))
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) === 1) return undefined;
    const row = await this.row(address);
    if (!row) return { waitMs: 1000, reason: 'checking' };
    const delay = Number(row.last_failure) <= t - FORGET_MS ? 0 : Number(row.next_at) - t;
    if (delay > 0) return { waitMs: delay, reason: 'delay' };
    return { waitMs: Math.max(1000, Math.min(CHECK_MS, Number(row.busy_until) - t)), reason: 'checking' };
  }

  /** The claimed check failed: one more failure for the address, and the check is over. */
  async failed(address: string): Promise<void> {
    const t = this.now();
    const row = await this.row(address);
    const before = row && Number(row.last_failure) > t - FORGET_MS ? Number(row.failures) : 0;
    const failures = before + 1;
    const values = { failures, last_failure: t, next_at: t + delayAfter(failures), busy_until: 0 };
    await this.db
      .insertInto('console_logins')
      .values({ address, ...values })
      .onConflict((oc) => oc.column('address').doUpdateSet(values))
      .execute();
  }

  /** The claimed check succeeded: the address starts afresh. */
  async succeeded(address: string): Promise<void> {
    await this.db.deleteFrom('console_logins').where('address', '=', address).execute();
  }

  /** The claimed check ended without a verdict (an error): the next may start at once. */
  async release(address: string): Promise<void> {
    await this.db
      .updateTable('console_logins')
      .set({ busy_until: 0 })
      .where('address', '=', address)
      .execute();
  }

  private async row(address: string): Promise<LoginRow | undefined> {
    return (await this.db
      .selectFrom('console_logins')
      .selectAll()
      .where('address', '=', address)
      .executeTakeFirst()) as LoginRow | undefined;
  }

  /** Forgets addresses whose failures are old, and keeps at most MAX_ADDRESSES. */
  private async sweep(t: number): Promise<void> {
    this.lastSweep = t;
    await this.db
      .deleteFrom('console_logins')
      .where('busy_until', '<=', t)
      .where('last_failure', '<=', t - FORGET_MS)
      .execute();
    const [{ n }] = (await this.db
      .selectFrom('console_logins')
      .select((e) => e.fn.countAll<number | string>().as('n'))
      .execute()) as [{ n: number | string }];
    const over = Number(n) - MAX_ADDRESSES;
    if (over <= 0) return;
    const oldest = await this.db
      .selectFrom('console_logins')
      .select('address')
      .orderBy('last_failure')
      .limit(over)
      .execute();
    await this.db
      .deleteFrom('console_logins')
      .where(
        'address',
        'in',
        oldest.map((r) => r.address as string),
      )
      .execute();
  }
}

/** The wait after `count` consecutive failures: none after one, then 1 s doubling, at most 5 min. */
export function delayAfter(count: number): number {
  return count < 2 ? 0 : Math.min(MAX_DELAY_MS, 1000 * 2 ** Math.min(count - 2, 20));
}
