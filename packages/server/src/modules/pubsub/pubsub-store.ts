import { sql, type Kysely, type Migration } from 'kysely';
import { loadConfig, type NodeConfig } from './node-config.js';

/**
 * Storage of nodes, items, subscriptions and affiliations. `owner` is the service a row belongs
 * to: the pubsub service's domain (`pubsub.example.com`) or, for PEP, the account's bare JID.
 */
export const pubsubMigrations: Record<string, Migration> = {
  '0001-init': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('pubsub_nodes')
        .addColumn('owner', 'varchar(1023)', (c) => c.notNull())
        .addColumn('node', 'varchar(1023)', (c) => c.notNull())
        .addColumn('config', 'text', (c) => c.notNull())
        .addColumn('creator', 'varchar(3071)', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('pubsub_nodes_pk', ['owner', 'node'])
        .execute();
      await db.schema
        .createTable('pubsub_items')
        .addColumn('owner', 'varchar(1023)', (c) => c.notNull())
        .addColumn('node', 'varchar(1023)', (c) => c.notNull())
        .addColumn('item_id', 'varchar(1023)', (c) => c.notNull())
        .addColumn('publisher', 'varchar(3071)', (c) => c.notNull())
        .addColumn('payload', 'text', (c) => c.notNull())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('pubsub_items_pk', ['owner', 'node', 'item_id'])
        .execute();
      await db.schema
        .createIndex('pubsub_items_seq')
        .on('pubsub_items')
        .columns(['owner', 'node', 'seq'])
        .execute();
      await db.schema
        .createTable('pubsub_subscriptions')
        .addColumn('owner', 'varchar(1023)', (c) => c.notNull())
        .addColumn('node', 'varchar(1023)', (c) => c.notNull())
        .addColumn('jid', 'varchar(3071)', (c) => c.notNull())
        .addColumn('subid', 'varchar(64)', (c) => c.notNull())
        .addColumn('state', 'varchar(16)', (c) => c.notNull())
        .addColumn('options', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('pubsub_subscriptions_pk', ['owner', 'node', 'jid'])
        .execute();
      await db.schema
        .createTable('pubsub_affiliations')
        .addColumn('owner', 'varchar(1023)', (c) => c.notNull())
        .addColumn('node', 'varchar(1023)', (c) => c.notNull())
        .addColumn('jid', 'varchar(3071)', (c) => c.notNull())
        .addColumn('affiliation', 'varchar(16)', (c) => c.notNull())
        .addPrimaryKeyConstraint('pubsub_affiliations_pk', ['owner', 'node', 'jid'])
        .execute();
      await db.schema
        .createIndex('pubsub_subscriptions_jid')
        .on('pubsub_subscriptions')
        .column('jid')
        .execute();
      await db.schema
        .createIndex('pubsub_affiliations_jid')
        .on('pubsub_affiliations')
        .column('jid')
        .execute();
    },
  },
};

export interface StoredNode {
  owner: string;
  node: string;
  config: NodeConfig;
  creator: string;
  createdAt: number;
}

export interface StoredItem {
  id: string;
  publisher: string;
  /** Serialised payload element ('' when the item has none). */
  payload: string;
  updatedAt: number;
}

export type SubState = 'subscribed' | 'pending' | 'unconfigured';
export interface StoredSubscription {
  node: string;
  jid: string;
  subid: string;
  state: SubState;
  options: Record<string, string>;
}

export type Affiliation = 'owner' | 'publisher' | 'publish-only' | 'member' | 'none' | 'outcast';

let lastSeq = 0;
/** Monotonic ordering stamp (microsecond-like, above any stamp written before a restart). */
function nextSeq(): number {
  lastSeq = Math.max(Date.now() * 1000, lastSeq + 1);
  return lastSeq;
}

export class PubsubStore {
  constructor(private readonly db: Kysely<any>) {}

  async getNode(owner: string, node: string): Promise<StoredNode | undefined> {
    const r = await this.db
      .selectFrom('pubsub_nodes')
      .selectAll()
      .where('owner', '=', owner)
      .where('node', '=', node)
      .executeTakeFirst();
    return r && toNode(r);
  }

  async listNodes(owner: string): Promise<StoredNode[]> {
    const rows = await this.db
      .selectFrom('pubsub_nodes')
      .selectAll()
      .where('owner', '=', owner)
      .orderBy('node')
      .execute();
    return rows.map(toNode);
  }

  async countNodesBy(owner: string, creator: string): Promise<number> {
    const r = await this.db
      .selectFrom('pubsub_nodes')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('owner', '=', owner)
      .where('creator', '=', creator)
      .executeTakeFirst();
    return Number(r?.n ?? 0);
  }

