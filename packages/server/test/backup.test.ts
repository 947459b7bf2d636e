import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
  existsSync,
  readdirSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { xml } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from './support/test-server.js';
import { TestClient } from './support/test-client.js';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';

// `natter backup`, `natter restore` and `natter storage copy` as an operator runs them: the real
// CLI against a real server's data, then a server started on what they produced, checked by what a
// user sees (login, roster, vCard, archive, offline message).

const PW = 'backup-pw';
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const CLI = join(ROOT, 'packages/server/src/cli.ts');

function natter(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', '--conditions=source', CLI, ...args],
      { cwd: ROOT, timeout: 120_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

async function rosterJids(c: TestClient): Promise<string[]> {
  const res = await c.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS.roster })));
  return res
    .getChild('query', NS.roster)!
    .getChildren('item')
    .map((i) => i.attrs.jid ?? '');
}

async function archivedBodies(c: TestClient): Promise<string[]> {
  const queryid = `q${Math.random().toString(36).slice(2)}`;
  await c.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: NS.mam, queryid })));
  return c.received
    .filter((e) => e.name === 'message' && e.getChild('result', NS.mam)?.attrs.queryid === queryid)
    .map(
      (e) =>
        e.getChild('result', NS.mam)!.getChild('forwarded')!.getChild('message')!.getChildText('body') ?? '',
    );
}

/** Alice: a roster item, a vCard, a conversation in the archive; Bob: a message waiting offline. */
async function fill(server: TestServer): Promise<void> {
  const alice = await TestClient.login(server, 'alice', PW, { resource: 'a', presence: true });
  const bob = await TestClient.login(server, 'bob', PW, { resource: 'b', presence: true });
  await alice.iq(
    xml(
      'iq',
      { type: 'set' },
      xml('query', { xmlns: NS.roster }, xml('item', { jid: 'bob@localhost', name: 'Bob' })),
    ),
  );
  await alice.iq(
    xml(
      'iq',
      { type: 'set', to: 'alice@localhost' },
      xml('vCard', { xmlns: NS.vcard }, xml('FN', null, 'Alice A.')),
    ),
  );
  alice.send(xml('message', { to: 'bob@localhost/b', type: 'chat' }, xml('body', null, 'archived hello')));
  await bob.receive((e) => e.name === 'message' && e.getChildText('body') === 'archived hello');
  await bob.close();
  alice.send(xml('message', { to: 'bob@localhost', type: 'chat' }, xml('body', null, 'while you were out')));
  // Stored once the archive shows it (the archive is written off the routing path).
  const end = Date.now() + 10_000;
  while (!(await archivedBodies(alice)).includes('while you were out')) {
    if (Date.now() > end) throw new Error('the message never reached the archive');
    await new Promise((r) => setTimeout(r, 50));
  }
  await alice.close();
}

/** What a user sees of the data `fill` left. */
async function assertData(server: TestServer): Promise<void> {
  const alice = await TestClient.login(server, 'alice', PW, { resource: 'check' });
  assert.deepEqual(await rosterJids(alice), ['bob@localhost']);
  const card = await alice.iq(
    xml('iq', { type: 'get', to: 'alice@localhost' }, xml('vCard', { xmlns: NS.vcard })),
  );
  assert.equal(card.getChild('vCard', NS.vcard)?.getChildText('FN', NS.vcard), 'Alice A.');
  assert.deepEqual((await archivedBodies(alice)).sort(), ['archived hello', 'while you were out']);
  await alice.close();
  const bob = await TestClient.login(server, 'bob', PW, { resource: 'check', presence: true });
  const waiting = await bob.receive(
    (e) => e.name === 'message' && e.getChildText('body') === 'while you were out',
  );
  assert.equal(waiting.attrs.from?.split('/')[0], 'alice@localhost');
  await bob.close();
}

