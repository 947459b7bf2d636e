/**
 * The archive's single writer, run on a worker thread (`ArchiveWriter` starts it): every insert,
 * quota trim, account deletion and retention purge of the message archive happens here, on a
 * connection of its own, so that the thread routing stanzas never waits for (or is stopped by)
 * SQLite executing a batch. Reads stay on the main thread's connection (SQLite in WAL mode lets
 * them run beside this writer; PostgreSQL has its own processes).
 *
 * The statements are plain SQL rather than Kysely: the writer runs a handful of fixed statements,
 * prepared once (SQLite) or sent as one array-parameter statement per batch (PostgreSQL), and
 * building a 1,000-row Kysely insert cost more than executing it (docs/decisions/0008).
 */
import { parentPort, workerData } from 'node:worker_threads';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import type { StorageConfig } from '../../core/module-api.js';

/** One message, shared by the archives that hold it (the sender's and the recipient's). */
export interface MessageRow {
  seq: number;
  id: string;
  stanza: string;
  bytes: number;
  /** How many archives hold it (entries written in the same batch). */
  refs: number;
}

/** One message in one archive. */
export interface EntryRow {
  owner: string;
  seq: number;
  id: string;
  with_jid: string;
  with_full: string;
  direction: 'in' | 'out';
  bytes: number;
}

export interface Quotas {
  maxMessages: number;
  maxBytes: number;
}

export type WriterRequest =
  | { op: 'write'; messages: MessageRow[]; entries: EntryRow[]; quotas: Quotas }
  | { op: 'deleteOwner'; owner: string }
  | { op: 'purge'; beforeSeq: number }
  /** A message's stanza replaced in place (a tombstone); answers 1 when the message exists. */
  | { op: 'replace'; seq: number; id: string; stanza: string; bytes: number };

export type WriterReply = { n: number; ok: true; value: number } | { n: number; ok: false; error: string };

interface Usage {
  count: number;
  bytes: number;
}
interface Position {
  seq: number;
  id: string;
}

/** What differs between SQLite and PostgreSQL; everything else is `Writer`. */
interface Engine {
  transaction<T>(fn: () => Promise<T>): Promise<T>;
  insert(messages: MessageRow[], entries: EntryRow[]): Promise<void>;
  usage(owner: string): Promise<Usage>;
  /** The oldest `limit` entries of `owner`, in archive order. */
  oldest(owner: string, limit: number): Promise<(Position & { bytes: number })[]>;
  /** Deletes `owner`'s entries up to and including `last`, and the messages no archive holds any more. */
  removeUpTo(owner: string, removed: Position[]): Promise<void>;
  purge(beforeSeq: number): Promise<number>;
  /** Replaces one message's stanza; the number of rows changed. */
  replace(seq: number, id: string, stanza: string, bytes: number): Promise<number>;
  close(): Promise<void>;
}

/** Page cache of the writer's SQLite connection, in KiB. */
const CACHE_KIB = 64 * 1024;

class SqliteEngine implements Engine {
  private readonly db: SQLite.Database;
  private readonly insMessage: SQLite.Statement;
  private readonly insEntry: SQLite.Statement;
  private readonly selUsage: SQLite.Statement;
  private readonly selOldest: SQLite.Statement;
  private readonly delEntries: SQLite.Statement;
  private readonly release: SQLite.Statement;
  private readonly delMessage: SQLite.Statement;

