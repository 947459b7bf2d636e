import { PostgresAdapter, sql, type Kysely, type Migration } from 'kysely';
import {
  deriveScramCredentials,
  toBase64,
  fromBase64,
  type ScramCredentials,
  type ScramHash,
} from '@natter/protocol';
import { jid, type Jid } from '@natter/jid';

/** Stored SCRAM keys (RFC 5802/7677); the password itself is never stored. */
interface StoredKeys {
  salt: string;
  iterations: number;
  storedKey: string;
  serverKey: string;
}

export const accountMigrations: Record<string, Migration> = {
  '0001-accounts': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('accounts')
        .addColumn('host', 'varchar(1023)', (c) => c.notNull())
        .addColumn('username', 'varchar(1023)', (c) => c.notNull())
        .addColumn('scram_sha1', 'text', (c) => c.notNull())
        .addColumn('scram_sha256', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('accounts_pk', ['host', 'username'])
        .execute();
    },
  },
  // An administrator may disable an account (XEP-0133 disable-user, `natter user disable`): its
  // data stays, logins fail with <account-disabled/> until it is enabled again.
  '0002-disabled': {
    async up(db: Kysely<any>) {
      await db.schema.alterTable('accounts').addColumn('disabled_at', 'bigint').execute();
      await db.schema.alterTable('accounts').addColumn('disabled_reason', 'text').execute();
    },
  },
  // An account imported from another server may have the keys of one hash only (Prosody's
  // internal_hashed and ejabberd keep one; docs/decisions/0015-imported-scram-keys.md): either
  // column may be NULL, never both. The missing keys are derived at the next PLAIN login or
  // password change. SQLite cannot drop NOT NULL in place: the table is rebuilt.
  '0003-nullable-keys': {
    async up(db: Kysely<any>) {
      if (db.getExecutor().adapter instanceof PostgresAdapter) {
        await sql`alter table accounts alter column scram_sha1 drop not null`.execute(db);
        await sql`alter table accounts alter column scram_sha256 drop not null`.execute(db);
        return;
      }
      await db.schema
        .createTable('accounts_0003')
        .addColumn('host', 'varchar(1023)', (c) => c.notNull())
        .addColumn('username', 'varchar(1023)', (c) => c.notNull())
        .addColumn('scram_sha1', 'text')
        .addColumn('scram_sha256', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('disabled_at', 'bigint')
        .addColumn('disabled_reason', 'text')
        .addPrimaryKeyConstraint('accounts_pk', ['host', 'username'])
        .execute();
      await sql`insert into accounts_0003 (host, username, scram_sha1, scram_sha256, created_at, disabled_at, disabled_reason)
        select host, username, scram_sha1, scram_sha256, created_at, disabled_at, disabled_reason from accounts`.execute(
        db,
      );
      await db.schema.dropTable('accounts').execute();
      await db.schema.alterTable('accounts_0003').renameTo('accounts').execute();
    },
  },
  // The web console's login sessions (admin/console/console-sessions.ts), shared by every worker
  // and node: the SHA-256 of the cookie value, never the value itself.
  '0004-console-sessions': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('console_sessions')
        .addColumn('id_hash', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('jid', 'varchar(3071)', (c) => c.notNull())
        .addColumn('csrf', 'varchar(64)', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('last_seen', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('console_sessions_jid').on('console_sessions').column('jid').execute();
    },
  },
  /** The web console's failed logins per address (admin/console/console-sessions.ts LoginGuard). */
  '0005-console-logins': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('console_logins')
        .addColumn('address', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('failures', 'integer', (c) => c.notNull())
        .addColumn('last_failure', 'bigint', (c) => c.notNull())
        .addColumn('next_at', 'bigint', (c) => c.notNull())
        .addColumn('busy_until', 'bigint', (c) => c.notNull())
        .execute();
    },
  },
};

/** SCRAM keys of an account as another server stored them (an import): one hash or both. */
export interface ImportedKeys {
  'SHA-1'?: ScramCredentials;
  'SHA-256'?: ScramCredentials;
}

/** What `AccountStore.info` says of an account. */
export interface AccountInfo {
  jid: Jid;
  createdAt: number;
  /** When it was disabled, and why (the administrator's words), or undefined when enabled. */
  disabled?: { at: number; reason: string };
}

export class AccountExistsError extends Error {
  readonly code = 'ACCOUNT_EXISTS';
}

