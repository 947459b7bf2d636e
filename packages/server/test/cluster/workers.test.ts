import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer } from '../support/test-server.js';
import { befriend } from '../support/subscriptions.js';
import { TestClient, type Target } from '../support/test-client.js';
import { createRoom, enter, SERVICE, codes } from '../support/muc.js';
import { rendezvousOwner } from '../../src/core/cluster/rendezvous.js';

const PW = 'workers-pw';
const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const CLI = join(ROOT, 'packages/server/src/cli.ts');

interface WorkerInfo {
  node: string;
  pid: number;
}

/** `natter serve --workers 2` as an operator runs it: a primary and two worker processes. */
class Workers {
  log = '';
  readonly workers = new Map<number, WorkerInfo>();
  private child!: ChildProcess;
  exited!: Promise<number | null>;
  port = 0;

  async start(configFile: string): Promise<void> {
    this.child = spawn(
      process.execPath,
      ['--import', 'tsx', '--conditions=source', CLI, 'serve', '--config', configFile, '--workers', '2'],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
    let partial = '';
    this.child.stdout!.on('data', (d: Buffer) => {
      this.log += d.toString();
      // A line may arrive in two chunks: only whole lines are parsed.
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        if (!line.includes('"worker ready"')) continue;
        const e = JSON.parse(line) as { worker: number; node: string; pid: number; ports: { c2s: number } };
        this.workers.set(e.worker, { node: e.node, pid: e.pid });
        this.port = e.ports.c2s;
      }
    });
    this.child.stderr!.on('data', (d: Buffer) => (this.log += d.toString()));
    await this.until(() => this.log.includes('natter started with workers'), 'the workers to start', 90_000);
  }

  /** The nodes a full JID's sessions were bound on, in order (from the log). */
  bindings(jid: string): string[] {
    const out: string[] = [];
    for (const line of this.log.split('\n')) {
      if (!line.includes('"session bound"') || !line.includes(`"jid":"${jid}"`)) continue;
      out.push((JSON.parse(line) as { node: string }).node);
    }
    return out;
  }

