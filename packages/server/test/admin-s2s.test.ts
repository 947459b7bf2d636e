import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { request } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { xml } from '@natter/xml';
import { startTestServer, type TestServer } from './support/test-server.js';
import { TestClient } from './support/test-client.js';
import type { S2SStreamHandle, S2SStreamInfo } from '../src/core/s2s/federation.js';
import type { S2SReport } from '../src/listeners/admin-listener.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const CLI = join(ROOT, 'packages/server/src/cli.ts');
const TOKEN = 'a-long-admin-token-for-s2s-tests';

/** Runs the real CLI (`natter …`) in a child process; resolves with its exit code and output. */
function natter(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env };
  delete env.NATTER_ADMIN_TOKEN;
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', '--conditions=source', CLI, ...args],
      { cwd: ROOT, timeout: 60_000, env },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** `natter s2s` against the test server's admin listener, with a configuration of no listeners. */
function s2sCli(server: TestServer, ...args: string[]) {
  const config = join(server.dataDir, 'cli.json');
  writeFileSync(config, JSON.stringify({ hosts: ['localhost'], listeners: [], log: { level: 'silent' } }));
  return natter('s2s', '--config', config, '--url', `http://127.0.0.1:${server.port('admin')}`, ...args);
}

async function s2s(server: TestServer, token?: string): Promise<S2SReport> {
  const res = await fetch(`http://127.0.0.1:${server.port('admin')}/admin/s2s`, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /application\/json/);
  return (await res.json()) as S2SReport;
}

