// The primary's gathering of the workers' metrics (natter serve --workers), with stand-in workers
// whose answers cross a JSON round trip as they do over node:cluster's IPC channel. The real
// processes are in test/cluster/workers-metrics.test.ts.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { Worker } from 'node:cluster';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { PrimaryMetrics, toWire, type ScrapeMessage, type ServingWorker } from './machine-metrics.js';

/** A worker's registry: a counter, a histogram, a gauge the AggregatorRegistry would omit, odd values. */
function workerRegistry(node: string, stanzas: number): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ node });
  const registers = [registry];
  new Counter({ name: 'natter_stanzas_total', help: 'stanzas', labelNames: ['kind'], registers }).inc(
    { kind: 'message' },
    stanzas,
  );
  new Histogram({
    name: 'natter_routing_seconds',
    help: 'routing',
    buckets: [0.001, 0.01],
    registers,
  }).observe(0.005);
  new Gauge({ name: 'natter_process_start_time_seconds', help: 'start', aggregator: 'omit', registers }).set(
    1_700_000_000,
  );
  const odd = new Gauge({ name: 'natter_odd', help: 'non-finite values', labelNames: ['v'], registers });
  odd.set({ v: 'nan' }, NaN);
  odd.set({ v: 'inf' }, Infinity);
  return registry;
}

/** A stand-in for a worker process: answers `collect` (unless `silent`) through a JSON round trip. */
function standIn(
  primary: () => PrimaryMetrics,
  index: number,
  registry: Registry,
  silent = false,
): ServingWorker {
  const worker = {
    isConnected: () => true,
    send(msg: ScrapeMessage) {
      if (silent || msg.natter !== 'collect') return true;
      void registry.getMetricsAsJSON().then((families) => {
        const wire = JSON.parse(JSON.stringify(toWire(families))) as typeof families;
        primary().collected(index, { id: msg.id, families: wire });
      });
      return true;
    },
  };
  return { index, node: `w${index}.x`, worker: worker as unknown as Worker };
}

describe('PrimaryMetrics: one scrape for every worker', () => {
  test('each worker’s series side by side, one TYPE per metric, NaN and +Inf intact, nothing omitted', async () => {
    const workers: ServingWorker[] = [];
    const primary: PrimaryMetrics = new PrimaryMetrics(2, () => workers);
    workers.push(standIn(() => primary, 1, workerRegistry('w1.x', 3)));
    workers.push(standIn(() => primary, 2, workerRegistry('w2.x', 5)));
    primary.restarted();
    const text = await primary.gather();

    assert.ok(!text.includes('null'), text);
    const typed = [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]);
    assert.equal(new Set(typed).size, typed.length, text);
    for (const [node, n] of [
      ['w1.x', 3],
      ['w2.x', 5],
    ] as const) {
      assert.match(text, new RegExp(`^natter_stanzas_total\\{kind="message",node="${node}"\\} ${n}$`, 'm'));
      assert.match(
        text,
        new RegExp(`^natter_routing_seconds_bucket\\{le="\\+Inf",node="${node}"\\} 1$`, 'm'),
      );
      assert.match(
        text,
        new RegExp(`^natter_process_start_time_seconds\\{node="${node}"\\} 1700000000$`, 'm'),
      );
      assert.match(text, new RegExp(`^natter_odd\\{v="nan",node="${node}"\\} Nan$`, 'm'));
      assert.match(text, new RegExp(`^natter_odd\\{v="inf",node="${node}"\\} \\+Inf$`, 'm'));
    }
    assert.match(text, /^natter_workers_alive 2$/m);
    assert.match(text, /^natter_worker_restarts_total 1$/m);
    assert.match(text, /^natter_metrics_workers_missing 0$/m);
    assert.ok(!text.includes('# natter:'));
  });

  test('a worker that does not answer is left out after the timeout, and the text says so', async () => {
    const workers: ServingWorker[] = [];
    const primary: PrimaryMetrics = new PrimaryMetrics(2, () => workers, 100);
    workers.push(standIn(() => primary, 1, workerRegistry('w1.x', 3)));
    workers.push(standIn(() => primary, 2, workerRegistry('w2.x', 5), true));
    const start = Date.now();
    const text = await primary.gather();
    assert.ok(Date.now() - start >= 90 && Date.now() - start < 2000);
    assert.match(text, /^# natter: worker 2 \(w2\.x\) did not answer within 100 ms/m);
    assert.match(text, /^natter_metrics_workers_missing 1$/m);
    assert.match(text, /node="w1\.x"/);
    assert.ok(!text.includes('node="w2.x"'));
  });

  test('a worker that is not serving (restarting) is named and not waited for', async () => {
    const workers: ServingWorker[] = [];
    const primary: PrimaryMetrics = new PrimaryMetrics(2, () => workers, 60_000);
    workers.push(standIn(() => primary, 1, workerRegistry('w1.x', 3)));
    const text = await primary.gather();
    assert.match(text, /^# natter: worker 2 is not serving/m);
    assert.match(text, /^natter_workers_alive 1$/m);
    assert.match(text, /^natter_metrics_workers_missing 1$/m);
  });
});
