import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import SQLite from 'better-sqlite3';
import { SqliteCheckpointer } from './checkpointer.js';

const walSize = (path: string) => statSync(`${path}-wal`).size;

test('the checkpointer thread copies a grown log into the database; the next commit truncates it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'natter-ckpt-'));
  const path = join(dir, 'db.sqlite');
  // A connection configured as the server's: no checkpoint of its own, the log kept to 256 KiB.
  const db = new SQLite(path);
  db.pragma('journal_mode = WAL');
  db.pragma('wal_autocheckpoint = 0');
  db.pragma(`journal_size_limit = ${256 * 1024}`);
  db.exec('CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)');
  const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
  const fill = db.transaction((n: number) => {
    for (let i = 0; i < n; i++) insert.run('x'.repeat(1000));
  });
  const errors: string[] = [];
  const checkpointer = new SqliteCheckpointer(path, 1024 * 1024, 20, (m) => errors.push(m));
  try {
    fill(3000); // about 3 MB of log
    assert.ok(walSize(path) > 2 * 1024 * 1024, `log is ${walSize(path)} bytes`);
    // Once the thread has checkpointed everything, a new write transaction starts the log over.
    let size = walSize(path);
    let extra = 0;
    for (let i = 0; i < 200 && size > 512 * 1024; i++) {
      await sleep(25);
      fill(1);
      extra++;
      size = walSize(path);
    }
    assert.ok(size <= 512 * 1024, `log still ${size} bytes`);
    // Nothing lost on the way: another connection reads every row.
    const reader = new SQLite(path, { readonly: true });
    assert.equal((reader.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n, 3000 + extra);
    reader.close();
    assert.deepEqual(errors, []);
  } finally {
    await checkpointer.stop();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