/** A request with exactly these headers (fetch() sets its own Host): status, challenge and body. */
function raw(
  server: TestServer,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; authenticate: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: server.port('admin'), method: 'GET', path, headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            authenticate: res.headers['www-authenticate'],
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Each set of headers gets the same refusal (401 or 403) from /admin/s2s as from /admin/sessions. */
async function refusedAlike(server: TestServer, refusals: Record<string, string>[]): Promise<void> {
  for (const headers of refusals) {
    const sessions = await raw(server, '/admin/sessions', headers);
    const s2s = await raw(server, '/admin/s2s', headers);
    assert.ok(sessions.status === 401 || sessions.status === 403, JSON.stringify(sessions));
    assert.deepEqual(s2s, sessions, `headers ${JSON.stringify(headers)}`);
  }
}

/** A stand-in for a live stream, as an inbound stream or the outbound pool reports it. */
function info(over: Partial<S2SStreamInfo>): S2SStreamInfo {
  return {
    id: 'st-1',
    direction: 'in',
    localDomains: ['localhost'],
    remoteDomains: ['remote.example'],
    auth: 'dialback',
    tls: true,
    tlsVersion: 'TLSv1.3',
    address: '203.0.113.7:40312',
    since: Date.UTC(2025, 0, 2, 3, 4, 5),
    stanzasIn: 12,
    stanzasOut: 3,
    state: 'authenticated',
    ...over,
  };
}

function handle(i: S2SStreamInfo): S2SStreamHandle {
  return { info: () => i, fail: () => {} };
}

describe('GET /admin/s2s and natter s2s', () => {
  test('refused without the token exactly like /admin/sessions; federation off is reported', async () => {
    const server = await startTestServer({
      listeners: [
        { type: 'c2s', port: 0, host: '127.0.0.1' },
        { type: 'admin', port: 0, host: '127.0.0.1', token: TOKEN },
      ],
    });
    try {
      await refusedAlike(server, [
        {},
        { authorization: 'Bearer wrong-token-of-some-length' },
        { authorization: TOKEN },
        { authorization: `Bearer ${TOKEN}`, origin: 'https://evil.example' },
      ]);
      assert.deepEqual(await s2s(server, TOKEN), { enabled: false, streams: [] });

      const refused = await s2sCli(server);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /401/);
      const off = await s2sCli(server, '--token', TOKEN);
      assert.equal(off.code, 0, off.stderr);
      assert.equal(off.stdout.trim(), 'federation is off');
    } finally {
      await server.destroy();
    }
  });

  test('without a token only a loopback Host is answered, as for /admin/sessions', async () => {
    const server = await startTestServer();
    try {
      await refusedAlike(server, [
        { origin: `http://127.0.0.1:${server.port('admin')}` },
        { host: 'evil.example:5281' },
        { host: 'evil.example' },
      ]);
      assert.deepEqual(await s2s(server), { enabled: false, streams: [] });
    } finally {
      await server.destroy();
    }
  });

  test('federation on: no streams, then inbound and outbound streams listed and printed', async () => {
    const server = await startTestServer({ s2s: { enabled: true } });
    const added: S2SStreamHandle[] = [];
    const pool = server.core.federation!;
    const list = pool.list;
    try {
      assert.deepEqual(await s2s(server), { enabled: true, streams: [] });
      const empty = await s2sCli(server);
      assert.equal(empty.code, 0, empty.stderr);
      assert.equal(empty.stdout.trim(), 'no server-to-server streams');

      const zeta = info({ id: 'in-z', remoteDomains: ['zeta.example'], auth: 'external' });
      const alpha = info({
        id: 'in-a',
        remoteDomains: ['alpha.example'],
        tls: false,
        tlsVersion: undefined,
        address: '198.51.100.4:5269',
        stanzasIn: 0,
        stanzasOut: 0,
        state: 'open',
      });
      for (const i of [zeta, alpha]) {
        const h = handle(i);
        added.push(h);
        server.core.s2sInbound.add(h);
      }
      const out = info({
        id: 'out-1',
        direction: 'out',
        remoteDomains: ['beta.example'],
        address: '192.0.2.9:5269',
        stanzasIn: 0,
        stanzasOut: 40,
      });
      pool.list = () => [out];

      const report = await s2s(server);
      assert.equal(report.enabled, true);
      assert.deepEqual(
        report.streams.map((s) => s.id),
        ['in-a', 'in-z', 'out-1'],
      );
      assert.deepEqual(report.streams[1], {
        id: 'in-z',
        direction: 'in',
        localDomains: ['localhost'],
        remoteDomains: ['zeta.example'],
        auth: 'external',
        tls: true,
        tlsVersion: 'TLSv1.3',
        address: '203.0.113.7:40312',
        since: '2025-01-02T03:04:05.000Z',
        stanzasIn: 12,
        stanzasOut: 3,
        state: 'authenticated',
      });
      assert.equal(report.streams[0]!.tls, false);
      assert.equal('tlsVersion' in report.streams[0]!, false);

      const cli = await s2sCli(server);
      assert.equal(cli.code, 0, cli.stderr);
      const lines = cli.stdout.trimEnd().split('\n');
      assert.equal(lines.length, 4, cli.stdout);
      assert.deepEqual(lines[0]!.split(/\s+/), [
        'DIRECTION',
        'REMOTE',
        'LOCAL',
        'AUTH',
        'TLS',
        'ADDRESS',
        'STATE',
        'IN',
        'OUT',
        'SINCE',
      ]);
      assert.deepEqual(lines[1]!.split(/\s+/), [
        'in',
        'alpha.example',
        'localhost',
        'dialback',
        'no',
        '198.51.100.4:5269',
        'open',
        '0',
        '0',
        '2025-01-02T03:04:05.000Z',
      ]);
      assert.deepEqual(lines[2]!.split(/\s+/), [
        'in',
        'zeta.example',
        'localhost',
        'external',
        'TLSv1.3',
        '203.0.113.7:40312',
        'authenticated',
        '12',
        '3',
        '2025-01-02T03:04:05.000Z',
      ]);
      assert.match(lines[3]!, /^out\s+beta\.example\s+localhost\s+dialback\s+TLSv1\.3\s/);

      const json = await s2sCli(server, '--json');
      assert.equal(json.code, 0, json.stderr);
      assert.deepEqual(JSON.parse(json.stdout), report);
    } finally {
      pool.list = list;
      for (const h of added) server.core.s2sInbound.delete(h);
      await server.destroy();
    }
  });

  test('real federation: both servers list the live stream of each direction, and natter s2s prints it', async () => {
    const a = await startTestServer({ hosts: ['a.test'] }, { s2s: true });
    const b = await startTestServer({ hosts: ['b.test'] }, { s2s: true });
    try {
      a.core.config.s2s.routes['b.test'] = `127.0.0.1:${b.port('s2s')}`;
      b.core.config.s2s.routes['a.test'] = `127.0.0.1:${a.port('s2s')}`;
      await a.addUser('alice', 'admin-s2s-pw');
      await b.addUser('bob', 'admin-s2s-pw');
      const alice = await TestClient.login(a, 'alice', 'admin-s2s-pw');
      const bob = await TestClient.login(b, 'bob', 'admin-s2s-pw', { presence: true });
      alice.send(xml('message', { to: 'bob@b.test', type: 'chat' }, xml('body', {}, 'hi')));
      await bob.receive((e) => e.name === 'message', 10_000);
      const out = (await s2s(a)).streams.find((x) => x.direction === 'out');
      assert.deepEqual(out?.remoteDomains, ['b.test']);
      assert.deepEqual(out?.localDomains, ['a.test']);
      assert.equal(out?.auth, 'dialback');
      assert.equal(out?.tls, true);
      const inbound = (await s2s(b)).streams.find((x) => x.direction === 'in' && x.state === 'authenticated');
      assert.deepEqual(inbound?.remoteDomains, ['a.test']);
      assert.equal(inbound?.auth, 'dialback');
      assert.equal(inbound?.stanzasIn, 1);
      const printed = await s2sCli(b);
      assert.equal(printed.code, 0, printed.stderr);
      assert.match(printed.stdout, /^in\s+a\.test\s+b\.test\s+dialback\s+TLSv1\.[23]/m);
      await alice.close();
      await bob.close();
    } finally {
      await a.destroy();
      await b.destroy();
    }
  });
});
