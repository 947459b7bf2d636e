import { randomBytes } from 'node:crypto';
import type { Kysely, Migration } from 'kysely';
import { parseJid, type Jid } from '@natter/jid';
import { parseElement, type Element } from '@natter/xml';
import { StanzaError } from '@natter/protocol';
import type { RosterItem, StateChange, Subscription, SubscriptionState } from './api.js';

/** An item with the roster version of its last change (RFC 6121 §2.6 / XEP-0237). */
export interface StoredItem extends RosterItem {
  version: number;
}

/** One user's roster as cached in memory. */
export interface RosterData {
  owner: string;
  items: Map<string, StoredItem>;
  /** Inbound subscription requests by contact ("Pending In"). */
  pending: Map<string, Element>;
  /** Removed contacts by the version of their removal (bounded: the change log of removals). */
  tombstones: Map<string, number>;
  /** Changes to the roster since the start of this epoch are numbered; a new epoch after data loss. */
  epoch: string;
  version: number;
  /** Every change after this version is known (items by version, removals by tombstone). */
  floor: number;
  /** Derived lists, rebuilt lazily after a change. */
  subscribers?: Jid[];
  subscriptions?: Jid[];
}

export interface ApplyResult {
  /** The item after the change (undefined when absent or removed). */
  item: StoredItem | undefined;
  /** The visible item changed (a roster push is due). */
  changed: boolean;
  removed: boolean;
}

