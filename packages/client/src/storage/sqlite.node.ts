// Opens better-sqlite3 (an optional peer dependency) lazily, so Node users who never use SQLite
// storage do not need it installed.
import type Database from 'better-sqlite3';

export type SqliteDatabase = Database.Database;

/** A database file path, or an open better-sqlite3 database to share between storages. */
export type SqliteSource = string | SqliteDatabase;

const opened = new Map<string, Promise<SqliteDatabase>>();

export async function openSqlite(source: SqliteSource): Promise<SqliteDatabase> {
  if (typeof source !== 'string') return source;
  let p = opened.get(source);
  if (!p) {
    p = (async () => {
      let mod: { default: typeof Database };
      try {
        mod = (await import('better-sqlite3')) as { default: typeof Database };
      } catch (err) {
        throw new Error('SQLite storage needs the better-sqlite3 package: npm install better-sqlite3', {
          cause: err,
        });
      }
      const db = new mod.default(source);
      db.pragma('journal_mode = WAL');
      return db;
    })();
    opened.set(source, p);
    p.catch(() => opened.delete(source));
  }
  return p;
}

/** Closes a database opened from a path by this module (tests, shutdown). */
export async function closeSqlite(path: string): Promise<void> {
  const p = opened.get(path);
  opened.delete(path);
  if (p) (await p).close();
}
