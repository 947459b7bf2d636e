import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import {
  createClient,
  reconnect,
  streamManagement,
  mam,
  memoryMessageStore,
  readMessage,
  stanzaIdBy,
  type Client,
  type MessageStore,
  type PluginMap,
} from '@natter/client';
import { startTestServer } from '../support/test-server.js';
import { TestClient } from '../support/test-client.js';
import { befriend } from '../support/subscriptions.js';
import { createTestDatabase } from '../support/postgres.js';
import { selfSigned } from '../support/test-ca.js';
import { NodeProcess, clusterNodeConfig, removeRedisKeys } from '../support/cluster-node.js';

/**
 * kill -9 of one node of three under traffic (issue 13): every message the cluster acknowledged
 * (XEP-0198) reaches its recipient exactly once, or comes back as an error, and the test counts it.
 * Clients are @natter/client with the modules an app uses for this: reconnect over a list of
 * endpoints, stream management, and the archive catch-up (XEP-0313) into a store that keeps a
 * message once by its stanza-id and origin-id (XEP-0359).
 */

const PW = 'kill-pw';
const REDIS = process.env.NATTER_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/0';
const PREFIX = `natter-test-${randomBytes(4).toString('hex')}`;
const db = await createTestDatabase();
const dirs: string[] = [];
let ca = '';
let nodes: [NodeProcess, NodeProcess, NodeProcess];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(fn: () => boolean, what: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** A client whose first endpoint is `home`, then the other nodes. */
function sdkClient<P extends PluginMap>(user: string, home: number, plugins: P) {
  const order = [home, ...[0, 1, 2].filter((i) => i !== home)];
  return createClient({
    service: order.map((i) => `xmpp://127.0.0.1:${nodes[i]!.port}`),
    jid: `${user}@localhost`,
    password: PW,
    resource: 'app',
    tls: { ca },
    // The test ends the clients itself: no keepalive pings during the run.
    plugins: {
      reconnect: reconnect({ initialDelay: 50, maxDelay: 250 }),
      sm: streamManagement(),
      ...plugins,
    },
  });
}

interface Sender {
  user: string;
  to: string;
  client: ReturnType<typeof senderClient>;
  sent: string[];
  acked: Set<string>;
  errors: Set<string>;
  running: boolean;
  loop?: Promise<void>;
}

const senderClient = (user: string, home: number) => sdkClient(user, home, {});
const receiverClient = (user: string, home: number, store: MessageStore) =>
  sdkClient(user, home, { mam: mam({ store, autoCatchUp: true, pageSize: 250 }) });

interface Receiver {
  user: string;
  client: ReturnType<typeof receiverClient>;
  store: MessageStore;
  /** Live deliveries per message id (more than one: a copy the store did not keep twice). */
  live: Map<string, number>;
}

function chat(to: string, id: string): Element {
  return xml(
    'message',
    { to, type: 'chat', id },
    xml('body', null, id),
    xml('origin-id', { xmlns: NS.sid, id }),
  );
}

async function startSender(user: string, home: number, to: string): Promise<Sender> {
  const client = senderClient(user, home);
  const s: Sender = { user, to, client, sent: [], acked: new Set(), errors: new Set(), running: true };
  client.plugins.sm.on('acked', ({ stanza }) => {
    if (stanza.name === 'message' && stanza.attrs.id) s.acked.add(stanza.attrs.id);
  });
  client.on('message', (m) => {
    if (m.attrs.type === 'error' && m.attrs.id) s.errors.add(m.attrs.id);
  });
  await client.connect();
  return s;
}

async function startReceiver(user: string, home: number): Promise<Receiver> {
  const store = memoryMessageStore();
  const client = receiverClient(user, home, store);
  const r: Receiver = { user, client, store, live: new Map() };
  const account = `${user}@localhost`;
  client.on('message', (el) => {
    const m = readMessage(el);
    if (m.type !== 'chat' || m.body === undefined || m.id === undefined) return;
    r.live.set(m.id, (r.live.get(m.id) ?? 0) + 1);
    // What an app does with a live message: keep it, under the archive's stanza-id.
    const archiveId = stanzaIdBy(m, account);
    void store.add(account, {
      conversation: m.fromJid?.toBareString() ?? '',
      ...(archiveId === undefined ? {} : { archive: account, archiveId }),
      ...(m.originId === undefined ? {} : { originId: m.originId }),
      messageId: m.id,
      timestamp: Date.now(),
      from: m.from ?? '',
      direction: 'in',
      body: m.body,
      xml: el.toString(),
    });
  });
  client.on('online', ({ resumed }) => {
    if (!resumed) void client.send(xml('presence')).catch(() => undefined);
  });
  await client.connect();
  return r;
}

function sendLoop(s: Sender): Promise<void> {
  return (async () => {
    for (let i = 0; s.running; i++) {
      const id = `${s.user}-${i}`;
      s.sent.push(id);
      s.client.send(chat(s.to, id)).catch(() => undefined);
      await sleep(10);
    }
  })();
}

/** The ids of the messages `receiver` keeps from `sender`, with how many copies of each. */
async function kept(r: Receiver, sender: string): Promise<Map<string, number>> {
  const list = await r.store.list(`${r.user}@localhost`, `${sender}@localhost`, { limit: 1_000_000 });
  const out = new Map<string, number>();
  for (const m of list) if (m.messageId) out.set(m.messageId, (out.get(m.messageId) ?? 0) + 1);
  return out;
}

describe(
  'kill -9 of a cluster node under traffic',
  { skip: db ? false : 'PostgreSQL is not reachable' },
  () => {
    before(async () => {
      const dir = mkdtempSync(join(tmpdir(), 'natter-kill-'));
      dirs.push(dir);
      const cert = await selfSigned(dir, 'localhost');
      ca = readFileSync(cert.cert, 'utf8');
      const setup = await startTestServer(
        { storage: { engine: 'postgres', url: db!.url } },
        { dataDir: dir },
      );
      for (const u of ['s1', 's2', 's3', 's4', 's5', 'r1', 'r2', 'r3', 'r4', 'quiet', 'teller'])
        await setup.addUser(u, PW);
      // Correspondents are contacts (archives keep only a few messages from strangers).
      for (const [a, b] of [
        ['s1', 'r2'],
        ['s3', 'r2'],
        ['s2', 'r3'],
        ['s4', 'r4'],
        ['s5', 'r1'],
      ] as const) {
        const ca = await TestClient.login(setup, a, PW, { presence: true });
        const cb = await TestClient.login(setup, b, PW, { presence: true });
        await befriend(ca, cb);
        await Promise.all([ca.close(), cb.close()]);
      }
      // quiet keeps no archive: only the cluster itself can keep its messages.
      const q = await TestClient.login(setup, 'quiet', PW);
      const res = await q.iq(
        xml('iq', { type: 'set', id: 'p' }, xml('prefs', { xmlns: NS.mam, default: 'never' })),
      );
      assert.equal(res.attrs.type, 'result');
      await q.close();
      await setup.stop();
      nodes = ['k1', 'k2', 'k3'].map(
        (name) =>
          new NodeProcess(
            clusterNodeConfig(dirs, {
              name,
              redis: REDIS,
              prefix: PREFIX,
              postgres: db!.url,
              extra: { tls: { cert: cert.cert, key: cert.key } },
            }),
          ),
      ) as [NodeProcess, NodeProcess, NodeProcess];
      await nodes[0].start();
      await Promise.all([nodes[1].start(), nodes[2].start()]);
    });

    after(async () => {
      await Promise.all(nodes?.map((n) => n.stop()) ?? []);
      await removeRedisKeys(REDIS, PREFIX);
      await db?.drop();
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    });

    test('every acknowledged message is delivered exactly once or returned as an error', async (t) => {
      const [, k2] = nodes;
      // r2 is on the node that dies, with two senders on the others; s2's sender is on it; r4 and
      // s4 are both on it; r1 and s5 never see it.
      const receivers = await Promise.all([
        startReceiver('r1', 0),
        startReceiver('r2', 1),
        startReceiver('r3', 2),
        startReceiver('r4', 1),
      ]);
      const [r1, r2, r3, r4] = receivers as [Receiver, Receiver, Receiver, Receiver];
      const senders = await Promise.all([
        startSender('s1', 0, 'r2@localhost'),
        startSender('s3', 2, 'r2@localhost'),
        startSender('s2', 1, 'r3@localhost'),
        startSender('s4', 1, 'r4@localhost'),
        startSender('s5', 2, 'r1@localhost'),
      ]);
      const receiverOf = new Map<string, Receiver>([
        ['s1', r2],
        ['s3', r2],
        ['s2', r3],
        ['s4', r4],
        ['s5', r1],
      ]);
      const all: Client[] = [...receivers.map((r) => r.client), ...senders.map((s) => s.client)];
      try {
        // A sync point in each archive, as an app that has run before has.
        for (const s of senders) await s.client.send(chat(s.to, `${s.user}-warmup`));
        for (const r of receivers)
          await until(
            () => [...r.live.keys()].some((id) => id.endsWith('-warmup')),
            `${r.user}'s warm-up`,
            10_000,
          );
        for (const r of receivers) await r.client.plugins.mam.catchUp();

        for (const s of senders) s.loop = sendLoop(s);
        await sleep(1500);
        const atKill = new Map(senders.map((s) => [s.user, s.sent.length]));
        await k2.kill9();
        // Sending goes on while the clients of k2 reconnect and the others find k2 dead.
        await sleep(5000);
        for (const s of senders) s.running = false;
        await Promise.all(senders.map((s) => s.loop));

        // Everything sent is acknowledged or returned, once the moved clients are online again.
        for (const s of senders) {
          await until(
            () => s.client.status === 'online' && s.client.plugins.sm.unacked === 0,
            `${s.user}'s messages to be acknowledged (${s.client.status}, ${s.client.plugins.sm.unacked} unacknowledged, ${s.client.service})`,
            60_000,
          );
        }
        await until(() => all.every((c) => c.status === 'online'), 'every client online', 30_000);
        for (const [s, home] of [
          [senders[2]!, 1],
          [senders[3]!, 1],
        ] as const)
          assert.notEqual(s.client.service, `xmpp://127.0.0.1:${nodes[home].port}`, `${s.user} moved`);

        // Each acknowledged message reaches its recipient (live, or by the catch-up after the
        // recipient's new session): wait for the last ones, then count.
        const missing = async () => {
          let n = 0;
          for (const s of senders) {
            const got = await kept(receiverOf.get(s.user)!, s.user);
            for (const id of s.acked) if (!got.has(id) && !s.errors.has(id)) n++;
          }
          return n;
        };
        const end = Date.now() + 60_000;
        while ((await missing()) > 0 && Date.now() < end) await sleep(200);

        let sent = 0;
        let acked = 0;
        let returned = 0;
        let unackedDelivered = 0;
        let liveTwice = 0;
        const problems: string[] = [];
        for (const s of senders) {
          const got = await kept(receiverOf.get(s.user)!, s.user);
          sent += s.sent.length;
          acked += s.acked.size;
          returned += s.errors.size;
          for (const id of s.sent) {
            const copies = got.get(id) ?? 0;
            if (copies > 1) problems.push(`${id} kept ${copies} times`);
            if (s.acked.has(id)) {
              if (copies === 0 && !s.errors.has(id)) problems.push(`${id} acknowledged, never delivered`);
              if (copies === 1 && s.errors.has(id)) problems.push(`${id} delivered and returned as an error`);
            } else if (copies === 1) unackedDelivered++;
          }
          for (const [id, n] of receiverOf.get(s.user)!.live)
            if (id.startsWith(`${s.user}-`) && n > 1) liveTwice++;
          for (const id of got.keys())
            if (!s.sent.includes(id) && !id.endsWith('-warmup')) problems.push(`${id} delivered, never sent`);
        }
        t.diagnostic(
          `sent ${sent}, acknowledged ${acked}, returned as errors ${returned}, delivered without an ` +
            `acknowledgement ${unackedDelivered}, delivered live twice (kept once) ${liveTwice}`,
        );
        assert.deepEqual(problems.slice(0, 20), []);
        assert.ok(acked > senders.length * 200, `traffic flowed (${acked} acknowledged)`);
        // The clients of the dead node were among the traffic before and after the kill.
        for (const s of [senders[2]!, senders[3]!]) {
          const after = s.sent.slice(atKill.get(s.user)!).filter((id) => s.acked.has(id)).length;
          assert.ok(after > 50, `${s.user} kept sending after the kill (${after} acknowledged)`);
        }
      } finally {
        for (const s of senders) s.running = false;
        await Promise.all(all.map((c) => c.disconnect().catch(() => undefined)));
      }
    });

    test('messages a dead node never received are held until it is found dead, then kept offline', async () => {
      // k2 died in the test above; a fresh k2 takes its place.
      const k2 = nodes[1];
      if (k2.exitCode !== undefined) await k2.start();
      const quiet = await TestClient.login(k2.target, 'quiet', PW, { presence: true });
      const teller = await TestClient.login(nodes[0].target, 'teller', PW, { presence: true });
      await nodes[0].until(
        () => nodes[0].count('"cluster: node joined"') >= 3,
        'k1 to know k2 again',
        15_000,
      );
      // quiet's record reached k1 (its messages go to k2 now).
      teller.send(chat('quiet@localhost', 'q0'));
      await quiet.receive((e) => e.name === 'message' && e.attrs.id === 'q0', 5000);

      const routedBefore = nodes[0].count('routed again the stanzas held for a dead node');
      await k2.kill9();
      // k1 still believes quiet is on k2 for 3–4 s: these travel to a node nobody reads for.
      for (const id of ['q1', 'q2', 'q3']) teller.send(chat('quiet@localhost', id));
      const bounced = teller
        .receive((e) => e.name === 'message' && e.attrs.type === 'error', 6000)
        .then(
          (e) => e,
          () => undefined,
        );
      await nodes[0].until(
        () => nodes[0].count('routed again the stanzas held for a dead node') > routedBefore,
        'k1 to route them again',
        10_000,
      );
      assert.equal(await bounced, undefined, 'nothing returned to the sender');

      // quiet was nowhere meanwhile: the messages wait in offline storage, once each.
      const back = await TestClient.login(nodes[2].target, 'quiet', PW);
      back.send(xml('presence'));
      const got: string[] = [];
      for (let i = 0; i < 3; i++) {
        const m = await back.receive((e) => e.name === 'message' && /^q\d$/.test(e.attrs.id ?? ''), 5000);
        got.push(m.attrs.id!);
      }
      assert.deepEqual(got.sort(), ['q1', 'q2', 'q3']);
      // ...and no second copy.
      await assert.rejects(back.receive((e) => e.name === 'message' && /^q\d$/.test(e.attrs.id ?? ''), 1000));
      await Promise.all([teller.close(), back.close(), quiet.close().catch(() => undefined)]);
    });
  },
);
