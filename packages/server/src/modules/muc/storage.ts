import type { Kysely, Migration } from 'kysely';
import { parseJid } from '@natter/jid';
import { parseElement } from '@natter/xml';
import { isAffiliation } from './affiliations.js';
import { Room } from './room.js';
import { defaultConfig, type RoomConfig } from './room-config.js';
import { roomPhotoHash } from './xep-0486-room-avatar.js';

/** Tables of persistent rooms: their configuration and subject, and their affiliations. */
export const migrations: Record<string, Migration> = {
  '0001-rooms': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('muc_rooms')
        .addColumn('jid', 'varchar(1023)', (c) => c.primaryKey())
        .addColumn('service', 'varchar(1023)', (c) => c.notNull())
        .addColumn('config', 'text', (c) => c.notNull())
        .addColumn('subject', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('subject_from', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('muc_rooms_service').on('muc_rooms').column('service').execute();
      await db.schema
        .createTable('muc_affiliations')
        .addColumn('room', 'varchar(1023)', (c) => c.notNull())
        .addColumn('jid', 'varchar(1023)', (c) => c.notNull())
        .addColumn('affiliation', 'varchar(16)', (c) => c.notNull())
        .addColumn('reason', 'text')
        .addPrimaryKeyConstraint('muc_affiliations_pk', ['room', 'jid'])
        .execute();
    },
  },
  '0002-history': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('muc_history')
        .addColumn('room', 'varchar(1023)', (c) => c.notNull())
        .addColumn('at', 'bigint', (c) => c.notNull())
        .addColumn('stanza', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('muc_history_room_at').on('muc_history').columns(['room', 'at']).execute();
    },
  },
  /** One secret per MUC service, for XEP-0421 occupant ids. */
  '0003-secrets': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('muc_secrets')
        .addColumn('service', 'varchar(1023)', (c) => c.primaryKey())
        .addColumn('secret', 'text', (c) => c.notNull())
        .execute();
    },
  },
  /** Room vCards (XEP-0486 room avatars) of persistent rooms. */
  '0004-vcards': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('muc_vcards')
        .addColumn('room', 'varchar(1023)', (c) => c.primaryKey())
        .addColumn('vcard', 'text', (c) => c.notNull())
        .execute();
    },
  },
};

/** Reads and writes persistent rooms (SQLite and PostgreSQL through Kysely). */
export class RoomStore {
  constructor(private readonly db: Kysely<any>) {}

  /**
   * Every stored room of a service (or the one room `only`, a bare JID), with affiliations, history
   * and vCard; unreadable rows are skipped and reported.
   */
  async load(
    service: string,
    base: RoomConfig,
    onBad: (jid: string, err: unknown) => void,
    only?: string,
  ): Promise<Room[]> {
    let q = this.db.selectFrom('muc_rooms').selectAll().where('service', '=', service);
    if (only !== undefined) q = q.where('jid', '=', only);
    const rows = await q.execute();
    const rooms: Room[] = [];
    const byJid = new Map<string, Room>();
    for (const row of rows as {
      jid: string;
      config: string;
      subject: string;
      subject_from: string;
      created_at: number | string;
    }[]) {
      try {
        const config: RoomConfig = {
          ...defaultConfig(base.maxUsers, base.historyLength, base.archive),
          ...(JSON.parse(row.config) as Partial<RoomConfig>),
        };
        const room = new Room(parseJid(row.jid), config, Number(row.created_at));
        room.subject = row.subject;
        room.subjectFrom = row.subject_from;
        room.stored = true;
        rooms.push(room);
        byJid.set(row.jid, room);
      } catch (err) {
        onBad(row.jid, err);
      }
    }
    if (rooms.length === 0) return rooms;
    const affs = await this.db
      .selectFrom('muc_affiliations')
      .innerJoin('muc_rooms', 'muc_rooms.jid', 'muc_affiliations.room')
      .select([
        'muc_affiliations.room as room',
        'muc_affiliations.jid as jid',
        'muc_affiliations.affiliation as affiliation',
        'muc_affiliations.reason as reason',
      ])
      .where('muc_rooms.service', '=', service)
      .$if(only !== undefined, (b) => b.where('muc_rooms.jid', '=', only!))
      .execute();
    for (const a of affs as { room: string; jid: string; affiliation: string; reason: string | null }[]) {
      const room = byJid.get(a.room);
      if (room && isAffiliation(a.affiliation))
        room.affiliations.set(a.jid, a.affiliation, a.reason ?? undefined);
    }
    const history = await this.db
      .selectFrom('muc_history')
      .innerJoin('muc_rooms', 'muc_rooms.jid', 'muc_history.room')
      .select(['muc_history.room as room', 'muc_history.at as at', 'muc_history.stanza as stanza'])
      .where('muc_rooms.service', '=', service)
      .$if(only !== undefined, (b) => b.where('muc_rooms.jid', '=', only!))
      .orderBy('muc_history.at')
      .execute();
    const vcards = await this.db
      .selectFrom('muc_vcards')
      .innerJoin('muc_rooms', 'muc_rooms.jid', 'muc_vcards.room')
      .select(['muc_vcards.room as room', 'muc_vcards.vcard as vcard'])
      .where('muc_rooms.service', '=', service)
      .$if(only !== undefined, (b) => b.where('muc_rooms.jid', '=', only!))
      .execute();
    for (const v of vcards as { room: string; vcard: string }[]) {
      const room = byJid.get(v.room);
      if (!room) continue;
      try {
        room.vcard = parseElement(v.vcard);
        room.avatarHash = roomPhotoHash(room.vcard);
      } catch (err) {
        onBad(v.room, err);
      }
    }
    for (const h of history as { room: string; at: number | string; stanza: string }[]) {
      const room = byJid.get(h.room);
      if (!room) continue;
      try {
        room.history.add(parseElement(h.stanza), Number(h.at));
      } catch (err) {
        onBad(h.room, err);
      }
    }
    return rooms;
  }

