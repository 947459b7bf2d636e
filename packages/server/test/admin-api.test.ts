import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer, type AddressInfo } from 'node:net';
import { compileErrors, validate } from '@readme/openapi-parser';
import { captureLog } from './support/log-capture.js';
import { ADMIN_COMMANDS } from '../src/admin/commands.js';
import { startTestServer, type TestServer } from './support/test-server.js';
import { TestClient } from './support/test-client.js';

const PW = 'admin-api-pw';
const TOKEN = 'a-long-admin-token-for-the-tests';
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const CLI = join(ROOT, 'packages/server/src/cli.ts');

/** Runs the real CLI in a child process, `stdin` piped in; resolves with its exit code and output. */
function natter(args: string[], stdin?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ['--import', 'tsx', '--conditions=source', CLI, ...args],
      { cwd: ROOT, timeout: 60_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin!.end(stdin ?? '');
  });
}

async function loginFails(server: TestServer, user: string, password: string): Promise<string> {
  try {
    const c = await TestClient.login(server, user, password);
    await c.close();
  } catch (err) {
    return (err as { condition: string }).condition;
  }
  assert.fail(`${user} could log in`);
}

describe('the admin API (/api/ on the admin listener) and the CLI over it', () => {
  let server: TestServer;
  let base: string;
  let config: string;
  const { logger, lines: logLines } = captureLog();
  const api = (path: string, init: RequestInit = {}, token: string | null = TOKEN) =>
    fetch(`${base}${path}`, {
      ...init,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(init.body ? { 'content-type': 'application/json' } : {}),
      },
    });
  const post = (path: string, body: unknown) => api(path, { method: 'POST', body: JSON.stringify(body) });

  before(async () => {
    server = await startTestServer(
      {
        listeners: [
          { type: 'c2s', port: 0, host: '127.0.0.1' },
          { type: 'admin', port: 0, host: '127.0.0.1', token: TOKEN },
        ],
        modules: { ping: { idleMs: 0 } },
      },
      { logger },
    );
    base = `http://127.0.0.1:${server.port('admin')}`;
    for (const u of ['alice', 'bob']) await server.addUser(u, PW);
    config = join(server.dataDir, 'cli.json');
    writeFileSync(
      config,
      JSON.stringify({
        hosts: ['localhost'],
        dataDir: server.dataDir,
        storage: server.config.storage,
        listeners: [{ type: 'admin', port: server.port('admin'), host: '127.0.0.1', token: TOKEN }],
        log: { level: 'silent' },
      }),
    );
  });
  after(() => server.destroy());

  test('GET /api/openapi.json is a valid OpenAPI 3.1 document with one operation per command, from the same schemas', async () => {
    const res = await api('/api/openapi.json');
    assert.equal(res.status, 200);
    const doc = (await res.json()) as {
      openapi: string;
      paths: Record<
        string,
        Record<string, { operationId: string; requestBody?: unknown; parameters?: unknown[] }>
      >;
    };
    assert.equal(doc.openapi, '3.1.0');
    const result = await validate(structuredClone(doc) as never);
    assert.ok(result.valid, compileErrors(result));
    for (const c of ADMIN_COMMANDS) {
      const op = doc.paths[c.http.path]?.[c.http.method.toLowerCase()];
      assert.ok(op, `${c.id} missing`);
      assert.equal(op.operationId, c.id);
      if (c.http.method === 'POST') assert.ok(op.requestBody);
    }
    // The body schema of user.add is the command's: jid and password required, nothing else.
    const add = doc.paths['/api/users/add']!.post!.requestBody as {
      content: { 'application/json': { schema: { required: string[]; additionalProperties: boolean } } };
    };
    assert.deepEqual(add.content['application/json'].schema.required.sort(), ['jid', 'password']);
    assert.equal(add.content['application/json'].schema.additionalProperties, false);
  });

  test('the token is required: none or a wrong one is 401; a browser (Origin) is refused', async () => {
    assert.equal((await api('/api/stats', {}, null)).status, 401);
    assert.equal((await api('/api/stats', {}, 'wrong')).status, 401);
    const browser = await fetch(`${base}/api/stats`, {
      headers: { authorization: `Bearer ${TOKEN}`, origin: 'https://evil.example' },
    });
    assert.equal(browser.status, 403);
  });

  test('users: add (then it logs in), duplicate 409, bad input 400 naming the field, unknown 404; the change is logged without the password', async () => {
    const created = await post('/api/users/add', { jid: 'carol@localhost', password: 'c4rol' });
    assert.equal(created.status, 200);
    assert.deepEqual(await created.json(), { jid: 'carol@localhost' });
    const c = await TestClient.login(server, 'carol', 'c4rol');
    await c.close();
    const again = await post('/api/users/add', { jid: 'carol@localhost', password: 'x' });
    assert.equal(again.status, 409);
    assert.match(((await again.json()) as { error: string }).error, /already exists/);
    const bad = await post('/api/users/add', { jid: 'dave@localhost' });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: string }).error, /^password:/);
    const extra = await post('/api/users/add', { jid: 'dave@localhost', password: 'x', admin: true });
    assert.equal(extra.status, 400);
    const foreign = await post('/api/users/add', { jid: 'dave@elsewhere.example', password: 'x' });
    assert.equal(foreign.status, 400);
    assert.match(
      ((await foreign.json()) as { error: string }).error,
      /elsewhere\.example is not hosted by this server/,
    );
    assert.equal((await post('/api/users/remove', { jid: 'ghost@localhost' })).status, 404);
    const audit = logLines.find((l) => l.msg === 'admin command' && l.command === 'user.add');
    assert.ok(audit, 'no audit line');
    assert.equal(audit.via, 'api');
    assert.deepEqual(audit.input, { jid: 'carol@localhost', password: '(redacted)' });
    assert.ok(!JSON.stringify(logLines).includes('c4rol'));
  });

  test('users: list (with disabled filter and limit), disable ends sessions and refuses logins, info shows it, enable', async () => {
    const live = await TestClient.login(server, 'bob', PW, { resource: 'r' });
    const dis = await post('/api/users/disable', { jid: 'bob@localhost', reason: 'spam' });
    assert.equal(dis.status, 200);
    assert.deepEqual(await dis.json(), { jid: 'bob@localhost', sessions: 1 });
    await live.waitClosed();
    assert.equal(await loginFails(server, 'bob', PW), 'account-disabled');
    const info = (await (await api('/api/users/info?jid=bob@localhost')).json()) as {
      disabled?: { reason: string };
      sessions: unknown[];
    };
    assert.equal(info.disabled?.reason, 'spam');
    assert.deepEqual(info.sessions, []);
    const disabled = (await (await api('/api/users?disabled=true')).json()) as { users: string[] };
    assert.deepEqual(disabled.users, ['bob@localhost']);
    const enabled = (await (await api('/api/users?disabled=false')).json()) as { users: string[] };
    assert.ok(!enabled.users.includes('bob@localhost') && enabled.users.includes('alice@localhost'));
    const one = (await (await api('/api/users?limit=1')).json()) as { users: string[]; more: boolean };
    assert.equal(one.users.length, 1);
    assert.equal(one.more, true);
    assert.equal((await api('/api/users?limit=0')).status, 400);
    assert.equal((await post('/api/users/enable', { jid: 'bob@localhost' })).status, 200);
    const back = await TestClient.login(server, 'bob', PW);
    await back.close();
  });

  test('stats, sessions and announce', async () => {
    const a = await TestClient.login(server, 'alice', PW, { resource: 'desk', presence: true });
    await a.iq('<iq type="get" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>');
    const stats = (await (await api('/api/stats')).json()) as {
      hosts: { host: string; registered: number; online: number; active: number; sessions: number }[];
      uptimeSeconds: number;
    };
    const local = stats.hosts.find((h) => h.host === 'localhost')!;
    assert.equal(local.registered, (await server.core.accounts.list('localhost')).length);
    assert.equal(local.online, 1);
    assert.equal(local.active, 1);
    const sessions = (await (await api('/api/sessions')).json()) as {
      sessions: { jid: string; state: string }[];
    };
    assert.deepEqual(
      sessions.sessions.map((s) => [s.jid, s.state]),
      [['alice@localhost/desk', 'available']],
    );
    const sent = await post('/api/announce', { subject: 'Hello', body: 'from the API' });
    assert.deepEqual(await sent.json(), { recipients: 1 });
    const msg = await a.receive((e) => e.name === 'message');
    assert.equal(msg.attrs.type, 'headline');
    assert.equal(msg.getChildText('body'), 'from the API');
    await a.close();
  });

  test('the CLI asks the running server: user add (password on stdin), disable, info --json, list, sessions end', async () => {
    const add = await natter(['user', 'add', 'erin@localhost', '--config', config], 'erin-pw\n');
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stdout, /created erin@localhost/);
    assert.doesNotMatch(add.stdout, /no running server/);
    const e = await TestClient.login(server, 'erin', 'erin-pw', { resource: 'x' });
    const dis = await natter(['user', 'disable', 'erin', '--reason', 'left the team', '--config', config]);
    assert.equal(dis.code, 0, dis.stderr);
    assert.match(dis.stdout, /disabled erin@localhost; 1 session ended/);
    await e.waitClosed();
    const info = await natter(['user', 'info', 'erin@localhost', '--json', '--config', config]);
    assert.equal(info.code, 0, info.stderr);
    assert.equal(
      (JSON.parse(info.stdout) as { disabled: { reason: string } }).disabled.reason,
      'left the team',
    );
    const list = await natter(['user', 'list', '--disabled', '--config', config]);
    assert.deepEqual(list.stdout.trim().split('\n'), ['erin@localhost']);
    const bad = await natter(['user', 'disable', 'erin@elsewhere.example', '--config', config]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /elsewhere\.example is not hosted by this server/);
    const wrongToken = await natter(['server', 'stats', '--config', config, '--token', 'nope']);
    assert.equal(wrongToken.code, 2);
    assert.match(wrongToken.stderr, /admin token/);
  });

  test('the CLI without a running server runs the command on the storage', async () => {
    // A configuration whose admin listener nobody listens on: the command runs here.
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const offline = join(server.dataDir, 'offline.json');
    writeFileSync(
      offline,
      JSON.stringify({
        hosts: ['localhost'],
        dataDir: server.dataDir,
        storage: server.config.storage,
        listeners: [{ type: 'admin', port, host: '127.0.0.1' }],
        log: { level: 'silent' },
      }),
    );
    const r = await natter(['user', 'enable', 'erin@localhost', '--config', offline]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /enabled erin@localhost\n\(no running server: nothing listens at http:\/\/127\.0\.0\.1:\d+\)/,
    );
    const e = await TestClient.login(server, 'erin', 'erin-pw');
    await e.close();
  });
});
