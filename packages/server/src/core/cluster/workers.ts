import cluster, { type Worker } from 'node:cluster';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { MeshBus, type MeshMember, type PrimaryMessage, type WorkerMessage } from './mesh-bus.js';
import type { Logger } from '../logger.js';
import { PrimaryMetrics, type ScrapeMessage } from './machine-metrics.js';

/** Environment of a worker process, set by the primary. */
const ENV_INDEX = 'NATTER_WORKER';
const ENV_KEY = 'NATTER_CLUSTER_KEY';
const ENV_PRIMARY = 'NATTER_PRIMARY_PID';
const ENV_S2S = 'NATTER_S2S_SECRET';

/** `--workers auto|N`: the number of worker processes. */
export function parseWorkers(value: string): number {
  if (value === 'auto') return availableParallelism();
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 256)
    throw new Error('--workers must be "auto" or a number from 1 to 256');
  return n;
}

/** In a worker process of `natter serve --workers N`: its number, else undefined. */
export function workerIndex(): number | undefined {
  if (cluster.isPrimary) return undefined;
  const v = process.env[ENV_INDEX];
  return v === undefined ? undefined : Number(v);
}

/**
 * The bus of this worker (docs/decisions/0009): a mesh of Unix sockets to the other workers, whose
 * membership the primary sends over the IPC channel; plus the dialback secret all workers share.
 */
export function workerBus(log: Logger): {
  bus: MeshBus;
  s2sSecret: string;
  ready: (ports: Record<string, number>, started?: unknown) => void;
} {
  const index = workerIndex();
  if (index === undefined || !process.send) throw new Error('not a worker process');
  const nodeId = `w${index}.${process.pid.toString(36)}`;
  const path =
    process.platform === 'linux'
      ? `\0natter-${process.env[ENV_PRIMARY]}-${nodeId}`
      : join(tmpdir(), `natter-${process.env[ENV_PRIMARY]}-${nodeId}.sock`);
  const send = (msg: WorkerMessage) => process.send!(msg);
  const bus = new MeshBus(nodeId, path, process.env[ENV_KEY] ?? '', log.child({ node: nodeId }), send);
  process.on('message', (msg: PrimaryMessage) => {
    if (msg?.natter === 'members') bus.setMembers(msg.members);
  });
  return {
    bus,
    s2sSecret: process.env[ENV_S2S] ?? '',
    ready: (ports, started) => workerReady(nodeId, ports, started),
  };
}

/**
 * Tells the primary this worker serves (its node id and ports, for the "worker ready" line, and
 * what it runs, `started`, which the primary passes to its `announce`). Also used by a worker of
 * a Redis cluster (`--workers` with `cluster`), which talks to the other nodes, this machine's
 * workers included, over Redis instead of the mesh.
 */
export function workerReady(nodeId: string, ports: Record<string, number>, started?: unknown): void {
  process.send?.({ natter: 'ready', id: nodeId, ports, started });
}

interface Slot {
  index: number;
  worker: Worker | undefined;
  member: MeshMember | undefined;
  ready: boolean;
  /** Its node id, from its `ready` message. */
  node: string;
  startedAt: number;
  /** Restart delay after a crash shortly after start (doubles, up to 30 s). */
  backoffMs: number;
}

export interface PrimaryOptions {
  count: number;
  log: Logger;
  /** Upper bound on the workers' shutdown (each bounds its own by the same value). */
  shutdownTimeoutMs: number;
  /**
   * Says that every worker serves, once, with what the first worker reported (`workerReady`'s
   * `started`). Default: the info line "natter started with workers".
   */
  announce?: (started: unknown) => void;
  /** Runs first on SIGHUP, before the workers are told (the primary's own log file reopens). */
  onReload?: () => void;
}

/**
 * The primary process of `natter serve --workers N`: forks N workers that share the listening
 * ports (node:cluster hands accepted connections to them in turn), tells each which others are
 * alive, restarts one that dies (with backoff) after telling the others it is gone, stops them
 * all on SIGTERM/SIGINT and forwards SIGHUP (reload) to them. A worker's `/metrics` asks it for
 * the whole machine's metrics (machine-metrics.ts). The first worker starts alone (it creates the database schema and the
 * self-signed certificate), the others once it is ready.
 */
