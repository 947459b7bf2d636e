import type { Kysely, Migration } from 'kysely';

export const blockingMigrations: Record<string, Migration> = {
  '0001-blocking-items': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('blocking_items')
        .addColumn('owner', 'varchar(3071)', (c) => c.notNull())
        .addColumn('jid', 'varchar(3071)', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('blocking_items_pk', ['owner', 'jid'])
        .execute();
    },
  },
};

const EMPTY: ReadonlySet<string> = new Set();

/**
 * Blocklists, persisted in `blocking_items` and cached so that the per-stanza check costs no
 * query: the set of accounts that block anyone is loaded at start (most accounts block nobody:
 * one set lookup answers for them), and the lists of those accounts are loaded on first use into
 * a bounded LRU cache. Every change writes to the database first, then to the cache.
 */
export class BlocklistStore {
  /** Accounts (bare JID strings) with at least one blocked item. */
  private readonly owners = new Set<string>();
  /** Loaded lists, least recently used first. */
  private readonly cache = new Map<string, Set<string>>();
  private readonly loading = new Map<string, Promise<Set<string>>>();
  /** Serialises changes per account. */
  private readonly writes = new Map<string, Promise<unknown>>();
  /** Invalidations received so far: a change that saw one while it ran does not cache its list. */
  private invalidations = 0;

  private constructor(
    private readonly db: Kysely<any>,
    private readonly capacity: number,
  ) {}

  static async open(db: Kysely<any>, capacity: number): Promise<BlocklistStore> {
    const store = new BlocklistStore(db, capacity);
    const rows = await db.selectFrom('blocking_items').select('owner').distinct().execute();
    for (const r of rows) store.owners.add(String(r.owner));
    return store;
  }

  /** The account's list when known without a query (empty or cached), else a promise of it. */
  get(owner: string): ReadonlySet<string> | Promise<ReadonlySet<string>> {
    if (!this.owners.has(owner)) return EMPTY;
    const cached = this.cache.get(owner);
    if (cached) {
      this.cache.delete(owner);
      this.cache.set(owner, cached);
      return cached;
    }
    return this.load(owner);
  }

  private load(owner: string): Promise<Set<string>> {
    const pending = this.loading.get(owner);
    if (pending) return pending;
    const loaded: Promise<Set<string>> = this.db
      .selectFrom('blocking_items')
      .select('jid')
      .where('owner', '=', owner)
      .execute()
      .then(
        (rows) => {
          const set = new Set(rows.map((r) => String(r.jid)));
          // Invalidated while the query ran (another node changed the list): the rows may predate
          // that change, so they answer this check but are not cached.
          if (this.loading.get(owner) !== loaded) return set;
          this.loading.delete(owner);
          // A change made while this query ran has already cached the newer list.
          const newer = this.cache.get(owner);
          if (newer) return newer;
          // An invalidation marks the account as blocking someone until its rows say otherwise.
          if (set.size === 0) this.owners.delete(owner);
          else this.remember(owner, set);
          return set;
        },
        (err: unknown) => {
          if (this.loading.get(owner) === loaded) this.loading.delete(owner);
          throw err;
        },
      );
    this.loading.set(owner, loaded);
    return loaded;
  }

  /**
   * Forgets what is known of an account's list: another node of the cluster changed it
   * (docs/decisions/0009). Whether it now blocks anyone is unknown, so its next check reads it.
   */
  invalidate(owner: string): void {
    this.invalidations++;
    this.owners.add(owner);
    this.cache.delete(owner);
    this.loading.delete(owner);
  }

  /**
   * Forgets every cached list and reads again which accounts block anyone (messages from other
   * nodes may have been lost). Accounts already known to block stay so until their rows say
   * otherwise: an extra one costs a query, a missing one would let a blocked stanza through.
   */
  async invalidateAll(): Promise<void> {
    this.invalidations++;
    this.cache.clear();
    this.loading.clear();
    const rows = await this.db.selectFrom('blocking_items').select('owner').distinct().execute();
    for (const r of rows) this.owners.add(String(r.owner));
  }

  private remember(owner: string, set: Set<string>): void {
    this.cache.delete(owner);
    this.cache.set(owner, set);
    while (this.cache.size > this.capacity) {
      const oldest = this.cache.keys().next().value as string;
      this.cache.delete(oldest);
    }
  }

  /** The list in blocking order of insertion (for the blocklist result). */
  async list(owner: string): Promise<string[]> {
    if (!this.owners.has(owner)) return [];
    const rows = await this.db
      .selectFrom('blocking_items')
      .select('jid')
      .where('owner', '=', owner)
      .orderBy('created_at', 'asc')
      .orderBy('jid', 'asc')
      .execute();
    return rows.map((r) => String(r.jid));
  }

  private serial<T>(owner: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.writes.get(owner) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tracked = next.catch(() => undefined);
    this.writes.set(owner, tracked);
    void tracked.then(() => {
      if (this.writes.get(owner) === tracked) this.writes.delete(owner);
    });
    return next;
  }

  /** Adds items; resolves with those that were not blocked before. */
  block(owner: string, jids: string[]): Promise<string[]> {
    return this.serial(owner, async () => {
      const seen = this.invalidations;
      const current = new Set(await this.list(owner));
      const added = [...new Set(jids)].filter((j) => !current.has(j));
      if (added.length === 0) return [];
      const now = Date.now();
      await this.db
        .insertInto('blocking_items')
        .values(added.map((jid) => ({ owner, jid, created_at: now })))
        .execute();
      this.owners.add(owner);
      for (const j of added) current.add(j);
      // Another node changed a list meanwhile: `current` may miss its change.
      if (this.invalidations !== seen) this.invalidate(owner);
      else this.remember(owner, current);
      return added;
    });
  }

  /** Removes items (all of them when `jids` is undefined); resolves with those that were blocked. */
  unblock(owner: string, jids: string[] | undefined): Promise<string[]> {
    return this.serial(owner, async () => {
      const seen = this.invalidations;
      const current = new Set(await this.list(owner));
      const removed = jids === undefined ? [...current] : [...new Set(jids)].filter((j) => current.has(j));
      if (removed.length === 0) return [];
      let q = this.db.deleteFrom('blocking_items').where('owner', '=', owner);
      if (jids !== undefined) q = q.where('jid', 'in', removed);
      await q.execute();
      for (const j of removed) current.delete(j);
      if (this.invalidations !== seen) this.invalidate(owner);
      else if (current.size === 0) {
        this.owners.delete(owner);
        this.cache.delete(owner);
        this.loading.delete(owner); // a read begun before the delete would cache the old list
      } else this.remember(owner, current);
      return removed;
    });
  }

  async removeAccount(owner: string): Promise<void> {
    await this.serial(owner, async () => {
      await this.db.deleteFrom('blocking_items').where('owner', '=', owner).execute();
      this.owners.delete(owner);
      this.cache.delete(owner);
      this.loading.delete(owner);
    });
  }
}
