import { openSqlite, type SqliteDatabase, type SqliteSource } from '../storage/sqlite.node.js';
import type { VCardStorage } from './vcard-storage.js';

/** Persistent vCard cache in SQLite (Node). */
export function sqliteVCardStorage(source: SqliteSource): VCardStorage {
  let ready: Promise<SqliteDatabase> | undefined;
  const db = () =>
    (ready ??= openSqlite(source).then((d) => {
      d.exec(
        'CREATE TABLE IF NOT EXISTS vcards (account TEXT NOT NULL, jid TEXT NOT NULL, xml TEXT NOT NULL, fetched_at INTEGER NOT NULL, PRIMARY KEY (account, jid))',
      );
      return d;
    }));
  return {
    async get(account, jid) {
      const row = (await db())
        .prepare('SELECT xml, fetched_at FROM vcards WHERE account = ? AND jid = ?')
        .get(account, jid) as { xml: string; fetched_at: number } | undefined;
      return row && { xml: row.xml, fetchedAt: row.fetched_at };
    },
    async set(account, jid, v) {
      (await db())
        .prepare('INSERT OR REPLACE INTO vcards (account, jid, xml, fetched_at) VALUES (?, ?, ?, ?)')
        .run(account, jid, v.xml, v.fetchedAt);
    },
    async remove(account, jid) {
      (await db()).prepare('DELETE FROM vcards WHERE account = ? AND jid = ?').run(account, jid);
    },
  };
}
