import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import pg from 'pg';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import { TestClient } from '../../../test/support/test-client.js';
import { captureLog } from '../../../test/support/log-capture.js';
import { Database } from '../../storage/database.js';
import { mamMigrations } from './migrations.js';
import type { MamApi } from './mam.js';

const PW = 'storage-pw';

let qn = 0;
/** Bodies and ids of the whole archive of `c`'s account, oldest first. */
async function archive(
  c: TestClient,
  fields: Record<string, string> = {},
): Promise<{ bodies: string[]; ids: string[] }> {
  const queryid = `s${++qn}`;
  const form = xml(
    'x',
    { xmlns: NS.dataForms, type: 'submit' },
    xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', null, NS.mam)),
    Object.entries(fields).map(([k, v]) => xml('field', { var: k }, xml('value', null, v))),
  );
  const iq = await c.iq(
    xml(
      'iq',
      { type: 'set' },
      xml('query', { xmlns: NS.mam, queryid }, form, xml('set', { xmlns: NS.rsm }, xml('max', null, '100'))),
    ),
  );
  assert.equal(iq.attrs.type, 'result', iq.toString());
  const out = { bodies: [] as string[], ids: [] as string[] };
  for (let i = 0; i < c.received.length;) {
    const e = c.received[i]!;
    const r = e.name === 'message' ? e.getChild('result', NS.mam) : undefined;
    if (r && r.attrs.queryid === queryid) {
      c.received.splice(i, 1);
      const m = r.getChild('forwarded', NS.forward)!.getChild('message', NS.client)!;
      out.bodies.push(m.getChildText('body') ?? '');
      out.ids.push(r.attrs.id!);
    } else i++;
  }
  return out;
}

const chat = (to: string, body: string) => xml('message', { to, type: 'chat' }, xml('body', null, body));
const withBody = (body: string) => (e: Element) =>
  e.name === 'message' && e.attrs.type !== 'error' && e.getChildText('body') === body;

async function rows(server: TestServer): Promise<{ messages: number; entries: number }> {
  await (server.core.hosts.get('localhost')!.provided.get('mam') as MamApi).flush();
  const db = server.core.database.db;
  const m = await db
    .selectFrom('mam_message')
    .select((eb) => eb.fn.countAll().as('n'))
    .executeTakeFirst();
  const e = await db
    .selectFrom('mam_entry')
    .select((eb) => eb.fn.countAll().as('n'))
    .executeTakeFirst();
  return { messages: Number(m?.n), entries: Number(e?.n) };
}

