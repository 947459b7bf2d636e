// The admin listener's /metrics (Prometheus text format): what an operator's Prometheus scrapes
// after real traffic: stanzas by stream and kind, routing and storage latency, authentications,
// throttles, sessions, event-loop lag and memory.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { readFileSync } from 'node:fs';
import { xml } from '@natter/xml';
import { startTestServer, type TestServer } from './support/test-server.js';
import { TestClient } from './support/test-client.js';

const PW = 'metrics-password';

function get(
  server: TestServer,
  path: string,
  opts: { method?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: server.port('admin'),
        path,
        method: opts.method ?? 'GET',
        headers: opts.headers,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** The value of one sample, `name{labels}` with the labels in any order; undefined when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = new Map<string, string>();
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)) have.set(l[1]!, l[2]!);
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) return Number(m[3]);
  }
  return undefined;
}

describe('admin listener: /metrics (Prometheus)', () => {
  let server: TestServer;
  const clients: TestClient[] = [];
  before(async () => {
    server = await startTestServer({
      modules: {
        ping: { idleMs: 0 },
        limits: {
          authenticated: { stanzasPerSecond: 40, burstStanzas: 10, bytesPerSecond: 1e7, burstBytes: 1e7 },
        },
      },
    });
    await server.addUser('romeo', PW);
    await server.addUser('juliet', PW);
  });
  after(async () => {
    for (const c of clients) c.kill();
    await server.destroy();
  });

  test('after logins, a failed password, an unknown mechanism and 60 messages, the scrape counts them', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'r', presence: true });
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'j', presence: true });
    clients.push(romeo, juliet);
    const wrong = await TestClient.open(server);
    clients.push(wrong);
    await assert.rejects(wrong.authenticate('romeo', 'not the password', 'SCRAM-SHA-256'), /not-authorized/);
    const odd = await TestClient.open(server);
    clients.push(odd);
    odd.send(xml('auth', { xmlns: 'urn:ietf:params:xml:ns:xmpp-sasl', mechanism: 'X-MADE-UP' }));
    await odd.receive((e) => e.name === 'failure');

    for (let i = 0; i < 60; i++)
      romeo.send(xml('message', { to: 'juliet@localhost/j', type: 'chat' }, xml('body', null, `m${i}`)));
    await juliet.receive((e) => e.name === 'message' && e.getChildText('body') === 'm59', 10_000);

    const res = await get(server, '/metrics');
    assert.equal(res.status, 200);
    assert.match(res.type, /^text\/plain/);
    const t = res.body;
    const at = (name: string, labels?: Record<string, string>) => {
      const v = sample(t, name, labels);
      assert.notEqual(v, undefined, `${name} ${JSON.stringify(labels ?? {})} in:\n${t.slice(0, 3000)}`);
      return v!;
    };
    assert.ok(at('natter_stanzas_total', { direction: 'in', stream: 'c2s', kind: 'message' }) >= 60);
    assert.ok(at('natter_stanzas_total', { direction: 'out', stream: 'c2s', kind: 'message' }) >= 60);
    assert.ok(at('natter_stanzas_total', { direction: 'in', stream: 'c2s', kind: 'iq' }) >= 2); // binds
    assert.ok(at('natter_routing_seconds_count') >= 60);
    assert.ok(at('natter_routing_seconds_bucket', { le: '+Inf' }) >= 60);
    assert.ok(at('natter_storage_query_seconds_count', { result: 'ok' }) > 0);
    assert.ok(at('natter_auth_total', { result: 'success' }) >= 2);
    assert.equal(
      at('natter_auth_total', { result: 'failure', mechanism: 'SCRAM-SHA-256', condition: 'not-authorized' }),
      1,
    );
    // A name the client made up is not a label value (bounded cardinality).
    assert.equal(
      at('natter_auth_total', { result: 'failure', mechanism: 'other', condition: 'invalid-mechanism' }),
      1,
    );
    assert.ok(!t.includes('X-MADE-UP'));
    // 60 stanzas in well under the 10-stanza burst's refill time: the rate limit held romeo back.
    assert.ok(at('natter_throttled_total', { limit: 'stanzas' }) >= 1);
    assert.equal(at('natter_sessions', { state: 'live' }), 2);
    assert.equal(at('natter_sessions', { state: 'hibernated' }), 0);
    assert.equal(at('natter_streams', { kind: 'c2s-negotiating' }), 2);
    assert.ok(at('natter_nodejs_eventloop_lag_seconds') >= 0);
    assert.ok(at('natter_process_resident_memory_bytes') > 0);
  });

  test('every metric the Grafana dashboard in docs/grafana plots is in the scrape', async () => {
    const dashboard = readFileSync(
      new URL('../../../docs/grafana/natter-dashboard.json', import.meta.url),
      'utf8',
    );
    const names = new Set(dashboard.match(/natter_[a-z0-9_]+/g));
    assert.ok(names.size >= 10);
    const t = (await get(server, '/metrics')).body;
    for (const n of names) assert.match(t, new RegExp(`^${n}[{ ]`, 'm'), `${n} is scraped`);
  });

  test('the admin listener’s rules apply: no browsers, GET only', async () => {
    assert.equal((await get(server, '/metrics', { headers: { origin: 'http://evil.example' } })).status, 403);
    assert.equal((await get(server, '/metrics', { method: 'POST' })).status, 405);
  });
});

describe('admin listener with a token: /metrics needs it too', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      listeners: [
        { type: 'c2s', port: 0, host: '127.0.0.1' },
        { type: 'admin', port: 0, host: '127.0.0.1', token: 'scrape-token-0123456789abcdef' },
      ],
    });
  });
  after(() => server.destroy());

  test('without the bearer token: 401; with it: the metrics', async () => {
    assert.equal((await get(server, '/metrics')).status, 401);
    const ok = await get(server, '/metrics', {
      headers: { authorization: 'Bearer scrape-token-0123456789abcdef' },
    });
    assert.equal(ok.status, 200);
    assert.ok(sample(ok.body, 'natter_sessions', { state: 'live' }) === 0);
  });
});
