import { randomBytes } from 'node:crypto';
import type { Worker } from 'node:worker_threads';
import { startWorker } from '../../util/worker-thread.js';
import type { Kysely } from 'kysely';
import type { Logger } from '../../core/module-api.js';
import type { StorageConfig } from '../../core/module-api.js';
import type { EntryRow, MessageRow, Quotas, WriterReply, WriterRequest } from './archive-writer.js';

export type Direction = 'in' | 'out';
export type { EntryRow, MessageRow } from './archive-writer.js';

/** Where a message sits in the archives: `seq`, then `id` to order messages of equal `seq`. */
export interface Position {
  seq: number;
  id: string;
}

export interface StoredMessage extends Position {
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
  /** Exclusive bounds (after-id / before-id, RSM after / before). */
  after?: Position;
  before?: Position;
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

/** A UID for position `seq` (see `ArchiveStore.next`), for messages written outside the store. */
export function uidAt(seq: number): string {
  return seq.toString(36).padStart(SEQ_WIDTH, '0') + randomBytes(ID_BYTES).toString('base64url');
}

/** `seq` of an archive UID (the UID starts with it), or undefined when the UID cannot be ours. */
export function seqOfId(id: string): number | undefined {
  if (id.length !== SEQ_WIDTH + 8 || !/^[0-9a-z]+$/.test(id.slice(0, SEQ_WIDTH))) return undefined;
  const seq = Number.parseInt(id.slice(0, SEQ_WIDTH), 36);
  return Number.isSafeInteger(seq) ? seq : undefined;
}

/**
 * The archive writer thread of one database, shared by every host's archive in this process, and
 * started on first use (a server that archives nothing starts no thread). Requests are answered in
 * order. If the thread dies, what it was doing fails (the store retries it) and the next request
 * starts another.
 */
class ArchiveWriter {
  private static readonly shared = new Map<string, ArchiveWriter>();

  static acquire(storage: StorageConfig, log: Logger): ArchiveWriter {
    const key = storage.engine === 'sqlite' ? `sqlite:${storage.path}` : `postgres:${storage.url}`;
    let w = ArchiveWriter.shared.get(key);
    if (!w) {
      w = new ArchiveWriter(key, storage, log);
      ArchiveWriter.shared.set(key, w);
    }
    w.users++;
    return w;
  }

  private users = 0;
  private worker: Worker | undefined;
  private n = 0;
  private readonly waiting = new Map<number, { resolve: (v: number) => void; reject: (e: Error) => void }>();

  private constructor(
    private readonly key: string,
    private readonly storage: StorageConfig,
    private readonly log: Logger,
  ) {}

  private start(): Worker {
    const worker = startWorker(new URL('./archive-writer.js', import.meta.url), { storage: this.storage });
    worker.on('message', (r: WriterReply) => {
      const w = this.waiting.get(r.n);
      if (!w) return;
      this.waiting.delete(r.n);
      if (r.ok) w.resolve(r.value);
      else w.reject(new Error(r.error));
    });
    worker.on('error', (err) => this.log.error({ err }, 'archive writer thread failed'));
    worker.on('exit', (code) => {
      if (this.worker === worker) this.worker = undefined;
      if (this.waiting.size > 0) {
        const lost = [...this.waiting.values()];
        this.waiting.clear();
        for (const w of lost) w.reject(new Error(`archive writer thread exited (code ${code})`));
      }
    });
    return worker;
  }

  request(req: WriterRequest): Promise<number> {
    const worker = (this.worker ??= this.start());
    const n = ++this.n;
    return new Promise<number>((resolve, reject) => {
      this.waiting.set(n, { resolve, reject });
      worker.postMessage({ n, req });
    });
  }

  /** The last user closes the thread after its queued requests. */
  async release(): Promise<void> {
    if (--this.users > 0) return;
    ArchiveWriter.shared.delete(this.key);
    const worker = this.worker;
    if (!worker) return;
    const n = ++this.n;
    const closed = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    await new Promise<void>((resolve) => {
      this.waiting.set(n, { resolve: () => resolve(), reject: () => resolve() });
      worker.postMessage({ n, req: { op: 'close' } });
    });
    await closed;
  }
}

/**
 * The archives of one host: messages get their UID and position in memory when they pass through
 * the router, and reach the database in batches written by the archive writer thread a few
 * milliseconds later, so delivery never waits for storage and a batch never stops the routing
 * thread. Each message is stored once (`mam_message`) and listed in each archive that holds it
 * (`mam_entry`: the sender's and the recipient's). Every read flushes first, so a query sees every
 * message whose id a client may already know; `close()` writes what is left.
 */
export class ArchiveStore {
  private messages: MessageRow[] = [];
  private entries: EntryRow[] = [];
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private soon: Promise<void> | undefined;
  private lastSeq = 0;
  private pool = Buffer.alloc(0);
  private poolAt = 0;
  private readonly writer: ArchiveWriter;
  private readonly quotas: Quotas;