  constructor(path: string) {
    this.db = new SQLite(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    // The storage layer's checkpointer thread copies the log back (never this thread's commits), and
    // a larger page cache keeps the indexes' upper levels in memory: inserts land at many places.
    this.db.pragma('wal_autocheckpoint = 0');
    this.db.pragma(`journal_size_limit = ${16 * 1024 * 1024}`); // as the main connection: see storage/database.ts
    this.db.pragma(`cache_size = ${-CACHE_KIB}`);
    this.insMessage = this.db.prepare(
      'INSERT INTO mam_message (seq, id, stanza, bytes, refs) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
    );
    this.insEntry = this.db.prepare(
      'INSERT INTO mam_entry (owner, seq, id, with_jid, with_full, direction, bytes) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
    );
    this.selUsage = this.db.prepare(
      'SELECT count(*) AS n, coalesce(sum(bytes), 0) AS b FROM mam_entry WHERE owner = ?',
    );
    this.selOldest = this.db.prepare(
      'SELECT seq, id, bytes FROM mam_entry WHERE owner = ? ORDER BY seq, id LIMIT ?',
    );
    this.delEntries = this.db.prepare('DELETE FROM mam_entry WHERE owner = ? AND (seq, id) <= (?, ?)');
    this.release = this.db.prepare('UPDATE mam_message SET refs = refs - 1 WHERE seq = ? AND id = ?');
    this.delMessage = this.db.prepare('DELETE FROM mam_message WHERE seq = ? AND id = ? AND refs <= 0');
  }

  async transaction<T>(fn: () => Promise<T>): Promise<T> {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const v = await fn();
      this.db.exec('COMMIT');
      return v;
    } catch (err) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      throw err;
    }
  }

  insert(messages: MessageRow[], entries: EntryRow[]): Promise<void> {
    for (const m of messages) this.insMessage.run(m.seq, m.id, m.stanza, m.bytes, m.refs);
    for (const e of entries)
      this.insEntry.run(e.owner, e.seq, e.id, e.with_jid, e.with_full, e.direction, e.bytes);
    return Promise.resolve();
  }

  usage(owner: string): Promise<Usage> {
    const r = this.selUsage.get(owner) as { n: number; b: number };
    return Promise.resolve({ count: Number(r.n), bytes: Number(r.b) });
  }

  oldest(owner: string, limit: number): Promise<(Position & { bytes: number })[]> {
    return Promise.resolve(this.selOldest.all(owner, limit) as (Position & { bytes: number })[]);
  }

  removeUpTo(owner: string, removed: Position[]): Promise<void> {
    const last = removed[removed.length - 1];
    if (!last) return Promise.resolve();
    this.delEntries.run(owner, last.seq, last.id);
    for (const p of removed) {
      this.release.run(p.seq, p.id);
      this.delMessage.run(p.seq, p.id);
    }
    return Promise.resolve();
  }

  purge(beforeSeq: number): Promise<number> {
    const r = this.db.prepare('DELETE FROM mam_entry WHERE seq < ?').run(beforeSeq);
    this.db.prepare('DELETE FROM mam_message WHERE seq < ?').run(beforeSeq);
    return Promise.resolve(r.changes);
  }

  replace(seq: number, id: string, stanza: string, bytes: number): Promise<number> {
    const r = this.db
      .prepare('UPDATE mam_message SET stanza = ?, bytes = ? WHERE seq = ? AND id = ?')
      .run(stanza, bytes, seq, id);
    return Promise.resolve(r.changes);
  }

  close(): Promise<void> {
    this.db.close();
    return Promise.resolve();
  }
}

/** PostgreSQL: one statement per batch and kind, with arrays as parameters (`unnest`). */
class PostgresEngine implements Engine {
  private readonly pool: pg.Pool;
  /** The connection of the running transaction. */
  private client: pg.PoolClient | undefined;

  constructor(url: string) {
    // One connection: this is the archive's only writer, and its statements run one after another.
    this.pool = new pg.Pool({ connectionString: url, max: 1, application_name: 'natter-archive-writer' });
    // A broken idle connection is discarded by the pool and replaced on the next batch.
    this.pool.on('error', () => undefined);
  }

  private q(text: string, values: unknown[]): Promise<pg.QueryResult> {
    return (this.client ?? this.pool).query(text, values);
  }

  /**
   * A pooled connection whose server went away (restarted, backend terminated) fails at BEGIN
   * before the pool has noticed: nothing was done, so it is dropped and the batch goes on at once
   * on a new connection instead of waiting for the retry a second later.
   */
  private async begin(): Promise<pg.PoolClient> {
    for (let attempt = 0; ; attempt++) {
      const client = await this.pool.connect();
      client.on('error', () => undefined);
      try {
        await client.query('BEGIN');
        return client;
      } catch (err) {
        client.release(err as Error);
        if (attempt >= 1) throw err;
      }
    }
  }

  async transaction<T>(fn: () => Promise<T>): Promise<T> {
    const client = await this.begin();
    this.client = client;
    let broken: Error | undefined;
    try {
      const v = await fn();
      await client.query('COMMIT');
      return v;
    } catch (err) {
      broken = err as Error;
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      this.client = undefined;
      // A connection that failed is not trusted again (it may be half-closed).
      client.release(broken);
    }
  }

