/**
 * `flood`: does abuse by some clients degrade the service of the others? P well-behaved pairs
 * exchange one-to-one messages at a modest fixed rate (open loop) through three phases of equal
 * length: (1) baseline; (2) with F authenticated flooders writing stanzas as fast as their sockets
 * accept (messages to themselves, messages to a user that does not exist, presence updates);
 * (3) the same flood plus U connections that never authenticate (half idle, half trickling a stream
 * header one byte per second), reopened whenever the server closes them. Run against a server with
 * its default abuse limits on. Per phase: latency p50/p95/p99 of the well-behaved messages, lost
 * messages, p99 / baseline p99, server CPU-seconds, and what the flooders got through (bytes the
 * server read per second, estimated from the bytes written minus both sockets' queues in
 * /proc/net/tcp) and how they were disconnected.
 *
 * Generator layout: the pairs live in one worker process (sender and recipient share a clock), the
 * flooders and unauthenticated connections in another, from other source addresses (127.0.0.100…
 * for flooders, 127.0.1.x for unauthenticated connections), as an attacker would be.
 */
import type { WorkerPool } from '../engine/pool.js';
import type { Reply } from '../engine/protocol.js';
import {
  proc,
  range,
  sleep,
  startPool,
  loginAll,
  quiesce,
  type Figure,
  type ScenarioContext,
} from './context.js';
import { phase, type PhaseResult } from './traffic.js';

interface FloodSnapshot {
  t: number;
  accepted: number;
  written: number;
  disconnected: number;
  conditions: Record<string, number>;
  unauth: {
    open: number;
    opened: number;
    closedByServer: number;
    connectErrors: number;
    conditions: Record<string, number>;
  };
}

async function snapshot(pool: WorkerPool): Promise<FloodSnapshot> {
  const [r] = (await pool.all(() => ({ cmd: 'floodReport' }), 30_000)) as [Reply];
  return {
    t: performance.now(),
    accepted: (r['accepted'] as number) ?? 0,
    written: (r['written'] as number) ?? 0,
    disconnected: (r['disconnected'] as number) ?? 0,
    conditions: (r['conditions'] as Record<string, number>) ?? {},
    unauth: r['unauth'] as FloodSnapshot['unauth'],
  };
}

export function describeCounts(m: Record<string, number>): string {
  const parts = Object.entries(m).map(([k, v]) => `${k}×${v}`);
  return parts.length > 0 ? parts.join(', ') : 'none';
}

