import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { xml } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from './support/test-server.js';
import { TestClient } from './support/test-client.js';

const PW = 'account-life-pw';
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const CLI = join(ROOT, 'packages/server/src/cli.ts');

/** Runs the real CLI (`natter …`) in a child process; resolves with its exit code and output. */
function natter(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', '--conditions=source', CLI, ...args],
      { cwd: ROOT, timeout: 60_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** A configuration file for the CLI over the test server's storage, with no listener of its own. */
function cliConfig(server: TestServer): string {
  const path = join(server.dataDir, 'cli.json');
  writeFileSync(
    path,
    JSON.stringify({
      hosts: ['localhost'],
      dataDir: server.dataDir,
      storage: server.config.storage,
      listeners: [],
      log: { level: 'silent' },
    }),
  );
  return path;
}

const offlineCount = (server: TestServer, owner: string) =>
  (
    server.core.hosts.get('localhost')!.provided.get('offline') as { count(o: string): Promise<number> }
  ).count(owner);

async function untilStored(server: TestServer, owner: string, n: number): Promise<void> {
  const end = Date.now() + 5000;
  while ((await offlineCount(server, owner)) < n) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${n} stored messages`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function rosterJids(c: TestClient): Promise<string[]> {
  const res = await c.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS.roster })));
  return res
    .getChild('query', NS.roster)!
    .getChildren('item')
    .map((i) => i.attrs.jid ?? '');
}

async function vcardFn(c: TestClient, owner: string): Promise<string | undefined> {
  const res = await c.iq(xml('iq', { type: 'get', to: owner }, xml('vCard', { xmlns: NS.vcard })));
  return res.getChild('vCard', NS.vcard)?.getChildText('FN', NS.vcard);
}

/** Number of messages in the account's own archive (XEP-0313). */
async function archived(c: TestClient): Promise<number> {
  const queryid = `q${Math.random().toString(36).slice(2)}`;
  await c.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: NS.mam, queryid })));
  return c.received.filter(
    (e) => e.name === 'message' && e.getChild('result', NS.mam)?.attrs.queryid === queryid,
  ).length;
}

/** Gives `user` a roster item, a vCard, an archived conversation and one offline message. */
async function fillAccount(server: TestServer, user: string): Promise<void> {
  const owner = `${user}@localhost`;
  const c = await TestClient.login(server, user, PW, { resource: 'fill', presence: true });
  const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'fill', presence: true });
  await c.iq(
    xml('iq', { type: 'set' }, xml('query', { xmlns: NS.roster }, xml('item', { jid: 'juliet@localhost' }))),
  );
  await c.iq(xml('iq', { type: 'set', to: owner }, xml('vCard', { xmlns: NS.vcard }, xml('FN', null, user))));
  c.send(xml('message', { to: 'juliet@localhost/fill', type: 'chat' }, xml('body', null, 'hello')));
  await juliet.receive((e) => e.name === 'message' && e.getChildText('body') === 'hello');
  await c.close();
  juliet.send(xml('message', { to: owner, type: 'chat' }, xml('body', null, 'while you were out')));
  await untilStored(server, owner, 1);
  await juliet.close();
  // The data is there, seen as the user sees it.
  const check = await TestClient.login(server, user, PW, { resource: 'check' });
  assert.deepEqual(await rosterJids(check), ['juliet@localhost']);
  assert.equal(await vcardFn(check, owner), user);
  assert.ok((await archived(check)) >= 2);
  await check.close();
}

/** After re-registering `user`: no roster, vCard, archive or offline message of the old account. */
async function assertFresh(server: TestServer, user: string): Promise<void> {
  const owner = `${user}@localhost`;
  await server.addUser(user, 'a-new-password');
  assert.equal(await offlineCount(server, owner), 0);
  const c = await TestClient.login(server, user, 'a-new-password', { resource: 'new' });
  assert.deepEqual(await rosterJids(c), []);
  assert.equal(await vcardFn(c, owner), undefined);
  assert.equal(await archived(c), 0);
  await c.close();
}

describe('natter user remove / passwd: the account, its data and its sessions', () => {
  let server: TestServer;
  let config: string;
  let url: string;
  before(async () => {
    server = await startTestServer({ modules: { ping: { idleMs: 0 } } });
    for (const u of ['romeo', 'juliet', 'mercutio', 'benvolio']) await server.addUser(u, PW);
    config = cliConfig(server);
    url = `http://127.0.0.1:${server.port('admin')}`;
  });
  after(() => server.destroy());

  test('remove, with the server running: sessions are ended and a new account of that name starts empty', async () => {
    await fillAccount(server, 'romeo');
    const live = await TestClient.login(server, 'romeo', PW, { resource: 'live', presence: true });
    const r = await natter('user', 'remove', 'romeo@localhost', '--config', config, '--url', url);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /removed romeo@localhost and its data; 1 session ended/);
    await live.waitClosed();
    assert.equal(live.streamError?.condition, 'not-authorized');
    assert.equal(server.core.sessions.ofAccount('romeo@localhost').length, 0);
    await assertFresh(server, 'romeo');
  });

  test('remove, with no server running: the CLI runs the modules itself and the data goes', async () => {
    await fillAccount(server, 'mercutio');
    await server.stop();
    const r = await natter('user', 'remove', 'mercutio@localhost', '--config', config);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /removed mercutio@localhost and its data; 0 sessions ended\n\(no running server/);
    const first = server;
    const restarted = await startTestServer({ modules: { ping: { idleMs: 0 } } }, { dataDir: first.dataDir });
    server = Object.assign(restarted, {
      destroy: async () => {
        await restarted.stop();
        await first.destroy(); // already stopped: removes the data directory (and database)
      },
    });
    url = `http://127.0.0.1:${server.port('admin')}`;
    await assertFresh(server, 'mercutio');
  });

  test('remove of an account that does not exist fails and says so', async () => {
    const r = await natter('user', 'remove', 'nobody@localhost', '--config', config, '--url', url);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no account nobody@localhost/);
  });

  test('add refuses a domain the server does not host and names the hosted ones', async () => {
    const r = await natter('user', 'add', 'carol@example.com', '--password', 'pw', '--config', config);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /example\.com is not hosted by this server \(hosts: localhost\)/);
    assert.equal(await server.core.accounts.exists('carol', 'example.com'), false);
  });

  test('passwd, with the server running: every session of the account ends with <reset/>; the new password works', async () => {
    const a = await TestClient.login(server, 'benvolio', PW, { resource: 'a', presence: true });
    const b = await TestClient.login(server, 'benvolio', PW, { resource: 'b' });
    const r = await natter(
      'user',
      'passwd',
      'benvolio@localhost',
      '--password',
      'changed-pw',
      '--config',
      config,
      '--url',
      url,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /password changed for benvolio@localhost; 2 sessions ended/);
    await Promise.all([a.waitClosed(), b.waitClosed()]);
    assert.equal(a.streamError?.condition, 'reset');
    assert.equal(b.streamError?.condition, 'reset');
    const again = await TestClient.login(server, 'benvolio', 'changed-pw', { resource: 'c' });
    await again.close();
  });

  test('XEP-0077 §3.3: an in-band password change ends the other sessions, not the one that changed it', async () => {
    const a = await TestClient.login(server, 'juliet', PW, { resource: 'changer' });
    const b = await TestClient.login(server, 'juliet', PW, { resource: 'other' });
    const res = await a.iq(
      xml(
        'iq',
        { type: 'set', to: 'localhost' },
        xml(
          'query',
          { xmlns: NS.register },
          xml('username', null, 'juliet'),
          xml('password', null, 'juliet-new-pw'),
        ),
      ),
    );
    assert.equal(res.attrs.type, 'result', res.toString());
    await b.waitClosed();
    assert.equal(b.streamError?.condition, 'reset');
    const pong = await a.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: NS.ping })));
    assert.equal(pong.attrs.type, 'result');
    assert.equal(a.closed, false);
    await a.close();
  });
});
