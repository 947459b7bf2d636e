// The `https` listener (WebSocket as wss://, BOSH over https, health) and XEP-0156 host-meta, with
// a certificate from a test CA the clients verify. Over TLS the streams are `secure`; over the plain
// `http` listener they are not, unless a trusted proxy says the client came over TLS.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { WebSocket } from 'ws';
import { xml, serialize, parseElement, type Element } from '@natter/xml';
import { NS, toBase64 } from '@natter/protocol';
import { parseConfig } from '../src/config.js';
import { startTestServer, type TestServer } from './support/test-server.js';
import { TestClient } from './support/test-client.js';
import { makeTestCa } from './support/test-ca.js';
import { BoshClient } from './support/bosh-client.js';

const PW = 'https-listener-pw';

const mechanismsOf = (features: Element | undefined): string[] =>
  features
    ?.getChild('mechanisms', NS.sasl)
    ?.getChildren('mechanism')
    .map((m) => m.text()) ?? [];

const isBody = (text: string) => (e: Element) => e.name === 'message' && e.getChildText('body') === text;

/** GET with any Host header (fetch does not let one set it). */
function get(
  url: string,
  headers: Record<string, string>,
  ca?: Buffer,
  method = 'GET',
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  const u = new URL(url);
  const send = u.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(u, { method, headers, agent: false, ca, servername: 'localhost' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString(),
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

/** A raw RFC 7395 client: frames in, parsed elements out. */
async function rawWs(
  url: string,
  ca?: Buffer,
): Promise<{ ws: WebSocket; next: (m: (e: Element) => boolean) => Promise<Element> }> {
  // The certificate is for localhost; the listener is on 127.0.0.1.
  const tls: import('node:https').RequestOptions = { ca, servername: 'localhost' };
  const ws = new WebSocket(url, 'xmpp', tls);
  const seen: Element[] = [];
  const waiters: { m: (e: Element) => boolean; resolve: (e: Element) => void }[] = [];
  ws.on('message', (d) => {
    const el = parseElement(d.toString());
    const i = waiters.findIndex((w) => w.m(el));
    if (i >= 0) waiters.splice(i, 1)[0]!.resolve(el);
    else seen.push(el);
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const next = (m: (e: Element) => boolean) => {
    const i = seen.findIndex(m);
    if (i >= 0) return Promise.resolve(seen.splice(i, 1)[0]!);
    return new Promise<Element>((resolve, reject) => {
      waiters.push({ m, resolve });
      setTimeout(() => reject(new Error('timed out waiting for a frame')), 5000).unref();
    });
  };
  return { ws, next };
}

const OPEN = serialize(xml('open', { xmlns: NS.framing, to: 'localhost', version: '1.0' }), '');
const isFeatures = (e: Element) => e.name === 'features' && e.xmlns === NS.stream;

describe('https listener: wss://, BOSH over TLS, host-meta (XEP-0156)', () => {
  let server: TestServer;
  let dir: string;
  let ca: Buffer;
  let https: string;
  let http: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'natter-https-'));
    const made = await makeTestCa(dir, ['localhost']);
    ca = readFileSync(made.caCert);
    server = await startTestServer({
      listeners: [
        { type: 'c2s', port: 0, host: '127.0.0.1' },
        { type: 'http', port: 0, host: '127.0.0.1' },
        { type: 'https', port: 0, host: '127.0.0.1', publicUrl: 'https://chat.example.com:5443/chat/' },
      ],
      tls: { cert: made.certs.localhost!.cert, key: made.certs.localhost!.key },
      // Credentials only over TLS, even from loopback: what the listener's transport says decides.
      auth: { allowPlaintext: 'never' },
      // Requests from 127.0.0.1 are believed when they say they were forwarded from TLS.
      trustedProxies: ['127.0.0.1'],
      // Short, to show that it bounds the TLS handshake and request head only.
      limits: { handshakeTimeoutMs: 1500 },
      modules: { ping: { idleMs: 0 } },
    });
    https = `https://127.0.0.1:${server.port('https')}`;
    http = `http://127.0.0.1:${server.port('http')}`;
    for (const u of ['romeo', 'juliet', 'mercutio']) await server.addUser(u, PW);
  });
  after(async () => {
    await server.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  test('BOSH over https is secure: SASL offered (PLAIN too), SCRAM login, messages both ways with a TCP client', async () => {
    const romeo = new BoshClient(`${https}/http-bind`, { ca });
    await romeo.create();
    const offered = mechanismsOf(romeo.features);
    assert.ok(offered.includes('SCRAM-SHA-256') && offered.includes('PLAIN'), offered.join());
    assert.ok(!offered.some((m) => m.endsWith('-PLUS')), 'no channel binding across HTTP requests');
    await romeo.authenticate('romeo', PW, 'SCRAM-SHA-256');
    await romeo.bind('https');
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'tcp' });
    void romeo.send(xml('message', { to: juliet.jid, type: 'chat' }, xml('body', null, 'over https')));
    await juliet.receive(isBody('over https'));
    juliet.send(xml('message', { to: romeo.jid, type: 'chat' }, xml('body', null, 'back over https')));
    await romeo.receive(isBody('back over https'));
    await romeo.terminate();
    await juliet.close();
  });

  test('PLAIN over BOSH on https is accepted', async () => {
    const c = await BoshClient.login(`${https}/http-bind`, 'mercutio', PW, { ca, mechanism: 'PLAIN' });
    assert.equal(c.jid.split('/')[0], 'mercutio@localhost');
    await c.terminate();
  });

  test('BOSH over plain http is not secure: no mechanism offered, credentials refused (encryption-required)', async () => {
    const c = new BoshClient(`${http}/http-bind`);
    await c.create();
    assert.deepEqual(mechanismsOf(c.features), []);
    const initial = toBase64(new TextEncoder().encode(`\0romeo\0${PW}`));
    void c.send(xml('auth', { xmlns: NS.sasl, mechanism: 'PLAIN' }, initial));
    const failure = await c.receive((e) => e.xmlns === NS.sasl);
    assert.equal(failure.name, 'failure');
    assert.ok(failure.getChild('encryption-required'), failure.toString());
    await c.terminate();
  });

  test('BOSH over http from a trusted proxy that says https is secure', async () => {
    const c = new BoshClient(`${http}/http-bind`, { headers: { 'x-forwarded-proto': 'https' } });
    await c.create();
    assert.ok(mechanismsOf(c.features).includes('PLAIN'));
    await c.terminate();
  });

  test('XEP-0124 §16.1: a session begun over https is not continued over plain http (the connection is dropped, the session kept)', async () => {
    const c = await BoshClient.login(`${https}/http-bind`, 'romeo', PW, { ca, resource: 'pinned' });
    const plain = new BoshClient(`${http}/http-bind`);
    plain.sid = c.sid;
    plain.rid = c.rid;
    await assert.rejects(plain.request([xml('presence')]));
    const pong = await c.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: NS.ping })));
    assert.equal(pong.attrs.type, 'result');
    await c.terminate();
  });

  test('wss:// on the https listener is secure: SASL offered, PLAIN login, chat with a TCP client', async () => {
    const { ws, next } = await rawWs(`wss://127.0.0.1:${server.port('https')}/xmpp-websocket`, ca);
    ws.send(OPEN);
    const features = await next(isFeatures);
    assert.ok(mechanismsOf(features).includes('PLAIN'), features.toString());
    ws.send(
      serialize(
        xml(
          'auth',
          { xmlns: NS.sasl, mechanism: 'PLAIN' },
          toBase64(new TextEncoder().encode(`\0juliet\0${PW}`)),
        ),
        '',
      ),
    );
    assert.equal((await next((e) => e.xmlns === NS.sasl)).name, 'success');
    ws.send(OPEN);
    await next(isFeatures);
    ws.send(
      serialize(
        xml(
          'iq',
          { xmlns: NS.client, type: 'set', id: 'b' },
          xml('bind', { xmlns: NS.bind }, xml('resource', null, 'wss')),
        ),
        '',
      ),
    );
    const bound = await next((e) => e.name === 'iq' && e.attrs.id === 'b');
    assert.equal(bound.getChild('bind', NS.bind)?.getChildText('jid'), 'juliet@localhost/wss');
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'tcp-wss' });
    romeo.send(xml('message', { to: 'juliet@localhost/wss', type: 'chat' }, xml('body', null, 'to wss')));
    await next(isBody('to wss'));
    ws.send(
      serialize(
        xml('message', { xmlns: NS.client, to: romeo.jid, type: 'chat' }, xml('body', null, 'from wss')),
        '',
      ),
    );
    await romeo.receive(isBody('from wss'));
    ws.send(serialize(xml('close', { xmlns: NS.framing }), ''));
    await romeo.close();
  });

  test('the request-head timeout does not cut https connections past their head: a held BOSH request, an idle wss stream', async () => {
    const c = await BoshClient.login(`${https}/http-bind`, 'mercutio', PW, {
      ca,
      resource: 'long',
      create: { wait: 3 },
    });
    const { ws, next } = await rawWs(`wss://127.0.0.1:${server.port('https')}/xmpp-websocket`, ca);
    ws.send(OPEN);
    await next(isFeatures);
    await c.idle();
    const started = Date.now();
    const held = await c.request();
    assert.ok(Date.now() - started >= 2500, 'held for `wait`');
    assert.equal(held.attrs.type, undefined, held.raw);
    assert.equal(ws.readyState, WebSocket.OPEN, 'the wss connection is still open');
    ws.send(
      serialize(
        xml(
          'auth',
          { xmlns: NS.sasl, mechanism: 'PLAIN' },
          toBase64(new TextEncoder().encode(`\0juliet\0${PW}`)),
        ),
        '',
      ),
    );
    assert.equal((await next((e) => e.xmlns === NS.sasl)).name, 'success');
    ws.close();
    await c.terminate();
  });

  test('ws:// on the http listener is not secure: no mechanism offered', async () => {
    const { ws, next } = await rawWs(`ws://127.0.0.1:${server.port('http')}/xmpp-websocket`);
    ws.send(OPEN);
    assert.deepEqual(mechanismsOf(await next(isFeatures)), []);
    ws.close();
  });

  test('/health answers over https', async () => {
    const res = await get(`${https}/health`, {}, ca);
    assert.equal(res.status, 200);
    assert.equal(JSON.parse(res.body).status, 'ok');
  });

  test('XEP-0156: host-meta (XRD) and host-meta.json from the Host header on the http listener', async () => {
    const xrd = await get(`${http}/.well-known/host-meta`, { host: 'Chat.Example.com:5280' });
    assert.equal(xrd.status, 200);
    assert.equal(xrd.headers['content-type'], 'application/xrd+xml; charset=utf-8');
    assert.equal(xrd.headers['access-control-allow-origin'], '*');
    const doc = parseElement(xrd.body.replace(/^<\?xml[^>]*\?>\s*/, ''));
    assert.equal(doc.name, 'XRD');
    assert.equal(doc.xmlns, 'http://docs.oasis-open.org/ns/xri/xrd-1.0');
    const links = Object.fromEntries(doc.getChildren('Link').map((l) => [l.attrs.rel, l.attrs.href]));
    assert.deepEqual(links, {
      'urn:xmpp:alt-connections:websocket': 'ws://chat.example.com:5280/xmpp-websocket',
      'urn:xmpp:alt-connections:xbosh': 'http://chat.example.com:5280/http-bind',
    });
    const json = await get(`${http}/.well-known/host-meta.json`, { host: 'chat.example.com:5280' });
    assert.equal(json.status, 200);
    assert.equal(json.headers['content-type'], 'application/json');
    assert.equal(json.headers['access-control-allow-origin'], '*');
    assert.deepEqual(JSON.parse(json.body), {
      links: [
        { rel: 'urn:xmpp:alt-connections:websocket', href: 'ws://chat.example.com:5280/xmpp-websocket' },
        { rel: 'urn:xmpp:alt-connections:xbosh', href: 'http://chat.example.com:5280/http-bind' },
      ],
    });
    // Behind a trusted TLS proxy the links are wss:// and https://.
    const proxied = await get(`${http}/.well-known/host-meta.json`, {
      host: 'chat.example.com',
      'x-forwarded-proto': 'https',
    });
    assert.deepEqual(
      (JSON.parse(proxied.body) as { links: { href: string }[] }).links.map((l) => l.href),
      ['wss://chat.example.com/xmpp-websocket', 'https://chat.example.com/http-bind'],
    );
    const preflight = await get(`${http}/.well-known/host-meta`, { host: 'x' }, undefined, 'OPTIONS');
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers['access-control-allow-origin'], '*');
    const bad = await get(`${http}/.well-known/host-meta`, { host: 'evil"><x y="' });
    assert.equal(bad.status, 400);
  });

  test('XEP-0156: with publicUrl configured, the https listener advertises it whatever the Host', async () => {
    const json = await get(`${https}/.well-known/host-meta.json`, { host: 'internal.local:1234' }, ca);
    assert.deepEqual((JSON.parse(json.body) as { links: { rel: string; href: string }[] }).links, [
      { rel: 'urn:xmpp:alt-connections:websocket', href: 'wss://chat.example.com:5443/chat/xmpp-websocket' },
      { rel: 'urn:xmpp:alt-connections:xbosh', href: 'https://chat.example.com:5443/chat/http-bind' },
    ]);
    const xrd = await get(`${https}/.well-known/host-meta`, { host: 'localhost' }, ca);
    assert.match(xrd.body, /href="wss:\/\/chat\.example\.com:5443\/chat\/xmpp-websocket"/);
    assert.match(xrd.body, /href="https:\/\/chat\.example\.com:5443\/chat\/http-bind"/);
  });

  test('config: publicUrl only on http/https listeners, and only an http(s) URL', () => {
    assert.throws(
      () => parseConfig({ listeners: [{ type: 'c2s', port: 1, publicUrl: 'https://x.example' }] }),
      /publicUrl/,
    );
    assert.throws(
      () => parseConfig({ listeners: [{ type: 'https', port: 1, publicUrl: 'ftp://x.example' }] }),
      /publicUrl/,
    );
    assert.throws(
      () => parseConfig({ listeners: [{ type: 'http', port: 1, publicUrl: 'https://x.example/?a=b' }] }),
      /publicUrl/,
    );
    const ok = parseConfig({
      listeners: [{ type: 'https', port: 5443, publicUrl: 'https://x.example:5443' }],
    });
    assert.equal(ok.listeners[0]!.type, 'https');
    assert.equal(ok.listeners[0]!.host, '::');
  });
});
