/**
 * Coordinator side of the load generator: starts worker processes (each with its open-files limit
 * raised to the hard limit by a `ulimit -n` in the spawning shell, and its own 127.0.0.x source
 * addresses), sends them commands, and sums their CPU use.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Command, Reply, WorkerConfig } from './protocol.js';

const WORKER = fileURLToPath(new URL('./worker.ts', import.meta.url));
const BENCH_DIR = fileURLToPath(new URL('../..', import.meta.url));
/** Source addresses given to each worker. */
const ADDRS_PER_WORKER = 4;

export class WorkerError extends Error {
  override readonly name = 'WorkerError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

interface Pending {
  resolve: (r: Reply) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

class Worker {
  private seq = 0;
  private readonly pending = new Map<number, Pending>();
  lastCpuUs = 0;
  exited = false;

  constructor(
    readonly index: number,
    readonly child: ChildProcess,
  ) {
    child.on('message', (m: { seq: number; reply: Reply }) => {
      const p = this.pending.get(m.seq);
      if (!p) return;
      this.pending.delete(m.seq);
      clearTimeout(p.timer);
      if (typeof m.reply['cpuUs'] === 'number') this.lastCpuUs = m.reply['cpuUs'] as number;
      p.resolve(m.reply);
    });
    child.on('exit', (code) => {
      this.exited = true;
      for (const p of this.pending.values()) {
        clearTimeout(p.timer);
        p.reject(new WorkerError('worker-exit', `worker ${index} exited with code ${code}`));
      }
      this.pending.clear();
    });
  }

  call(cmd: Command, timeoutMs: number): Promise<Reply> {
    if (this.exited) return Promise.reject(new WorkerError('worker-exit', `worker ${this.index} is gone`));
    const seq = ++this.seq;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(seq);
        reject(new WorkerError('timeout', `worker ${this.index}: ${cmd.cmd} took more than ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(seq, { resolve, reject, timer });
      this.child.send({ seq, cmd });
    });
  }
}

export class WorkerPool {
  private constructor(readonly workers: Worker[]) {}

  get size(): number {
    return this.workers.length;
  }

  static async start(
    n: number,
    base: Omit<WorkerConfig, 'localAddresses'>,
    firstAddress = 2,
  ): Promise<WorkerPool> {
    const workers: Worker[] = [];
    for (let i = 0; i < n; i++) {
      // The shell raises the soft open-files limit to the hard one, then becomes node (keeps the IPC fd).
      const child = spawn(
        '/bin/sh',
        [
          '-c',
          'ulimit -n "$(ulimit -Hn)" && exec "$0" "$@"',
          process.execPath,
          '--import',
          'tsx',
          '--conditions=source',
          WORKER,
        ],
        { cwd: BENCH_DIR, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
      );
      workers.push(new Worker(i, child));
    }
    const pool = new WorkerPool(workers);
    await Promise.all(
      workers.map((w, i) => {
        const localAddresses: string[] = [];
        for (let a = 0; a < ADDRS_PER_WORKER; a++)
          localAddresses.push(`127.0.0.${firstAddress + i * ADDRS_PER_WORKER + a}`);
        return w.call({ cmd: 'init', cfg: { ...base, localAddresses } }, 60_000);
      }),
    );
    return pool;
  }

  /** Splits ids over workers: user id i goes to worker i % n (stable, so SCRAM caches stay warm). */
  split(ids: number[]): number[][] {
    const out = this.workers.map(() => [] as number[]);
    for (const id of ids) out[id % this.workers.length]!.push(id);
    return out;
  }

  workerOf(id: number): number {
    return id % this.workers.length;
  }

  all(make: (index: number) => Command | null, timeoutMs: number): Promise<Reply[]> {
    return Promise.all(
      this.workers.map((w, i) => {
        const cmd = make(i);
        return cmd ? w.call(cmd, timeoutMs) : Promise.resolve({});
      }),
    );
  }

  /** Total CPU (user + system) of all workers so far, in seconds (fresh sample). */
  async cpuSeconds(): Promise<number> {
    await this.all(() => ({ cmd: 'counters' }), 30_000);
    return this.workers.reduce((a, w) => a + w.lastCpuUs, 0) / 1e6;
  }

  async stop(): Promise<void> {
    await Promise.allSettled(this.workers.map((w) => w.call({ cmd: 'exit' }, 15_000)));
    await Promise.all(
      this.workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.exited) return resolve();
            const t = setTimeout(() => {
              w.child.kill('SIGKILL');
              resolve();
            }, 5000);
            w.child.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
          }),
      ),
    );
  }
}

/** Sums numeric fields of worker replies and collects their errors. */
export function sumReplies(replies: Reply[], keys: string[]): Record<string, number> & { errors: string[] } {
  const out: Record<string, number> = {};
  for (const k of keys)
    out[k] = replies.reduce((a, r) => a + (typeof r[k] === 'number' ? (r[k] as number) : 0), 0);
  const errors: string[] = [];
  for (const r of replies) {
    if (typeof r['error'] === 'string') errors.push(r['error'] as string);
    if (Array.isArray(r['errors'])) errors.push(...(r['errors'] as string[]));
  }
  return Object.assign(out, { errors });
}