describe('archive storage: one row per message', () => {
  test('a message between two local accounts is stored once, listed in both archives under one id, and removed with the last archive that holds it', async () => {
    const server = await startTestServer({
      modules: { ping: { idleMs: 0 }, mam: { archiveStrangers: true } },
    });
    try {
      for (const u of ['alice', 'bob', 'carol']) await server.addUser(u, PW);
      const alice = await TestClient.login(server, 'alice', PW, { resource: 'a', presence: true });
      const bob = await TestClient.login(server, 'bob', PW, { resource: 'b', presence: true });
      const carol = await TestClient.login(server, 'carol', PW, { resource: 'c', presence: true });
      alice.send(chat('bob@localhost', 'one'));
      const got = await bob.receive(withBody('one'));
      bob.send(chat('alice@localhost', 'two'));
      await alice.receive(withBody('two'));
      carol.send(chat('bob@localhost', 'three'));
      await bob.receive(withBody('three'));

      const a = await archive(alice);
      const b = await archive(bob);
      assert.deepEqual(a.bodies, ['one', 'two']);
      assert.deepEqual(b.bodies, ['one', 'two', 'three']);
      // The recipient's stanza-id is the message's id in both archives.
      assert.equal(got.getChild('stanza-id', NS.sid)?.attrs.id, b.ids[0]);
      assert.deepEqual(a.ids, b.ids.slice(0, 2));
      assert.deepEqual(await rows(server), { messages: 3, entries: 6 });

      // 'with' filters still tell the conversations apart.
      assert.deepEqual((await archive(bob, { with: 'carol@localhost' })).bodies, ['three']);

      // Alice leaves: her archive goes, Bob's copies stay.
      const res = await alice.iq(
        xml('iq', { type: 'set', to: 'localhost' }, xml('query', { xmlns: NS.register }, xml('remove'))),
      );
      assert.equal(res.attrs.type, 'result', res.toString());
      await alice.waitClosed();
      assert.deepEqual((await archive(bob)).bodies, ['one', 'two', 'three']);
      assert.deepEqual(await rows(server), { messages: 3, entries: 4 });

      // Bob leaves too: the messages only he held are gone, Carol's entry keeps hers.
      const res2 = await bob.iq(
        xml('iq', { type: 'set', to: 'localhost' }, xml('query', { xmlns: NS.register }, xml('remove'))),
      );
      assert.equal(res2.attrs.type, 'result', res2.toString());
      await bob.waitClosed();
      assert.deepEqual(await rows(server), { messages: 1, entries: 1 });
      assert.deepEqual((await archive(carol)).bodies, ['three']);
      await carol.close();
    } finally {
      await server.destroy();
    }
  });

  test('a forged stanza-id in the recipient’s name is kept out of the shared copy', async () => {
    const server = await startTestServer({
      modules: { ping: { idleMs: 0 }, mam: { archiveStrangers: true } },
    });
    try {
      for (const u of ['mallory', 'victim']) await server.addUser(u, PW);
      const mallory = await TestClient.login(server, 'mallory', PW, { resource: 'm', presence: true });
      const victim = await TestClient.login(server, 'victim', PW, { resource: 'v', presence: true });
      mallory.send(
        xml(
          'message',
          { to: 'victim@localhost', type: 'chat' },
          xml('body', null, 'forged'),
          xml('stanza-id', { xmlns: NS.sid, by: 'victim@localhost', id: 'fake' }),
        ),
      );
      await victim.receive(withBody('forged'));
      const queryid = 'forged-q';
      await victim.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: NS.mam, queryid })));
      const result = victim.received.find((e) => e.getChild('result', NS.mam)?.attrs.queryid === queryid);
      const archived = result!
        .getChild('result', NS.mam)!
        .getChild('forwarded', NS.forward)!
        .getChild('message', NS.client)!;
      assert.equal(archived.getChildText('body'), 'forged');
      assert.equal(
        archived.getChildren('stanza-id', NS.sid).some((s) => s.attrs.id === 'fake'),
        false,
        archived.toString(),
      );
      await Promise.all([mallory.close(), victim.close()]);
    } finally {
      await server.destroy();
    }
  });

  test('archives written before the shared-row schema (migration 0003) are kept, in order, with their ids', async () => {
    if (process.env.NATTER_TEST_STORAGE === 'postgres') return; // the migration is the same SQL on both; SQLite here
    const dataDir = mkdtempSync(join(tmpdir(), 'natter-mam-migrate-'));
    const setup = await startTestServer({ modules: { mam: false } }, { dataDir });
    await setup.addUser('old', PW);
    await setup.addUser('peer', PW);
    await setup.stop();
    // The archive as versions up to 0002 wrote it: one row per message per archive.
    const db = Database.open({ engine: 'sqlite', path: join(dataDir, 'natter.sqlite') });
    const { '0001-init': m1, '0002-bytes': m2 } = mamMigrations;
    await db.migrate('mam', { '0001-init': m1!, '0002-bytes': m2! });
    const base = (Date.now() - 60_000) * 1000;
    const old = ['first', 'second'].map((body, i) => {
      const seq = base + i;
      const stanza = `<message xmlns="jabber:client" from="peer@localhost/p" to="old@localhost" type="chat"><body>${body}</body></message>`;
      return {
        owner: 'old@localhost',
        id: seq.toString(36).padStart(11, '0') + 'AbCdEfGh',
        seq,
        timestamp: Math.floor(seq / 1000),
        with_jid: 'peer@localhost',
        with_full: 'peer@localhost/p',
        direction: 'in',
        stanza,
        bytes: stanza.length,
      };
    });
    await db.db.insertInto('mam_messages').values(old).execute();
    await db.close();

    const server = await startTestServer({ modules: { ping: { idleMs: 0 } } }, { dataDir });
    try {
      const c = await TestClient.login(server, 'old', PW, { resource: 'o', presence: true });
      const a = await archive(c);
      assert.deepEqual(a.bodies, ['first', 'second']);
      assert.deepEqual(
        a.ids,
        old.map((r) => r.id),
      );
      // paging from an old id, and new messages after the old ones
      assert.deepEqual((await archive(c, { 'after-id': old[0]!.id })).bodies, ['second']);
      const peer = await TestClient.login(server, 'peer', PW, { resource: 'p', presence: true });
      peer.send(chat('old@localhost', 'third'));
      await c.receive(withBody('third'));
      assert.deepEqual((await archive(c)).bodies, ['first', 'second', 'third']);
      await Promise.all([c.close(), peer.close()]);
    } finally {
      await server.destroy();
    }
  });

  test('PostgreSQL: the archive writer’s connection is killed between batches; nothing is lost', async () => {
    if (process.env.NATTER_TEST_STORAGE !== 'postgres') return; // the fault is PostgreSQL's
    const { logger, lines } = captureLog();
    const server = await startTestServer(
      { modules: { ping: { idleMs: 0 }, mam: { flushIntervalMs: 20 } } },
      { logger },
    );
    const storage = server.config.storage;
    assert.equal(storage.engine, 'postgres');
    const admin = new pg.Client({ connectionString: (storage as { url: string }).url });
    await admin.connect();
    try {
      for (const u of ['sender', 'keeper']) await server.addUser(u, PW);
      const sender = await TestClient.login(server, 'sender', PW, { resource: 's', presence: true });
      const keeper = await TestClient.login(server, 'keeper', PW, { resource: 'k', presence: true });
      const sent: string[] = [];
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 5; i++) {
          const body = `r${round}m${i}`;
          sent.push(body);
          sender.send(chat('keeper@localhost', body));
        }
        await keeper.receive(withBody(sent[sent.length - 1]!));
        // Stored: a batch that met the connection killed in the previous round failed and is
        // retried a second later on a new one (flush() resolves after the failed attempt), so
        // wait for the rows rather than for one flush.
        const end = Date.now() + 20_000;
        for (;;) {
          const r = await rows(server);
          if (r.messages === sent.length && r.entries === 2 * sent.length) break;
          assert.ok(Date.now() < end, `stored ${JSON.stringify(r)} of ${sent.length} messages`);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        const killed = await admin.query(
          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'natter-archive-writer' AND datname = current_database()",
        );
        assert.equal(killed.rowCount, 1, 'the writer had one connection');
      }
      assert.deepEqual((await archive(keeper)).bodies, sent);
      assert.deepEqual((await archive(sender)).bodies, sent);
      // The batch after each kill went on at once on a new connection: no failed write at all.
      assert.deepEqual(
        lines.filter((l) => l.msg === 'archiving failed; retrying').map((l) => l.err),
        [],
      );
      await Promise.all([sender.close(), keeper.close()]);
    } finally {
      await admin.end();
      await server.destroy();
    }
  });
});
