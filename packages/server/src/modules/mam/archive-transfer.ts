// Archives moved in and out whole (`natter import` / `natter export`, docs/migration.md): the
// rows the archive writer would have written, for messages that arrived on another server.
import { sql, type Kysely } from 'kysely';
import { uidAt, type Direction } from './archive-store.js';

/** One message of an archive brought from elsewhere. */
export interface ImportedArchiveMessage {
  /** When the other server archived it (ms since the epoch). */
  at: number;
  /** The message stanza, serialised. */
  stanza: string;
  /** The other party: bare JID, and the address as it appeared on the stanza. */
  withBare: string;
  withFull: string;
  direction: Direction;
}

const BATCH = 500;

/**
 * Writes `messages` into `owner`'s archive at their own times (new UIDs: the other server's ids
 * mean nothing here), oldest first as given: a message older than the one before it is placed
 * just after it. With `replace`, what the archive held is deleted first (when there is anything
 * to write). Returns the number written.
 */
export async function importArchive(
  db: Kysely<any>,
  owner: string,
  messages: Iterable<ImportedArchiveMessage> | AsyncIterable<ImportedArchiveMessage>,
  opts: {
    replace: boolean;
    /** Told each message's UID once it is written. */
    assigned?: (m: ImportedArchiveMessage, id: string) => void;
  },
): Promise<number> {
  let last = 0;
  let written = 0;
  let batch: ImportedArchiveMessage[] = [];
  const write = async () => {
    if (written === 0 && opts.replace) await deleteArchive(db, owner);
    const rows = batch.map((m) => {
      // Never past now: the archive goes on from its highest position at every start, so one
      // message dated in the future would move every later message's time (writers clamp first).
      last = Math.max(Math.trunc(Math.min(Math.max(m.at, 0), Date.now())) * 1000, last + 1);
      return { seq: last, id: uidAt(last), m, bytes: Buffer.byteLength(m.stanza) };
    });
    batch = [];
    await db.transaction().execute(async (tx) => {
      await tx
        .insertInto('mam_message')
        .values(rows.map((r) => ({ seq: r.seq, id: r.id, stanza: r.m.stanza, bytes: r.bytes, refs: 1 })))
        .execute();
      await tx
        .insertInto('mam_entry')
        .values(
          rows.map((r) => ({
            owner,
            seq: r.seq,
            id: r.id,
            with_jid: r.m.withBare,
            with_full: r.m.withFull,
            direction: r.m.direction,
            bytes: r.bytes,
          })),
        )
        .execute();
    });
    written += rows.length;
    if (opts.assigned) for (const r of rows) opts.assigned(r.m, r.id);
  };
  for await (const m of messages) {
    batch.push(m);
    if (batch.length >= BATCH) await write();
  }
  if (batch.length > 0) await write();
  return written;
}

/** Deletes `owner`'s archive, and the messages no other archive lists. */
export async function deleteArchive(db: Kysely<any>, owner: string): Promise<void> {
  await db.transaction().execute(async (tx) => {
    await sql`UPDATE mam_message SET refs = refs - 1 WHERE (seq, id) IN (SELECT seq, id FROM mam_entry WHERE owner = ${owner})`.execute(
      tx,
    );
    await tx.deleteFrom('mam_entry').where('owner', '=', owner).execute();
    await tx.deleteFrom('mam_message').where('refs', '<=', 0).execute();
  });
}

/** One archived message as exported: UID, when (ms), and the stanza as stored. */
export interface ExportedArchiveMessage {
  id: string;
  at: number;
  stanza: string;
}

/** `owner`'s archive, oldest first, read a page at a time. */
export async function* exportArchive(db: Kysely<any>, owner: string): AsyncGenerator<ExportedArchiveMessage> {
  let after: { seq: number; id: string } | undefined;
  for (;;) {
    let q = db
      .selectFrom('mam_entry as e')
      .innerJoin('mam_message as m', (j) => j.onRef('m.seq', '=', 'e.seq').onRef('m.id', '=', 'e.id'))
      .select(['e.seq', 'e.id', 'm.stanza'])
      .where('e.owner', '=', owner);
    const a = after;
    if (a)
      q = q.where((eb) =>
        eb.or([eb('e.seq', '>', a.seq), eb.and([eb('e.seq', '=', a.seq), eb('e.id', '>', a.id)])]),
      );
    const rows = (await q.orderBy('e.seq').orderBy('e.id').limit(BATCH).execute()) as {
      seq: number | string;
      id: string;
      stanza: string;
    }[];
    for (const r of rows) {
      const seq = Number(r.seq);
      yield { id: r.id, at: Math.floor(seq / 1000), stanza: r.stanza };
      after = { seq, id: r.id };
    }
    if (rows.length < BATCH) return;
  }
}
