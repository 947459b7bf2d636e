import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer } from '../support/test-server.js';
import { befriend } from '../support/subscriptions.js';
import { TestClient } from '../support/test-client.js';
import { createTestDatabase } from '../support/postgres.js';
import { createRoom, enter, SERVICE, codes } from '../support/muc.js';
import { NodeProcess, clusterNodeConfig, removeRedisKeys, until } from '../support/cluster-node.js';
import { rendezvousOwner } from '../../src/core/cluster/rendezvous.js';

const PW = 'redis-cluster-pw';
const SHARED_REDIS = process.env.NATTER_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/0';
/** Keys and channels of this run only: test files running in parallel never share them. */
const PREFIX = `natter-test-${randomBytes(4).toString('hex')}`;

const presenceFrom = (from: string, type?: string) => (e: Element) =>
  e.name === 'presence' && e.attrs.from === from && e.attrs.type === type;
const messageWithId = (id: string) => (e: Element) => e.name === 'message' && e.attrs.id === id;

function chat(to: string, id: string, body: string): Element {
  return xml('message', { to, type: 'chat', id }, xml('body', null, body));
}

const db = await createTestDatabase();
const dirs: string[] = [];

function nodeConfig(name: string, redis: string, prefix: string): string {
  return clusterNodeConfig(dirs, { name, redis, prefix, postgres: db!.url });
}

/** Logs in and sends initial presence; resolves once the server reflected it. */
async function online(node: NodeProcess, user: string, resource: string): Promise<TestClient> {
  const c = await TestClient.login(node.target, user, PW, { resource });
  c.send(xml('presence'));
  await c.receive(presenceFrom(`${user}@localhost/${resource}`));
  return c;
}