  async insert(messages: MessageRow[], entries: EntryRow[]): Promise<void> {
    if (messages.length > 0)
      await this.q(
        `INSERT INTO mam_message (seq, id, stanza, bytes, refs)
         SELECT * FROM unnest($1::bigint[], $2::varchar[], $3::text[], $4::int[], $5::int[])
         ON CONFLICT DO NOTHING`,
        [
          messages.map((m) => m.seq),
          messages.map((m) => m.id),
          messages.map((m) => m.stanza),
          messages.map((m) => m.bytes),
          messages.map((m) => m.refs),
        ],
      );
    if (entries.length > 0)
      await this.q(
        `INSERT INTO mam_entry (owner, seq, id, with_jid, with_full, direction, bytes)
         SELECT * FROM unnest($1::text[], $2::bigint[], $3::varchar[], $4::text[], $5::text[], $6::varchar[], $7::int[])
         ON CONFLICT DO NOTHING`,
        [
          entries.map((e) => e.owner),
          entries.map((e) => e.seq),
          entries.map((e) => e.id),
          entries.map((e) => e.with_jid),
          entries.map((e) => e.with_full),
          entries.map((e) => e.direction),
          entries.map((e) => e.bytes),
        ],
      );
  }

  async usage(owner: string): Promise<Usage> {
    const r = await this.q(
      'SELECT count(*) AS n, coalesce(sum(bytes), 0) AS b FROM mam_entry WHERE owner = $1',
      [owner],
    );
    const row = r.rows[0] as { n: string; b: string } | undefined;
    return { count: Number(row?.n ?? 0), bytes: Number(row?.b ?? 0) };
  }

  async oldest(owner: string, limit: number): Promise<(Position & { bytes: number })[]> {
    const r = await this.q(
      'SELECT seq, id, bytes FROM mam_entry WHERE owner = $1 ORDER BY seq, id LIMIT $2',
      [owner, limit],
    );
    return r.rows.map((x: { seq: string; id: string; bytes: number }) => ({
      seq: Number(x.seq),
      id: x.id,
      bytes: Number(x.bytes),
    }));
  }

  async removeUpTo(owner: string, removed: Position[]): Promise<void> {
    const last = removed[removed.length - 1];
    if (!last) return;
    await this.q('DELETE FROM mam_entry WHERE owner = $1 AND (seq, id) <= ($2, $3)', [
      owner,
      last.seq,
      last.id,
    ]);
    const seqs = removed.map((p) => p.seq);
    const ids = removed.map((p) => p.id);
    await this.q(
      `UPDATE mam_message m SET refs = m.refs - 1
       FROM unnest($1::bigint[], $2::varchar[]) AS r(seq, id) WHERE m.seq = r.seq AND m.id = r.id`,
      [seqs, ids],
    );
    await this.q(
      `DELETE FROM mam_message m USING unnest($1::bigint[], $2::varchar[]) AS r(seq, id)
       WHERE m.seq = r.seq AND m.id = r.id AND m.refs <= 0`,
      [seqs, ids],
    );
  }

  async purge(beforeSeq: number): Promise<number> {
    const r = await this.q('DELETE FROM mam_entry WHERE seq < $1', [beforeSeq]);
    await this.q('DELETE FROM mam_message WHERE seq < $1', [beforeSeq]);
    return r.rowCount ?? 0;
  }

  async replace(seq: number, id: string, stanza: string, bytes: number): Promise<number> {
    const r = await this.q('UPDATE mam_message SET stanza = $1, bytes = $2 WHERE seq = $3 AND id = $4', [
      stanza,
      bytes,
      seq,
      id,
    ]);
    return r.rowCount ?? 0;
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}

/** Entries removed per statement while trimming or deleting an archive. */
const CHUNK = 1000;

/**
 * Inserts ignore rows that are already there: a batch whose commit was never confirmed (the thread
 * died in between) is sent again.
 */
class Writer {
  /**
   * Messages and bytes per archive, loaded with one query the first time an archive is written to,
   * then kept up to date here (the only place that adds or removes entries).
   */
  private readonly usage = new Map<string, Usage>();

  constructor(private readonly engine: Engine) {}

