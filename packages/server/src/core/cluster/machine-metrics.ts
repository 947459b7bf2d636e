import type { Worker } from 'node:cluster';
import { AggregatorRegistry, Counter, Gauge, Registry } from 'prom-client';
import type { ServerMetrics } from '../metrics.js';

/** How long the primary waits for a worker's metrics before answering the scrape without them. */
export const COLLECT_TIMEOUT_MS = 2000;

/** One registry's metrics as prom-client lists them (`getMetricsAsJSON`). */
type Families = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/**
 * The messages of a scrape of `natter serve --workers N` over node:cluster's IPC channel (carried
 * by workers.ts beside the membership messages). The worker a scrape reaches asks the primary
 * (`scrape`); the primary asks every serving worker (`collect`), waits for their answers
 * (`collected`) at most COLLECT_TIMEOUT_MS, and sends the merged text back (`scraped`).
 */
export type ScrapeMessage =
  | { natter: 'scrape'; id: number }
  | { natter: 'scraped'; id: number; body: string }
  | { natter: 'collect'; id: number }
  | { natter: 'collected'; id: number; families: Families };

/** A worker of the primary's, as far as a scrape is concerned. */
export interface ServingWorker {
  /** Its slot, 1 to N (a restarted worker keeps its predecessor's). */
  index: number;
  /** Its node id, the `node` label of its samples. */
  node: string;
  worker: Worker;
}

/**
 * A worker's metrics as they cross the IPC channel. It carries JSON, which has no NaN or infinity
 * (they would arrive as null, which prom-client writes as +Inf): such values, e.g.
 * the event-loop delay's mean right after a reset, travel as strings. New objects: prom-client's
 * own values must not be changed.
 */
export function toWire(families: Families): Families {
  return families.map((f) => ({
    ...f,
    values: f.values.map((v) =>
      Number.isFinite(v.value) ? v : { ...v, value: String(v.value) as unknown as number },
    ),
  }));
}

function fromWire(families: Families): Families {
  return families.map((f) => ({
    ...f,
    // Every sample of a worker carries its `node` label, so no two workers' samples share a label
    // set and prom-client's aggregation never combines them: the merge is a union. 'first' says
    // so, and replaces the 'omit' some default metrics declare (process start time), which would
    // drop the metric from the scrape.
    aggregator: 'first',
    values: f.values.map((v) => (typeof v.value === 'string' ? { ...v, value: Number(v.value) } : v)),
  }));
}

/**
 * The primary's side of the metrics of `natter serve --workers N`: its own facts (workers serving,
 * restarts) and, for each scrape a worker receives, the gathering of every serving worker's
 * metrics into one text, each series keeping its worker's `node` label (docs/monitoring.md).
 */
export class PrimaryMetrics {
  private readonly registry = new Registry();
  private readonly restarts: Counter;
  private readonly missing: Gauge;
  private nextId = 0;
  /** Gatherings in progress: request id → what to do with one worker's answer. */
  private readonly pending = new Map<number, (index: number, families: Families) => void>();

  constructor(
    /** `--workers N`. */
    private readonly count: number,
    /** The workers that serve now (started, not dead). */
    private readonly serving: () => ServingWorker[],
    private readonly timeoutMs = COLLECT_TIMEOUT_MS,
  ) {
    const registers = [this.registry];
    new Gauge({
      name: 'natter_workers_alive',
      help: 'Worker processes of natter serve --workers that serve (started and not dead)',
      registers,
      collect() {
        this.set(serving().length);
      },
    });
    this.restarts = new Counter({
      name: 'natter_worker_restarts_total',
      help: 'Workers the primary started again after one died',
      registers,
    });
    this.missing = new Gauge({
      name: 'natter_metrics_workers_missing',
      help: 'Workers whose metrics this scrape lacks: not serving (dead, restarting) or too slow to answer',
      registers,
    });
  }

  /** A dead worker is being replaced. */
  restarted(): void {
    this.restarts.inc();
  }

  /** A worker's answer to a `collect` (late answers, whose scrape has gone, are dropped). */
  collected(index: number, msg: { id: number; families: Families }): void {
    this.pending.get(msg.id)?.(index, msg.families);
  }

  /** Every serving worker's metrics and the primary's, as one Prometheus text; never waits longer than the timeout. */
  async gather(): Promise<string> {
    const id = ++this.nextId;
    const asked = this.serving().filter((w) => w.worker.isConnected());
    const answers = new Map<number, Families>();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.pending.set(id, (index, families) => {
        if (!asked.some((w) => w.index === index)) return;
        answers.set(index, families);
        if (answers.size === asked.length) done();
      });
      for (const w of asked)
        w.worker.send({ natter: 'collect', id } satisfies ScrapeMessage, () => undefined);
      if (asked.length === 0) done();
    });
    this.pending.delete(id);

    const notes: string[] = [];
    for (let index = 1; index <= this.count; index++) {
      if (answers.has(index)) continue;
      const w = asked.find((a) => a.index === index);
      notes.push(
        w
          ? `# natter: worker ${index} (${w.node}) did not answer within ${this.timeoutMs} ms: its metrics are not in this scrape`
          : `# natter: worker ${index} is not serving (dead or restarting): its metrics are not in this scrape`,
      );
    }
    this.missing.set(this.count - answers.size);
    const merged = AggregatorRegistry.aggregate([
      ...[...answers.entries()].sort(([a], [b]) => a - b).map(([, f]) => fromWire(f)),
      await this.registry.getMetricsAsJSON(),
    ]);
    const body = await merged.metrics();
    return notes.length ? `${notes.join('\n')}\n${body}` : body;
  }
}

/**
 * In a worker of `natter serve --workers N`: answers the primary's `collect` with this process's
 * metrics, and makes `/metrics` answer for the whole machine through the primary. Without an
 * answer from the primary within `timeoutMs` (it is gone or stuck), a scrape gets this worker's
 * metrics alone, with a comment saying so.
 */
export function scrapeThroughPrimary(metrics: ServerMetrics, timeoutMs = COLLECT_TIMEOUT_MS + 1000): void {
  const waiting = new Map<number, (body: string) => void>();
  let nextId = 0;
  // With a callback, a send on a channel closed in the meantime is not an uncaught 'error' event.
  const send = (msg: ScrapeMessage) => {
    if (!process.connected || !process.send) return false;
    process.send(msg, () => undefined);
    return true;
  };
  process.on('message', (msg: ScrapeMessage) => {
    if (msg?.natter === 'collect') {
      // A collect that fails (a gauge's collect throwing) is not answered: the primary leaves this
      // worker out of that scrape and says so.
      void metrics.registry.getMetricsAsJSON().then(
        (families) => send({ natter: 'collected', id: msg.id, families: toWire(families) }),
        () => undefined,
      );
    } else if (msg?.natter === 'scraped') waiting.get(msg.id)?.(msg.body);
  });
  metrics.gatherWith(async () => {
    const id = ++nextId;
    const body = await new Promise<string | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), timeoutMs);
      waiting.set(id, (text) => {
        clearTimeout(timer);
        resolve(text);
      });
      if (!send({ natter: 'scrape', id })) {
        clearTimeout(timer);
        resolve(undefined);
      }
    });
    waiting.delete(id);
    if (body !== undefined) return body;
    return (
      `# natter: the primary did not answer within ${timeoutMs} ms: this worker's metrics only\n` +
      (await metrics.registry.metrics())
    );
  });
}