  async createNode(owner: string, node: string, config: NodeConfig, creator: string): Promise<void> {
    await this.db
      .insertInto('pubsub_nodes')
      .values({ owner, node, config: JSON.stringify(config), creator, created_at: Date.now() })
      .execute();
  }

  async saveConfig(owner: string, node: string, config: NodeConfig): Promise<void> {
    await this.db
      .updateTable('pubsub_nodes')
      .set({ config: JSON.stringify(config) })
      .where('owner', '=', owner)
      .where('node', '=', node)
      .execute();
  }

  async deleteNode(owner: string, node: string): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      for (const t of ['pubsub_items', 'pubsub_subscriptions', 'pubsub_affiliations', 'pubsub_nodes']) {
        await tx.deleteFrom(t).where('owner', '=', owner).where('node', '=', node).execute();
      }
    });
  }

  /** Every row of a service (an account deleted). */
  async deleteOwner(owner: string): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      for (const t of ['pubsub_items', 'pubsub_subscriptions', 'pubsub_affiliations', 'pubsub_nodes']) {
        await tx.deleteFrom(t).where('owner', '=', owner).execute();
      }
    });
  }

  /** Subscriptions and affiliations held by a JID (bare) anywhere. */
  async forgetEntity(bare: string): Promise<void> {
    const prefix = `${bare}/`;
    await this.db
      .deleteFrom('pubsub_subscriptions')
      .where((eb) =>
        eb.or([eb('jid', '=', bare), eb(sql`substr(jid, 1, ${[...prefix].length})`, '=', prefix)]),
      )
      .execute();
    await this.db.deleteFrom('pubsub_affiliations').where('jid', '=', bare).execute();
  }

  // --- items ----------------------------------------------------------------------------------

  /** Stores (or replaces) an item, then keeps only the newest `maxItems`. */
  async putItem(
    owner: string,
    node: string,
    item: Omit<StoredItem, 'updatedAt'>,
    maxItems: number,
  ): Promise<void> {
    const now = Date.now();
    const seq = nextSeq();
    await this.db.transaction().execute(async (tx) => {
      await tx
        .deleteFrom('pubsub_items')
        .where('owner', '=', owner)
        .where('node', '=', node)
        .where('item_id', '=', item.id)
        .execute();
      await tx
        .insertInto('pubsub_items')
        .values({
          owner,
          node,
          item_id: item.id,
          publisher: item.publisher,
          payload: item.payload,
          seq,
          updated_at: now,
        })
        .execute();
      await trim(tx, owner, node, maxItems);
    });
  }

  async trim(owner: string, node: string, maxItems: number): Promise<void> {
    await trim(this.db, owner, node, maxItems);
  }

  /** Newest first. */
  async items(owner: string, node: string, limit?: number): Promise<StoredItem[]> {
    let q = this.db
      .selectFrom('pubsub_items')
      .selectAll()
      .where('owner', '=', owner)
      .where('node', '=', node)
      .orderBy('seq', 'desc');
    if (limit !== undefined) q = q.limit(limit);
    return (await q.execute()).map(toItem);
  }

  async itemsById(owner: string, node: string, ids: string[]): Promise<StoredItem[]> {
    if (ids.length === 0) return [];
    const rows = await this.db
      .selectFrom('pubsub_items')
      .selectAll()
      .where('owner', '=', owner)
      .where('node', '=', node)
      .where('item_id', 'in', ids)
      .orderBy('seq', 'desc')
      .execute();
    return rows.map(toItem);
  }

  async deleteItem(owner: string, node: string, id: string): Promise<boolean> {
    const r = await this.db
      .deleteFrom('pubsub_items')
      .where('owner', '=', owner)
      .where('node', '=', node)
      .where('item_id', '=', id)
      .executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async purge(owner: string, node: string): Promise<void> {
    await this.db.deleteFrom('pubsub_items').where('owner', '=', owner).where('node', '=', node).execute();
  }

  // --- subscriptions --------------------------------------------------------------------------

  async subscriptions(owner: string, node?: string): Promise<StoredSubscription[]> {
    let q = this.db.selectFrom('pubsub_subscriptions').selectAll().where('owner', '=', owner);
    if (node !== undefined) q = q.where('node', '=', node);
    return (await q.orderBy('created_at').execute()).map(toSub);
  }

  async subscriptionsOf(owner: string, jids: string[], node?: string): Promise<StoredSubscription[]> {
    if (jids.length === 0) return [];
    let q = this.db
      .selectFrom('pubsub_subscriptions')
      .selectAll()
      .where('owner', '=', owner)
      .where('jid', 'in', jids);
    if (node !== undefined) q = q.where('node', '=', node);
    return (await q.execute()).map(toSub);
  }

  async subscription(owner: string, node: string, jid: string): Promise<StoredSubscription | undefined> {
    const r = await this.db
      .selectFrom('pubsub_subscriptions')
      .selectAll()
      .where('owner', '=', owner)
      .where('node', '=', node)
      .where('jid', '=', jid)
      .executeTakeFirst();
    return r && toSub(r);
  }

  async putSubscription(owner: string, sub: StoredSubscription): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx
        .deleteFrom('pubsub_subscriptions')
        .where('owner', '=', owner)
        .where('node', '=', sub.node)
        .where('jid', '=', sub.jid)
        .execute();
      await tx
        .insertInto('pubsub_subscriptions')
        .values({
          owner,
          node: sub.node,
          jid: sub.jid,
          subid: sub.subid,
          state: sub.state,
          options: JSON.stringify(sub.options),
          created_at: Date.now(),
        })
        .execute();
    });
  }

  async deleteSubscription(owner: string, node: string, jid: string): Promise<void> {
    await this.db
      .deleteFrom('pubsub_subscriptions')
      .where('owner', '=', owner)
      .where('node', '=', node)
      .where('jid', '=', jid)
      .execute();
  }

  // --- affiliations ---------------------------------------------------------------------------

  async affiliations(
    owner: string,
    node?: string,
  ): Promise<{ node: string; jid: string; affiliation: Affiliation }[]> {
    let q = this.db.selectFrom('pubsub_affiliations').selectAll().where('owner', '=', owner);
    if (node !== undefined) q = q.where('node', '=', node);
    return (await q.orderBy('jid').execute()).map((r) => ({
      node: String(r.node),
      jid: String(r.jid),
      affiliation: r.affiliation as Affiliation,
    }));
  }

  async affiliationsOf(owner: string, jid: string): Promise<{ node: string; affiliation: Affiliation }[]> {
    const rows = await this.db
      .selectFrom('pubsub_affiliations')
      .selectAll()
      .where('owner', '=', owner)
      .where('jid', '=', jid)
      .execute();
    return rows.map((r) => ({ node: String(r.node), affiliation: r.affiliation as Affiliation }));
  }

  async affiliation(owner: string, node: string, jid: string): Promise<Affiliation> {
    const r = await this.db
      .selectFrom('pubsub_affiliations')
      .select('affiliation')
      .where('owner', '=', owner)
      .where('node', '=', node)
      .where('jid', '=', jid)
      .executeTakeFirst();
    return (r?.affiliation as Affiliation | undefined) ?? 'none';
  }

  async setAffiliation(owner: string, node: string, jid: string, affiliation: Affiliation): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx
        .deleteFrom('pubsub_affiliations')
        .where('owner', '=', owner)
        .where('node', '=', node)
        .where('jid', '=', jid)
        .execute();
      if (affiliation !== 'none')
        await tx.insertInto('pubsub_affiliations').values({ owner, node, jid, affiliation }).execute();
    });
  }
}