  async write(messages: MessageRow[], entries: EntryRow[], quotas: Quotas): Promise<number> {
    const counted = await this.engine.transaction(async () => {
      const counted = new Map<string, Usage>();
      for (const e of entries) {
        let u = counted.get(e.owner);
        if (!u) {
          const known = this.usage.get(e.owner);
          u = known ? { ...known } : await this.engine.usage(e.owner);
          counted.set(e.owner, u);
        }
        u.count++;
        u.bytes += e.bytes;
      }
      await this.engine.insert(messages, entries);
      for (const [owner, u] of counted)
        if (u.count > quotas.maxMessages || u.bytes > quotas.maxBytes) await this.trim(owner, u, quotas);
      return counted;
    });
    // Only once committed: a rolled-back batch is sent again and must not be counted twice.
    for (const [owner, u] of counted) this.usage.set(owner, u);
    return entries.length;
  }

  /** Ring buffer: deletes the oldest entries of `owner` until both quotas hold again. */
  private async trim(owner: string, u: Usage, quotas: Quotas): Promise<void> {
    while (u.count > quotas.maxMessages || u.bytes > quotas.maxBytes) {
      const excess = u.count - quotas.maxMessages;
      const oldest = await this.engine.oldest(owner, Math.min(Math.max(excess, 64), CHUNK));
      if (oldest.length === 0) {
        u.count = 0;
        u.bytes = 0;
        return;
      }
      const removed: Position[] = [];
      let bytes = 0;
      for (const r of oldest) {
        if (u.count - removed.length <= quotas.maxMessages && u.bytes - bytes <= quotas.maxBytes) break;
        removed.push(r);
        bytes += r.bytes;
      }
      await this.engine.removeUpTo(owner, removed);
      u.count -= removed.length;
      u.bytes -= bytes;
    }
  }

  async deleteOwner(owner: string): Promise<number> {
    let n = 0;
    for (;;) {
      const chunk = await this.engine.transaction(async () => {
        const oldest = await this.engine.oldest(owner, CHUNK);
        await this.engine.removeUpTo(owner, oldest);
        return oldest.length;
      });
      n += chunk;
      if (chunk < CHUNK) break;
    }
    this.usage.delete(owner);
    return n;
  }

  async purge(beforeSeq: number): Promise<number> {
    const n = await this.engine.transaction(() => this.engine.purge(beforeSeq));
    this.usage.clear(); // counted again on next use (this also corrects any drift, e.g. in a cluster)
    return n;
  }

  /**
   * A tombstone in place of a message. The entries keep the size they were counted with (a
   * tombstone is smaller), so an archive's byte quota errs on the safe side.
   */
  replace(seq: number, id: string, stanza: string, bytes: number): Promise<number> {
    return this.engine.transaction(() => this.engine.replace(seq, id, stanza, bytes));
  }

  close(): Promise<void> {
    return this.engine.close();
  }
}

// --- the worker thread's side ---------------------------------------------------------------------
if (parentPort) {
  const port = parentPort;
  const storage = (workerData as { storage: StorageConfig }).storage;
  const writer = new Writer(
    storage.engine === 'sqlite' ? new SqliteEngine(storage.path) : new PostgresEngine(storage.url),
  );
  // Requests run one at a time, in the order they were sent.
  let queue: Promise<unknown> = Promise.resolve();
  port.on('message', (msg: { n: number; req: WriterRequest | { op: 'close' } }) => {
    queue = queue.then(async () => {
      const { n, req } = msg;
      try {
        let value = 0;
        if (req.op === 'write') value = await writer.write(req.messages, req.entries, req.quotas);
        else if (req.op === 'deleteOwner') value = await writer.deleteOwner(req.owner);
        else if (req.op === 'purge') value = await writer.purge(req.beforeSeq);
        else if (req.op === 'replace') value = await writer.replace(req.seq, req.id, req.stanza, req.bytes);
        else {
          await writer.close();
          port.postMessage({ n, ok: true, value: 0 } satisfies WriterReply);
          port.close();
          return;
        }
        port.postMessage({ n, ok: true, value } satisfies WriterReply);
      } catch (err) {
        port.postMessage({
          n,
          ok: false,
          error: err instanceof Error ? err.message : String(err),
        } satisfies WriterReply);
      }
    });
  });
}
