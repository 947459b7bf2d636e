import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Logger } from '../../core/module-api.js';

export type Direction = 'in' | 'out';

export interface ArchiveRow {
  owner: string;
  id: string;
  seq: number;
  timestamp: number;
  with_jid: string;
  with_full: string;
  direction: Direction;
  stanza: string;
  /** UTF-8 length of `stanza`, counted against the owner's byte quota. */
  bytes: number;
}

/** What one archive holds, as counted for its quotas. */
interface Usage {
  count: number;
  bytes: number;
}

export interface StoredMessage {
  id: string;
  seq: number;
  timestamp: number;
  stanza: string;
}

/** Conditions of a query on one archive (XEP-0313 §4.1). */
export interface ArchiveFilter {
  owner: string;
  withBare?: string;
  withFull?: string;
  start?: number;
  end?: number;
  /** Exclusive bounds on `seq` (after-id / before-id, RSM after / before). */
  afterSeq?: number;
  beforeSeq?: number;
  ids?: string[];
}

export interface PageRequest {
  limit: number;
  /** Newest first (RSM `<before/>`), re-ordered chronologically by the caller. */
  backward: boolean;
  offset?: number;
}

const ID_BYTES = 6; // 48 random bits → 8 base64url characters
const POOL = 1024;
const SEQ_WIDTH = 11; // base36 digits of `seq` (enough until the year 5000)
const ROWS_PER_INSERT = 500;

/** `seq` of an archive UID (the UID starts with it), or undefined when the UID cannot be ours. */
export function seqOfId(id: string): number | undefined {
  if (id.length !== SEQ_WIDTH + 8 || !/^[0-9a-z]+$/.test(id.slice(0, SEQ_WIDTH))) return undefined;
  const seq = Number.parseInt(id.slice(0, SEQ_WIDTH), 36);
  return Number.isSafeInteger(seq) ? seq : undefined;
}

/**
 * The archive table behind a write buffer: messages get their UID and order in memory when they
 * pass through the router, and reach the database in batched inserts a few milliseconds later, so
 * delivery never waits for storage. Every read flushes first, so a query sees every message whose
 * id a client may already know; `close()` flushes what is left.
 */
export class ArchiveStore {
  private pending: ArchiveRow[] = [];
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private soon: Promise<void> | undefined;
  private lastSeq = 0;
  private pool = Buffer.alloc(0);
  private poolAt = 0;

  constructor(
    private readonly db: Kysely<any>,
    private readonly log: Logger,
    private readonly opts: {
      flushMs: number;
      batchSize: number;
      maxPending: number;
      /** Per-archive quotas: past either, the oldest messages of that archive are deleted. */
      maxMessages: number;
      maxBytes: number;
    },
  ) {}

  /**
   * Messages and bytes per archive, loaded with one query the first time an archive is written to
   * after start-up, then kept up to date by the writer (the only one adding rows).
   */
  private usage = new Map<string, Usage>();

  /** Continues the order after what a previous run stored. */
  async init(): Promise<void> {
    const row = await this.db
      .selectFrom('mam_messages')
      .select((eb) => eb.fn.max('seq').as('seq'))
      .executeTakeFirst();
    this.lastSeq = Number(row?.seq ?? 0);
  }

  /**
   * The next position in the archives and its UID (XEP-0313 §3: "unpredictable and unique"):
   * `seq` (milliseconds × 1000 plus a counter, never going back with the clock) in base36, then
   * 48 random bits. The UID carries its own position, so finding it needs no index of its own.
   */
  next(): { seq: number; timestamp: number; id: string } {
    const ms = Date.now() * 1000;
    this.lastSeq = ms > this.lastSeq ? ms : this.lastSeq + 1;
    if (this.poolAt + ID_BYTES > this.pool.length) {
      this.pool = randomBytes(ID_BYTES * POOL);
      this.poolAt = 0;
    }
    const random = this.pool.toString('base64url', this.poolAt, this.poolAt + ID_BYTES);
    this.poolAt += ID_BYTES;
    const seq = this.lastSeq;
    return { seq, timestamp: Math.floor(seq / 1000), id: seq.toString(36).padStart(SEQ_WIDTH, '0') + random };
  }

