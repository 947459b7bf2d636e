/**
 * Smoke run of the load generator (not a benchmark): a local Prosody, 20 users over 2 worker
 * processes, a few seconds of chat traffic; checks that every message sent is delivered and counted.
 * Skipped, saying why, when Prosody is not installed and cannot be installed.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProsodyAdapter } from './servers/prosody.js';
import { WorkerPool } from './engine/pool.js';
import { ProcWatch } from './engine/proc.js';
import { Histogram } from './engine/histogram.js';
import { runFlood } from './scenarios/flood.js';
import { DEFAULTS, type ScenarioContext } from './scenarios/context.js';

let unavailable: string | null = null;
before(
  async () => {
    // Installing (apt, only when missing) is not part of the few-second run.
    try {
      await new ProsodyAdapter().ensureInstalled();
    } catch (e) {
      unavailable = (e as Error).message;
    }
  },
  { timeout: 600_000 },
);

test(
  'load generator logs in over SCRAM and delivers and counts one-to-one messages (Prosody, few seconds)',
  { timeout: 30_000 },
  async (t) => {
    if (unavailable !== null) {
      t.skip(`Prosody is not available and could not be installed: ${unavailable}`);
      return;
    }
    const prosody = new ProsodyAdapter();
    const dir = mkdtempSync(join(tmpdir(), 'natter-bench-smoke-'));
    chmodSync(dir, 0o755);
    const cacheDir = join(dir, 'cache');
    mkdirSync(cacheDir);
    let pool: WorkerPool | null = null;
    try {
      await prosody.configure({ dir: join(dir, 'prosody'), domain: 'smoke.local', scramCacheDir: cacheDir });
      await prosody.provision({ prefix: 'u', count: 20, password: 'smoke-pw', iterations: 4096 }, null);
      const target = await prosody.start();
      pool = await WorkerPool.start(2, {
        host: target.host,
        port: target.port,
        domain: target.domain,
        userPrefix: 'u',
        password: 'smoke-pw',
        tls: 'none',
        cacheDir,
        loginTimeoutMs: 10_000,
      });
      const ids = Array.from({ length: 20 }, (_, i) => i + 1);
      const parts = pool.split(ids);
      const logins = await pool.all(
        (w) => ({ cmd: 'login', ids: parts[w]!, concurrency: 5, rosterGet: false }),
        20_000,
      );
      assert.equal(
        logins.reduce((a, r) => a + (r['ok'] as number), 0),
        20,
        `logins failed: ${JSON.stringify(logins.map((r) => r['errors']))}`,
      );

      const watch = new ProcWatch(target.pid);
      const cpu0 = await watch.cpu();
      const replies = await pool.all(
        () => ({
          cmd: 'traffic',
          spec: { mode: 'chat', phaseTag: 1, window: 20, durationMs: 2000, drainMs: 3000, bodyPad: 16 },
        }),
        15_000,
      );
      const sent = replies.reduce((a, r) => a + (r['sent'] as number), 0);
      const received = replies.reduce((a, r) => a + (r['received'] as number), 0);
      const lost = replies.reduce((a, r) => a + (r['lost'] as number), 0);
      const hist = new Histogram();
      for (const r of replies) hist.merge(r['hist'] as { counts: number[]; max: number });
      assert.ok(sent > 100, `only ${sent} messages sent in 2 s`);
      assert.equal(received, sent, 'every message sent is received');
      assert.equal(lost, 0);
      assert.equal(hist.n, received, 'every delivery has a latency sample');
      assert.ok(hist.percentileMs(50) > 0);
      assert.ok((await watch.cpu()) - cpu0 > 0, 'server CPU is read from /proc');
      assert.ok(watch.rss() > 1e6, 'server RSS is read from /proc');
      assert.ok((await pool.cpuSeconds()) > 0, 'generator CPU is reported');
    } finally {
      await pool?.stop();
      await prosody.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  'flood scenario: well-behaved pairs lose nothing while flooders are throttled (Prosody with mod_limits, few seconds)',
  { timeout: 30_000 },
  async (t) => {
    if (unavailable !== null) {
      t.skip(`Prosody is not available and could not be installed: ${unavailable}`);
      return;
    }
    const prosody = new ProsodyAdapter('incremental', 'default');
    const dir = mkdtempSync(join(tmpdir(), 'natter-bench-smoke-'));
    chmodSync(dir, 0o755);
    const cacheDir = join(dir, 'cache');
    mkdirSync(cacheDir);
    try {
      await prosody.configure({ dir: join(dir, 'prosody'), domain: 'smoke.local', scramCacheDir: cacheDir });
      const users = { prefix: 'u', count: 10, password: 'smoke-pw', iterations: 4096 };
      await prosody.provision(users, null);
      const target = await prosody.start();
      const ctx: ScenarioContext = {
        target,
        users,
        plainUsers: 10,
        rosterBase: 10,
        opts: {
          ...DEFAULTS,
          floodPairs: 4,
          flooders: 2,
          floodUnauth: 20,
          floodUnauthIps: 2,
          floodSeconds: 1,
          drainSeconds: 2,
          loginTimeoutMs: 10_000,
        },
        cacheDir,
        restart: () => Promise.reject(new Error('no restart in the smoke test')),
        log: () => {},
        phaseSeq: { n: 0 },
      };
      const figs = new Map((await runFlood(ctx)).map((f) => [f.key, f.value]));
      for (const p of [1, 2, 3]) {
        assert.equal(figs.get(`flood.${p}.lost`), 0, `phase ${p}: no well-behaved message lost`);
        assert.ok((figs.get(`flood.${p}.p99`) ?? NaN) > 0, `phase ${p}: latency measured`);
      }
      assert.ok((figs.get('flood.2.flood_kib_s') ?? 0) > 0, 'the server read some of the flood');
      assert.ok((figs.get('flood.3.unauth_open') ?? 0) > 0, 'unauthenticated connections were held open');
    } finally {
      await prosody.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
