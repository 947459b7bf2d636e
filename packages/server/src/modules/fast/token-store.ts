import type { Kysely, Migration } from 'kysely';

export const fastMigrations: Record<string, Migration> = {
  '0001-fast-tokens': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('fast_tokens')
        .addColumn('host', 'varchar(1023)', (c) => c.notNull())
        .addColumn('username', 'varchar(1023)', (c) => c.notNull())
        .addColumn('user_agent', 'varchar(64)', (c) => c.notNull())
        // The current token and the one before it (XEP-0484 §6 rotation): each its HMAC key (the
        // SHA-256 hash of the token, never the token), mechanism, expiry and the highest count seen.
        .addColumn('current_key', 'varchar(64)', (c) => c.notNull())
        .addColumn('current_mechanism', 'varchar(64)', (c) => c.notNull())
        .addColumn('current_created', 'bigint', (c) => c.notNull())
        .addColumn('current_expires', 'bigint', (c) => c.notNull())
        .addColumn('current_count', 'bigint')
        .addColumn('previous_key', 'varchar(64)')
        .addColumn('previous_mechanism', 'varchar(64)')
        .addColumn('previous_expires', 'bigint')
        .addColumn('previous_count', 'bigint')
        // What the account's password was when the token was issued: a changed password voids it.
        .addColumn('credentials', 'varchar(64)', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('fast_tokens_pk', ['host', 'username', 'user_agent'])
        .execute();
      await db.schema.createIndex('fast_tokens_expiry').on('fast_tokens').column('current_expires').execute();
    },
  },
};

export type Slot = 'current' | 'previous';

/** One token as stored: its HMAC key (hex), mechanism, expiry and highest count seen. */
export interface StoredToken {
  key: string;
  mechanism: string;
  expires: number;
  count: number | undefined;
}

export interface TokenPair {
  current: StoredToken & { created: number };
  previous: StoredToken | undefined;
  credentials: string;
}

const num = (v: unknown): number | undefined => (v === null || v === undefined ? undefined : Number(v));

/** FAST tokens per (account, user agent): the current one and the one it replaced. */
export class FastTokenStore {
  constructor(private readonly db: Kysely<any>) {}

  async get(host: string, username: string, userAgent: string): Promise<TokenPair | undefined> {
    const r = await this.db
      .selectFrom('fast_tokens')
      .selectAll()
      .where('host', '=', host)
      .where('username', '=', username)
      .where('user_agent', '=', userAgent)
      .executeTakeFirst();
    if (!r) return undefined;
    return {
      current: {
        key: String(r.current_key),
        mechanism: String(r.current_mechanism),
        created: Number(r.current_created),
        expires: Number(r.current_expires),
        count: num(r.current_count),
      },
      previous:
        r.previous_key === null || r.previous_key === undefined
          ? undefined
          : {
              key: String(r.previous_key),
              mechanism: String(r.previous_mechanism),
              expires: Number(r.previous_expires),
              count: num(r.previous_count),
            },
      credentials: String(r.credentials),
    };
  }

  /**
   * Stores a new current token for (account, user agent); the current one, if still valid, becomes
   * the previous one (the client may not have received the new one). Beyond `max` user agents per
   * account, the least recently updated lose their tokens.
   */
  async issue(
    host: string,
    username: string,
    userAgent: string,
    token: { key: string; mechanism: string; expires: number; credentials: string },
    now: number,
    max: number,
  ): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const old = await new FastTokenStore(trx).get(host, username, userAgent);
      const keep = old && old.current.expires > now && old.credentials === token.credentials;
      await trx
        .deleteFrom('fast_tokens')
        .where('host', '=', host)
        .where('username', '=', username)
        .where('user_agent', '=', userAgent)
        .execute();
      await trx
        .insertInto('fast_tokens')
        .values({
          host,
          username,
          user_agent: userAgent,
          current_key: token.key,
          current_mechanism: token.mechanism,
          current_created: now,
          current_expires: token.expires,
          current_count: null,
          previous_key: keep ? old.current.key : null,
          previous_mechanism: keep ? old.current.mechanism : null,
          previous_expires: keep ? old.current.expires : null,
          previous_count: keep ? (old.current.count ?? null) : null,
          credentials: token.credentials,
          updated_at: now,
        })
        .execute();
      const rows = await trx
        .selectFrom('fast_tokens')
        .select(['user_agent', 'updated_at'])
        .where('host', '=', host)
        .where('username', '=', username)
        .orderBy('updated_at', 'desc')
        .execute();
      const extra = rows.slice(max).map((r) => String(r.user_agent));
      if (extra.length > 0)
        await trx
          .deleteFrom('fast_tokens')
          .where('host', '=', host)
          .where('username', '=', username)
          .where('user_agent', 'in', extra)
          .execute();
    });
  }

  /**
   * Records `count` for a token (XEP-0484 §5 replay protection): true only when it is above every
   * count seen for that token, in one conditional update, so two uses of one count cannot both pass.
   */
  async useCount(
    host: string,
    username: string,
    userAgent: string,
    slot: Slot,
    count: number,
  ): Promise<boolean> {
    const column = slot === 'current' ? 'current_count' : 'previous_count';
    const r = await this.db
      .updateTable('fast_tokens')
      .set({ [column]: count })
      .where('host', '=', host)
      .where('username', '=', username)
      .where('user_agent', '=', userAgent)
      .where((eb) => eb.or([eb(column, 'is', null), eb(column, '<', count)]))
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** The client used its current token: it has it, so the previous one is no longer needed. */
  async dropPrevious(host: string, username: string, userAgent: string): Promise<void> {
    await this.db
      .updateTable('fast_tokens')
      .set({ previous_key: null, previous_mechanism: null, previous_expires: null, previous_count: null })
      .where('host', '=', host)
      .where('username', '=', username)
      .where('user_agent', '=', userAgent)
      .execute();
  }

  /** Every token of one user agent (XEP-0484 `invalidate`), or of the whole account. */
  async remove(host: string, username: string, userAgent?: string): Promise<void> {
    let q = this.db.deleteFrom('fast_tokens').where('host', '=', host).where('username', '=', username);
    if (userAgent !== undefined) q = q.where('user_agent', '=', userAgent);
    await q.execute();
  }

  async count(host: string, username: string): Promise<number> {
    const r = await this.db
      .selectFrom('fast_tokens')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('host', '=', host)
      .where('username', '=', username)
      .executeTakeFirst();
    return Number(r?.n ?? 0);
  }

  /** Rows whose tokens have all expired. */
  async purge(now: number): Promise<void> {
    await this.db
      .deleteFrom('fast_tokens')
      .where('current_expires', '<=', now)
      .where((eb) => eb.or([eb('previous_expires', 'is', null), eb('previous_expires', '<=', now)]))
      .execute();
  }
}
