// The web-chat module over plain HTTP: the page, its settings and security headers, Converse's
// files (types, caching, gzip, nothing outside dist/), and the listener's other paths beside it.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { WebSocket } from 'ws';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import { ConverseAssets, acceptsGzip } from './converse-assets.js';
import { BOOT_SCRIPT_NAME } from './page.js';
import { loginDomain } from './web-chat.js';

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  text: string;
}

/** A request with the path sent exactly as given (fetch would resolve `..`) and any Host. */
function get(
  port: number,
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString() });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** The settings the page hands to converse.initialize(). */
function settingsOf(html: string): Record<string, unknown> {
  const m = /<script type="application\/json" id="natter-web-chat-settings">(.*?)<\/script>/s.exec(html);
  assert.ok(m, 'the page carries its settings block');
  return JSON.parse(m[1]!) as Record<string, unknown>;
}

/** The page's asset directory, `converse/<version>/`, from its stylesheet link. */
function assetDirOf(html: string): string {
  const m = /<link rel="stylesheet" href="(converse\/[^"]+\/)converse\.min\.css">/.exec(html);
  assert.ok(m, 'the page links the stylesheet under converse/<version>/');
  return m[1]!;
}

function directives(csp: string | string[] | undefined): Map<string, string[]> {
  assert.equal(typeof csp, 'string');
  return new Map(
    (csp as string).split(';').map((d) => {
      const [name, ...values] = d.trim().split(/\s+/);
      return [name!, values];
    }),
  );
}

describe('web-chat: off by default', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.destroy());

  test('without modules.web-chat, / is not served', async () => {
    const r = await get(server.port('http'), '/');
    assert.equal(r.status, 404);
    assert.equal((await get(server.port('http'), '/health')).status, 200);
  });
});

