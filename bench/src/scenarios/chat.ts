/**
 * `chat`: C online users send one-to-one `type='chat'` messages to random online users (bare JID).
 * Reported: delivered messages/s at saturation, delivered messages per server CPU-second (from
 * /proc/PID/stat), latency p50/p95/p99 at 50 % of saturation, lost messages (sent − received after
 * the drain; must be 0). The timestamp travels in the body; sender and recipient are sessions of the
 * same worker process, so latency is measured on one monotonic clock.
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

export async function runChat(ctx: ScenarioContext): Promise<Figure[]> {
  const o = ctx.opts;
  const n = Math.min(o.chatUsers, ctx.plainUsers);
  await quiesce(ctx);
  const pool = await startPool(ctx, o.workers, o.tls);
  const watch = proc(ctx);
  try {
    await loginAll(ctx, pool, range(1, n), 50);
    await sleep(1000);
    const base = { mode: 'chat' as const, bodyPad: o.bodyPad, drainMs: o.drainSeconds * 1000 };
    // Warm-up (JIT, server caches), not reported.
    await phase(ctx, pool, watch, { ...base, window: o.chatWindow, durationMs: 2000 });
    const sat = await phase(ctx, pool, watch, {
      ...base,
      window: o.chatWindow,
      durationMs: o.chatSeconds * 1000,
    });
    const satRate = sat.receivedInPhase / sat.wallS;
    const half = Math.max(1, satRate / 2);
    const lat = await phase(ctx, pool, watch, { ...base, durationMs: o.chatSeconds * 1000 }, () => ({
      rate: half / pool.size,
    }));
    // Each server's 50% is its own: a faster server is measured at a higher rate. The same
    // absolute rate on every server isolates the latency the server adds.
    const common =
      o.chatCommonRate > 0 && o.chatCommonRate < satRate
        ? await phase(ctx, pool, watch, { ...base, durationMs: o.chatSeconds * 1000 }, () => ({
            rate: o.chatCommonRate / pool.size,
          }))
        : undefined;
    const commonFigures: Figure[] = common
      ? [
          {
            key: 'chat.common_p50',
            label: `chat: latency p50 at ${o.chatCommonRate} msg/s (same rate on every server)`,
            unit: 'ms',
            value: common.hist.percentileMs(50),
            better: 'lower',
          },
          {
            key: 'chat.common_p99',
            label: `chat: latency p99 at ${o.chatCommonRate} msg/s (same rate on every server)`,
            unit: 'ms',
            value: common.hist.percentileMs(99),
            better: 'lower',
          },
          {
            key: 'chat.common_server_cores',
            label: `chat: server CPU at ${o.chatCommonRate} msg/s (cores busy)`,
            unit: 'cores',
            value: common.serverCpuS / common.wallS,
            better: 'info',
          },
          {
            key: 'chat.common_gen_cores',
            label: `chat: generator CPU at ${o.chatCommonRate} msg/s (cores busy)`,
            unit: 'cores',
            value: common.genCpuS / common.wallS,
            better: 'info',
          },
        ]
      : [];
    return [
      {
        key: 'chat.rate',
        label: `chat: delivered msg/s at saturation (C=${n})`,
        unit: '/s',
        value: satRate,
        better: 'higher',
      },
      {
        key: 'chat.per_cpu_s',
        label: 'chat: delivered msg per server CPU-second',
        unit: 'msg',
        value: sat.received / sat.serverCpuS,
        better: 'higher',
      },
      {
        key: 'chat.p50',
        label: 'chat: latency p50 at 50% of saturation',
        unit: 'ms',
        value: lat.hist.percentileMs(50),
        better: 'lower',
      },
      {
        key: 'chat.p95',
        label: 'chat: latency p95 at 50% of saturation',
        unit: 'ms',
        value: lat.hist.percentileMs(95),
        better: 'lower',
      },
      {
        key: 'chat.p99',
        label: 'chat: latency p99 at 50% of saturation',
        unit: 'ms',
        value: lat.hist.percentileMs(99),
        better: 'lower',
      },
      ...commonFigures,
      {
        key: 'chat.lost',
        label: 'chat: lost messages (sent − received)',
        unit: '',
        value: sat.lost + lat.lost + (common?.lost ?? 0),
        better: 'zero',
      },
      {
        key: 'chat.half_rate',
        label: 'chat: achieved rate in the latency phase',
        unit: '/s',
        value: lat.receivedInPhase / lat.wallS,
        better: 'info',
      },
      {
        key: 'chat.half_server_cores',
        label: 'chat: server CPU in the latency phase (cores busy)',
        unit: 'cores',
        value: lat.serverCpuS / lat.wallS,
        better: 'info',
      },
      {
        key: 'chat.half_gen_cores',
        label: 'chat: generator CPU in the latency phase (cores busy)',
        unit: 'cores',
        value: lat.genCpuS / lat.wallS,
        better: 'info',
      },
      {
        key: 'chat.server_cores',
        label: 'chat: server CPU at saturation (cores busy)',
        unit: 'cores',
        value: sat.serverCpuS / sat.wallS,
        better: 'info',
      },
      ...(watch.extraLabel
        ? [
            {
              key: 'chat.extra_cores',
              label: `chat: of the server CPU at saturation, ${watch.extraLabel.replace(/ of database .*/, '')} (cores busy)`,
              unit: 'cores',
              value: sat.extraCpuS / sat.wallS,
              better: 'info' as const,
            },
          ]
        : []),
      {
        key: 'chat.gen_cores',
        label: 'chat: generator CPU at saturation (cores busy)',
        unit: 'cores',
        value: sat.genCpuS / sat.wallS,
        better: 'info',
      },
    ];
  } finally {
    await pool.stop();
  }
}
