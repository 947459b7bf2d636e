import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { captureLog } from './support/log-capture.js';
import { startTestServer, type TestServer } from './support/test-server.js';

const PW = 'console-test-pw';
const TOKEN = 'a-long-admin-token-for-the-console-tests';
const COMPONENT_SECRET = 'component-secret-never-shown';
const DIALBACK_SECRET = 'dialback-secret-never-shown-0123';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
  text: string;
}

/**
 * One HTTP request to the admin listener, headers exactly as given (fetch would add its own) and
 * from `localAddress` (127.0.0.x: another client machine, for the per-address login delays).
 */
function http(
  port: number,
  path: string,
  opts: { method?: string; headers?: Record<string, string>; body?: unknown; localAddress?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const body =
      opts.body === undefined
        ? undefined
        : typeof opts.body === 'string'
          ? opts.body
          : JSON.stringify(opts.body);
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: opts.method ?? (body === undefined ? 'GET' : 'POST'),
        headers: {
          ...(body !== undefined && !opts.headers?.['content-type']
            ? { 'content-type': 'application/json' }
            : {}),
          ...opts.headers,
        },
        ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: Record<string, unknown> = {};
          try {
            parsed = JSON.parse(text) as Record<string, unknown>;
          } catch {
            // HTML, CSS, JavaScript
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed, text });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The console session cookie's `name=value` from a Set-Cookie answer. */
function sessionCookie(a: Answer): string {
  const set = a.headers['set-cookie'];
  const line = (Array.isArray(set) ? set : [set ?? ''])[0]!;
  return line.split(';')[0]!;
}

describe('the web console (/console/ on the admin listener): login, session cookie, Origin and CSRF', () => {
  let server: TestServer;
  let port: number;
  let origin: string;
  const { logger, lines: logLines } = captureLog();

  /** Logs in from 127.0.0.1; the cookie and the CSRF token. */
  async function login(jid = 'admin@localhost', password = PW): Promise<{ cookie: string; csrf: string }> {
    const a = await http(port, '/console/api/login', {
      body: { jid, password },
      headers: { origin },
    });
    assert.equal(a.status, 200, a.text);
    return { cookie: sessionCookie(a), csrf: a.body.csrf as string };
  }

  before(async () => {
    server = await startTestServer(
      {
        admins: ['admin@localhost', 'second-admin@localhost'],
        // A TLS proxy in front of the console (test: behind a proxy, per client address).
        trustedProxies: ['127.0.0.7'],
        listeners: [
          { type: 'c2s', port: 0, host: '127.0.0.1' },
          { type: 'admin', port: 0, host: '127.0.0.1', token: TOKEN },
          { type: 'component', port: 0, host: '127.0.0.1' },
        ],
        components: { 'gw.localhost': { secret: COMPONENT_SECRET } },
        s2s: { enabled: false, dialbackSecret: DIALBACK_SECRET },
      },
      { logger },
    );
    port = server.port('admin');
    origin = `http://127.0.0.1:${port}`;
    await server.addUser('admin', PW);
    await server.addUser('bob', PW);
    await server.addUser('second-admin', PW);
  });
  after(() => server.destroy());

  test('the pages are served with a strict CSP, no framing, no referrer, no caching', async () => {
    const page = await http(port, '/console/');
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    const csp = String(page.headers['content-security-policy']);
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(page.headers['x-frame-options'], 'DENY');
    assert.equal(page.headers['referrer-policy'], 'no-referrer');
    assert.equal(page.headers['x-content-type-options'], 'nosniff');
    // No inline script: the only script is the file the CSP allows.
    assert.doesNotMatch(page.text, /<script>|<script [^>]*>[^<]/);
    assert.match(page.text, /<script src="app\.js" defer><\/script>/);
    const js = await http(port, '/console/app.js');
    assert.equal(js.status, 200);
    assert.match(String(js.headers['content-type']), /^text\/javascript/);
    assert.doesNotMatch(js.text, /innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
    assert.equal((await http(port, '/console')).status, 308);
    assert.equal((await http(port, '/console/nothing-here')).status, 404);
  });

  test('an admin logs in with the XMPP password: a 256-bit HttpOnly SameSite=Strict cookie on /console; no token needed', async () => {
    const a = await http(port, '/console/api/login', {
      body: { jid: 'admin@localhost', password: PW },
      headers: { origin },
    });
    assert.equal(a.status, 200, a.text);
    assert.equal(a.body.jid, 'admin@localhost');
    assert.equal(typeof a.body.csrf, 'string');
    const set = String(a.headers['set-cookie']);
    const [pair, ...attrs] = set.split(';').map((s) => s.trim());
    const [name, value] = pair!.split('=');
    assert.equal(name, 'natter_console');
    assert.match(value!, /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url');
    assert.ok(attrs.includes('HttpOnly'));
    assert.ok(attrs.includes('SameSite=Strict'));
    assert.ok(attrs.includes('Path=/console'));
    const stats = await http(port, '/console/api/stats', { headers: { cookie: pair! } });
    assert.equal(stats.status, 200);
    assert.equal(stats.headers['cache-control'], 'no-store');
    assert.equal((stats.body.hosts as { registered: number }[])[0]!.registered, 3);
    assert.ok(logLines.some((l) => l.msg === 'console login' && l.jid === 'admin@localhost'));
    // The API keeps its token.
    assert.equal((await http(port, '/api/stats')).status, 401);
    assert.equal((await http(port, '/api/stats', { headers: { cookie: pair! } })).status, 401);
  });

  test('a wrong password is refused, logged as an authentication failure, and the address waits longer each time', async () => {
    const from = '127.0.0.2';
    const attempt = (password: string) =>
      http(port, '/console/api/login', {
        body: { jid: 'admin@localhost', password },
        headers: { origin },
        localAddress: from,
      });
    const first = await attempt('wrong');
    assert.equal(first.status, 401);
    assert.equal(first.headers['set-cookie'], undefined);
    const line = logLines.find((l) => l.msg === 'authentication failed' && l.ip === from);
    assert.ok(line, 'a failed-authentication line for the address');
    assert.equal(line.mechanism, 'console');
    assert.equal(line.username, 'admin@localhost');
    assert.equal(line.condition, 'not-authorized');
    // One failure costs nothing (a typo); the second makes the address wait 1 s.
    assert.equal((await attempt('wrong again')).status, 401);
    const held = await attempt(PW);
    assert.equal(held.status, 429, 'even the right password waits');
    assert.equal(held.headers['retry-after'], '1');
    // Another address is not held.
    assert.equal(
      (
        await http(port, '/console/api/login', {
          body: { jid: 'admin@localhost', password: PW },
          headers: { origin },
          localAddress: '127.0.0.4',
        })
      ).status,
      200,
    );
  });

  test('attempts sent all at once from one address are not all checked: one is, the others wait', async () => {
    const attempts = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        http(port, '/console/api/login', {
          body: { jid: 'admin@localhost', password: `guess ${i}` },
          headers: { origin },
          localAddress: '127.0.0.9',
        }),
      ),
    );
    const statuses = attempts.map((a) => a.status);
    // Parallel guesses would all be checked if the wait were read before each check only.
    assert.ok(
      statuses.filter((s) => s === 401).length <= 2,
      `checked at most twice (one at a time, then the delay holds): ${statuses.join(' ')}`,
    );
    assert.equal(statuses.filter((s) => s === 429).length + statuses.filter((s) => s === 401).length, 20);
  });

  test('behind a trusted proxy the delays are per client (X-Forwarded-For), and the log names the client; a spoofed header from elsewhere is ignored', async () => {
    const via = (client: string, password: string, from = '127.0.0.7') =>
      http(port, '/console/api/login', {
        body: { jid: 'admin@localhost', password },
        headers: { origin, 'x-forwarded-for': client },
        localAddress: from,
      });
    assert.equal((await via('203.0.113.1', 'wrong')).status, 401);
    assert.equal((await via('203.0.113.1', 'wrong again')).status, 401);
    assert.equal((await via('203.0.113.1', PW)).status, 429, 'that client waits');
    assert.equal((await via('203.0.113.2', PW)).status, 200, 'another client of the same proxy does not');
    assert.ok(
      logLines.some(
        (l) => l.msg === 'authentication failed' && l.ip === '203.0.113.1' && l.mechanism === 'console',
      ),
      'the failure is logged with the client address',
    );
    // Not from the proxy: the header is the client's own words, and its own address is counted.
    assert.equal((await via('203.0.113.3', 'wrong', '127.0.0.8')).status, 401);
    assert.ok(
      logLines.some((l) => l.msg === 'authentication failed' && l.ip === '127.0.0.8'),
      'the connecting address, not the header',
    );
    assert.ok(!logLines.some((l) => l.ip === '203.0.113.3'));
  });

  test('an account that is not in admins is refused, with the same answer as a wrong password', async () => {
    const a = await http(port, '/console/api/login', {
      body: { jid: 'bob@localhost', password: PW },
      headers: { origin },
      localAddress: '127.0.0.3',
    });
    assert.equal(a.status, 401);
    assert.equal(a.body.error, 'wrong JID or password, or not an administrator');
    const unknown = await http(port, '/console/api/login', {
      body: { jid: 'nobody@localhost', password: PW },
      headers: { origin },
      localAddress: '127.0.0.5',
    });
    assert.equal(unknown.status, 401);
    assert.equal(unknown.body.error, a.body.error);
  });

  test('a foreign Origin is refused even with a valid session; without a session an Origin is refused', async () => {
    const { cookie, csrf } = await login();
    for (const bad of ['https://evil.example', `http://127.0.0.1:${port + 1}`, 'null']) {
      const get = await http(port, '/console/api/stats', { headers: { cookie, origin: bad } });
      assert.equal(get.status, 403, bad);
      const post = await http(port, '/console/api/users/add', {
        body: { jid: 'mallory@localhost', password: 'x-pw' },
        headers: { cookie, origin: bad, 'x-csrf-token': csrf },
      });
      assert.equal(post.status, 403, bad);
      const loginFrom = await http(port, '/console/api/login', {
        body: { jid: 'admin@localhost', password: PW },
        headers: { origin: bad },
      });
      assert.equal(loginFrom.status, 403, bad);
    }
    // The page's own origin with no session: refused (only the login goes without one).
    assert.equal((await http(port, '/console/app.js', { headers: { origin } })).status, 401);
    assert.equal((await http(port, '/console/api/stats', { headers: { origin } })).status, 401);
    assert.equal((await http(port, '/console/api/stats', { headers: { origin, cookie } })).status, 200);
    assert.equal(
      (await http(port, '/console/api/users/info?jid=mallory@localhost', { headers: { cookie } })).status,
      404,
      'only the console API, not the registry under another name',
    );
  });

  test('a change without the CSRF token (or as a form) is refused; with it, the command runs and the audit log names the admin', async () => {
    const { cookie, csrf } = await login();
    const add = (
      headers: Record<string, string>,
      body: unknown = { jid: 'carol@localhost', password: 'carol-pw' },
    ) => http(port, '/console/api/users/add', { body, headers: { cookie, origin, ...headers } });
    assert.equal((await add({})).status, 403);
    assert.equal((await add({ 'x-csrf-token': 'not-the-token' })).status, 403);
    assert.equal(
      (
        await add(
          { 'x-csrf-token': csrf, 'content-type': 'application/x-www-form-urlencoded' },
          'jid=carol@localhost&password=x',
        )
      ).status,
      415,
    );
    assert.equal(await server.core.accounts.exists('carol', 'localhost'), false);
    const ok = await add({ 'x-csrf-token': csrf });
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(ok.body, { jid: 'carol@localhost' });
    assert.equal(await server.core.accounts.exists('carol', 'localhost'), true);
    const audit = logLines.find((l) => l.msg === 'admin command' && l.command === 'user.add');
    assert.ok(audit);
    assert.equal(audit.via, 'console');
    assert.equal(audit.by, 'admin@localhost');
    assert.deepEqual(audit.input, { jid: 'carol@localhost', password: '(redacted)' });
    // Validation is the registry's: a bad input is a 400 naming the field.
    const bad = await add({ 'x-csrf-token': csrf }, { jid: 'carol@localhost' });
    assert.equal(bad.status, 400);
    assert.match(String(bad.body.error), /password/);
  });

  test('/api/ still refuses a browser (Origin), even with the token and a console session', async () => {
    const { cookie } = await login();
    const a = await http(port, '/api/stats', {
      headers: { authorization: `Bearer ${TOKEN}`, origin, cookie },
    });
    assert.equal(a.status, 403);
    assert.equal(
      (await http(port, '/api/stats', { headers: { authorization: `Bearer ${TOKEN}` } })).status,
      200,
    );
  });

  test('users are listed a page at a time with search; the configuration is shown with its secrets redacted', async () => {
    const { cookie } = await login();
    for (const u of ['dave1', 'dave2', 'erin']) await server.addUser(u, PW);
    const found = await http(port, '/console/api/users?search=DAVE', { headers: { cookie } });
    assert.equal(found.status, 200, found.text);
    assert.deepEqual(
      (found.body.users as { jid: string }[]).map((u) => u.jid),
      ['dave1@localhost', 'dave2@localhost'],
    );
    const next = await http(port, '/console/api/users?after=dave1@localhost&search=dave', {
      headers: { cookie },
    });
    assert.deepEqual(
      (next.body.users as { jid: string }[]).map((u) => u.jid),
      ['dave2@localhost'],
    );
    const config = await http(port, '/console/api/config', { headers: { cookie } });
    assert.equal(config.status, 200);
    assert.ok(!config.text.includes(TOKEN), 'the admin token');
    assert.ok(!config.text.includes(COMPONENT_SECRET), 'a component secret');
    assert.ok(!config.text.includes(DIALBACK_SECRET), 'the dialback secret');
    assert.match(config.text, /"secret":"\(redacted\)"/);
    assert.deepEqual(config.body.admins, ['admin@localhost', 'second-admin@localhost']);
    const components = await http(port, '/console/api/components', { headers: { cookie } });
    assert.deepEqual(components.body, { components: [{ domain: 'gw.localhost', connected: false }] });
    const rooms = await http(port, '/console/api/rooms', { headers: { cookie } });
    assert.deepEqual(rooms.body, { rooms: [] });
    const s2s = await http(port, '/console/api/s2s', { headers: { cookie } });
    assert.deepEqual(s2s.body, { enabled: false, streams: [] });
  });

  test('the recent logs (info and above) are there for the console only', async () => {
    const { cookie } = await login();
    server.core.log.debug('a debug line the ring does not keep');
    server.core.log.warn({ marker: 'console-logs' }, 'a warning for the console');
    const logs = await http(port, '/console/api/logs', { headers: { cookie } });
    assert.equal(logs.status, 200);
    const lines = logs.body.lines as { msg: string; level: number; marker?: string }[];
    assert.equal(logs.body.available, true);
    assert.ok(lines.some((l) => l.msg === 'a warning for the console' && l.level === 40));
    assert.ok(!lines.some((l) => l.msg === 'a debug line the ring does not keep'));
    assert.ok(lines.some((l) => l.msg === 'console login'));
    assert.equal((await http(port, '/console/api/logs')).status, 401);
  });

  test('an admin disabled (here by another admin, through the console) loses their console session', async () => {
    const other = await login('second-admin@localhost');
    const { cookie, csrf } = await login();
    assert.equal((await http(port, '/console/api/stats', { headers: { cookie: other.cookie } })).status, 200);
    const disable = await http(port, '/console/api/users/disable', {
      body: { jid: 'second-admin@localhost', reason: 'left' },
      headers: { cookie, origin, 'x-csrf-token': csrf },
    });
    assert.equal(disable.status, 200, disable.text);
    assert.equal((await http(port, '/console/api/stats', { headers: { cookie: other.cookie } })).status, 401);
    const again = await http(port, '/console/api/login', {
      body: { jid: 'second-admin@localhost', password: PW },
      headers: { origin },
      localAddress: '127.0.0.6',
    });
    assert.equal(again.status, 401, 'a disabled admin cannot log in');
  });

  test('logout ends the session and clears the cookie; a logout needs the CSRF token', async () => {
    const { cookie, csrf } = await login();
    assert.equal(
      (await http(port, '/console/api/logout', { body: {}, headers: { cookie, origin } })).status,
      403,
    );
    const out = await http(port, '/console/api/logout', {
      body: {},
      headers: { cookie, origin, 'x-csrf-token': csrf },
    });
    assert.equal(out.status, 200);
    assert.match(String(out.headers['set-cookie']), /^natter_console=; .*Max-Age=0/);
    assert.equal((await http(port, '/console/api/stats', { headers: { cookie } })).status, 401);
  });
});

describe("web console sessions expire (idle and absolute lifetimes from the listener's console option)", () => {
  let server: TestServer;
  let port: number;
  before(async () => {
    server = await startTestServer({
      admins: ['admin@localhost'],
      listeners: [
        { type: 'c2s', port: 0, host: '127.0.0.1' },
        { type: 'admin', port: 0, host: '127.0.0.1', console: { idleTimeout: 0.6, maxAge: 1.5 } },
      ],
    });
    port = server.port('admin');
    await server.addUser('admin', PW);
  });
  after(() => server.destroy());

  const login = async () =>
    sessionCookie(await http(port, '/console/api/login', { body: { jid: 'admin@localhost', password: PW } }));
  const stats = (cookie: string) => http(port, '/console/api/stats', { headers: { cookie } });
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

  test('a session unused for idleTimeout seconds has ended', async () => {
    const cookie = await login();
    assert.equal((await stats(cookie)).status, 200);
    await pause(900);
    assert.equal((await stats(cookie)).status, 401);
  });

  test('a session used all along ends maxAge seconds after the login', async () => {
    const cookie = await login();
    const start = Date.now();
    let status = 200;
    while (status === 200 && Date.now() - start < 5000) {
      await pause(100);
      status = (await stats(cookie)).status;
    }
    assert.equal(status, 401);
    assert.ok(Date.now() - start >= 1450, `ended after ${Date.now() - start} ms, before maxAge`);
  });

  test('console: false serves no console', async () => {
    const off = await startTestServer({
      listeners: [{ type: 'admin', port: 0, host: '127.0.0.1', console: false }],
    });
    try {
      assert.equal((await http(off.port('admin'), '/console/')).status, 404);
    } finally {
      await off.destroy();
    }
  });
});