export async function runFlood(ctx: ScenarioContext): Promise<Figure[]> {
  const o = ctx.opts;
  const pairs = Math.max(1, Math.min(o.floodPairs, Math.floor((ctx.plainUsers - o.flooders) / 2)));
  const good = range(1, pairs * 2);
  const bad = range(pairs * 2 + 1, o.flooders);
  await quiesce(ctx);
  const goodPool = await startPool(ctx, 1, o.tls);
  const floodPool = await startPool(ctx, 1, o.tls, 100);
  const watch = proc(ctx);
  try {
    await loginAll(ctx, goodPool, good, 20);
    if (bad.length > 0) await loginAll(ctx, floodPool, bad, 10);
    await sleep(500);
    const spec = {
      mode: 'chat' as const,
      pairs: true,
      bodyPad: o.bodyPad,
      drainMs: o.drainSeconds * 1000,
      durationMs: o.floodSeconds * 1000,
      rate: pairs * o.floodPairRate,
      steadyAfterMs: Math.min(2000, (o.floodSeconds * 1000) / 2),
    };
    const phases: { name: string; r: PhaseResult }[] = [];
    ctx.log(`flood: ${pairs} pairs × ${o.floodPairRate} msg/s, ${o.floodSeconds} s per phase; baseline`);
    phases.push({ name: 'baseline', r: await phase(ctx, goodPool, watch, spec) });

    ctx.log(`flood: phase 2, ${bad.length} authenticated flooders`);
    await floodPool.all(() => ({ cmd: 'floodStart' }), 30_000);
    const s1 = await snapshot(floodPool);
    phases.push({ name: 'flood', r: await phase(ctx, goodPool, watch, spec) });
    const s2 = await snapshot(floodPool);

    const ips = Math.max(1, Math.min(250, o.floodUnauthIps));
    ctx.log(`flood: phase 3, flood + ${o.floodUnauth} unauthenticated connections from ${ips} addresses`);
    await floodPool.all(
      () => ({
        cmd: 'unauthStart',
        count: o.floodUnauth,
        addresses: range(1, ips).map((i) => `127.0.1.${i}`),
      }),
      30_000,
    );
    phases.push({ name: 'flood+unauth', r: await phase(ctx, goodPool, watch, spec) });
    const s3 = await snapshot(floodPool);
    await floodPool.all(() => ({ cmd: 'floodStop' }), 30_000);
    const genGood = await goodPool.cpuSeconds();
    const genFlood = await floodPool.cpuSeconds();
    ctx.log(
      `flood: generator CPU over the whole run (logins included): pairs worker ${genGood.toFixed(2)} s, flood worker ${genFlood.toFixed(2)} s`,
    );

    const base99 = phases[0]!.r.hist.percentileMs(99);
    const figs: Figure[] = [];
    const kb = (x: number): number => x / 1024;
    const rates = [
      0,
      kb(s2.accepted - s1.accepted) / ((s2.t - s1.t) / 1000),
      kb(s3.accepted - s2.accepted) / ((s3.t - s2.t) / 1000),
    ];
    const snaps = [null, s2, s3];
    phases.forEach(({ name, r }, i) => {
      const k = `flood.${i + 1}`;
      const label = `flood ${i + 1} (${name})`;
      figs.push(
        {
          key: `${k}.p50`,
          label: `${label}: latency p50`,
          unit: 'ms',
          value: r.hist.percentileMs(50),
          better: 'lower',
        },
        {
          key: `${k}.p95`,
          label: `${label}: latency p95`,
          unit: 'ms',
          value: r.hist.percentileMs(95),
          better: 'lower',
        },
        {
          key: `${k}.p99`,
          label: `${label}: latency p99`,
          unit: 'ms',
          value: r.hist.percentileMs(99),
          better: 'lower',
        },
        {
          key: `${k}.lost`,
          label: `${label}: lost messages (sent ${r.sent})`,
          unit: '',
          value: r.lost,
          better: 'zero',
        },
        {
          key: `${k}.p99_ratio`,
          label: `${label}: p99 / baseline p99`,
          unit: '×',
          value: r.hist.percentileMs(99) / base99,
          better: 'lower',
        },
        {
          key: `${k}.p99_steady`,
          label: `${label}: latency p99 of messages sent ≥ ${spec.steadyAfterMs / 1000} s into the phase`,
          unit: 'ms',
          value: r.histSteady.percentileMs(99),
          better: 'lower',
        },
        {
          key: `${k}.max`,
          label: `${label}: latency max`,
          unit: 'ms',
          value: r.hist.max / 1000,
          better: 'lower',
        },
        {
          key: `${k}.server_cpu_s`,
          label: `${label}: server CPU-seconds (phase + drain)`,
          unit: 's',
          value: r.serverCpuS,
          better: 'info',
        },
      );
      const s = snaps[i];
      if (s) {
        figs.push(
          {
            key: `${k}.flood_kib_s`,
            label: `${label}: bytes read by the server from all flooders`,
            unit: 'KiB/s',
            value: rates[i]!,
            better: 'info',
          },
          {
            key: `${k}.flooders_cut`,
            label: `${label}: flooders disconnected so far (${describeCounts(s.conditions)})`,
            unit: '',
            value: s.disconnected,
            better: 'info',
          },
        );
        ctx.log(
          `flood ${i + 1} (${name}): p50 ${r.hist.percentileMs(50).toFixed(2)} ms, p99 ${r.hist.percentileMs(99).toFixed(2)} ms (${r.histSteady.percentileMs(99).toFixed(2)} ms from ${spec.steadyAfterMs / 1000} s on), max ${(r.hist.max / 1000).toFixed(1)} ms, lost ${r.lost}/${r.sent}, server CPU ${r.serverCpuS.toFixed(2)} s; flooders: ${rates[i]!.toFixed(1)} KiB/s read by the server (${kb(s.written).toFixed(0)} KiB written in total), disconnected ${s.disconnected}/${bad.length} (${describeCounts(s.conditions)})`,
        );
      } else
        ctx.log(
          `flood 1 (baseline): p50 ${r.hist.percentileMs(50).toFixed(2)} ms, p99 ${r.hist.percentileMs(99).toFixed(2)} ms (${r.histSteady.percentileMs(99).toFixed(2)} ms from ${spec.steadyAfterMs / 1000} s on), max ${(r.hist.max / 1000).toFixed(1)} ms, lost ${r.lost}/${r.sent}, server CPU ${r.serverCpuS.toFixed(2)} s`,
        );
    });
    const u = s3.unauth;
    ctx.log(
      `flood 3: unauthenticated connections: ${u.open} open at the end, ${u.opened} opened in total, ${u.closedByServer} closed by the server (${describeCounts(u.conditions)}), ${u.connectErrors} connect errors`,
    );
    figs.push(
      {
        key: 'flood.3.unauth_open',
        label: `flood 3: unauthenticated connections open at the end (of ${o.floodUnauth})`,
        unit: '',
        value: u.open,
        better: 'info',
      },
      {
        key: 'flood.3.unauth_closed',
        label: `flood 3: unauthenticated connections closed by the server (${describeCounts(u.conditions)}; reopened after 200 ms)`,
        unit: '',
        value: u.closedByServer,
        better: 'info',
      },
    );
    figs.push({
      key: 'flood.gen_cpu_s',
      label: 'flood: generator CPU-seconds, both workers, whole run',
      unit: 's',
      value: genGood + genFlood,
      better: 'info',
    });
    return figs;
  } finally {
    await floodPool.stop();
    await goodPool.stop();
  }
}
