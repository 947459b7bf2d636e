/**
 * `roster-login`: users whose rosters hold `--roster-size` contacts (subscription both; cliques of
 * size+1 users, so every contact's roster holds the user too) log in with K in flight: roster get,
 * initial presence (the server probes each contact and broadcasts to those online). Everyone stays
 * online until the round ends, so later logins fan out to more online contacts — the busy-morning
 * case. Reported: logins/s, server CPU per login, presence stanzas received per login.
 */
import { Histogram } from '../engine/histogram.js';
import { proc, range, sleep, startPool, type Figure, type ScenarioContext, quiesce } from './context.js';

export async function runRosterLogin(ctx: ScenarioContext): Promise<Figure[]> {
  const o = ctx.opts;
  await quiesce(ctx);
  const pool = await startPool(ctx, o.workers, o.tls);
  const watch = proc(ctx);
  try {
    const ids = range(ctx.rosterBase + 1, o.rosterUsers);
    const parts = pool.split(ids);
    await pool.all(() => ({ cmd: 'resetCounters' }), 30_000);
    const cpu0 = await watch.cpu();
    const gen0 = await pool.cpuSeconds();
    const t0 = performance.now();
    const kPer = Math.max(1, Math.round(o.rosterK / pool.size));
    const replies = await pool.all(
      (w) => ({ cmd: 'login', ids: parts[w]!, concurrency: kPer, rosterGet: true }),
      o.loginTimeoutMs + ids.length * 100 + 60_000,
    );
    const wall = (performance.now() - t0) / 1000;
    const cpuLogin = (await watch.cpu()) - cpu0;
    const genCpu = (await pool.cpuSeconds()) - gen0;
    await sleep(o.drainSeconds * 1000);
    const counters = await pool.all(() => ({ cmd: 'counters' }), 30_000);
    const presences = counters.reduce((a, r) => a + ((r['presences'] as number) ?? 0), 0);
    const cpuAll = (await watch.cpu()) - cpu0;
    let ok = 0;
    let failed = 0;
    const hist = new Histogram();
    for (const r of replies) {
      ok += (r['ok'] as number) ?? 0;
      failed += (r['failed'] as number) ?? 0;
      if (r['hist']) hist.merge(r['hist'] as { counts: number[]; max: number });
    }
    const errors = replies.flatMap((r) => (r['errors'] as string[]) ?? []);
    if (errors.length > 0) ctx.log(`roster-login errors (first): ${errors.slice(0, 3).join(' | ')}`);
    // With cliques of s+1 all online in the end, each user receives one presence per contact (the
    // answer to its probe if the contact was online first, else the contact's broadcast) plus the
    // echo of its own: s+1 presences per user.
    const expected = ok * (o.rosterSize + 1);
    return [
      {
        key: 'roster.rate',
        label: `roster-login: logins/s (${o.rosterSize}-item rosters, K=${o.rosterK})`,
        unit: '/s',
        value: ok / wall,
        better: 'higher',
      },
      {
        key: 'roster.cpu_ms',
        label: 'roster-login: server CPU ms per login (incl. presence fan-out)',
        unit: 'ms',
        value: ok > 0 ? (cpuAll * 1000) / ok : NaN,
        better: 'lower',
      },
      {
        key: 'roster.p50',
        label: 'roster-login: login latency p50',
        unit: 'ms',
        value: hist.percentileMs(50),
        better: 'lower',
      },
      {
        key: 'roster.p99',
        label: 'roster-login: login latency p99',
        unit: 'ms',
        value: hist.percentileMs(99),
        better: 'lower',
      },
      {
        key: 'roster.presences_per_login',
        label: `roster-login: presences received per login (expected ${o.rosterSize + 1})`,
        unit: '',
        value: ok > 0 ? presences / ok : NaN,
        better: 'info',
      },
      {
        key: 'roster.missing_presences',
        label: 'roster-login: presences missing vs expected',
        unit: '',
        value: Math.max(0, expected - presences),
        better: 'zero',
      },
      { key: 'roster.failed', label: 'roster-login: failed logins', unit: '', value: failed, better: 'zero' },
      {
        key: 'roster.server_cores',
        label: 'roster-login: server CPU during logins (cores busy)',
        unit: 'cores',
        value: cpuLogin / wall,
        better: 'info',
      },
      {
        key: 'roster.gen_cores',
        label: 'roster-login: generator CPU during logins (cores busy)',
        unit: 'cores',
        value: genCpu / wall,
        better: 'info',
      },
    ];
  } finally {
    await pool.stop();
  }
}

/** Cliques of `size + 1` consecutive users from `base + 1`: each user has all others of its clique. */
export function cliqueRosters(base: number, users: number, size: number): Map<number, number[]> {
  const m = new Map<number, number[]>();
  const clique = size + 1;
  for (let start = 0; start + clique <= users; start += clique) {
    const ids = range(base + start + 1, clique);
    for (const id of ids)
      m.set(
        id,
        ids.filter((x) => x !== id),
      );
  }
  return m;
}