export interface AccountStoreOptions {
  iterations: number;
}

function encode(c: ScramCredentials): string {
  const keys: StoredKeys = {
    salt: toBase64(c.salt),
    iterations: c.iterations,
    storedKey: toBase64(c.storedKey),
    serverKey: toBase64(c.serverKey),
  };
  return JSON.stringify(keys);
}

function decode(text: string): ScramCredentials {
  const k = JSON.parse(text) as StoredKeys;
  return {
    salt: fromBase64(k.salt),
    iterations: k.iterations,
    storedKey: fromBase64(k.storedKey),
    serverKey: fromBase64(k.serverKey),
  };
}

/** Accounts of every virtual host. Usernames are normalised localparts (RFC 7622). */
export class AccountStore {
  /**
   * Accounts recently looked up and found missing, with the time of the lookup: a flood of
   * stanzas to a user that does not exist costs one query per `MISSING_TTL_MS`, not one each.
   * Bounded; cleared for an account this process creates. An account created by another process
   * (the CLI) is seen after at most the TTL.
   */
  private readonly missing = new Map<string, number>();
  private static readonly MISSING_TTL_MS = 10_000;
  private static readonly MISSING_MAX = 10_000;

  constructor(
    private readonly db: Kysely<any>,
    private readonly options: AccountStoreOptions,
  ) {}

  /** Normalises and validates a username for a host; throws JidError when invalid. */
  static account(username: string, host: string): Jid {
    return jid(username, host);
  }

  async create(
    username: string,
    host: string,
    password: string,
    iterations = this.options.iterations,
  ): Promise<Jid> {
    const account = AccountStore.account(username, host);
    if (password.length === 0) throw new Error('the password must not be empty');
    const [sha1, sha256] = await Promise.all([
      deriveScramCredentials('SHA-1', password, { iterations }),
      deriveScramCredentials('SHA-256', password, { iterations }),
    ]);
    try {
      await this.db
        .insertInto('accounts')
        .values({
          host: account.domain,
          username: account.local,
          scram_sha1: encode(sha1),
          scram_sha256: encode(sha256),
          created_at: Date.now(),
        })
        .execute();
    } catch (err) {
      this.missing.delete(`${account.local}@${account.domain}`);
      if (await this.exists(account.local, account.domain))
        throw new AccountExistsError(`account ${account.toString()} already exists`);
      throw err;
    }
    this.missing.delete(`${account.local}@${account.domain}`);
    return account;
  }

