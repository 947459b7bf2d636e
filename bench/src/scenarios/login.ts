/**
 * `login`: sessions established per second with K logins in flight. One login = TCP connect,
 * STARTTLS (or direct TLS / none, `--login-tls`), SASL SCRAM, resource binding, initial presence,
 * and the answer to a ping sent right after the presence; then the client closes the stream.
 * A warm-up pass logs every pool user in once so that both sides have their SCRAM keys cached.
 */
import { Histogram } from '../engine/histogram.js';
import { proc, range, startPool, type Figure, type ScenarioContext, quiesce } from './context.js';

export async function runLogin(ctx: ScenarioContext): Promise<Figure[]> {
  const o = ctx.opts;
  await quiesce(ctx);
  const pool = await startPool(ctx, o.workers, o.loginTls);
  const watch = proc(ctx);
  try {
    const ids = range(1, Math.min(o.loginPool, ctx.plainUsers));
    const parts = pool.split(ids);
    const kPer = Math.max(1, Math.round(o.loginK / pool.size));
    // Warm-up: each user once (fills the generator's SCRAM cache), then discarded.
    await pool.all(
      (w) => ({
        cmd: 'loginLoop',
        ids: parts[w]!,
        concurrency: kPer,
        durationMs: Math.min(10_000, 1000 + ids.length * 10),
        rosterGet: false,
      }),
      120_000,
    );
    const cpu0 = await watch.cpu();
    const gen0 = await pool.cpuSeconds();
    const t0 = performance.now();
    const replies = await pool.all(
      (w) => ({
        cmd: 'loginLoop',
        ids: parts[w]!,
        concurrency: kPer,
        durationMs: o.loginSeconds * 1000,
        rosterGet: false,
      }),
      o.loginSeconds * 1000 + 120_000,
    );
    const wall = (performance.now() - t0) / 1000;
    const serverCpu = (await watch.cpu()) - cpu0;
    const genCpu = (await pool.cpuSeconds()) - gen0;
    const hist = new Histogram();
    let ok = 0;
    let failed = 0;
    const errors: string[] = [];
    for (const r of replies) {
      ok += r['ok'] as number;
      failed += r['failed'] as number;
      hist.merge(r['hist'] as { counts: number[]; max: number });
      errors.push(...((r['errors'] as string[]) ?? []));
    }
    if (errors.length > 0) ctx.log(`login errors (first): ${errors.slice(0, 3).join(' | ')}`);
    return [
      {
        key: 'login.rate',
        label: `login: sessions/s (K=${o.loginK}, ${o.loginTls})`,
        unit: '/s',
        value: ok / wall,
        better: 'higher',
      },
      {
        key: 'login.cpu_ms',
        label: 'login: server CPU ms per session',
        unit: 'ms',
        value: ok > 0 ? (serverCpu * 1000) / ok : NaN,
        better: 'lower',
      },
      {
        key: 'login.p50',
        label: 'login: latency p50',
        unit: 'ms',
        value: hist.percentileMs(50),
        better: 'lower',
      },
      {
        key: 'login.p99',
        label: 'login: latency p99',
        unit: 'ms',
        value: hist.percentileMs(99),
        better: 'lower',
      },
      { key: 'login.failed', label: 'login: failed logins', unit: '', value: failed, better: 'zero' },
      {
        key: 'login.server_cores',
        label: 'login: server CPU (cores busy)',
        unit: 'cores',
        value: serverCpu / wall,
        better: 'info',
      },
      {
        key: 'login.gen_cores',
        label: 'login: generator CPU (cores busy)',
        unit: 'cores',
        value: genCpu / wall,
        better: 'info',
      },
    ];
  } finally {
    await pool.stop();
  }
}
