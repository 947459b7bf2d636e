import { openSqlite, type SqliteDatabase, type SqliteSource } from '../storage/sqlite.node.js';
import type { RosterItem, RosterStorage } from './roster-storage.js';

interface Row {
  jid: string;
  name: string | null;
  subscription: RosterItem['subscription'];
  ask: string | null;
  approved: number;
  groups: string;
}

/** Persistent roster storage in SQLite (Node), keyed by account. */
export function sqliteRosterStorage(source: SqliteSource): RosterStorage {
  let ready: Promise<SqliteDatabase> | undefined;
  const db = () =>
    (ready ??= openSqlite(source).then((d) => {
      d.exec(`CREATE TABLE IF NOT EXISTS roster_versions (account TEXT PRIMARY KEY, version TEXT);
        CREATE TABLE IF NOT EXISTS roster_items (account TEXT NOT NULL, jid TEXT NOT NULL, name TEXT, subscription TEXT NOT NULL,
          ask TEXT, approved INTEGER NOT NULL DEFAULT 0, groups TEXT NOT NULL DEFAULT '[]', PRIMARY KEY (account, jid));`);
      return d;
    }));
  const put = (d: SqliteDatabase, account: string, i: RosterItem) =>
    d
      .prepare(
        'INSERT OR REPLACE INTO roster_items (account, jid, name, subscription, ask, approved, groups) VALUES (?, ?, ?, ?, ?, ?, ?)',
      )
      .run(
        account,
        i.jid,
        i.name ?? null,
        i.subscription,
        i.ask ?? null,
        i.approved ? 1 : 0,
        JSON.stringify(i.groups),
      );
  const setVersion = (d: SqliteDatabase, account: string, version: string | undefined) =>
    d
      .prepare('INSERT OR REPLACE INTO roster_versions (account, version) VALUES (?, ?)')
      .run(account, version ?? null);
  return {
    async load(account) {
      const d = await db();
      const v = d.prepare('SELECT version FROM roster_versions WHERE account = ?').get(account) as
        { version: string | null } | undefined;
      const rows = d
        .prepare(
          'SELECT jid, name, subscription, ask, approved, groups FROM roster_items WHERE account = ? ORDER BY jid',
        )
        .all(account) as Row[];
      if (!v && rows.length === 0) return undefined;
      return {
        version: v?.version ?? undefined,
        items: rows.map((r) => ({
          jid: r.jid,
          name: r.name ?? undefined,
          subscription: r.subscription,
          ask: r.ask === 'subscribe' ? 'subscribe' : undefined,
          approved: r.approved === 1 || undefined,
          groups: JSON.parse(r.groups) as string[],
        })),
      };
    },
    async replace(account, roster) {
      const d = await db();
      d.transaction(() => {
        d.prepare('DELETE FROM roster_items WHERE account = ?').run(account);
        for (const i of roster.items) put(d, account, i);
        setVersion(d, account, roster.version);
      })();
    },
    async apply(account, version, item, remove) {
      const d = await db();
      d.transaction(() => {
        if (remove)
          d.prepare('DELETE FROM roster_items WHERE account = ? AND jid = ?').run(account, item.jid);
        else put(d, account, item);
        setVersion(d, account, version);
      })();
    },
    async clear(account) {
      const d = await db();
      d.prepare('DELETE FROM roster_items WHERE account = ?').run(account);
      d.prepare('DELETE FROM roster_versions WHERE account = ?').run(account);
    },
  };
}