  /** Queues a message at a position from `next()`. Never waits for the database. */
  add(row: ArchiveRow): void {
    this.pending.push(row);
    if (this.pending.length >= this.opts.batchSize) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), this.opts.flushMs);
  }

  /**
   * `flush()` shared by every caller in this turn of the event loop: the acknowledgements asked for
   * by every stanza of a read (and by every session) wait for one commit (group commit).
   */
  commitSoon(): Promise<void> {
    this.soon ??= new Promise<void>((resolve) =>
      setImmediate(() => {
        this.soon = undefined;
        void this.flush().then(resolve);
      }),
    );
    return this.soon;
  }

  /** Writes everything queued so far; resolves when it is stored (errors are logged and retried). */
  flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.writing = this.writing.then(() => this.write());
    return this.writing;
  }

  private async write(): Promise<void> {
    if (this.pending.length === 0) return;
    const rows = this.pending;
    this.pending = [];
    try {
      const counted = await this.db.transaction().execute(async (trx) => {
        const counted = new Map<string, Usage>();
        for (const row of rows) {
          let u = counted.get(row.owner);
          if (!u) {
            const known = this.usage.get(row.owner);
            u = known ? { ...known } : await this.load(trx, row.owner);
            counted.set(row.owner, u);
          }
          u.count++;
          u.bytes += row.bytes;
        }
        for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) {
          await trx
            .insertInto('mam_messages')
            .values(rows.slice(i, i + ROWS_PER_INSERT))
            .execute();
        }
        for (const [owner, u] of counted) {
          if (u.count > this.opts.maxMessages || u.bytes > this.opts.maxBytes) await this.trim(trx, owner, u);
        }
        return counted;
      });
      for (const [owner, u] of counted) this.usage.set(owner, u);
    } catch (err) {
      this.log.error({ err, rows: rows.length }, 'archiving failed; retrying');
      this.pending = rows.concat(this.pending);
      if (this.pending.length > this.opts.maxPending) {
        const dropped = this.pending.splice(0, this.pending.length - this.opts.maxPending);
        this.log.error(
          { dropped: dropped.length },
          'archive write buffer full: dropping the oldest messages',
        );
      }
      this.timer ??= setTimeout(() => void this.flush(), 1000);
    }
  }

  private async load(db: Kysely<any>, owner: string): Promise<Usage> {
    const row = await db
      .selectFrom('mam_messages')
      .select((eb) => [eb.fn.countAll().as('n'), eb.fn.sum('bytes').as('b')])
      .where('owner', '=', owner)
      .executeTakeFirst();
    return { count: Number(row?.n ?? 0), bytes: Number(row?.b ?? 0) };
  }

  /** Ring buffer: deletes the oldest messages of `owner` until both quotas hold again. */
  private async trim(db: Kysely<any>, owner: string, u: Usage): Promise<void> {
    while (u.count > this.opts.maxMessages || u.bytes > this.opts.maxBytes) {
      const excess = u.count - this.opts.maxMessages;
      const oldest = await db
        .selectFrom('mam_messages')
        .select(['timestamp', 'seq', 'bytes'])
        .where('owner', '=', owner)
        .orderBy('timestamp')
        .orderBy('seq')
        .limit(Math.min(Math.max(excess, 64), 1000))
        .execute();
      if (oldest.length === 0) {
        u.count = 0;
        u.bytes = 0;
        return;
      }
      let n = 0;
      let bytes = 0;
      let last = oldest[0]!;
      for (const r of oldest) {
        if (u.count - n <= this.opts.maxMessages && u.bytes - bytes <= this.opts.maxBytes) break;
        n++;
        bytes += Number(r.bytes);
        last = r;
      }
      // `seq` orders an archive as (timestamp, seq) does: this removes exactly the first n rows.
      await db
        .deleteFrom('mam_messages')
        .where('owner', '=', owner)
        .where('timestamp', '<=', Number(last.timestamp))
        .where('seq', '<=', Number(last.seq))
        .execute();
      u.count -= n;
      u.bytes -= bytes;
    }
  }

  /** Forgets queued messages of an account and deletes its archive. */
  async deleteOwner(owner: string): Promise<void> {
    this.pending = this.pending.filter((r) => r.owner !== owner);
    await this.writing;
    await this.db.deleteFrom('mam_messages').where('owner', '=', owner).execute();
    this.usage.delete(owner);
  }

  /** Deletes messages older than `before` (ms since the epoch): always the oldest of each archive. */
  async purge(before: number): Promise<number> {
    await this.flush();
    const r = await this.db.deleteFrom('mam_messages').where('timestamp', '<', before).executeTakeFirst();
    this.usage.clear(); // counted again on next use (this also corrects any drift, e.g. in a cluster)
    return Number(r.numDeletedRows ?? 0);
  }

  /** Position of a UID in `owner`'s archive, if it is there. */
  async seqOf(owner: string, id: string): Promise<number | undefined> {
    const seq = seqOfId(id);
    if (seq === undefined) return undefined;
    const row = await this.db
      .selectFrom('mam_messages')
      .select('seq')
      .where('owner', '=', owner)
      .where('timestamp', '=', Math.floor(seq / 1000))
      .where('seq', '=', seq)
      .where('id', '=', id)
      .executeTakeFirst();
    return row ? Number(row.seq) : undefined;
  }

  /** Which of `ids` exist in the archive. */
  async existing(owner: string, ids: string[]): Promise<Set<string>> {
    const seqs = ids.map(seqOfId).filter((s): s is number => s !== undefined);
    if (seqs.length === 0) return new Set();
    const rows = await this.db
      .selectFrom('mam_messages')
      .select('id')
      .where('owner', '=', owner)
      .where('timestamp', 'in', [...new Set(seqs.map((s) => Math.floor(s / 1000)))])
      .where('seq', 'in', seqs)
      .where('id', 'in', ids)
      .execute();
    return new Set(rows.map((r) => String(r.id)));
  }

  private filtered(f: ArchiveFilter) {
    let q = this.db.selectFrom('mam_messages').where('owner', '=', f.owner);
    if (f.withFull !== undefined) q = q.where('with_full', '=', f.withFull);
    else if (f.withBare !== undefined) q = q.where('with_jid', '=', f.withBare);
    if (f.start !== undefined) q = q.where('timestamp', '>=', f.start);
    if (f.end !== undefined) q = q.where('timestamp', '<=', f.end);
    if (f.afterSeq !== undefined) q = q.where('seq', '>', f.afterSeq);
    if (f.beforeSeq !== undefined) q = q.where('seq', '<', f.beforeSeq);
    if (f.ids !== undefined) {
      const seqs = f.ids.map(seqOfId).filter((s): s is number => s !== undefined);
      q = q
        .where('seq', 'in', seqs.length > 0 ? seqs : [-1])
        .where('id', 'in', f.ids.length > 0 ? f.ids : ['']);
    }
    return q;
  }

  async count(f: ArchiveFilter): Promise<number> {
    const row = await this.filtered(f)
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  /** Up to `limit` messages in chronological order (or the newest ones, when backward). */
  async page(f: ArchiveFilter, p: PageRequest): Promise<StoredMessage[]> {
    const dir = p.backward ? 'desc' : 'asc';
    let q = this.filtered(f)
      .select(['id', 'seq', 'timestamp', 'stanza'])
      .orderBy('timestamp', dir)
      .orderBy('seq', dir)
      .limit(p.limit);
    if (p.offset !== undefined && p.offset > 0) q = q.offset(p.offset);
    const rows = await q.execute();
    return rows.map((r) => ({
      id: String(r.id),
      seq: Number(r.seq),
      timestamp: Number(r.timestamp),
      stanza: String(r.stanza),
    }));
  }

  /** First and last message of an archive (XEP-0313 §5 metadata). */
  async bounds(owner: string): Promise<{ first: StoredMessage; last: StoredMessage } | undefined> {
    const [first] = await this.page({ owner }, { limit: 1, backward: false });
    if (!first) return undefined;
    const [last] = await this.page({ owner }, { limit: 1, backward: true });
    return { first, last: last ?? first };
  }
}