export async function runPrimary(opts: PrimaryOptions): Promise<number> {
  const { log } = opts;
  const key = randomBytes(32).toString('hex');
  const s2sSecret = randomBytes(32).toString('hex');
  const slots: Slot[] = Array.from({ length: opts.count }, (_, i) => ({
    index: i + 1,
    worker: undefined,
    member: undefined,
    ready: false,
    node: '',
    startedAt: 0,
    backoffMs: 1000,
  }));
  let rank = 0;
  let stopping = false;
  let started = false;
  let firstStarted: unknown;
  let resolveExit!: (code: number) => void;
  const exited = new Promise<number>((r) => (resolveExit = r));

  // A scrape of any worker's /metrics is answered for the whole machine, gathered here.
  const metrics = new PrimaryMetrics(opts.count, () =>
    slots.flatMap((s) => (s.ready && s.worker ? [{ index: s.index, node: s.node, worker: s.worker }] : [])),
  );

  const members = (): MeshMember[] => slots.flatMap((s) => (s.member ? [s.member] : []));
  const announce = () => {
    const msg: PrimaryMessage = { natter: 'members', members: members() };
    for (const s of slots) if (s.worker?.isConnected()) s.worker.send(msg);
  };

  const fork = (slot: Slot): Promise<void> =>
    new Promise((resolve) => {
      const worker = cluster.fork({
        [ENV_INDEX]: String(slot.index),
        [ENV_KEY]: key,
        [ENV_PRIMARY]: String(process.pid),
        [ENV_S2S]: s2sSecret,
      });
      slot.worker = worker;
      slot.ready = false;
      slot.startedAt = Date.now();
      type Incoming = (WorkerMessage | ScrapeMessage) & { ports?: Record<string, number>; started?: unknown };
      worker.on('message', (msg: Incoming) => {
        if (msg?.natter === 'collected') metrics.collected(slot.index, msg);
        else if (msg?.natter === 'scrape') {
          const { id } = msg;
          // On failure the worker answers the scrape with its own metrics once it stops waiting.
          metrics.gather().then(
            (body) => {
              if (worker.isConnected())
                worker.send({ natter: 'scraped', id, body } satisfies ScrapeMessage, () => undefined);
            },
            (err: unknown) => log.error({ err }, 'gathering the metrics of the workers failed'),
          );
        } else if (msg?.natter === 'joined') {
          slot.member = { id: msg.id, path: msg.path, rank: ++rank };
          announce();
        } else if (msg?.natter === 'ready') {
          slot.ready = true;
          slot.node = msg.id;
          if (slot.index === 1) firstStarted ??= msg.started;
          log.info(
            { worker: slot.index, node: msg.id, pid: worker.process.pid, ports: msg.ports },
            'worker ready',
          );
          resolve();
        }
      });
      worker.on('exit', (code, signal) => {
        const wasReady = slot.ready;
        slot.worker = undefined;
        slot.member = undefined;
        slot.ready = false;
        resolve();
        if (stopping) {
          if (slots.every((s) => !s.worker)) resolveExit(0);
          return;
        }
        announce();
        if (!started || !wasReady) {
          // A worker that cannot start (configuration, a port in use) will not start on a retry.
          log.error({ worker: slot.index, code, signal }, 'a worker failed to start: stopping');
          void shutdown(1);
          return;
        }
        const quick = Date.now() - slot.startedAt < 10_000;
        const delay = quick ? slot.backoffMs : 0;
        slot.backoffMs = quick ? Math.min(slot.backoffMs * 2, 30_000) : 1000;
        log.error(
          { worker: slot.index, code, signal, restartInMs: delay },
          'a worker died: its sessions are gone; restarting it',
        );
        setTimeout(() => {
          if (stopping) return;
          metrics.restarted();
          void fork(slot);
        }, delay).unref();
      });
    });

  let exitCode = 0;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    exitCode = code;
    const alive = slots.filter((s) => s.worker);
    if (alive.length === 0) return resolveExit(code);
    for (const s of alive) s.worker!.process.kill('SIGTERM');
    const force = setTimeout(() => {
      for (const s of slots) s.worker?.process.kill('SIGKILL');
    }, opts.shutdownTimeoutMs + 5000);
    force.unref();
  };
  process.on('SIGTERM', () => void shutdown(0));
  process.on('SIGINT', () => void shutdown(0));
  // SIGHUP (`systemctl reload`): every worker reloads its configuration and certificates. A worker
  // still starting reads them as they are now and would die of a signal it does not handle yet.
  process.on('SIGHUP', () => {
    if (stopping) return;
    try {
      opts.onReload?.();
    } catch (err) {
      log.error({ err }, 'reload of the primary failed');
    }
    const ready = slots.filter((s) => s.ready && s.worker);
    log.info(
      { signal: 'SIGHUP', workers: ready.map((s) => s.index) },
      'signal received: telling every worker to reload',
    );
    for (const s of ready) s.worker!.process.kill('SIGHUP');
  });

  log.info({ workers: opts.count, pid: process.pid }, 'natter primary: starting workers');
  await fork(slots[0]!);
  if (!stopping) await Promise.all(slots.slice(1).map((s) => fork(s)));
  started = true;
  if (!stopping)
    (opts.announce ?? (() => log.info({ workers: opts.count }, 'natter started with workers')))(firstStarted);
  const code = await exited;
  return exitCode || code;
}

export { cluster as nodeCluster };
