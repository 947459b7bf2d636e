import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { defineModule } from '../src/core/module-api.js';
import { startTestServer, type TestServer } from './support/test-server.js';

/** A module serving two paths, one of which fails. */
const web = defineModule({
  name: 'web-probe',
  description: 'test module serving HTTP paths',
  specs: [],
  setup(ctx) {
    ctx.processScoped('web-probe:routes', () => {
      ctx.httpRoute('/probe/', (req, res, { ip, secure, endpoints }) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ url: req.url, ip, secure, endpoints }));
      });
      // Everything no other route takes (as a page at / does).
      ctx.httpRoute('/', (req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`root ${req.url}`);
      });
      ctx.httpRoute('/probe/deeper/', () => {
        throw new Error('deliberate failure');
      });
      return true;
    });
  },
});

describe('HTTP paths served by modules', () => {
  let server: TestServer;
  let base: string;
  before(async () => {
    server = await startTestServer({}, { modules: [web] });
    base = `http://127.0.0.1:${server.port('http')}`;
  });
  after(() => server.destroy());

  test('a request under a module’s prefix reaches it with the client address and the listener’s URLs; the longest prefix wins', async () => {
    const r = await fetch(`${base}/probe/thing?x=1`);
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), {
      url: '/probe/thing?x=1',
      ip: '127.0.0.1',
      secure: false,
      // As XEP-0156 host-meta advertises them: from the Host header (no publicUrl here).
      endpoints: {
        base,
        websocket: `${base.replace(/^http/, 'ws')}/xmpp-websocket`,
        bosh: `${base}/http-bind`,
      },
    });
    // The listener's own paths come first, even with a route at '/'.
    const health = await fetch(`${base}/health`);
    assert.equal(health.status, 200);
    assert.equal(health.headers.get('content-type'), 'application/json');
    await health.text();
    const hostMeta = await fetch(`${base}/.well-known/host-meta.json`);
    assert.equal(hostMeta.headers.get('content-type'), 'application/json');
    await hostMeta.text();
    // What no longer prefix takes reaches '/'.
    const rest = await fetch(`${base}/elsewhere`);
    assert.equal(await rest.text(), 'root /elsewhere');
  });

  test('a handler that throws answers 500 and the server keeps serving', async () => {
    const r = await fetch(`${base}/probe/deeper/x`);
    assert.equal(r.status, 500);
    await r.text();
    assert.equal((await fetch(`${base}/probe/ok`)).status, 200);
  });

  test('a prefix that is taken or malformed is refused when the module registers it', () => {
    assert.throws(
      () => server.core.httpRoutes.add('/probe/', () => undefined, 'other'),
      /already served by module web-probe/,
    );
    assert.throws(() => server.core.httpRoutes.add('/nope', () => undefined, 'other'), /start and end with/);
  });
});