  async setPassword(username: string, host: string, password: string): Promise<boolean> {
    const account = AccountStore.account(username, host);
    if (password.length === 0) throw new Error('the password must not be empty');
    const [sha1, sha256] = await Promise.all([
      deriveScramCredentials('SHA-1', password, { iterations: this.options.iterations }),
      deriveScramCredentials('SHA-256', password, { iterations: this.options.iterations }),
    ]);
    const r = await this.db
      .updateTable('accounts')
      .set({ scram_sha1: encode(sha1), scram_sha256: encode(sha256) })
      .where('host', '=', account.domain)
      .where('username', '=', account.local)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async remove(username: string, host: string): Promise<boolean> {
    const account = AccountStore.account(username, host);
    const r = await this.db
      .deleteFrom('accounts')
      .where('host', '=', account.domain)
      .where('username', '=', account.local)
      .executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async exists(username: string, host: string): Promise<boolean> {
    const key = `${username}@${host}`;
    const seen = this.missing.get(key);
    if (seen !== undefined && Date.now() - seen < AccountStore.MISSING_TTL_MS) return false;
    const row = await this.db
      .selectFrom('accounts')
      .select('username')
      .where('host', '=', host)
      .where('username', '=', username)
      .executeTakeFirst();
    if (row === undefined) {
      if (this.missing.size >= AccountStore.MISSING_MAX) this.missing.clear();
      this.missing.set(key, Date.now());
    } else this.missing.delete(key);
    return row !== undefined;
  }

  /**
   * The usernames of a host, sorted; `disabled` true lists only disabled accounts, false only
   * enabled ones; `contains` keeps those with that text in them (usernames are stored prepared,
   * lower case: so is the text); `after` those sorted after it (the next page). `limit` bounds the
   * answer (the caller asks for one more to know there are more).
   */
  async list(
    host: string,
    opts: { disabled?: boolean; limit?: number; contains?: string; after?: string } = {},
  ): Promise<string[]> {
    let q = this.db.selectFrom('accounts').select('username').where('host', '=', host);
    if (opts.disabled !== undefined) q = q.where('disabled_at', opts.disabled ? 'is not' : 'is', null);
    if (opts.after !== undefined) q = q.where('username', '>', opts.after);
    if (opts.contains) {
      // LIKE with an explicit escape character: the same meaning in SQLite and PostgreSQL.
      const pattern = `%${opts.contains.toLowerCase().replace(/[!%_]/g, (c) => `!${c}`)}%`;
      q = q.where(sql<boolean>`username like ${pattern} escape '!'`);
    }
    if (opts.limit !== undefined) q = q.limit(opts.limit);
    const rows = await q.orderBy('username').execute();
    return rows.map((r) => r.username as string);
  }

  async count(host: string, opts: { disabled?: boolean } = {}): Promise<number> {
    let q = this.db
      .selectFrom('accounts')
      .select(sql<number>`count(*)`.as('n'))
      .where('host', '=', host);
    if (opts.disabled !== undefined) q = q.where('disabled_at', opts.disabled ? 'is not' : 'is', null);
    const row = await q.executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  /**
   * Creates an account from another server's data (`natter import`): with its SCRAM keys as they
   * were (one hash or both), or with a password, which is derived into keys and not kept. With
   * `replace`, an existing account's keys are overwritten (its other data stays). Throws
   * AccountExistsError when it exists and `replace` is not set.
   */
  async importAccount(
    username: string,
    host: string,
    credentials: { keys: ImportedKeys } | { password: string },
    opts: { replace?: boolean; createdAt?: number } = {},
  ): Promise<Jid> {
    const account = AccountStore.account(username, host);
    let keys: ImportedKeys;
    if ('password' in credentials) {
      if (credentials.password.length === 0) throw new Error('the password must not be empty');
      const [sha1, sha256] = await Promise.all([
        deriveScramCredentials('SHA-1', credentials.password, { iterations: this.options.iterations }),
        deriveScramCredentials('SHA-256', credentials.password, { iterations: this.options.iterations }),
      ]);
      keys = { 'SHA-1': sha1, 'SHA-256': sha256 };
    } else keys = credentials.keys;
    if (!keys['SHA-1'] && !keys['SHA-256']) throw new Error('an account needs SCRAM keys or a password');
    const row = {
      scram_sha1: keys['SHA-1'] ? encode(keys['SHA-1']) : null,
      scram_sha256: keys['SHA-256'] ? encode(keys['SHA-256']) : null,
    };
    const exists = await this.db
      .selectFrom('accounts')
      .select('username')
      .where('host', '=', account.domain)
      .where('username', '=', account.local)
      .executeTakeFirst();
    if (exists) {
      if (!opts.replace) throw new AccountExistsError(`account ${account.toString()} already exists`);
      await this.db
        .updateTable('accounts')
        .set(row)
        .where('host', '=', account.domain)
        .where('username', '=', account.local)
        .execute();
    } else {
      await this.db
        .insertInto('accounts')
        .values({
          host: account.domain,
          username: account.local,
          ...row,
          created_at: opts.createdAt ?? Date.now(),
        })
        .execute();
    }
    this.missing.delete(`${account.local}@${account.domain}`);
    return account;
  }

  /** Every SCRAM key the account has (for `natter export`); undefined when there is no account. */
  async exportKeys(username: string, host: string): Promise<ImportedKeys | undefined> {
    const row = await this.db
      .selectFrom('accounts')
      .select(['scram_sha1', 'scram_sha256'])
      .where('host', '=', host)
      .where('username', '=', username)
      .executeTakeFirst();
    if (!row) return undefined;
    const keys: ImportedKeys = {};
    if (row.scram_sha1 !== null) keys['SHA-1'] = decode(row.scram_sha1 as string);
    if (row.scram_sha256 !== null) keys['SHA-256'] = decode(row.scram_sha256 as string);
    return keys;
  }

  /**
   * Derives the keys an imported account lacks from its password, just proven (a PLAIN login):
   * afterwards SCRAM-SHA-256 (and -PLUS) work for it too. A no-op, without derivation, when it
   * has both. True when keys were added.
   */
  async completeKeys(username: string, host: string, password: string): Promise<boolean> {
    const row = await this.db
      .selectFrom('accounts')
      .select(['scram_sha1', 'scram_sha256'])
      .where('host', '=', host)
      .where('username', '=', username)
      .executeTakeFirst();
    if (!row || (row.scram_sha1 !== null && row.scram_sha256 !== null)) return false;
    let added = false;
    for (const [hash, column] of [
      ['SHA-1', 'scram_sha1'],
      ['SHA-256', 'scram_sha256'],
    ] as const) {
      if (row[column] !== null) continue;
      const keys = await deriveScramCredentials(hash, password, { iterations: this.options.iterations });
      const r = await this.db
        .updateTable('accounts')
        .set({ [column]: encode(keys) })
        .where('host', '=', host)
        .where('username', '=', username)
        .where(column, 'is', null)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) > 0) added = true;
    }
    return added;
  }

  /** How many accounts of a host lack the keys of one hash (imported, not logged in with PLAIN since). */
  async countIncomplete(host: string): Promise<{ withoutSha1: number; withoutSha256: number }> {
    const row = await this.db
      .selectFrom('accounts')
      .select([
        sql<number>`sum(case when scram_sha1 is null then 1 else 0 end)`.as('no1'),
        sql<number>`sum(case when scram_sha256 is null then 1 else 0 end)`.as('no256'),
      ])
      .where('host', '=', host)
      .executeTakeFirst();
    return { withoutSha1: Number(row?.no1 ?? 0), withoutSha256: Number(row?.no256 ?? 0) };
  }

  /** The account's creation time and whether it is disabled; undefined when there is none. */
  async info(username: string, host: string): Promise<AccountInfo | undefined> {
    const account = AccountStore.account(username, host);
    const row = await this.db
      .selectFrom('accounts')
      .select(['created_at', 'disabled_at', 'disabled_reason'])
      .where('host', '=', account.domain)
      .where('username', '=', account.local)
      .executeTakeFirst();
    if (!row) return undefined;
    return {
      jid: account,
      createdAt: Number(row.created_at),
      ...(row.disabled_at !== null && row.disabled_at !== undefined
        ? { disabled: { at: Number(row.disabled_at), reason: (row.disabled_reason as string | null) ?? '' } }
        : {}),
    };
  }

  /**
   * Disables (with the administrator's `reason`) or enables an account. False when there is no
   * such account. Disabling one already disabled keeps its first time and reason.
   */
  async setDisabled(username: string, host: string, disabled: { reason: string } | false): Promise<boolean> {
    const account = AccountStore.account(username, host);
    const q = this.db
      .updateTable('accounts')
      .set(
        disabled
          ? {
              disabled_at: sql`coalesce(disabled_at, ${Date.now()})`,
              disabled_reason: sql`coalesce(disabled_reason, ${disabled.reason})`,
            }
          : { disabled_at: null, disabled_reason: null },
      )
      .where('host', '=', account.domain)
      .where('username', '=', account.local);
    const r = await q.executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /** Whether logins to the account are refused (`<account-disabled/>`). */
  async isDisabled(username: string, host: string): Promise<boolean> {
    const row = await this.db
      .selectFrom('accounts')
      .select('disabled_at')
      .where('host', '=', host)
      .where('username', '=', username)
      .executeTakeFirst();
    return row !== undefined && row.disabled_at !== null;
  }

  /**
   * The account's SCRAM keys for `hash`, and whether it is disabled (in the same query: a login
   * checks it once the password is proven, so that only the owner learns it).
   */
  async scram(
    username: string,
    host: string,
    hash: ScramHash,
  ): Promise<(ScramCredentials & { disabled: boolean }) | null> {
    const row = await this.db
      .selectFrom('accounts')
      .select([hash === 'SHA-1' ? 'scram_sha1' : 'scram_sha256', 'disabled_at'])
      .where('host', '=', host)
      .where('username', '=', username)
      .executeTakeFirst();
    if (!row) return null;
    const text = (hash === 'SHA-1' ? row.scram_sha1 : row.scram_sha256) as string | null;
    // An imported account without keys for this hash: like an unknown user for this mechanism
    // (the attempt fails as a wrong password would); PLAIN then tries the other hash.
    if (text === null) return null;
    return { ...decode(text), disabled: row.disabled_at !== null };
  }
}
