// `natter serve --workers 2` scraped as Prometheus does: the workers share the admin port, so each
// scrape reaches whichever worker accepts it; that worker asks the primary, which gathers every
// worker's metrics. Each scrape reports the whole machine, every series labelled with its worker's
// node; a worker that does not answer is left out after 2 s; a killed worker is restarted and
// counted, and no counter series goes backwards.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer } from '../support/test-server.js';
import { TestClient, type Target } from '../support/test-client.js';
import { ServeProcess, type LogLine } from '../support/natter-process.js';

const PW = 'workers-metrics-pw';
const SESSIONS = 6;

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text scrape (comments and HELP/TYPE lines skipped). */
function samples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !line) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: m[3] === '+Inf' ? Infinity : Number(m[3]) });
  }
  return out;
}

const key = (s: Sample) =>
  `${s.name}{${Object.entries(s.labels)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join(',')}}`;

/** The sum of the samples of `name` whose labels include `labels`. */
function total(list: Sample[], name: string, labels: Record<string, string> = {}): number {
  return list
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);
}

function one(list: Sample[], name: string): number {
  const found = list.filter((s) => s.name === name);
  assert.equal(found.length, 1, `one ${name} sample`);
  return found[0]!.value;
}

/** Families whose samples only grow: counters, and histograms' buckets, counts and sums. */
function monotonicFamilies(text: string): Set<string> {
  const out = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (counter|histogram)$/gm)) {
    if (m[2] === 'counter') out.add(m[1]!);
    else for (const suffix of ['_bucket', '_count', '_sum']) out.add(m[1]! + suffix);
  }
  return out;
}