describe('backup, restore and storage copy', () => {
  let server: TestServer;
  let dataDir: string;
  let work: string;
  let config: string;
  let pgdb: TestDatabase | undefined;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'natter-backup-test-'));
    server = await startTestServer({ storage: { engine: 'sqlite' } });
    dataDir = server.dataDir;
    for (const u of ['alice', 'bob']) await server.addUser(u, PW);
    await fill(server);
    config = join(work, 'natter.json');
    writeFileSync(
      config,
      JSON.stringify({
        hosts: ['localhost'],
        dataDir,
        listeners: [{ type: 'admin', port: server.port('admin'), host: '127.0.0.1' }],
        log: { level: 'silent' },
      }),
    );
  });
  after(async () => {
    await server.destroy();
    rmSync(work, { recursive: true, force: true });
    await pgdb?.drop();
  });

  test('backup while the server runs: a private directory with the database, certificates and a manifest of every table', async () => {
    const r = await natter('backup', join(work, 'b1'), '--config', config);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /backed up \d+ rows in \d+ tables and certs\/ to/);
    assert.equal(statSync(join(work, 'b1')).mode & 0o777, 0o700);
    assert.equal(statSync(join(work, 'b1', 'natter.sqlite')).mode & 0o777, 0o600);
    assert.ok(existsSync(join(work, 'b1', 'certs', 'self-signed.key')));
    // No write-ahead log beside the copy: it is one file.
    assert.deepEqual(readdirSync(join(work, 'b1')).sort(), ['certs', 'manifest.json', 'natter.sqlite']);
    const manifest = JSON.parse(readFileSync(join(work, 'b1', 'manifest.json'), 'utf8')) as {
      tables: Record<string, number>;
      migrations: Record<string, string[]>;
    };
    assert.equal(manifest.tables.accounts, 2);
    assert.ok(manifest.tables.roster_items! >= 1);
    assert.ok(manifest.migrations.accounts!.includes('0002-disabled'));
    const again = await natter('backup', join(work, 'b1'), '--config', config);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /exists and is not empty/);
  });

  test('restore refuses while the server runs, and without --force over existing data; a tampered backup is refused', async () => {
    const running = await natter('restore', join(work, 'b1'), '--config', config);
    assert.equal(running.code, 2);
    assert.match(running.stderr, /the server is running/);
    await server.stop();
    const exists = await natter('restore', join(work, 'b1'), '--config', config);
    assert.equal(exists.code, 2);
    assert.match(exists.stderr, /would replace .*natter\.sqlite.*--force/);
    // A copy of the backup whose manifest disagrees with its database.
    const tampered = join(work, 'tampered');
    await natter('backup', tampered, '--config', config);
    const m = JSON.parse(readFileSync(join(tampered, 'manifest.json'), 'utf8')) as {
      tables: Record<string, number>;
    };
    m.tables.accounts = 3;
    writeFileSync(join(tampered, 'manifest.json'), JSON.stringify(m));
    const bad = await natter('restore', tampered, '--config', config, '--force');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /does not match its manifest: accounts has 2 rows, not 3/);
    // A manifest that names a directory outside the data directory: refused, nothing touched.
    const outside = join(work, 'outside');
    mkdirSync(outside, { recursive: true });
    writeFileSync(join(outside, 'keep'), 'mine');
    const crafted = join(work, 'crafted');
    await natter('backup', crafted, '--config', config);
    const c = JSON.parse(readFileSync(join(crafted, 'manifest.json'), 'utf8')) as { directories: string[] };
    c.directories.push('../outside');
    writeFileSync(join(crafted, 'manifest.json'), JSON.stringify(c));
    const escape = await natter('restore', crafted, '--config', config, '--force');
    assert.equal(escape.code, 2);
    assert.match(escape.stderr, /names directories Natter does not back up \("\.\.\/outside"\)/);
    assert.equal(readFileSync(join(outside, 'keep'), 'utf8'), 'mine');
  });

  test('restore after the database is lost: the server starts on it and users find their data', async () => {
    for (const f of readdirSync(dataDir)) if (f.startsWith('natter.sqlite')) unlinkSync(join(dataDir, f));
    const r = await natter('restore', join(work, 'b1'), '--config', config, '--force');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /restored \d+ rows from the backup of/);
    assert.match(r.stdout, /kept what it replaced as .*certs\.before-restore-/);
    server = Object.assign(await startTestServer({ storage: { engine: 'sqlite' } }, { dataDir }), {
      destroy: server.destroy,
    });
    await assertData(server);
    await server.stop();
  });

  test('storage copy: SQLite into an empty PostgreSQL database, verified; a server on PostgreSQL has the same data; a second copy is refused', async (t) => {
    pgdb = await createTestDatabase();
    if (!pgdb) return t.skip('PostgreSQL is not reachable');
    // The restored database (the previous test consumed Bob's offline message: put one back).
    server = Object.assign(await startTestServer({ storage: { engine: 'sqlite' } }, { dataDir }), {
      destroy: server.destroy,
    });
    const alice = await TestClient.login(server, 'alice', PW, { resource: 'again' });
    alice.send(
      xml('message', { to: 'bob@localhost', type: 'chat' }, xml('body', null, 'while you were out')),
    );
    await alice.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    await alice.close();
    await server.stop();
    const r = await natter('storage', 'copy', '--to', pgdb.url, '--config', config);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^accounts: 2 rows$/m);
    assert.match(r.stdout, /copied and verified \d+ rows into postgres:/);
    let pgServer = await startTestServer({ storage: { engine: 'postgres', url: pgdb.url } }, { dataDir });
    try {
      const alice2 = await TestClient.login(pgServer, 'alice', PW, { resource: 'pg' });
      assert.deepEqual(await rosterJids(alice2), ['bob@localhost']);
      assert.ok((await archivedBodies(alice2)).includes('archived hello'));
      // New offline messages after the copied one: stored (ids past the copied ids, not colliding
      // with them) and delivered after it.
      for (const body of ['after the move 1', 'after the move 2'])
        alice2.send(xml('message', { to: 'bob@localhost', type: 'chat' }, xml('body', null, body)));
      await alice2.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
      await alice2.close();
      await pgServer.stop();
      pgServer = await startTestServer({ storage: { engine: 'postgres', url: pgdb.url } }, { dataDir });
      const bob = await TestClient.login(pgServer, 'bob', PW, { resource: 'pg', presence: true });
      const bodies: string[] = [];
      for (let i = 0; i < 3; i++)
        bodies.push(
          (await bob.receive((e) => e.name === 'message' && e.getChild('body') !== undefined)).getChildText(
            'body',
          )!,
        );
      assert.deepEqual(bodies, ['while you were out', 'after the move 1', 'after the move 2']);
      await bob.close();
    } finally {
      await pgServer.stop();
    }
    const again = await natter('storage', 'copy', '--to', pgdb.url, '--config', config);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /the target is not empty \(accounts: 2 rows/);
  });

  test('PostgreSQL storage: backup says how to use pg_dump, without the password', async () => {
    const pgConfig = join(work, 'pg.json');
    writeFileSync(
      pgConfig,
      JSON.stringify({
        hosts: ['localhost'],
        dataDir,
        storage: { engine: 'postgres', url: 'postgres://natter:s3cret@db.example/natter' },
        listeners: [],
      }),
    );
    const r = await natter('backup', join(work, 'b2'), '--config', pgConfig);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /pg_dump --format=custom/);
    assert.doesNotMatch(r.stderr, /s3cret/);
  });
});
