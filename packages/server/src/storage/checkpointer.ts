import { statSync } from 'node:fs';
import type { Worker } from 'node:worker_threads';
import { startWorker } from '../util/worker-thread.js';

/**
 * Keeps an SQLite database's write-ahead log in check from a thread of its own (checkpointer-thread.ts):
 * the main thread only looks at the log's size a few times a second; past `thresholdBytes` the
 * thread (started then, so a small server never starts it) runs a passive checkpoint.
 */
export class SqliteCheckpointer {
  private worker: Worker | undefined;
  private busy = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly path: string,
    private readonly thresholdBytes: number,
    intervalMs: number,
    private readonly onError: (message: string) => void,
  ) {
    this.timer = setInterval(() => this.check(), intervalMs);
    this.timer.unref();
  }

  private walSize(): number {
    try {
      return statSync(`${this.path}-wal`).size;
    } catch {
      return 0;
    }
  }

  private check(): void {
    if (this.busy || this.walSize() <= this.thresholdBytes) return;
    this.busy = true;
    this.thread().postMessage({ op: 'checkpoint' });
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = startWorker(new URL('./checkpointer-thread.js', import.meta.url), { path: this.path });
    worker.on('message', (m: { done: string; error?: string }) => {
      if (m.done === 'checkpoint') this.busy = false;
      if (m.error) this.onError(m.error);
    });
    worker.on('error', (err) => this.onError(err.message));
    worker.on('exit', () => {
      if (this.worker === worker) this.worker = undefined;
      this.busy = false;
    });
    worker.unref();
    this.worker = worker;
    return worker;
  }

  /** Stops looking; a running thread closes its connection and ends. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    const worker = this.worker;
    if (!worker) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage({ op: 'stop' });
    // One stuck in I/O is not waited for forever.
    const t = setTimeout(() => void worker.terminate(), 10_000);
    await exited;
    clearTimeout(t);
  }
}