/** GET /metrics over a new connection (no keep-alive: node:cluster hands each one to a worker in turn). */
function scrape(port: number, timeoutMs = 10_000): Promise<{ status: number; body: string; ms: number }> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, ms: Date.now() - start }));
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer to a scrape within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** A console request over a new connection (node:cluster hands each one to a worker in turn). */
function consoleRequest(
  port: number,
  path: string,
  opts: { cookie?: string; body?: unknown; localAddress?: string } = {},
): Promise<{ status: number; body: Record<string, unknown>; cookie?: string }> {
  const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        agent: false,
        ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
        method: body === undefined ? 'GET' : 'POST',
        headers: {
          origin: `http://127.0.0.1:${port}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(opts.cookie ? { cookie: opts.cookie } : {}),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          const set = res.headers['set-cookie']?.[0];
          resolve({
            status: res.statusCode ?? 0,
            body: JSON.parse(text || '{}') as Record<string, unknown>,
            ...(set ? { cookie: set.split(';')[0]! } : {}),
          });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

let dir: string;
let server: ServeProcess;
let adminPort = 0;
const clients: TestClient[] = [];

/** The latest "worker ready" line of each worker slot. */
function workers(): Map<number, { node: string; pid: number }> {
  const out = new Map<number, { node: string; pid: number }>();
  for (const l of server.lines)
    if (l.msg === 'worker ready')
      out.set(l.worker as number, { node: l.node as string, pid: l.pid as number });
  return out;
}

/** Per node, the sessions bound on it since line `from` (from the log). */
function boundPerNode(from = 0): Map<string, number> {
  const out = new Map<string, number>();
  for (const l of server.lines.slice(from))
    if (l.msg === 'session bound') out.set(l.node as string, (out.get(l.node as string) ?? 0) + 1);
  return out;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'natter-workers-metrics-'));
  const setup = await startTestServer({}, { dataDir: dir });
  await setup.addUser('romeo', PW);
  await setup.stop();
  const configFile = join(dir, 'natter.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      hosts: ['localhost'],
      dataDir: dir,
      listeners: [
        { type: 'c2s', port: 0, host: '127.0.0.1' },
        { type: 'admin', port: 0, host: '127.0.0.1' },
      ],
      s2s: { enabled: false },
      admins: ['romeo@localhost'],
      modules: { ping: { idleMs: 0 } },
      log: { level: 'info' },
    }),
  );
  server = await ServeProcess.start(configFile, ['--workers', '2'], 'natter started with workers');
  const ready = server.lines.find((l) => l.msg === 'worker ready') as LogLine & {
    ports: { c2s: number; admin: number };
  };
  adminPort = ready.ports.admin;
  const target: Target = { domain: 'localhost', port: () => ready.ports.c2s };
  // Connections are handed to the workers in turn: several in a row land on both.
  for (let i = 1; i <= SESSIONS; i++)
    clients.push(await TestClient.login(target, 'romeo', PW, { resource: `r${i}` }));
  await server.waitFor(
    () => [...boundPerNode().values()].reduce((a, b) => a + b, 0) === SESSIONS,
    0,
    10_000,
    'every session bound',
  );
});

after(async () => {
  for (const c of clients) c.kill();
  const code = await server.stop();
  rmSync(dir, { recursive: true, force: true });
  assert.equal(code, 0, `the primary exits cleanly on SIGTERM\n${server.text.slice(-3000)}`);
});

describe('natter serve --workers 2: /metrics reports the whole machine', () => {
  test('each of several scrapes, whichever worker takes it, has every session and both workers’ series', async () => {
    const w = workers();
    const nodes = [w.get(1)!.node, w.get(2)!.node];
    const bound = boundPerNode();
    assert.deepEqual([...bound.keys()].sort(), [...nodes].sort(), 'sessions landed on both workers');
    const dashboard = readFileSync(
      new URL('../../../../docs/grafana/natter-dashboard.json', import.meta.url),
      'utf8',
    );
    const plotted = new Set(dashboard.match(/natter_[a-z0-9_]+/g));

    for (let i = 0; i < 8; i++) {
      const { status, body } = await scrape(adminPort);
      assert.equal(status, 200);
      const s = samples(body);
      assert.equal(total(s, 'natter_sessions', { state: 'live' }), SESSIONS, body.slice(0, 2000));
      for (const node of nodes) {
        assert.equal(
          total(s, 'natter_sessions', { state: 'live', node }),
          bound.get(node),
          `sessions of ${node}`,
        );
        // Default metrics too, the process start time included (prom-client's aggregator would omit it).
        for (const name of ['natter_process_resident_memory_bytes', 'natter_process_start_time_seconds'])
          assert.equal(
            s.filter((x) => x.name === name && x.labels.node === node).length,
            1,
            `${name} of ${node}`,
          );
      }
      assert.deepEqual(
        [...new Set(s.filter((x) => x.name === 'natter_sessions').map((x) => x.labels.node))].sort(),
        [...nodes].sort(),
      );
      // The primary's facts.
      assert.equal(one(s, 'natter_workers_alive'), 2);
      assert.equal(one(s, 'natter_worker_restarts_total'), 0);
      assert.equal(one(s, 'natter_metrics_workers_missing'), 0);
      // One family each, as Prometheus requires: a metric has one TYPE line, whatever the workers.
      const typed = [...body.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]);
      assert.equal(new Set(typed).size, typed.length, 'no metric is typed twice');
      // Every metric the dashboard plots (a counter nothing has incremented yet has no sample).
      for (const n of plotted)
        assert.match(
          body,
          new RegExp(`^(${n}[{ ]|# TYPE ${n} )`, 'm'),
          `${n} (plotted by the dashboard) is scraped`,
        );
    }
  });

  test('the web console: a login on one worker holds on both; its sessions page lists the whole machine; a logout ends it on both', async () => {
    const login = await consoleRequest(adminPort, '/console/api/login', {
      body: { jid: 'romeo@localhost', password: PW },
    });
    assert.equal(login.status, 200, JSON.stringify(login.body));
    const cookie = login.cookie!;
    // Eight requests over new connections: both workers take some (in turn).
    for (let i = 0; i < 8; i++) {
      const r = await consoleRequest(adminPort, '/console/api/sessions', { cookie });
      assert.equal(r.status, 200, `request ${i + 1}: ${JSON.stringify(r.body)}`);
      assert.equal((r.body.sessions as unknown[]).length, SESSIONS);
    }
    const out = await consoleRequest(adminPort, '/console/api/logout', {
      cookie,
      body: {},
    });
    assert.equal(out.status, 403, 'a logout needs the CSRF token');
    const csrf = login.body.csrf as string;
    const logout = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: adminPort,
          path: '/console/api/logout',
          method: 'POST',
          agent: false,
          headers: {
            origin: `http://127.0.0.1:${adminPort}`,
            'content-type': 'application/json',
            'x-csrf-token': csrf,
            cookie,
          },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end('{}');
    });
    assert.equal(logout, 200);
    for (let i = 0; i < 4; i++)
      assert.equal((await consoleRequest(adminPort, '/console/api/sessions', { cookie })).status, 401);
  });

  test('failed console logins count on every worker: the delay holds whichever worker takes the next attempt', async () => {
    // From another loopback address (another client machine), so that the delay touches no other test.
    const attempt = () =>
      consoleRequest(adminPort, '/console/api/login', {
        body: { jid: 'romeo@localhost', password: 'not the password' },
        localAddress: '127.0.0.7',
      });
    // New connections go to the workers in turn: the third reaches the worker that took the
    // first, which on its own would have counted one failure (free) and checked it.
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await attempt()).status);
    assert.deepEqual(statuses, [401, 401, 429]);
  });

  test('a worker that does not answer (SIGSTOP) is left out after 2 s, and the scrape says so', async () => {
    const stopped = workers().get(2)!;
    const bound = boundPerNode();
    process.kill(stopped.pid, 'SIGSTOP');
    try {
      // A connection handed to the stopped worker waits for it; the next one goes to the other
      // worker. Two at once: the first answer is the other worker's.
      const attempts = [scrape(adminPort, 15_000), scrape(adminPort, 15_000)];
      for (const a of attempts) a.catch(() => undefined);
      const first = await Promise.any(attempts);
      assert.equal(first.status, 200);
      // The primary waits 2 s for the stopped worker, then answers without it.
      assert.ok(first.ms >= 1900 && first.ms < 5000, `answered in ${first.ms} ms`);
      const s = samples(first.body);
      assert.equal(one(s, 'natter_metrics_workers_missing'), 1);
      assert.ok(
        first.body.startsWith(`# natter: worker 2 (${stopped.node}) did not answer within 2000 ms`),
        first.body.slice(0, 300),
      );
      assert.equal(s.filter((x) => x.labels.node === stopped.node).length, 0);
      const other = workers().get(1)!.node;
      assert.equal(total(s, 'natter_sessions', { state: 'live' }), bound.get(other));
    } finally {
      process.kill(stopped.pid, 'SIGCONT');
    }
    // Once it runs again, scrapes are whole again.
    const end = Date.now() + 20_000;
    while (one(samples((await scrape(adminPort)).body), 'natter_metrics_workers_missing') !== 0)
      assert.ok(Date.now() < end, 'the resumed worker answers again');
  });

  test('kill -9 of a worker: scrapes do not hang, the restart is counted, no counter series goes backwards', async () => {
    const before = await scrape(adminPort);
    assert.equal(one(samples(before.body), 'natter_metrics_workers_missing'), 0);
    const old = workers().get(2)!;
    const kept = workers().get(1)!.node;
    const keptSessions = boundPerNode().get(kept)!;
    const mark = server.mark();
    process.kill(old.pid, 'SIGKILL');
    await server.waitFor((l) => l.msg === 'a worker died: its sessions are gone; restarting it', mark);

    // While it is dead or starting: an answer at once, without its series (and its sessions are gone).
    const during = await scrape(adminPort);
    assert.equal(during.status, 200);
    assert.ok(during.ms < 5000, `answered in ${during.ms} ms`);
    assert.equal(total(samples(during.body), 'natter_sessions', { state: 'live' }), keptSessions);

    const ready = await server.waitFor(
      (l) => l.msg === 'worker ready' && l.worker === 2,
      mark,
      60_000,
      'worker 2 to be restarted',
    );
    assert.notEqual(ready.pid, old.pid);
    const after = await scrape(adminPort);
    const s = samples(after.body);
    assert.equal(one(s, 'natter_worker_restarts_total'), 1);
    assert.equal(one(s, 'natter_workers_alive'), 2);
    assert.equal(one(s, 'natter_metrics_workers_missing'), 0);
    assert.equal(total(s, 'natter_sessions', { state: 'live' }), keptSessions);
    const nodes = new Set(s.filter((x) => x.name === 'natter_sessions').map((x) => x.labels.node));
    assert.deepEqual([...nodes].sort(), [kept, ready.node as string].sort());

    // Each worker has series of its own (its `node`): the restarted worker's start from zero as new
    // series, the dead one's end. No series decreases, so Prometheus sees no counter reset, and
    // `sum(rate(…))` stays right. (Summed over the workers, a counter would drop by the dead
    // worker's total here, which Prometheus would read as a reset and then a jump.)
    const monotonic = monotonicFamilies(after.body);
    const earlier = new Map(samples(before.body).map((x) => [key(x), x]));
    let compared = 0;
    for (const x of s) {
      if (!monotonic.has(x.name)) continue;
      const was = earlier.get(key(x));
      if (!was) continue;
      assert.ok(x.value >= was.value, `${key(x)} went from ${was.value} to ${x.value}`);
      compared++;
    }
    assert.ok(compared > 20, `the kept worker's counters were compared (${compared})`);
    assert.equal(samples(before.body).filter((x) => x.labels.node === old.node).length > 0, true);
    assert.equal(s.filter((x) => x.labels.node === old.node).length, 0, 'the dead worker’s series are gone');
    // The machine-wide sum of stanzas received did drop: the reason series are not summed.
    assert.ok(
      total(s, 'natter_stanzas_total', { direction: 'in' }) <
        total(samples(before.body), 'natter_stanzas_total', { direction: 'in' }),
    );
  });
});