  constructor(
    private readonly db: Kysely<any>,
    storage: StorageConfig,
    private readonly log: Logger,
    private readonly opts: {
      flushMs: number;
      batchSize: number;
      /** Entries kept in memory while the database cannot be written; past it, the oldest are dropped. */
      maxPending: number;
      /** Per-archive quotas: past either, the oldest messages of that archive are deleted. */
      maxMessages: number;
      maxBytes: number;
    },
  ) {
    this.writer = ArchiveWriter.acquire(storage, log);
    this.quotas = { maxMessages: opts.maxMessages, maxBytes: opts.maxBytes };
  }

  /** Continues the order after what a previous run stored. */
  async init(): Promise<void> {
    // Positions more than a day ahead of this clock (a row written under a wrong clock) are not
    // continued from: they would date every later message in the future.
    const row = await this.db
      .selectFrom('mam_message')
      .select((eb) => eb.fn.max('seq').as('seq'))
      .where('seq', '<=', (Date.now() + 86_400_000) * 1000)
      .executeTakeFirst();
    this.lastSeq = Number(row?.seq ?? 0);
  }

  /**
   * The next position in the archives and its UID (XEP-0313 §3: "unpredictable and unique"):
   * `seq` (milliseconds × 1000 plus a counter, never going back with the clock) in base36, then
   * 48 random bits. The UID carries its own position, so finding it needs no index of its own;
   * two processes may hand out the same `seq`, and the UID orders those.
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

  /** Queues a message and the archives that hold it. Never waits for the database. */
  add(message: MessageRow, entries: EntryRow[]): void {
    message.refs = entries.length;
    if (entries.length === 0) return;
    this.messages.push(message);
    for (const e of entries) this.entries.push(e);
    if (this.entries.length >= this.opts.batchSize) void this.flush();
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
    if (this.entries.length === 0) return;
    const messages = this.messages;
    const entries = this.entries;
    this.messages = [];
    this.entries = [];
    try {
      await this.writer.request({ op: 'write', messages, entries, quotas: this.quotas });
    } catch (err) {
      this.log.error({ err, rows: entries.length }, 'archiving failed; retrying');
      this.messages = messages.concat(this.messages);
      this.entries = entries.concat(this.entries);
      if (this.entries.length > this.opts.maxPending) this.dropOldest();
      this.timer ??= setTimeout(() => void this.flush(), 1000);
    }
  }

  /** The buffer is over its bound while storage is failing: the oldest messages go. */
  private dropOldest(): void {
    const drop = this.entries.length - this.opts.maxPending;
    const gone = this.entries.splice(0, drop);
    // Entries of kept messages that were dropped: the message stays with fewer archives.
    const held = new Map<string, number>();
    for (const e of this.entries) held.set(`${e.seq}/${e.id}`, (held.get(`${e.seq}/${e.id}`) ?? 0) + 1);
    for (const m of this.messages) m.refs = held.get(`${m.seq}/${m.id}`) ?? 0;
    this.messages = this.messages.filter((m) => m.refs > 0);
    this.log.error({ dropped: gone.length }, 'archive write buffer full: dropping the oldest messages');
  }

  /** Forgets queued messages of an account and deletes its archive. */
  async deleteOwner(owner: string): Promise<void> {
    const kept = this.entries.filter((e) => e.owner !== owner);
    if (kept.length !== this.entries.length) {
      const held = new Map<string, number>();
      for (const e of kept) held.set(`${e.seq}/${e.id}`, (held.get(`${e.seq}/${e.id}`) ?? 0) + 1);
      this.entries = kept;
      for (const m of this.messages) m.refs = held.get(`${m.seq}/${m.id}`) ?? 0;
      this.messages = this.messages.filter((m) => m.refs > 0);
    }
    await this.writing;
    await this.writer.request({ op: 'deleteOwner', owner });
  }

  /** Deletes messages older than `before` (ms since the epoch): always the oldest of each archive. */
  async purge(before: number): Promise<number> {
    await this.flush();
    return this.writer.request({ op: 'purge', beforeSeq: before * 1000 });
  }

