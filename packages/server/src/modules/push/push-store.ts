import type { Kysely, Migration } from 'kysely';

export const pushMigrations: Record<string, Migration> = {
  '0001-push-registrations': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('push_registrations')
        .addColumn('owner', 'varchar(1023)', (c) => c.notNull())
        .addColumn('jid', 'varchar(1023)', (c) => c.notNull())
        .addColumn('node', 'varchar(1023)', (c) => c.notNull())
        .addColumn('form', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('push_registrations_pk', ['owner', 'jid', 'node'])
        .execute();
    },
  },
};

/** One app server registration (XEP-0357 §5): where to publish and the publish-options form. */
export interface PushRegistration {
  owner: string;
  jid: string;
  node: string;
  /** The `<x xmlns='jabber:x:data'/>` publish-options as XML text ('' when the client sent none). */
  form: string;
  createdAt: number;
}

/** Push registrations of each account (bare JID string). */
export class PushStore {
  constructor(private readonly db: Kysely<any>) {}

  async list(owner: string): Promise<PushRegistration[]> {
    const rows = await this.db
      .selectFrom('push_registrations')
      .select(['owner', 'jid', 'node', 'form', 'created_at'])
      .where('owner', '=', owner)
      .orderBy('created_at')
      .execute();
    return rows.map((r) => ({
      owner: String(r.owner),
      jid: String(r.jid),
      node: String(r.node),
      form: String(r.form),
      createdAt: Number(r.created_at),
    }));
  }

  /**
   * Adds or replaces the registration for jid+node. Beyond `max` registrations the oldest ones
   * are dropped. Returns the registrations dropped to make room.
   */
  async put(reg: PushRegistration, max: number): Promise<PushRegistration[]> {
    return this.db.transaction().execute(async (trx) => {
      await trx
        .deleteFrom('push_registrations')
        .where('owner', '=', reg.owner)
        .where('jid', '=', reg.jid)
        .where('node', '=', reg.node)
        .execute();
      await trx
        .insertInto('push_registrations')
        .values({ owner: reg.owner, jid: reg.jid, node: reg.node, form: reg.form, created_at: reg.createdAt })
        .execute();
      const rows = await trx
        .selectFrom('push_registrations')
        .select(['jid', 'node', 'form', 'created_at'])
        .where('owner', '=', reg.owner)
        .orderBy('created_at', 'desc')
        .execute();
      const dropped = rows.slice(max).map((r) => ({
        owner: reg.owner,
        jid: String(r.jid),
        node: String(r.node),
        form: String(r.form),
        createdAt: Number(r.created_at),
      }));
      for (const d of dropped) {
        await trx
          .deleteFrom('push_registrations')
          .where('owner', '=', reg.owner)
          .where('jid', '=', d.jid)
          .where('node', '=', d.node)
          .execute();
      }
      return dropped;
    });
  }

  /** Removes one registration (with `node`) or every registration for `jid`; returns how many. */
  async remove(owner: string, jid: string, node?: string): Promise<number> {
    let q = this.db.deleteFrom('push_registrations').where('owner', '=', owner).where('jid', '=', jid);
    if (node !== undefined) q = q.where('node', '=', node);
    const res = await q.executeTakeFirst();
    return Number(res.numDeletedRows ?? 0);
  }

  async removeAll(owner: string): Promise<void> {
    await this.db.deleteFrom('push_registrations').where('owner', '=', owner).execute();
  }
}
