/**
 * `idle`: memory per authenticated session. For each repetition the server is restarted, its RSS
 * (summed over its process tree, from /proc) is read at rest, then C sessions are logged in (C rising
 * through `--idle-counts`) and held; after a settle period RSS is read again: (RSS(C) − RSS(0)) / C.
 * Large counts are spread over several worker processes (≤ 9000 sockets each, under the 20,000
 * open-files limit) and over four 127.0.0.x source addresses per worker.
 */
import { proc, range, sleep, startPool, loginAll, type Figure, type ScenarioContext } from './context.js';

const PER_WORKER = 9000;

export async function runIdle(ctx: ScenarioContext): Promise<Figure[]> {
  const o = ctx.opts;
  const counts = [...o.idleCounts].sort((a, b) => a - b).filter((c) => c <= ctx.plainUsers);
  const max = counts[counts.length - 1] ?? 0;
  ctx.target = await ctx.restart();
  await sleep(2000);
  const watch = proc(ctx);
  const rss0 = watch.rss();
  const pool = await startPool(ctx, Math.max(o.workers, Math.ceil(max / PER_WORKER)), o.tls);
  const figs: Figure[] = [];
  try {
    let have = 0;
    const gen0 = await pool.cpuSeconds();
    for (const c of counts) {
      const n = c - have;
      const r = await loginAll(ctx, pool, range(have + 1, n), 50);
      have = c;
      await sleep(3000);
      const rss = watch.rss();
      ctx.log(
        `idle: ${c} sessions online (${r.failed} failed, ${(n / (r.elapsedMs / 1000)).toFixed(0)} logins/s), server RSS ${(rss / 2 ** 20).toFixed(1)} MiB`,
      );
      figs.push({
        key: `idle.kib_per_session@${c}`,
        label: `idle: server KiB per session at C=${c}`,
        unit: 'KiB',
        value: (rss - rss0) / c / 1024,
        better: 'lower',
      });
      if (r.failed > 0)
        figs.push({
          key: `idle.failed@${c}`,
          label: `idle: failed logins at C=${c}`,
          unit: '',
          value: r.failed,
          better: 'zero',
        });
    }
    const counters = await pool.all(() => ({ cmd: 'counters' }), 30_000);
    const genRss = counters.reduce((a, r) => a + ((r['rssBytes'] as number) ?? 0), 0);
    figs.push({
      key: 'idle.server_rss_mib',
      label: `idle: server RSS at C=${max}`,
      unit: 'MiB',
      value: watch.rss() / 2 ** 20,
      better: 'lower',
    });
    figs.push({
      key: 'idle.gen_rss_mib',
      label: `idle: generator RSS at C=${max} (all workers)`,
      unit: 'MiB',
      value: genRss / 2 ** 20,
      better: 'info',
    });
    figs.push({
      key: 'idle.gen_cpu_s',
      label: 'idle: generator CPU-seconds for all logins',
      unit: 's',
      value: (await pool.cpuSeconds()) - gen0,
      better: 'info',
    });
  } finally {
    await pool.stop();
  }
  return figs;
}