describe(
  'a cluster of natter processes over Redis',
  { skip: db ? false : 'PostgreSQL is not reachable' },
  () => {
    before(async () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'natter-redis-setup-'));
      dirs.push(dataDir);
      const setup = await startTestServer({ storage: { engine: 'postgres', url: db!.url } }, { dataDir });
      for (const u of ['romeo', 'juliet', 'nurse']) await setup.addUser(u, PW);
      // romeo and juliet are subscribed to each other (RFC 6121 §3), set up on one node.
      const r = await TestClient.login(setup, 'romeo', PW, { presence: true });
      const j = await TestClient.login(setup, 'juliet', PW, { presence: true });
      await befriend(r, j);
      await r.close();
      await j.close();
      await setup.stop();
    });

    after(async () => {
      await removeRedisKeys(SHARED_REDIS, PREFIX);
      await db?.drop();
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    });

    test('three nodes: chat, presence and a room across nodes; a killed node is noticed, a restarted one rejoins', async () => {
      const nodes = ['n1', 'n2', 'n3'].map((n) => new NodeProcess(nodeConfig(n, SHARED_REDIS, PREFIX)));
      const [n1, n2, n3] = nodes as [NodeProcess, NodeProcess, NodeProcess];
      try {
        // n1 first: the oldest node, which runs the services (rooms are spread over all three).
        await n1.start();
        await Promise.all([n2.start(), n3.start()]);
        assert.match(n1.node, /^n1\.[0-9a-f]{6}$/);

        const juliet = await online(n1, 'juliet', 'balcony');
        const romeo = await online(n2, 'romeo', 'garden');
        // Each learns the other's presence across nodes (broadcast and probe, RFC 6121 §4.2).
        await romeo.receive(presenceFrom('juliet@localhost/balcony'));
        await juliet.receive(presenceFrom('romeo@localhost/garden'));

        // Bare JID (routed to juliet's session on n1) and full JID (romeo's on n2).
        romeo.send(chat('juliet@localhost', 'm1', 'bare'));
        const m1 = await juliet.receive(messageWithId('m1'));
        assert.equal(m1.attrs.from, 'romeo@localhost/garden');
        juliet.send(chat('romeo@localhost/garden', 'm2', 'full'));
        const m2 = await romeo.receive(messageWithId('m2'));
        assert.equal(m2.attrs.from, 'juliet@localhost/balcony');

        // A room with an occupant on each node, run by n1 or n3 (rooms are placed by rendezvous
        // hashing of their JID over the node names, random per start): it outlives n2.
        const nurse = await online(n3, 'nurse', 'kitchen');
        const names = Array.from({ length: 100 }, (_, i) => `verona${i}@${SERVICE}`);
        const room = names.find((r) => rendezvousOwner([n1.node, n2.node, n3.node], r) !== n2.node)!;
        await createRoom(juliet, room, 'jules');
        await enter(romeo, room, 'romeo');
        await enter(nurse, room, 'nurse');
        await juliet.receive(presenceFrom(`${room}/romeo`));
        await juliet.receive(presenceFrom(`${room}/nurse`));
        nurse.send(
          xml('message', { to: room, type: 'groupchat', id: 'g1' }, xml('body', null, 'hello room')),
        );
        for (const c of [juliet, romeo, nurse]) {
          const g = await c.receive(messageWithId('g1'));
          assert.equal(g.attrs.from, `${room}/nurse`);
        }

        // kill -9 romeo's node (not the oldest): within ~5 s (3 s TTL, polled every second) the
        // others drop it, juliet gets romeo's unavailable presence and the room removes him.
        const killedAt = Date.now();
        await n2.kill9();
        await romeo.waitClosed(5000);
        const gone = await juliet.receive(presenceFrom('romeo@localhost/garden', 'unavailable'), 6000);
        assert.equal(gone.attrs.to, 'juliet@localhost');
        for (const c of [juliet, nurse]) {
          const left = await c.receive(presenceFrom(`${room}/romeo`, 'unavailable'), 6000);
          assert.ok(left.getChild('x', NS.mucUser), left.toString());
          assert.ok(!codes(left).includes(110));
        }
        assert.ok(Date.now() - killedAt < 6000, `noticed in ${Date.now() - killedAt} ms`);
        assert.equal(n1.exitCode, undefined);
        assert.equal(n3.exitCode, undefined);

        // The same configuration started again: a new member, whose users chat again.
        await n2.start();
        assert.match(n2.node, /^n2\.[0-9a-f]{6}$/);
        const again = await online(n2, 'romeo', 'garden');
        await again.receive(presenceFrom('juliet@localhost/balcony'));
        await juliet.receive(presenceFrom('romeo@localhost/garden'));
        juliet.send(chat('romeo@localhost/garden', 'm3', 'back'));
        await again.receive(messageWithId('m3'));
        again.send(chat('juliet@localhost', 'm4', 'yes'));
        await juliet.receive(messageWithId('m4'));
        for (const c of [again, juliet, nurse]) await c.close();
      } finally {
        const codes = await Promise.all(nodes.map((n) => n.stop()));
        for (const [i, code] of codes.entries())
          assert.equal(code, 0, `node ${i + 1} exits cleanly on SIGTERM\n${nodes[i]!.log.slice(-3000)}`);
      }
    });

    test('a node the others found dead that was only stalled comes back: its users are announced available again', async () => {
      const prefix = `${PREFIX}-stall`;
      const nodes = ['p1', 'p2'].map((n) => new NodeProcess(nodeConfig(n, SHARED_REDIS, prefix)));
      const [p1, p2] = nodes as [NodeProcess, NodeProcess];
      try {
        await p1.start();
        await p2.start();
        const juliet = await online(p1, 'juliet', 'balcony');
        const romeo = await online(p2, 'romeo', 'garden');
        await juliet.receive(presenceFrom('romeo@localhost/garden'));

        // p2 stalls (SIGSTOP) past its 3 s: p1 declares it dead and sends romeo's unavailable.
        p2.pause(true);
        try {
          await juliet.receive(presenceFrom('romeo@localhost/garden', 'unavailable'), 8000);
        } finally {
          p2.pause(false);
        }
        // p2 goes on: it learns it was found dead, rejoins with its sessions, and p1 announces
        // romeo (still connected, never told anything) to his contacts again.
        const back = await juliet.receive(presenceFrom('romeo@localhost/garden'), 10_000);
        assert.equal(back.attrs.to, 'juliet@localhost');
        await p2.until(() => p2.count('rejoined under the same id') > 0, 'p2 to log its rejoining');
        // And he is reachable again.
        juliet.send(chat('romeo@localhost/garden', 'st1', 'still there?'));
        await romeo.receive(messageWithId('st1'), 5000);
        for (const c of [juliet, romeo]) await c.close();
      } finally {
        await Promise.all(nodes.map((n) => n.stop()));
        await removeRedisKeys(SHARED_REDIS, prefix);
      }
    });

    test('a restart of Redis: the nodes ride it out, resynchronise, and stanzas flow again', async (t) => {
      if (spawnSync('which', ['redis-server']).status !== 0) {
        t.skip('no redis-server binary to run a private Redis (the shared one is never restarted)');
        return;
      }
      const redis = new PrivateRedis();
      await redis.start();
      const url = `redis://127.0.0.1:${redis.port}/0`;
      const nodes = ['m1', 'm2'].map((n) => new NodeProcess(nodeConfig(n, url, 'natter')));
      const [m1, m2] = nodes as [NodeProcess, NodeProcess];
      try {
        await m1.start();
        await m2.start();
        const juliet = await online(m1, 'juliet', 'balcony');
        const romeo = await online(m2, 'romeo', 'garden');
        await romeo.receive(presenceFrom('juliet@localhost/balcony'));
        await juliet.receive(presenceFrom('romeo@localhost/garden'));

        // Redis goes away for 2 s (losing its data: no persistence) and comes back on the same port.
        // (A node may have resynchronised already: at a join, the handshake and the first poll can
        // both send a snapshot.)
        const resyncsBefore = m2.count('resynchronised with a node');
        await redis.stop();
        for (const n of nodes)
          await n.until(() => n.count('lost the connection to Redis') === 1, 'the loss to be logged');
        // Meanwhile juliet blocks romeo on m1: m2 cannot hear of it (the invalidation is lost).
        const blocked = await juliet.iq(
          xml(
            'iq',
            { type: 'set' },
            xml('block', { xmlns: NS.blocking }, xml('item', { jid: 'romeo@localhost' })),
          ),
        );
        assert.equal(blocked.attrs.type, 'result', blocked.toString());
        await new Promise((r) => setTimeout(r, 2000));
        await redis.start();
        for (const n of nodes)
          await n.until(() => n.count('connection to Redis is back') === 1, 'the recovery to be logged');
        // Each node resends its records; the other sees a second snapshot and drops its caches.
        await m2.until(() => m2.count('resynchronised with a node') > resyncsBefore, 'm2 to resynchronise');
        romeo.send(chat('juliet@localhost', 'r0', 'do you still hear me?'));
        const refused = await romeo.receive(messageWithId('r0'));
        assert.equal(refused.attrs.type, 'error', refused.toString());
        await juliet.nothing(messageWithId('r0'));
        const unblocked = await juliet.iq(
          xml(
            'iq',
            { type: 'set' },
            xml('unblock', { xmlns: NS.blocking }, xml('item', { jid: 'romeo@localhost' })),
          ),
        );
        assert.equal(unblocked.attrs.type, 'result', unblocked.toString());

        romeo.send(chat('juliet@localhost', 'r1', 'after the outage'));
        await juliet.receive(messageWithId('r1'));
        juliet.send(chat('romeo@localhost/garden', 'r2', 'heard you'));
        await romeo.receive(messageWithId('r2'));
        // Records are exchanged again: a new presence reaches the contact on the other node, and
        // neither node finds the other dead once the grace after the recovery is over.
        romeo.send(xml('presence', {}, xml('status', null, 'still here')));
        const p = await juliet.receive(presenceFrom('romeo@localhost/garden'));
        assert.equal(p.getChildText('status'), 'still here');
        await juliet.nothing(presenceFrom('romeo@localhost/garden', 'unavailable'), 4500);
        for (const n of nodes) {
          assert.equal(n.exitCode, undefined, `the node did not exit\n${n.log.slice(-3000)}`);
          assert.equal(n.count('lost the connection to Redis'), 1, 'one line on loss');
          assert.equal(n.count('node left'), 0, `no node was declared dead\n${n.log.slice(-3000)}`);
        }
        await romeo.close();
        await juliet.close();
      } finally {
        const exits = await Promise.all(nodes.map((n) => n.stop()));
        await redis.stop();
        for (const [i, code] of exits.entries())
          assert.equal(code, 0, `node m${i + 1} exits cleanly on SIGTERM\n${nodes[i]!.log.slice(-3000)}`);
      }
    });
  },
);

/** A redis-server of this test file only, on a free port, without persistence. */
class PrivateRedis {
  port = 0;
  private dir = '';
  private child: ChildProcess | undefined;
  private exited: Promise<void> | undefined;

  async start(): Promise<void> {
    if (this.port === 0) {
      this.port = await freePort();
      this.dir = mkdtempSync(join(tmpdir(), 'natter-redis-server-'));
      dirs.push(this.dir);
    }
    mkdirSync(this.dir, { recursive: true });
    let out = '';
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        this.dir,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child = child;
    this.exited = new Promise((r) => child.on('exit', () => r()));
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    await until(
      () => out.includes('Ready to accept connections'),
      'redis-server to start',
      () => out,
    );
  }

  async stop(): Promise<void> {
    if (!this.child || this.child.exitCode !== null) return;
    this.child.kill('SIGTERM');
    await this.exited;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}