async function trim(db: Kysely<any>, owner: string, node: string, maxItems: number): Promise<void> {
  const keep = await db
    .selectFrom('pubsub_items')
    .select('seq')
    .where('owner', '=', owner)
    .where('node', '=', node)
    .orderBy('seq', 'desc')
    .offset(Math.max(0, maxItems))
    .limit(1)
    .executeTakeFirst();
  if (keep)
    await db
      .deleteFrom('pubsub_items')
      .where('owner', '=', owner)
      .where('node', '=', node)
      .where('seq', '<=', keep.seq)
      .execute();
}

function toNode(r: Record<string, unknown>): StoredNode {
  return {
    owner: String(r.owner),
    node: String(r.node),
    config: loadConfig(String(r.config)),
    creator: String(r.creator),
    createdAt: Number(r.created_at),
  };
}

function toItem(r: Record<string, unknown>): StoredItem {
  return {
    id: String(r.item_id),
    publisher: String(r.publisher),
    payload: String(r.payload),
    updatedAt: Number(r.updated_at),
  };
}

function toSub(r: Record<string, unknown>): StoredSubscription {
  return {
    node: String(r.node),
    jid: String(r.jid),
    subid: String(r.subid),
    state: r.state as SubState,
    options: JSON.parse(String(r.options)) as Record<string, string>,
  };
}
