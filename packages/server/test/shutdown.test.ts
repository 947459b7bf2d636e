import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { xml } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer } from './support/test-server.js';
import { TestClient, type Target } from './support/test-client.js';
import { enableSm, until } from './hostile/support/sm-client.js';

const PW = 'secret-password';
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = join(ROOT, 'packages/server/src/cli.ts');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function natter(args: string[]): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', '--conditions=source', CLI, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function run(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = natter(args);
    let out = '';
    p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    p.on('exit', (code) => resolve({ code, out }));
  });
}

/** Offline messages delivered to a fresh login, by body. */
async function drainOffline(c: TestClient, quietMs = 700): Promise<string[]> {
  const bodies: string[] = [];
  for (;;) {
    const m = await c
      .receive((e) => e.name === 'message' && e.getChildText('body') !== undefined, quietMs)
      .catch(() => undefined);
    if (!m) return bodies;
    bodies.push(m.getChildText('body')!);
  }
}

describe('graceful shutdown', () => {
  test('stop(): live and hibernated stream-management sessions go to offline storage; nothing is lost across a restart', async () => {
    const server = await startTestServer({
      modules: {
        ping: { idleMs: 0 },
        sm: { resumeTimeoutMs: 60_000, requestDelayMs: 60_000, requestAfter: 10_000 },
      },
    });
    const dataDir = server.dataDir;
    for (const u of ['romeo', 'juliet', 'nurse']) await server.addUser(u, PW);
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'live', presence: true });
    const live = await enableSm(juliet);
    live.tracker.autoAck = false;
    const nurse = await TestClient.login(server, 'nurse', PW, { resource: 'sleepy', presence: true });
    const sleepy = await enableSm(nurse);
    sleepy.tracker.autoAck = false;
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'r' });
    for (let i = 0; i < 5; i++)
      romeo.send(xml('message', { to: 'juliet@localhost/live', type: 'chat' }, xml('body', null, `j${i}`)));
    for (let i = 0; i < 5; i++)
      romeo.send(xml('message', { to: 'nurse@localhost/sleepy', type: 'chat' }, xml('body', null, `n${i}`)));
    await until(
      () => live.tracker.bodies.length === 5 && sleepy.tracker.bodies.length === 5,
      5000,
      'deliveries',
    );
    nurse.kill();
    await until(() => [...server.core.sessions.all()].some((s) => s.hibernated), 3000, 'hibernation');
    // The admin endpoint counts the hibernated session.
    const report = (await (
      await fetch(`http://127.0.0.1:${server.port('admin')}/admin/sessions`)
    ).json()) as Record<string, number>;
    assert.equal(report.hibernated, 1);
    assert.equal(report.total, 3);
    romeo.send(xml('message', { to: 'nurse@localhost/sleepy', type: 'chat' }, xml('body', null, 'n5')));
    // The server has read n5 (its stanzas are handled in order, and what is being routed is awaited
    // by stop()) once it answers an IQ sent after it: accepted, so it must not be lost.
    const pong = await romeo.iq(
      xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })),
    );
    assert.equal(pong.attrs.type, 'result');
    const closed = juliet.waitClosed(5000);
    await server.stop();
    await closed;
    assert.equal(juliet.streamError?.condition, 'system-shutdown');

    const again = await startTestServer({ modules: { ping: { idleMs: 0 } } }, { dataDir });
    try {
      const j = await TestClient.login(again, 'juliet', PW, { resource: 'back', presence: true });
      assert.deepEqual(await drainOffline(j), ['j0', 'j1', 'j2', 'j3', 'j4']);
      const n = await TestClient.login(again, 'nurse', PW, { resource: 'back', presence: true });
      assert.deepEqual(await drainOffline(n), ['n0', 'n1', 'n2', 'n3', 'n4', 'n5']);
      await j.close();
      await n.close();
    } finally {
      await again.destroy();
    }
  });

  test('natter serve: SIGTERM mid-traffic exits 0 in bounded time; after restart no accepted message is missing', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'natter-shutdown-'));
    try {
      const setup = await startTestServer({}, { dataDir });
      for (const u of ['romeo', 'juliet']) await setup.addUser(u, PW);
      await setup.stop();
      const configFile = join(dataDir, 'natter.json');
      writeFileSync(
        configFile,
        JSON.stringify({
          hosts: ['localhost'],
          dataDir,
          listeners: [
            { type: 'c2s', port: 0, host: '127.0.0.1' },
            { type: 'http', port: 0, host: '127.0.0.1' },
            { type: 'admin', port: 0, host: '127.0.0.1' },
          ],
          modules: { ping: { idleMs: 0 } },
          log: { level: 'info' },
        }),
      );
      const child = natter(['serve', '--config', configFile]);
      let log = '';
      const ports = await new Promise<Record<string, number>>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`server did not start: ${log}`)), 30_000);
        child.stdout!.on('data', (d: Buffer) => {
          log += d.toString();
          const m = /"listeners":\[([^\]]*)\]/.exec(log);
          if (m && log.includes('natter started')) {
            clearTimeout(t);
            const out: Record<string, number> = {};
            for (const l of JSON.parse(`[${m[1]}]`) as string[]) {
              const [kind, port] = l.split(':');
              out[kind!] = Number(port);
            }
            resolve(out);
          }
        });
        child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
        child.on('exit', () => reject(new Error(`server exited: ${log}`)));
      });
      const target: Target = { domain: 'localhost', port: (kind) => ports[kind]! };
      const juliet = await TestClient.login(target, 'juliet', PW, { resource: 'phone', presence: true });
      const j = await enableSm(juliet); // acks what it gets: the rest must be in offline storage
      const romeo = await TestClient.login(target, 'romeo', PW, { resource: 'pc' });
      const r = await enableSm(romeo);
      let acked = 0;
      (romeo as unknown as { onElement(el: unknown): void }).onElement = (
        (orig) => (el: { name: string; xmlns: string; attrs: Record<string, string> }) => {
          if (el.xmlns === NS.sm && el.name === 'a') acked = Math.max(acked, Number(el.attrs.h));
          orig(el);
        }
      )((romeo as unknown as { onElement(el: unknown): void }).onElement.bind(romeo));
      void r;

      // The admin CLI sees both sessions.
      const sessions = await run(['sessions', '--url', `http://127.0.0.1:${ports.admin}`]);
      assert.equal(sessions.code, 0, sessions.out);
      assert.match(sessions.out, /sessions: 2 \(live 2, hibernated 0\)/);

      let sent = 0;
      let stop = false;
      const traffic = (async () => {
        while (!stop && !romeo.closed) {
          romeo.send(
            xml(
              'message',
              { to: sent % 2 === 0 ? 'juliet@localhost/phone' : 'juliet@localhost', type: 'chat' },
              xml('body', null, `msg ${sent}`),
            ),
          );
          romeo.send(xml('r', { xmlns: NS.sm }));
          sent++;
          await sleep(sent % 10 === 0 ? 5 : 0);
        }
      })();
      await until(() => acked >= 100, 10_000, 'traffic');
      const started = Date.now();
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      const code = await exited;
      const took = Date.now() - started;
      stop = true;
      await traffic;
      assert.equal(code, 0, log.slice(-2000));
      assert.ok(took < 15_000, `shutdown took ${took} ms`);
      assert.equal(juliet.streamError?.condition, 'system-shutdown');
      assert.ok(acked > 0 && acked <= sent);

      const again = await startTestServer({ modules: { ping: { idleMs: 0 } } }, { dataDir });
      try {
        const back = await TestClient.login(again, 'juliet', PW, { resource: 'back', presence: true });
        const offline = await drainOffline(back, 1500);
        const got = new Set([...j.tracker.bodies, ...offline]);
        const missing = Array.from({ length: acked }, (_, i) => `msg ${i}`).filter((b) => !got.has(b));
        assert.deepEqual(
          missing,
          [],
          `${missing.length} of ${acked} accepted messages missing (live ${j.tracker.bodies.length}, offline ${offline.length})`,
        );
        await back.close();
      } finally {
        await again.stop();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
