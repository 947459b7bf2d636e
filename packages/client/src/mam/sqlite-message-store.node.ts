import { openSqlite, type SqliteDatabase, type SqliteSource } from '../storage/sqlite.node.js';
import { type MessageCursor, type MessageStore, type StoredMessage } from './message-store.js';

interface Row {
  seq: number;
  conversation: string;
  archive: string | null;
  archive_id: string | null;
  origin_id: string | null;
  message_id: string | null;
  timestamp: number;
  sender: string;
  direction: 'in' | 'out';
  body: string | null;
  xml: string;
}

const COLUMNS =
  'seq, conversation, archive, archive_id, origin_id, message_id, timestamp, sender, direction, body, xml';

function fromRow(r: Row): StoredMessage {
  const m: StoredMessage = {
    conversation: r.conversation,
    timestamp: r.timestamp,
    from: r.sender,
    direction: r.direction,
    xml: r.xml,
    seq: r.seq,
  };
  if (r.archive !== null) m.archive = r.archive;
  if (r.archive_id !== null) m.archiveId = r.archive_id;
  if (r.origin_id !== null) m.originId = r.origin_id;
  if (r.message_id !== null) m.messageId = r.message_id;
  if (r.body !== null) m.body = r.body;
  return m;
}

/** Persistent message store in SQLite (Node; needs the optional better-sqlite3), keyed by account. */
export function sqliteMessageStore(source: SqliteSource): MessageStore {
  let ready: Promise<SqliteDatabase> | undefined;
  const db = () =>
    (ready ??= openSqlite(source).then((d) => {
      d.exec(`CREATE TABLE IF NOT EXISTS mam_messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, account TEXT NOT NULL, conversation TEXT NOT NULL,
          archive TEXT, archive_id TEXT, origin_id TEXT, message_id TEXT, timestamp INTEGER NOT NULL,
          sender TEXT NOT NULL, direction TEXT NOT NULL, body TEXT, xml TEXT NOT NULL);
        CREATE UNIQUE INDEX IF NOT EXISTS mam_messages_by_archive ON mam_messages (account, archive, archive_id)
          WHERE archive_id IS NOT NULL;
        CREATE UNIQUE INDEX IF NOT EXISTS mam_messages_by_origin ON mam_messages (account, conversation, origin_id)
          WHERE origin_id IS NOT NULL;
        CREATE INDEX IF NOT EXISTS mam_messages_by_time ON mam_messages (account, conversation, timestamp, seq);
        CREATE TABLE IF NOT EXISTS mam_sync (account TEXT NOT NULL, archive TEXT NOT NULL, id TEXT NOT NULL,
          timestamp INTEGER NOT NULL, PRIMARY KEY (account, archive));`);
      return d;
    }));
  return {
    async add(account, m) {
      const d = await db();
      return d.transaction(() => {
        if (m.archive !== undefined && m.archiveId !== undefined) {
          const dup = d
            .prepare('SELECT 1 FROM mam_messages WHERE account = ? AND archive = ? AND archive_id = ?')
            .get(account, m.archive, m.archiveId);
          if (dup) return false;
        }
        if (m.originId !== undefined) {
          const dup = d
            .prepare(
              'SELECT seq, archive_id FROM mam_messages WHERE account = ? AND conversation = ? AND origin_id = ?',
            )
            .get(account, m.conversation, m.originId) as
            { seq: number; archive_id: string | null } | undefined;
          if (dup) {
            if (dup.archive_id === null && m.archive !== undefined && m.archiveId !== undefined)
              d.prepare('UPDATE mam_messages SET archive = ?, archive_id = ? WHERE seq = ?').run(
                m.archive,
                m.archiveId,
                dup.seq,
              );
            return false;
          }
        }
        d.prepare(
          `INSERT INTO mam_messages (account, ${COLUMNS.slice('seq, '.length)}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ).run(
          account,
          m.conversation,
          m.archive ?? null,
          m.archiveId ?? null,
          m.originId ?? null,
          m.messageId ?? null,
          m.timestamp,
          m.from,
          m.direction,
          m.body ?? null,
          m.xml,
        );
        return true;
      })();
    },
    async has(account, ref) {
      const d = await db();
      const row =
        'archiveId' in ref
          ? d
              .prepare('SELECT 1 FROM mam_messages WHERE account = ? AND archive = ? AND archive_id = ?')
              .get(account, ref.archive, ref.archiveId)
          : d
              .prepare('SELECT 1 FROM mam_messages WHERE account = ? AND conversation = ? AND origin_id = ?')
              .get(account, ref.conversation, ref.originId);
      return row !== undefined;
    },
    async list(account, conversation, options = {}) {
      const d = await db();
      const limit = Math.max(0, options.limit ?? 50);
      const where = ['account = ?', 'conversation = ?'];
      const args: (string | number)[] = [account, conversation];
      const cmp = (op: '<' | '>', c: MessageCursor) => {
        where.push(`(timestamp ${op} ? OR (timestamp = ? AND seq ${op} ?))`);
        args.push(c.timestamp, c.timestamp, c.seq ?? 0);
      };
      if (options.after) cmp('>', options.after);
      if (options.before) cmp('<', options.before);
      const forward = options.after !== undefined && options.before === undefined;
      const order = forward ? 'ASC' : 'DESC';
      const rows = d
        .prepare(
          `SELECT ${COLUMNS} FROM mam_messages WHERE ${where.join(' AND ')}
           ORDER BY timestamp ${order}, seq ${order} LIMIT ?`,
        )
        .all(...args, limit) as Row[];
      if (!forward) rows.reverse();
      return rows.map(fromRow);
    },
    async syncPoint(account, archive) {
      const row = (await db())
        .prepare('SELECT id, timestamp FROM mam_sync WHERE account = ? AND archive = ?')
        .get(account, archive) as { id: string; timestamp: number } | undefined;
      return row && { id: row.id, timestamp: row.timestamp };
    },
    async setSyncPoint(account, archive, point) {
      (await db())
        .prepare('INSERT OR REPLACE INTO mam_sync (account, archive, id, timestamp) VALUES (?, ?, ?, ?)')
        .run(account, archive, point.id, point.timestamp);
    },
    async clear(account) {
      const d = await db();
      d.transaction(() => {
        d.prepare('DELETE FROM mam_messages WHERE account = ?').run(account);
        d.prepare('DELETE FROM mam_sync WHERE account = ?').run(account);
      })();
    },
  };
}
