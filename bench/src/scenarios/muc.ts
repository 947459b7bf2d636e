/**
 * `muc`: R rooms with K occupants each (XEP-0045). Occupants send `groupchat` messages to their
 * room; every message is delivered to all K occupants (the sender gets its reflection). Reported:
 * delivered groupchat stanzas/s at saturation, per server CPU-second, latency at 50 % of saturation,
 * lost deliveries. All occupants of a room live in one worker process.
 */
import {
  proc,
  range,
  sleep,
  startPool,
  loginAll,
  type Figure,
  type ScenarioContext,
  quiesce,
} from './context.js';
import { phase } from './traffic.js';

export async function runMuc(ctx: ScenarioContext): Promise<Figure[]> {
  const o = ctx.opts;
  const k = o.mucOccupants;
  const roomsN = Math.min(o.mucRooms, Math.floor(ctx.plainUsers / k));
  await quiesce(ctx);
  const pool = await startPool(ctx, o.workers, o.tls);
  const watch = proc(ctx);
  try {
    const ids = range(1, roomsN * k);
    // Room r's occupants: users whose id % workers is the room's worker, so the room stays in one worker.
    const perWorker = pool.split(ids);
    const rooms: { jid: string; members: number[]; worker: number }[] = [];
    let r = 0;
    for (let w = 0; w < pool.size; w++) {
      const list = perWorker[w]!;
      for (let i = 0; i + k <= list.length; i += k)
        rooms.push({
          jid: `bench${ctx.phaseSeq.n}r${r++}@${ctx.target.mucDomain}`,
          members: list.slice(i, i + k),
          worker: w,
        });
    }
    await loginAll(
      ctx,
      pool,
      rooms.flatMap((x) => x.members),
      50,
    );
    const joins = await pool.all(
      (w) => ({
        cmd: 'joinRooms',
        rooms: rooms.filter((x) => x.worker === w).map(({ jid, members }) => ({ jid, members })),
        concurrency: 10,
      }),
      300_000,
    );
    const joinFailed = joins.reduce((a, x) => a + ((x['failed'] as number) ?? 0), 0);
    if (joinFailed > 0)
      throw new Error(
        `${joinFailed} rooms could not be joined: ${joins
          .flatMap((x) => (x['errors'] as string[]) ?? [])
          .slice(0, 3)
          .join(' | ')}`,
      );
    await sleep(1000);
    const base = { mode: 'muc' as const, bodyPad: o.bodyPad, drainMs: o.drainSeconds * 1000 };
    await phase(ctx, pool, watch, { ...base, window: o.mucWindow, durationMs: 2000 });
    const sat = await phase(ctx, pool, watch, {
      ...base,
      window: o.mucWindow,
      durationMs: o.mucSeconds * 1000,
    });
    const satDeliveries = sat.receivedInPhase / sat.wallS;
    // Open loop: messages per second (each yields K deliveries) at half the saturated delivery rate.
    const halfMsgs = Math.max(1, satDeliveries / k / 2);
    const lat = await phase(ctx, pool, watch, { ...base, durationMs: o.mucSeconds * 1000 }, () => ({
      rate: halfMsgs / pool.size,
    }));
    return [
      {
        key: 'muc.rate',
        label: `muc: delivered stanzas/s at saturation (${rooms.length} rooms × ${k})`,
        unit: '/s',
        value: satDeliveries,
        better: 'higher',
      },
      {
        key: 'muc.per_cpu_s',
        label: 'muc: deliveries per server CPU-second',
        unit: 'stanzas',
        value: sat.received / sat.serverCpuS,
        better: 'higher',
      },
      {
        key: 'muc.p50',
        label: 'muc: latency p50 at 50% of saturation',
        unit: 'ms',
        value: lat.hist.percentileMs(50),
        better: 'lower',
      },
      {
        key: 'muc.p99',
        label: 'muc: latency p99 at 50% of saturation',
        unit: 'ms',
        value: lat.hist.percentileMs(99),
        better: 'lower',
      },
      {
        key: 'muc.lost',
        label: 'muc: lost deliveries',
        unit: '',
        value: sat.lost + lat.lost,
        better: 'zero',
      },
      {
        key: 'muc.server_cores',
        label: 'muc: server CPU at saturation (cores busy)',
        unit: 'cores',
        value: sat.serverCpuS / sat.wallS,
        better: 'info',
      },
      {
        key: 'muc.gen_cores',
        label: 'muc: generator CPU at saturation (cores busy)',
        unit: 'cores',
        value: sat.genCpuS / sat.wallS,
        better: 'info',
      },
    ];
  } finally {
    await pool.stop();
  }
}