  async until(fn: () => boolean, what: string, ms = 10_000): Promise<void> {
    const end = Date.now() + ms;
    while (!fn()) {
      if (Date.now() > end)
        throw new Error(`timed out waiting for ${what}\n--- log ---\n${this.log.slice(-4000)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async stop(): Promise<number | null> {
    this.child.kill('SIGTERM');
    return this.exited;
  }
}

const presenceFrom = (from: string, type?: string) => (e: Element) =>
  e.name === 'presence' && e.attrs.from === from && e.attrs.type === type;

let dataDir: string;
let w: Workers;
let target: Target;

/** Logs in on a chosen worker: node:cluster hands connections to the workers in turn. */
async function loginOn(worker: number, user: string, resource: string): Promise<TestClient> {
  const want = w.workers.get(worker)!.node;
  const jid = `${user}@localhost/${resource}`;
  for (let attempt = 0; attempt < 8; attempt++) {
    const seen = w.bindings(jid).length;
    const c = await TestClient.login(target, user, PW, { resource });
    await w.until(() => w.bindings(jid).length > seen, 'the bind log line');
    if (w.bindings(jid).at(-1) === want) return c;
    await c.close();
  }
  throw new Error(`could not land on worker ${worker}`);
}

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'natter-workers-'));
  const setup = await startTestServer({}, { dataDir });
  for (const u of ['romeo', 'juliet']) await setup.addUser(u, PW);
  // romeo and juliet are subscribed to each other (RFC 6121 §3), set up on one node.
  const r = await TestClient.login(setup, 'romeo', PW, { presence: true });
  const j = await TestClient.login(setup, 'juliet', PW, { presence: true });
  await befriend(r, j);
  await r.close();
  await j.close();
  await setup.stop();
  const configFile = join(dataDir, 'natter.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      hosts: ['localhost'],
      dataDir,
      listeners: [{ type: 'c2s', port: 0, host: '127.0.0.1' }],
      modules: { ping: { idleMs: 0 } },
      log: { level: 'info' },
    }),
  );
  w = new Workers();
  await w.start(configFile);
  target = { domain: 'localhost', port: () => w.port };
});

after(async () => {
  const code = await w.stop();
  rmSync(dataDir, { recursive: true, force: true });
  assert.equal(code, 0, `the primary exits cleanly on SIGTERM\n${w.log.slice(-3000)}`);
});

/**
 * A room JID that worker `n` runs: rooms are placed by rendezvous hashing of their JID over the
 * workers' node names (random per start), so the test picks one of many names.
 */
function roomOn(n: 1 | 2, base: string): string {
  const nodes = [w.workers.get(1)!.node, w.workers.get(2)!.node];
  for (let i = 0; i < 1000; i++) {
    const room = `${base}${i}@${SERVICE}`;
    if (rendezvousOwner(nodes, room) === nodes[n - 1]) return room;
  }
  throw new Error('no room name hashes to that worker');
}

describe('natter serve --workers 2', () => {
  test('users on two workers subscribe, chat and share a room; a killed worker is restarted and its users go unavailable', async () => {
    // juliet on worker 1, romeo on worker 2. Each learns the other's presence across the workers
    // (broadcast and probe, RFC 6121 §4.2).
    const juliet = await loginOn(1, 'juliet', 'balcony');
    juliet.send(xml('presence'));
    await juliet.receive(presenceFrom('juliet@localhost/balcony'));
    const romeo = await loginOn(2, 'romeo', 'garden');
    romeo.send(xml('presence'));
    await romeo.receive(presenceFrom('juliet@localhost/balcony'));
    await juliet.receive(presenceFrom('romeo@localhost/garden'));

    romeo.send(
      xml('message', { to: 'juliet@localhost', type: 'chat', id: 'w1' }, xml('body', null, 'across')),
    );
    const m = await juliet.receive((e) => e.name === 'message' && e.attrs.id === 'w1');
    assert.equal(m.attrs.from, 'romeo@localhost/garden');

    // A room run by worker 1 (it stays when worker 2 dies), with an occupant on each worker.
    const room = roomOn(1, 'verona');
    await createRoom(juliet, room, 'jules');
    await enter(romeo, room, 'romeo');
    await juliet.receive(presenceFrom(`${room}/romeo`));
    romeo.send(xml('message', { to: room, type: 'groupchat', id: 'g1' }, xml('body', null, 'hello room')));
    for (const c of [juliet, romeo]) {
      const g = await c.receive((e) => e.name === 'message' && e.attrs.id === 'g1');
      assert.equal(g.attrs.from, `${room}/romeo`);
    }

    // kill -9 romeo's worker: juliet's worker notices, sends his unavailable presence on his
    // behalf and removes him from the room; the primary starts a new worker.
    const before = w.workers.get(2)!;
    process.kill(before.pid, 'SIGKILL');
    await romeo.waitClosed(10_000);
    const gone = await juliet.receive(presenceFrom('romeo@localhost/garden', 'unavailable'), 10_000);
    assert.equal(gone.attrs.to, 'juliet@localhost');
    const left = await juliet.receive(presenceFrom(`${room}/romeo`, 'unavailable'), 10_000);
    assert.ok(left.getChild('x', NS.mucUser), left.toString());
    assert.ok(!codes(left).includes(110));
    await w.until(() => w.workers.get(2)!.pid !== before.pid, 'worker 2 to be restarted', 20_000);

    // The new worker serves users and sees the others: romeo is back, on it, and learns juliet's
    // presence (a probe answered from worker 1's record).
    const again = await loginOn(2, 'romeo', 'garden');
    again.send(xml('presence'));
    await again.receive(presenceFrom('juliet@localhost/balcony'));
    await juliet.receive(presenceFrom('romeo@localhost/garden'));
    juliet.send(
      xml('message', { to: 'romeo@localhost/garden', type: 'chat', id: 'w2' }, xml('body', null, 'back')),
    );
    await again.receive((e) => e.name === 'message' && e.attrs.id === 'w2');
    await again.close();
    await juliet.close();
  });

  test('the worker running a room is killed: occupants on the other worker are told they left (332), and can join again', async () => {
    // Each room runs on the worker owning its JID (rendezvous hashing): romeo, on worker 2, sits
    // in a room worker 1 runs, and in one worker 2 runs.
    const romeo = await loginOn(2, 'romeo', 'study');
    romeo.send(xml('presence'));
    await romeo.receive(presenceFrom('romeo@localhost/study'));
    const room = roomOn(1, 'capulet');
    const other = roomOn(2, 'capulet');
    await createRoom(romeo, room, 'romeo');
    await createRoom(romeo, other, 'romeo');

    const before = w.workers.get(1)!;
    process.kill(before.pid, 'SIGKILL');
    const left = await romeo.receive(presenceFrom(`${room}/romeo`, 'unavailable'), 10_000);
    assert.deepEqual(codes(left), [110, 332]);
    // The room of the live worker goes on: romeo is still in it.
    romeo.send(
      xml('message', { to: other, type: 'groupchat', id: 'still' }, xml('body', null, 'still here')),
    );
    await romeo.receive((e) => e.name === 'message' && e.attrs.id === 'still');
    assert.ok(!romeo.received.some(presenceFrom(`${other}/romeo`, 'unavailable')));

    // Worker 2 runs every room now: the room (temporary, gone with its node) can be made again.
    await createRoom(romeo, room, 'romeo');
    await w.until(() => w.workers.get(1)!.pid !== before.pid, 'worker 1 to be restarted', 20_000);
    await romeo.close();
  });
});