  /** Writes what is queued and lets the writer thread go (it ends with its last user). */
  async close(): Promise<void> {
    await this.flush();
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.entries.length > 0)
      this.log.error({ rows: this.entries.length }, 'archive not written at shutdown: storage failed');
    await this.writer.release();
  }

  /** Replaces the stanza of a message of `owner`'s archive; false when it is not there. */
  async replace(owner: string, id: string, stanza: string): Promise<boolean> {
    await this.flush();
    const at = await this.positionOf(owner, id);
    if (!at) return false;
    const changed = await this.writer.request({
      op: 'replace',
      seq: at.seq,
      id,
      stanza,
      bytes: Buffer.byteLength(stanza),
    });
    return changed > 0;
  }

  /** One message of `owner`'s archive by UID (after what is queued is written). */
  async get(owner: string, id: string): Promise<StoredMessage | undefined> {
    const seq = seqOfId(id);
    if (seq === undefined) return undefined;
    await this.flush();
    const [row] = await this.page({ owner, ids: [id] }, { limit: 1, backward: false });
    return row;
  }

  /** Position of a UID in `owner`'s archive, if it is there. */
  async positionOf(owner: string, id: string): Promise<Position | undefined> {
    const seq = seqOfId(id);
    if (seq === undefined) return undefined;
    const row = await this.db
      .selectFrom('mam_entry')
      .select('seq')
      .where('owner', '=', owner)
      .where('seq', '=', seq)
      .where('id', '=', id)
      .executeTakeFirst();
    return row ? { seq, id } : undefined;
  }

  /** Which of `ids` exist in the archive. */
  async existing(owner: string, ids: string[]): Promise<Set<string>> {
    const seqs = ids.map(seqOfId).filter((s): s is number => s !== undefined);
    if (seqs.length === 0) return new Set();
    const rows = await this.db
      .selectFrom('mam_entry')
      .select('id')
      .where('owner', '=', owner)
      .where('seq', 'in', [...new Set(seqs)])
      .where('id', 'in', ids)
      .execute();
    return new Set(rows.map((r) => String(r.id)));
  }

  private filtered(f: ArchiveFilter) {
    let q = this.db.selectFrom('mam_entry as e').where('e.owner', '=', f.owner);
    if (f.withFull !== undefined) q = q.where('e.with_full', '=', f.withFull);
    else if (f.withBare !== undefined) q = q.where('e.with_jid', '=', f.withBare);
    // `seq` is the arrival time in microseconds (ms × 1000 plus a counter).
    if (f.start !== undefined) q = q.where('e.seq', '>=', f.start * 1000);
    if (f.end !== undefined) q = q.where('e.seq', '<', (f.end + 1) * 1000);
    const a = f.after;
    if (a !== undefined)
      q = q
        .where('e.seq', '>=', a.seq)
        .where((eb) => eb.or([eb('e.seq', '>', a.seq), eb('e.id', '>', a.id)]));
    const b = f.before;
    if (b !== undefined)
      q = q
        .where('e.seq', '<=', b.seq)
        .where((eb) => eb.or([eb('e.seq', '<', b.seq), eb('e.id', '<', b.id)]));
    if (f.ids !== undefined) {
      const seqs = f.ids.map(seqOfId).filter((s): s is number => s !== undefined);
      q = q
        .where('e.seq', 'in', seqs.length > 0 ? seqs : [-1])
        .where('e.id', 'in', f.ids.length > 0 ? f.ids : ['']);
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
      .innerJoin('mam_message as m', (j) => j.onRef('m.seq', '=', 'e.seq').onRef('m.id', '=', 'e.id'))
      .select(['e.id as id', 'e.seq as seq', 'm.stanza as stanza'])
      .orderBy('e.seq', dir)
      .orderBy('e.id', dir)
      .limit(p.limit);
    if (p.offset !== undefined && p.offset > 0) q = q.offset(p.offset);
    const rows = await q.execute();
    return rows.map((r) => {
      const seq = Number(r.seq);
      return { id: String(r.id), seq, timestamp: Math.floor(seq / 1000), stanza: String(r.stanza) };
    });
  }

  /** First and last message of an archive (XEP-0313 §5 metadata). */
  async bounds(owner: string): Promise<{ first: StoredMessage; last: StoredMessage } | undefined> {
    const [first] = await this.page({ owner }, { limit: 1, backward: false });
    if (!first) return undefined;
    const [last] = await this.page({ owner }, { limit: 1, backward: true });
    return { first, last: last ?? first };
  }
}