  /** The stored rooms of a service that are public (§6.3 listing, rooms not loaded anywhere included). */
  async publicRooms(service: string): Promise<{ jid: string; name: string }[]> {
    const rows = await this.db
      .selectFrom('muc_rooms')
      .select(['jid', 'config'])
      .where('service', '=', service)
      .execute();
    const out: { jid: string; name: string }[] = [];
    for (const row of rows as { jid: string; config: string }[]) {
      try {
        const c = JSON.parse(row.config) as Partial<RoomConfig>;
        if (c.public !== false) out.push({ jid: row.jid, name: c.name || row.jid.split('@')[0]! });
      } catch {
        /* unreadable: skipped, as by load */
      }
    }
    return out;
  }

  /** Writes a room's row and replaces its affiliations. */
  async save(service: string, room: Room): Promise<void> {
    const jid = room.jid.toString();
    const affs = room.affiliations.entries();
    await this.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('muc_affiliations').where('room', '=', jid).execute();
      await trx.deleteFrom('muc_rooms').where('jid', '=', jid).execute();
      await trx
        .insertInto('muc_rooms')
        .values({
          jid,
          service,
          config: JSON.stringify(room.config),
          subject: room.subject,
          subject_from: room.subjectFrom,
          created_at: room.createdAt,
        })
        .execute();
      await trx.deleteFrom('muc_vcards').where('room', '=', jid).execute();
      if (room.vcard)
        await trx.insertInto('muc_vcards').values({ room: jid, vcard: room.vcard.toString() }).execute();
      for (let i = 0; i < affs.length; i += 200) {
        const chunk = affs
          .slice(i, i + 200)
          .map((a) => ({ room: jid, jid: a.jid, affiliation: a.affiliation, reason: a.reason ?? null }));
        await trx.insertInto('muc_affiliations').values(chunk).execute();
      }
    });
  }

  /** Whether a room is stored. */
  async exists(jid: string): Promise<boolean> {
    const row = await this.db.selectFrom('muc_rooms').select('jid').where('jid', '=', jid).executeTakeFirst();
    return row !== undefined;
  }

  /**
   * A room brought from another server (`natter import`): its settings (only those read: the
   * service's defaults fill the rest when it is loaded), subject, affiliations and the messages
   * of its discussion history, replacing whatever was stored under its JID.
   */
  async importRoom(
    service: string,
    room: {
      jid: string;
      config: Partial<RoomConfig>;
      subject: string;
      subjectFrom: string;
      createdAt: number;
      affiliations: { jid: string; affiliation: string; reason?: string }[];
      history: { at: number; stanza: string }[];
    },
  ): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      for (const table of ['muc_history', 'muc_vcards', 'muc_affiliations'])
        await trx.deleteFrom(table).where('room', '=', room.jid).execute();
      await trx.deleteFrom('muc_rooms').where('jid', '=', room.jid).execute();
      await trx
        .insertInto('muc_rooms')
        .values({
          jid: room.jid,
          service,
          config: JSON.stringify(room.config),
          subject: room.subject,
          subject_from: room.subjectFrom,
          created_at: room.createdAt,
        })
        .execute();
      for (let i = 0; i < room.affiliations.length; i += 200) {
        const chunk = room.affiliations
          .slice(i, i + 200)
          .map((a) => ({ room: room.jid, jid: a.jid, affiliation: a.affiliation, reason: a.reason ?? null }));
        await trx.insertInto('muc_affiliations').values(chunk).execute();
      }
      if (room.history.length > 0)
        await trx
          .insertInto('muc_history')
          .values(room.history.map((h) => ({ room: room.jid, at: h.at, stanza: h.stanza })))
          .execute();
    });
  }

  /** Appends a message to a room's stored history, keeping the last `keep` (by time). */
  async addHistory(room: string, at: number, stanza: string, keep: number): Promise<void> {
    await this.db.insertInto('muc_history').values({ room, at, stanza }).execute();
    const cutoff = this.db
      .selectFrom('muc_history')
      .select('at')
      .where('room', '=', room)
      .orderBy('at', 'desc')
      .limit(1)
      .offset(keep - 1);
    await this.db.deleteFrom('muc_history').where('room', '=', room).where('at', '<', cutoff).execute();
  }

  /** Removes one message from a room's stored history (retracted or moderated). */
  async removeHistory(room: string, at: number, stanza: string): Promise<void> {
    await this.db
      .deleteFrom('muc_history')
      .where('room', '=', room)
      .where('at', '=', at)
      .where('stanza', '=', stanza)
      .execute();
  }

  /**
   * The service's secret for occupant ids (XEP-0421): made once, then read by every start and every
   * node of a cluster (the first writer wins).
   */
  async secret(service: string, fresh: string): Promise<string> {
    await this.db
      .insertInto('muc_secrets')
      .values({ service, secret: fresh })
      .onConflict((oc) => oc.column('service').doNothing())
      .execute();
    const row = await this.db
      .selectFrom('muc_secrets')
      .select('secret')
      .where('service', '=', service)
      .executeTakeFirstOrThrow();
    return String(row.secret);
  }

  async remove(jid: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('muc_history').where('room', '=', jid).execute();
      await trx.deleteFrom('muc_vcards').where('room', '=', jid).execute();
      await trx.deleteFrom('muc_affiliations').where('room', '=', jid).execute();
      await trx.deleteFrom('muc_rooms').where('jid', '=', jid).execute();
    });
  }
}
