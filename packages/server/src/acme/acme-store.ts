import type { Kysely, Migration } from 'kysely';

/**
 * What ACME (RFC 8555) needs to keep, in the server's storage so that every worker of
 * `--workers N` and every node of a cluster shares it: the account key per ACME directory, the
 * HTTP-01 challenges being validated (any node's http listener may be the one the CA reaches), and
 * the certificates issued, which every node writes to its own `<dataDir>/certs/` and serves.
 */
export const acmeMigrations: Record<string, Migration> = {
  '0001-acme': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('acme_accounts')
        .addColumn('directory', 'varchar(2048)', (c) => c.primaryKey())
        .addColumn('key_pem', 'text', (c) => c.notNull())
        .addColumn('url', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('acme_challenges')
        .addColumn('token', 'varchar(255)', (c) => c.primaryKey())
        .addColumn('key_authorization', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('acme_certificates')
        .addColumn('name', 'varchar(1023)', (c) => c.primaryKey())
        .addColumn('domains', 'text', (c) => c.notNull())
        .addColumn('cert_pem', 'text', (c) => c.notNull())
        .addColumn('key_pem', 'text', (c) => c.notNull())
        .addColumn('not_after', 'bigint', (c) => c.notNull())
        .addColumn('issued_at', 'bigint', (c) => c.notNull())
        .execute();
    },
  },
  /**
   * Who is ordering: a lease taken before an order, so that two nodes which both believe they lead
   * (starting at the same moment, or on either side of a Redis outage) do not both order.
   */
  '0002-lease': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('acme_lease')
        .addColumn('name', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('holder', 'varchar(255)', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute();
    },
  },
};

export interface AcmeCertificate {
  /** The hosted domain it is for: the files are `<dataDir>/certs/<name>.crt` and `.key`. */
  name: string;
  /** Every name it holds (the domain and its service subdomains). */
  domains: string[];
  certPem: string;
  keyPem: string;
  notAfter: number;
  issuedAt: number;
}

/** Longest a challenge answer is kept: an order that never completes leaves nothing behind. */
const CHALLENGE_TTL_MS = 60 * 60_000;
/** A challenge token (RFC 8555 §8.1: base64url, at least 128 bits). */
const TOKEN = /^[A-Za-z0-9_-]{16,255}$/;

export class AcmeStore {
  constructor(
    private readonly db: Kysely<any>,
    private readonly now: () => number = Date.now,
  ) {}

  async account(directory: string): Promise<{ keyPem: string; url: string | undefined } | undefined> {
    const row = await this.db
      .selectFrom('acme_accounts')
      .select(['key_pem', 'url'])
      .where('directory', '=', directory)
      .executeTakeFirst();
    return row ? { keyPem: row.key_pem as string, url: (row.url as string | null) ?? undefined } : undefined;
  }

  /** Keeps the account key (first writer wins: two nodes racing end up with one account). */
  async saveAccountKey(directory: string, keyPem: string): Promise<string> {
    await this.db
      .insertInto('acme_accounts')
      .values({ directory, key_pem: keyPem, url: null, created_at: this.now() })
      .onConflict((oc) => oc.column('directory').doNothing())
      .execute();
    return (await this.account(directory))!.keyPem;
  }

  async saveAccountUrl(directory: string, url: string): Promise<void> {
    await this.db.updateTable('acme_accounts').set({ url }).where('directory', '=', directory).execute();
  }

  /**
   * Takes (or extends) the ordering lease for `holder` until `ttlMs` from now; false while another
   * holder's lease runs. One statement, so two nodes asking at once cannot both get it.
   */
  async takeLease(holder: string, ttlMs: number): Promise<boolean> {
    const now = this.now();
    const expires = now + ttlMs;
    await this.db
      .insertInto('acme_lease')
      .values({ name: 'order', holder, expires_at: expires })
      .onConflict((oc) =>
        oc
          .column('name')
          .doUpdateSet({ holder, expires_at: expires })
          .where((eb) =>
            eb.or([eb('acme_lease.expires_at', '<', now), eb('acme_lease.holder', '=', holder)]),
          ),
      )
      .execute();
    const row = await this.db
      .selectFrom('acme_lease')
      .select('holder')
      .where('name', '=', 'order')
      .executeTakeFirst();
    return row?.holder === holder;
  }

  /** Gives the lease back (only `holder`'s). */
  async releaseLease(holder: string): Promise<void> {
    await this.db.deleteFrom('acme_lease').where('name', '=', 'order').where('holder', '=', holder).execute();
  }

  async putChallenge(token: string, keyAuthorization: string): Promise<void> {
    const expires = this.now() + CHALLENGE_TTL_MS;
    await this.db.deleteFrom('acme_challenges').where('expires_at', '<', this.now()).execute();
    await this.db
      .insertInto('acme_challenges')
      .values({ token, key_authorization: keyAuthorization, expires_at: expires })
      .onConflict((oc) =>
        oc.column('token').doUpdateSet({ key_authorization: keyAuthorization, expires_at: expires }),
      )
      .execute();
  }

  async removeChallenge(token: string): Promise<void> {
    await this.db.deleteFrom('acme_challenges').where('token', '=', token).execute();
  }

  /** The key authorization to answer for `token` (RFC 8555 §8.3), if a challenge is pending. */
  async challenge(token: string): Promise<string | undefined> {
    if (!TOKEN.test(token)) return undefined;
    const row = await this.db
      .selectFrom('acme_challenges')
      .select('key_authorization')
      .where('token', '=', token)
      .where('expires_at', '>=', this.now())
      .executeTakeFirst();
    return (row?.key_authorization as string | undefined) ?? undefined;
  }

  async certificates(): Promise<AcmeCertificate[]> {
    const rows = await this.db.selectFrom('acme_certificates').selectAll().orderBy('name').execute();
    return rows.map((r) => ({
      name: r.name as string,
      domains: JSON.parse(r.domains as string) as string[],
      certPem: r.cert_pem as string,
      keyPem: r.key_pem as string,
      notAfter: Number(r.not_after),
      issuedAt: Number(r.issued_at),
    }));
  }

  async saveCertificate(c: AcmeCertificate): Promise<void> {
    const values = {
      domains: JSON.stringify(c.domains),
      cert_pem: c.certPem,
      key_pem: c.keyPem,
      not_after: c.notAfter,
      issued_at: c.issuedAt,
    };
    await this.db
      .insertInto('acme_certificates')
      .values({ name: c.name, ...values })
      .onConflict((oc) => oc.column('name').doUpdateSet(values))
      .execute();
  }
}
