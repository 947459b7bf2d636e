/**
 * The SQLite checkpointer thread (`SqliteCheckpointer` starts it when the log first needs it):
 * copies the write-ahead log back into the database file, so that no connection that serves
 * stanzas ever does it. A checkpoint writes every page changed since the last one and syncs the
 * file: with the archive inserting at many places of its indexes, tens of milliseconds of I/O each,
 * which used to happen inside whichever commit crossed SQLite's default threshold (1,000 pages),
 * often on the main thread (docs/decisions/0008).
 */
import { parentPort, workerData } from 'node:worker_threads';
import SQLite from 'better-sqlite3';

if (parentPort) {
  const port = parentPort;
  const { path } = workerData as { path: string };
  const db = new SQLite(path);
  db.pragma('busy_timeout = 5000');
  db.pragma('wal_autocheckpoint = 0');
  port.on('message', (msg: { op: 'checkpoint' | 'stop' }) => {
    try {
      // PASSIVE copies what no reader still needs and never waits for readers or writers.
      if (msg.op === 'checkpoint') db.pragma('wal_checkpoint(PASSIVE)');
      else db.close(); // the last connection to close checkpoints what is left
      port.postMessage({ done: msg.op });
    } catch (err) {
      port.postMessage({ done: msg.op, error: err instanceof Error ? err.message : String(err) });
    }
    if (msg.op === 'stop') port.close();
  });
}