export const rosterMigrations: Record<string, Migration> = {
  '0001-init': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('roster_items')
        .addColumn('owner', 'varchar(3071)', (c) => c.notNull())
        .addColumn('contact', 'varchar(3071)', (c) => c.notNull())
        .addColumn('name', 'text')
        .addColumn('subscription', 'varchar(4)', (c) => c.notNull().defaultTo('none'))
        .addColumn('ask', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('approved', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('groups', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('version', 'integer', (c) => c.notNull().defaultTo(0))
        .addPrimaryKeyConstraint('roster_items_pk', ['owner', 'contact'])
        .execute();
      await db.schema
        .createTable('roster_versions')
        .addColumn('owner', 'varchar(3071)', (c) => c.primaryKey())
        .addColumn('epoch', 'varchar(32)', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('floor', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema
        .createTable('roster_tombstones')
        .addColumn('owner', 'varchar(3071)', (c) => c.notNull())
        .addColumn('contact', 'varchar(3071)', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('roster_tombstones_pk', ['owner', 'contact'])
        .execute();
      await db.schema
        .createTable('roster_pending')
        .addColumn('owner', 'varchar(3071)', (c) => c.notNull())
        .addColumn('contact', 'varchar(3071)', (c) => c.notNull())
        .addColumn('stanza', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('roster_pending_pk', ['owner', 'contact'])
        .execute();
    },
    async down(db: Kysely<any>) {
      for (const t of ['roster_pending', 'roster_tombstones', 'roster_versions', 'roster_items'])
        await db.schema.dropTable(t).execute();
    },
  },
};

const SUBSCRIPTIONS = new Set<Subscription>(['none', 'to', 'from', 'both']);

function visibleKey(i: RosterItem | undefined): string {
  if (!i) return '';
  return JSON.stringify([i.name ?? null, i.subscription, i.ask ?? null, i.approved === true, i.groups]);
}

function parseGroups(text: string): string[] {
  try {
    const v: unknown = JSON.parse(text);
    return Array.isArray(v) ? v.filter((g): g is string => typeof g === 'string') : [];
  } catch {
    return [];
  }
}

export interface RosterStoreOptions {
  maxItems: number;
  /** Removals remembered per user for incremental roster sync. */
  versionLog: number;
  /** Rosters kept in memory (least recently used evicted). */
  cacheSize: number;
  /**
   * Told after every write to a user's rows has committed (before the change is answered), so
   * that the other nodes of a cluster drop their cached copy (docs/decisions/0009).
   */
  onChange?: (owner: string) => void;
}

/**
 * Rosters in SQL with a bounded in-memory cache of whole rosters (the presence broadcast path
 * reads subscriber lists from it), per-user serialisation of changes, and versioning: every
 * visible change bumps the user's version; the version of each item's last change and a bounded
 * list of removals let a client with an older version receive only what changed.
 */
export class RosterStore {
  private readonly cache = new Map<string, RosterData>();
  private readonly loading = new Map<string, Promise<RosterData>>();
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(
    private readonly db: Kysely<any>,
    private readonly opts: RosterStoreOptions,
  ) {}

  /** The cached roster, if any (no I/O). */
  peek(owner: string): RosterData | undefined {
    return this.cache.get(owner);
  }

  /** Loads (or returns the cached) roster of a bare JID. */
  load(owner: string): RosterData | Promise<RosterData> {
    const hit = this.cache.get(owner);
    if (hit) {
      // refresh LRU position
      this.cache.delete(owner);
      this.cache.set(owner, hit);
      return hit;
    }
    let p = this.loading.get(owner);
    if (!p) {
      const loaded: Promise<RosterData> = this.fetch(owner).then(
        (data) => {
          // Invalidated while the rows were read (another node wrote): this copy may predate
          // that write, so it serves the callers that asked before but is not cached.
          if (this.loading.get(owner) !== loaded) return data;
          this.loading.delete(owner);
          const raced = this.cache.get(owner);
          if (raced) return raced;
          this.cache.set(owner, data);
          this.evict();
          return data;
        },
        (err: unknown) => {
          if (this.loading.get(owner) === loaded) this.loading.delete(owner);
          throw err;
        },
      );
      this.loading.set(owner, loaded);
      p = loaded;
    }
    return p;
  }

  /**
   * Forgets the cached roster of a bare JID, and any load of it under way: another node changed
   * it (docs/decisions/0009). The next use reads it again.
   */
  invalidate(owner: string): void {
    this.cache.delete(owner);
    this.loading.delete(owner);
  }

  /** Forgets every cached roster (messages from other nodes may have been lost). */
  invalidateAll(): void {
    this.cache.clear();
    this.loading.clear();
  }

  private changed(owner: string): void {
    this.opts.onChange?.(owner);
  }

  private async fetch(owner: string): Promise<RosterData> {
    const [rows, ver, tombs, pend] = await Promise.all([
      this.db.selectFrom('roster_items').selectAll().where('owner', '=', owner).execute(),
      this.db.selectFrom('roster_versions').selectAll().where('owner', '=', owner).executeTakeFirst(),
      this.db
        .selectFrom('roster_tombstones')
        .select(['contact', 'version'])
        .where('owner', '=', owner)
        .execute(),
      this.db.selectFrom('roster_pending').select(['contact', 'stanza']).where('owner', '=', owner).execute(),
    ]);
    const items = new Map<string, StoredItem>();
    for (const r of rows) {
      const sub = String(r.subscription) as Subscription;
      const item: StoredItem = {
        jid: String(r.contact),
        subscription: SUBSCRIPTIONS.has(sub) ? sub : 'none',
        groups: parseGroups(String(r.groups)),
        version: Number(r.version),
      };
      if (r.name !== null && r.name !== undefined) item.name = String(r.name);
      if (Number(r.ask) === 1) item.ask = 'subscribe';
      if (Number(r.approved) === 1) item.approved = true;
      items.set(item.jid, item);
    }
    const pending = new Map<string, Element>();
    for (const r of pend) {
      try {
        pending.set(String(r.contact), parseElement(String(r.stanza)));
      } catch {
        // an unreadable stored request is dropped
      }
    }
    const data: RosterData = {
      owner,
      items,
      pending,
      tombstones: new Map(tombs.map((t) => [String(t.contact), Number(t.version)])),
      epoch: ver ? String(ver.epoch) : randomBytes(4).toString('hex'),
      version: ver ? Number(ver.version) : 0,
      floor: ver ? Number(ver.floor) : 0,
    };
    return data;
  }

  private evict(): void {
    if (this.cache.size <= this.opts.cacheSize) return;
    for (const key of this.cache.keys()) {
      if (this.cache.size <= this.opts.cacheSize) break;
      if (this.locks.has(key)) continue;
      this.cache.delete(key);
    }
  }

  /** Runs `fn` with the user's roster, serialised with every other change to that roster. */
  withLock<T>(owner: string, fn: (data: RosterData) => Promise<T> | T): Promise<T> {
    const prev = this.locks.get(owner) ?? Promise.resolve();
    const run = prev.then(async () => fn(await this.load(owner)));
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.locks.set(owner, tail);
    void tail.then(() => {
      if (this.locks.get(owner) === tail) this.locks.delete(owner);
    });
    return run;
  }

  /** The subscription state of a pair, as RFC 6121 Appendix A sees it. */
  state(data: RosterData, contact: string): SubscriptionState {
    return { item: data.items.get(contact), pendingIn: data.pending.get(contact) };
  }

  /** Applies a change (call inside withLock); persists it and bumps the version when visible. */
  async apply(data: RosterData, contact: string, change: StateChange): Promise<ApplyResult> {
    const old = data.items.get(contact);
    let next: StoredItem | undefined = old;
    let removed = false;
    if (change.item === 'remove') {
      if (old) {
        next = undefined;
        removed = true;
      }
    } else if (change.item) {
      if (!old && data.items.size >= this.opts.maxItems) {
        throw new StanzaError('not-acceptable', {
          text: `the roster is full (at most ${this.opts.maxItems} items)`,
        });
      }
      next = { ...(old ?? { jid: contact, subscription: 'none', groups: [], version: 0 }) };
      const c = change.item;
      if ('name' in c) {
        if (c.name === undefined || c.name === '') delete next.name;
        else next.name = c.name;
      }
      if (c.subscription !== undefined) next.subscription = c.subscription;
      if ('ask' in c) {
        if (c.ask === 'subscribe') next.ask = 'subscribe';
        else delete next.ask;
      }
      if ('approved' in c) {
        if (c.approved === true) next.approved = true;
        else delete next.approved;
      }
      if (c.groups !== undefined) next.groups = [...c.groups];
    }
    const changed =
      removed || (next !== undefined && (old === undefined || visibleKey(old) !== visibleKey(next)));
    const pendingChange = change.pendingIn;
    const hadPending = data.pending.has(contact);
    const dropPending = removed || (pendingChange === false && hadPending);
    const storePending = pendingChange !== undefined && pendingChange !== false;
    if (!changed && !dropPending && !storePending) return { item: old, changed: false, removed: false };

    let version = data.version;
    let prunedFloor = data.floor;
    let prune: string[] = [];
    if (changed) {
      version = data.version + 1;
      if (next) next.version = version;
      if (removed && this.opts.versionLog > 0) {
        // keep at most versionLog removals; older ones raise the floor (full roster below it)
        const tombs = [...data.tombstones.entries()]
          .filter(([c]) => c !== contact)
          .sort((a, b) => a[1] - b[1]);
        const excess = tombs.length + 1 - this.opts.versionLog;
        if (excess > 0) {
          prune = tombs.slice(0, excess).map(([c]) => c);
          prunedFloor = Math.max(prunedFloor, tombs[excess - 1]![1]);
        }
      } else if (removed) {
        prunedFloor = version;
      }
    }
    const db = this.db;
    const owner = data.owner;
    await db.transaction().execute(async (trx) => {
      if (changed) {
        if (removed) {
          await trx
            .deleteFrom('roster_items')
            .where('owner', '=', owner)
            .where('contact', '=', contact)
            .execute();
          if (this.opts.versionLog > 0) {
            await trx
              .insertInto('roster_tombstones')
              .values({ owner, contact, version })
              .onConflict((oc) => oc.columns(['owner', 'contact']).doUpdateSet({ version }))
              .execute();
          }
          if (prune.length > 0) {
            await trx
              .deleteFrom('roster_tombstones')
              .where('owner', '=', owner)
              .where('contact', 'in', prune)
              .execute();
          }
        } else if (next) {
          const row = {
            name: next.name ?? null,
            subscription: next.subscription,
            ask: next.ask ? 1 : 0,
            approved: next.approved ? 1 : 0,
            groups: JSON.stringify(next.groups),
            version,
          };
          await trx
            .insertInto('roster_items')
            .values({ owner, contact, ...row })
            .onConflict((oc) => oc.columns(['owner', 'contact']).doUpdateSet(row))
            .execute();
          if (data.tombstones.has(contact)) {
            await trx
              .deleteFrom('roster_tombstones')
              .where('owner', '=', owner)
              .where('contact', '=', contact)
              .execute();
          }
        }
        await trx
          .insertInto('roster_versions')
          .values({ owner, epoch: data.epoch, version, floor: prunedFloor })
          .onConflict((oc) => oc.column('owner').doUpdateSet({ version, floor: prunedFloor }))
          .execute();
      }
      if (dropPending && !storePending) {
        await trx
          .deleteFrom('roster_pending')
          .where('owner', '=', owner)
          .where('contact', '=', contact)
          .execute();
      } else if (storePending) {
        const stanza = (pendingChange as Element).toString();
        await trx
          .insertInto('roster_pending')
          .values({ owner, contact, stanza, created_at: Date.now() })
          .onConflict((oc) => oc.columns(['owner', 'contact']).doUpdateSet({ stanza }))
          .execute();
      }
    });
    this.changed(owner);
    // An invalidation dropped `data` from the cache while this change ran: a copy cached or being
    // read since may predate this write, so it goes too (the next use reads the rows).
    if (this.cache.get(owner) !== data) this.invalidate(owner);
    // memory after the write succeeded
    if (changed) {
      data.version = version;
      data.floor = prunedFloor;
      if (removed) {
        data.items.delete(contact);
        if (this.opts.versionLog > 0) data.tombstones.set(contact, version);
        for (const c of prune) data.tombstones.delete(c);
      } else if (next) {
        data.items.set(contact, next);
        data.tombstones.delete(contact);
      }
      data.subscribers = undefined;
      data.subscriptions = undefined;
    }
    if (storePending) data.pending.set(contact, pendingChange as Element);
    else if (dropPending) data.pending.delete(contact);
    return { item: removed ? undefined : next, changed, removed };
  }

  subscribers(data: RosterData): Jid[] {
    if (!data.subscribers) {
      const out: Jid[] = [];
      for (const i of data.items.values()) {
        if (i.subscription === 'from' || i.subscription === 'both') {
          try {
            out.push(parseJid(i.jid));
          } catch {
            // unparsable stored JID: skipped
          }
        }
      }
      data.subscribers = out;
    }
    return data.subscribers;
  }

  subscriptions(data: RosterData): Jid[] {
    if (!data.subscriptions) {
      const out: Jid[] = [];
      for (const i of data.items.values()) {
        if (i.subscription === 'to' || i.subscription === 'both') {
          try {
            out.push(parseJid(i.jid));
          } catch {
            // skipped
          }
        }
      }
      data.subscriptions = out;
    }
    return data.subscriptions;
  }

  /** Deletes every roster row of a user (account deleted). */
  async deleteUser(owner: string): Promise<void> {
    await this.withLock(owner, async () => {
      await this.db.transaction().execute(async (trx) => {
        for (const t of ['roster_items', 'roster_versions', 'roster_tombstones', 'roster_pending']) {
          await trx.deleteFrom(t).where('owner', '=', owner).execute();
        }
      });
      this.invalidate(owner);
      this.changed(owner);
    });
  }

  /** Bulk import (administration, benchmarks): items replace existing ones; no pushes. */
  /**
   * Adds (or overwrites) items, and inbound subscription requests ("Pending In": the contact's
   * bare JID and the `<presence type='subscribe'/>` as it would be stored), as one change.
   */
  async import(
    owner: string,
    items: RosterItem[],
    pending: { contact: string; stanza: Element }[] = [],
  ): Promise<void> {
    await this.withLock(owner, async (data) => {
      await this.db.transaction().execute(async (trx) => {
        for (const p of pending) {
          const stanza = p.stanza.toString();
          await trx
            .insertInto('roster_pending')
            .values({ owner, contact: p.contact, stanza, created_at: Date.now() })
            .onConflict((oc) => oc.columns(['owner', 'contact']).doUpdateSet({ stanza }))
            .execute();
        }
        for (const i of items) {
          const row = {
            name: i.name ?? null,
            subscription: i.subscription,
            ask: i.ask ? 1 : 0,
            approved: i.approved ? 1 : 0,
            groups: JSON.stringify(i.groups),
            version: data.version + 1,
          };
          await trx
            .insertInto('roster_items')
            .values({ owner, contact: i.jid, ...row })
            .onConflict((oc) => oc.columns(['owner', 'contact']).doUpdateSet(row))
            .execute();
        }
        await trx
          .insertInto('roster_versions')
          .values({ owner, epoch: data.epoch, version: data.version + 1, floor: data.version + 1 })
          .onConflict((oc) =>
            oc.column('owner').doUpdateSet({ version: data.version + 1, floor: data.version + 1 }),
          )
          .execute();
      });
      this.invalidate(owner);
      this.changed(owner);
    });
  }
}

/**
 * Bulk import for the admin CLI and benchmarks (`natter roster import FILE`): `data` maps owner
 * bare JIDs to their items. Run `database.migrate('roster', rosterMigrations)` first.
 */
export async function importRosters(
  db: Kysely<any>,
  data: Record<string, (Pick<RosterItem, 'jid' | 'subscription'> & Partial<RosterItem>)[]>,
): Promise<number> {
  const store = new RosterStore(db, { maxItems: Number.MAX_SAFE_INTEGER, versionLog: 0, cacheSize: 0 });
  let n = 0;
  for (const [owner, items] of Object.entries(data)) {
    await store.import(
      parseJid(owner).toBareString(),
      items.map((i) => ({ ...i, jid: parseJid(i.jid).toString(), groups: i.groups ?? [] })),
    );
    n += items.length;
  }
  return n;
}
