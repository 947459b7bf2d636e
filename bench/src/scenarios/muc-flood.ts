/**
 * `muc-flood`: does one occupant flooding a big room slow down everyone else? A room of K
 * occupants (`--muc-flood-occupants`, default 200), one of whom (not the owner) writes groupchat
 * messages as fast as its socket accepts, so the server's inbound limits decide how many it reads
 * and the room's fan-out decides what that costs. Meanwhile P well-behaved pairs outside the room
 * exchange one-to-one messages at a modest fixed rate (open loop), through two phases of equal
 * length: (1) baseline, room quiet; (2) the flood. Per phase: latency p50/p95/p99 of the pairs'
 * messages, lost messages, server CPU-seconds, and the groupchat stanzas the room's occupants
 * received per second (the fan-out the flood achieved). Run against the server's default limits.
 *
 * Generator layout: the pairs in one worker process, the room (flooder included) in another, from
 * other source addresses (127.0.0.100…).
 */
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

export async function runMucFlood(ctx: ScenarioContext): Promise<Figure[]> {
  const o = ctx.opts;
  const k = o.mucFloodOccupants;
  const pairs = Math.max(1, Math.min(o.floodPairs, Math.floor((ctx.plainUsers - k) / 2)));
  const good = range(1, pairs * 2);
  const members = range(pairs * 2 + 1, k);
  const flooder = members[1]!;
  const room = `flood${ctx.phaseSeq.n}@${ctx.target.mucDomain}`;
  await quiesce(ctx);
  const goodPool = await startPool(ctx, 1, o.tls);
  const roomPool = await startPool(ctx, 1, o.tls, 100);
  const watch = proc(ctx);
  const received = async (): Promise<number> => {
    const [r] = (await roomPool.all(() => ({ cmd: 'counters' }), 30_000)) as [Reply];
    return (r['messagesIn'] as number) ?? 0;
  };
  try {
    await loginAll(ctx, goodPool, good, 20);
    await loginAll(ctx, roomPool, members, 20);
    const [joined] = (await roomPool.all(
      () => ({ cmd: 'joinRooms', rooms: [{ jid: room, members }], concurrency: 1 }),
      300_000,
    )) as [Reply];
    if (((joined['failed'] as number) ?? 0) > 0)
      throw new Error(`the room could not be joined: ${((joined['errors'] as string[]) ?? []).join(' | ')}`);
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
    const phases: { name: string; r: PhaseResult; fanout: number }[] = [];
    ctx.log(
      `muc-flood: ${pairs} pairs × ${o.floodPairRate} msg/s, room of ${k}, ${o.floodSeconds} s per phase`,
    );
    let n0 = await received();
    let t0 = performance.now();
    let r = await phase(ctx, goodPool, watch, spec);
    phases.push({
      name: 'baseline',
      r,
      fanout: ((await received()) - n0) / ((performance.now() - t0) / 1000),
    });

    ctx.log(`muc-flood: phase 2, occupant user${flooder} floods the room`);
    await roomPool.all(() => ({ cmd: 'mucFloodStart', id: flooder, room }), 30_000);
    n0 = await received();
    t0 = performance.now();
    r = await phase(ctx, goodPool, watch, spec);
    phases.push({ name: 'flood', r, fanout: ((await received()) - n0) / ((performance.now() - t0) / 1000) });
    await roomPool.all(() => ({ cmd: 'floodStop' }), 30_000);

    const figs: Figure[] = [];
    const base = phases[0]!.r.hist;
    phases.forEach(({ name, r, fanout }, i) => {
      const key = `muc_flood.${i + 1}`;
      const label = `muc-flood ${i + 1} (${name})`;
      const p = (q: number): number => r.hist.percentileMs(q);
      ctx.log(
        `${label}: p50 ${p(50).toFixed(2)} ms, p95 ${p(95).toFixed(2)} ms, p99 ${p(99).toFixed(2)} ms, lost ${r.lost}/${r.sent}, server CPU ${r.serverCpuS.toFixed(2)} s, room deliveries ${fanout.toFixed(0)}/s`,
      );
      for (const q of [50, 95, 99])
        figs.push({
          key: `${key}.p${q}`,
          label: `${label}: 1:1 chat latency p${q}`,
          unit: 'ms',
          value: p(q),
          better: 'lower',
        });
      figs.push(
        {
          key: `${key}.p50_ratio`,
          label: `${label}: p50 / baseline p50`,
          unit: '×',
          value: p(50) / base.percentileMs(50),
          better: 'lower',
        },
        {
          key: `${key}.lost`,
          label: `${label}: lost messages (sent ${r.sent})`,
          unit: '',
          value: r.lost,
          better: 'zero',
        },
        {
          key: `${key}.server_cpu_s`,
          label: `${label}: server CPU-seconds (phase + drain)`,
          unit: 's',
          value: r.serverCpuS,
          better: 'info',
        },
        {
          key: `${key}.room_deliveries_s`,
          label: `${label}: groupchat stanzas received by the room's occupants`,
          unit: '/s',
          value: fanout,
          better: 'info',
        },
      );
    });
    return figs;
  } finally {
    await roomPool.stop();
    await goodPool.stop();
  }
}