describe('web-chat: the page at / on the http listener', () => {
  let server: TestServer;
  let port: number;
  const version = ConverseAssets.locate().version;
  before(async () => {
    server = await startTestServer({ modules: { 'web-chat': {}, upload: {} } });
    port = server.port('http');
  });
  after(() => server.destroy());

  test('/ serves the page: Converse on this listener’s WebSocket, the host’s domain locked, rooms on conference.<domain>', async () => {
    const r = await get(port, '/', { host: `localhost:${port}` });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(r.headers['cache-control'], 'no-cache');
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    assert.equal(r.headers['x-frame-options'], 'DENY');
    const settings = settingsOf(r.text);
    assert.deepEqual(settings, {
      assets_path: `converse/${version}/`,
      websocket_url: `ws://localhost:${port}/xmpp-websocket`,
      discover_connection_methods: false,
      authentication: 'login',
      view_mode: 'fullscreen',
      locked_domain: 'localhost',
      muc_domain: 'conference.localhost',
      muc_nickname_from_jid: true,
      allow_registration: false,
    });
    assert.equal(assetDirOf(r.text), `converse/${version}/`);
    assert.match(r.text, new RegExp(`<script type="module" src="converse/${version}/converse\\.min\\.js">`));
    assert.match(r.text, new RegExp(`<script type="module" src="${BOOT_SCRIPT_NAME}">`));
    assert.match(r.text, /<title>Natter<\/title>/);
    // No inline script: everything that runs is a file of this origin.
    const scripts = r.text.match(/<script[^>]*>/g) ?? [];
    assert.equal(scripts.length, 3);
    for (const tag of scripts) assert.match(tag, / src="| type="application\/json"/, tag);
    // HEAD: the same headers, no body.
    const head = await get(port, '/', { host: `localhost:${port}` }, 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    assert.equal(Number(head.headers['content-length']), r.body.length);
  });

  test('the page’s Content-Security-Policy: scripts from this origin only (and WebAssembly), no framing', async () => {
    const r = await get(port, '/', { host: `127.0.0.1:${port}` });
    const csp = directives(r.headers['content-security-policy']);
    assert.deepEqual(csp.get('default-src'), ["'none'"]);
    assert.deepEqual(csp.get('script-src'), ["'self'", "'wasm-unsafe-eval'"]);
    assert.deepEqual(csp.get('style-src'), ["'self'", "'unsafe-inline'"]);
    assert.deepEqual(csp.get('connect-src'), ["'self'", `ws://127.0.0.1:${port}`]);
    // No image or media from another site: a link in a message stays a link.
    assert.deepEqual(csp.get('img-src'), ["'self'", 'data:', 'blob:']);
    assert.deepEqual(csp.get('media-src'), ["'self'", 'data:', 'blob:']);
    assert.deepEqual(csp.get('frame-ancestors'), ["'none'"]);
    assert.deepEqual(csp.get('base-uri'), ["'none'"]);
    assert.deepEqual(csp.get('object-src'), ["'none'"]);
    assert.ok(![...csp.values()].flat().includes("'unsafe-eval'"));
  });

  test('behind a trusted TLS proxy the page connects over wss://; a bad Host header is refused', async () => {
    const proxied = await startTestServer({
      modules: { 'web-chat': {} },
      trustedProxies: ['127.0.0.1'],
    });
    try {
      const r = await get(proxied.port('http'), '/', {
        host: 'chat.example.com',
        'x-forwarded-proto': 'https',
      });
      assert.equal(settingsOf(r.text).websocket_url, 'wss://chat.example.com/xmpp-websocket');
      const bad = await get(proxied.port('http'), '/', { host: 'evil"><script>' });
      assert.equal(bad.status, 400);
    } finally {
      await proxied.destroy();
    }
  });

  test('the boot script and Converse’s files: content types, long caching of versioned paths, gzip', async () => {
    const boot = await get(port, `/${BOOT_SCRIPT_NAME}`);
    assert.equal(boot.status, 200);
    assert.equal(boot.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.match(boot.text, /converse\.initialize\(settings\)/);

    const base = `/converse/${version}/`;
    const js = await get(port, `${base}converse.min.js`);
    assert.equal(js.status, 200);
    assert.equal(js.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal(js.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.equal(js.headers['content-encoding'], undefined);
    assert.equal(js.headers['x-content-type-options'], 'nosniff');
    assert.ok(js.body.length > 100_000);

    const gz = await get(port, `${base}converse.min.js`, { 'accept-encoding': 'gzip, deflate, br' });
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.equal(gz.headers.vary, 'accept-encoding');
    assert.ok(gz.body.length < js.body.length / 2, `gzip: ${gz.body.length} of ${js.body.length}`);
    assert.deepEqual(gunzipSync(gz.body), js.body);

    const css = await get(port, `${base}converse.min.css`);
    assert.equal(css.headers['content-type'], 'text/css; charset=utf-8');
    const wasm = await get(port, `${base}curve25519_compiled.wasm`);
    assert.equal(wasm.headers['content-type'], 'application/wasm');
    const emoji = await get(port, `${base}emoji.json`);
    assert.equal(emoji.headers['content-type'], 'application/json');
    const icon = await get(port, `${base}images/favicon.ico`);
    assert.equal(icon.status, 200);
    // A locale chunk, loaded by Converse relative to its bundle.
    const chunk = ConverseAssets.locate()
      .paths()
      .find((p) => p.startsWith('chunkjs/'));
    assert.ok(chunk);
    assert.equal((await get(port, base + chunk)).status, 200);
  });

  test('only files of Converse’s dist/ are served: `..`, encoded dots, source maps and other versions are refused', async () => {
    const base = `/converse/${version}/`;
    for (const path of [
      `${base}../../package.json`,
      `${base}../${version}/converse.min.js/../../../../package.json`,
      `${base}%2e%2e/package.json`,
      `${base}..%2fpackage.json`,
      `${base}..\\package.json`,
      `${base}converse.min.js.map`,
      `${base}sounds/README`,
      `${base}`,
      '/converse/0.0.0/converse.min.js',
      '/converse/',
      '/package.json',
      '/../package.json',
    ]) {
      const r = await get(port, path);
      assert.equal(r.status, 404, path);
      assert.equal(r.text, 'not found\n', path);
    }
    const post = await get(port, '/', {}, 'POST');
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET, HEAD');
  });

  test('the listener’s own paths and other modules’ paths still work beside the page at /', async () => {
    const health = await get(port, '/health');
    assert.equal(health.status, 200);
    assert.equal((JSON.parse(health.text) as { status: string }).status, 'ok');
    const hostMeta = await get(port, '/.well-known/host-meta.json', { host: `localhost:${port}` });
    assert.equal(hostMeta.status, 200);
    assert.equal(hostMeta.headers['content-type'], 'application/json');
    // BOSH answers a GET itself (not the page's 404).
    const bosh = await get(port, '/http-bind');
    assert.notEqual(bosh.text, 'not found\n');
    assert.doesNotMatch(String(bosh.headers['content-type']), /text\/html/);
    // The upload module's paths: its own answer (its sandboxing CSP), not the page.
    const upload = await get(port, '/upload/nothing/here.txt');
    assert.equal(upload.status, 404);
    assert.match(String(upload.headers['content-security-policy']), /sandbox/);
    // The WebSocket endpoint upgrades and speaks XMPP.
    const ws = new WebSocket(`ws://127.0.0.1:${port}/xmpp-websocket`, 'xmpp');
    const opened = await new Promise<string>((resolve, reject) => {
      ws.once('open', () => {
        ws.send(`<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="localhost" version="1.0"/>`);
      });
      ws.once('message', (data) => resolve(String(data)));
      ws.once('error', reject);
      setTimeout(() => reject(new Error('no answer on the WebSocket')), 5000).unref();
    });
    ws.close();
    assert.match(opened, /<open /);
    // Anything else: the same 404 as without the page.
    assert.equal((await get(port, '/nothing-here')).status, 404);
  });
});

describe('web-chat: options', () => {
  test('path, lockedDomain: false, title and extra Converse settings; publicUrl gives the WebSocket URL; values cannot break out of the page', async () => {
    const server = await startTestServer({
      hosts: ['localhost', 'example.test'],
      listeners: [{ type: 'http', port: 0, host: '127.0.0.1', publicUrl: 'https://chat.example.com/xmpp/' }],
      modules: {
        muc: false,
        upload: { baseUrl: 'https://files.example.com/x' },
        'web-chat': {
          path: '/chat/',
          lockedDomain: false,
          title: 'Our <chat> & "more"',
          converse: { theme: 'nord', motd: '</script><script>alert(1)</script><!--' },
        },
      },
    });
    try {
      const port = server.port('http');
      assert.equal((await get(port, '/')).status, 404);
      const r = await get(port, '/chat/', { host: 'internal:1' });
      assert.equal(r.status, 200);
      assert.match(r.text, /<title>Our &#60;chat&#62; &#38; &#34;more&#34;<\/title>/);
      assert.equal(r.text.match(/<\/script>/g)?.length, 3, 'only the page’s own three scripts end');
      assert.doesNotMatch(r.text, /<!--/);
      const settings = settingsOf(r.text);
      assert.equal(settings.websocket_url, 'wss://chat.example.com/xmpp/xmpp-websocket');
      assert.equal(settings.default_domain, 'localhost');
      assert.equal(settings.locked_domain, undefined);
      assert.equal(settings.muc_domain, undefined, 'no muc module, no default room service');
      assert.equal(settings.theme, 'nord');
      assert.equal(settings.motd, '</script><script>alert(1)</script><!--');
      // The upload service elsewhere: files go there, and are shown from there.
      const csp = directives(r.headers['content-security-policy']);
      assert.deepEqual(csp.get('connect-src'), [
        "'self'",
        'wss://chat.example.com',
        'https://files.example.com',
      ]);
      assert.deepEqual(csp.get('img-src'), ["'self'", 'data:', 'blob:', 'https://files.example.com']);
      const dir = assetDirOf(r.text);
      assert.equal((await get(port, `/chat/${dir}converse.min.css`)).status, 200);
      assert.equal((await get(port, `/chat/${BOOT_SCRIPT_NAME}`)).status, 200);
    } finally {
      await server.destroy();
    }
  });

  test('a malformed path stops the start with the option named; so does a lockedDomain that is not hosted', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'natter-web-chat-'));
    try {
      for (const path of ['/chat', 'chat/', '/../', '/a/../b/', '/.hidden/'])
        await assert.rejects(
          // SQLite even under NATTER_TEST_STORAGE=postgres: no database is made for a start that fails.
          startTestServer({ storage: { engine: 'sqlite' }, modules: { 'web-chat': { path } } }, { dataDir }),
          /modules\.web-chat\.path: a path such as \/ or \/chat\//,
          path,
        );
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
    assert.throws(
      () => loginDomain('elsewhere.example', ['localhost', 'example.test']),
      /modules\.web-chat\.lockedDomain: elsewhere\.example is not one of hosts \(localhost, example\.test\)/,
    );
    assert.deepEqual(loginDomain('example.test', ['localhost', 'example.test']), {
      name: 'example.test',
      locked: true,
    });
    assert.deepEqual(loginDomain(undefined, ['Localhost']), { name: 'localhost', locked: true });
    assert.deepEqual(loginDomain(false, ['localhost']), { name: 'localhost', locked: false });
  });
});

describe('web-chat: pieces', () => {
  test('RFC 9110 §12.5.3: gzip is sent when accepted with a q-value above 0', () => {
    assert.equal(acceptsGzip(undefined), false);
    assert.equal(acceptsGzip('gzip'), true);
    assert.equal(acceptsGzip('br, GZIP;q=0.5'), true);
    assert.equal(acceptsGzip('gzip;q=0'), false);
    assert.equal(acceptsGzip('identity, *;q=0.1'), true);
    assert.equal(acceptsGzip('deflate, br'), false);
  });

  test('a missing converse.js package is an error that says what to do', () => {
    assert.throws(
      () => ConverseAssets.locate('file:///nonexistent/dir/x.js'),
      /needs the converse\.js package.*npm install/,
    );
  });
});
