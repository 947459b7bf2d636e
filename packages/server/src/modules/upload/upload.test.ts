// XEP-0363 HTTP File Upload against a real server: slots over XMPP, PUT/GET over the http listener
// (real sockets, fetch and node:http), the store folder checked on disk.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { join, relative } from 'node:path';
import type { Readable } from 'node:stream';
import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import { TestClient } from '../../../test/support/test-client.js';
import { connectComponent } from '../../../test/support/component-client.js';
import { freePort } from '../../../test/support/federation-peers.js';
import type { ConfigInput } from '../../config.js';
import type { UploadApi } from './api.js';

const NS_UPLOAD = 'urn:xmpp:http:upload:0';
const PW = 'upload-pw';
const MiB = 1024 * 1024;

/**
 * A server with the upload module on and an http listener on a port chosen beforehand, so the
 * slot URLs derived from the configuration point at it (a port taken meanwhile: try another).
 */
async function startUploadServer(
  upload: Record<string, unknown> = {},
  extra: Partial<ConfigInput> = {},
): Promise<TestServer & { base: string }> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    try {
      const server = await startTestServer({
        listeners: [
          { type: 'c2s', port: 0, host: '127.0.0.1' },
          { type: 'http', port, host: '127.0.0.1' },
          ...(extra.components ? [{ type: 'component' as const, port: 0, host: '127.0.0.1' }] : []),
        ],
        ...extra,
        modules: { ...(extra.modules ?? {}), upload },
      });
      return Object.assign(server, { base: `http://127.0.0.1:${port}` });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 4) throw err;
    }
  }
}

const api = (server: TestServer, host = 'localhost') =>
  server.core.hosts.get(host)!.provided.get('upload') as UploadApi;

function requestIq(attrs: { filename?: string; size?: number | string; 'content-type'?: string }) {
  const a: Record<string, string> = {};
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) a[k] = String(v);
  return xml('iq', { type: 'get', to: 'upload.localhost' }, xml('request', { xmlns: NS_UPLOAD, ...a }));
}

/** Requests a slot; returns its PUT and GET URLs (fails the test on an error). */
async function slot(
  client: TestClient,
  filename: string,
  size: number,
  contentType?: string,
): Promise<{ put: string; get: string; headers: Element[] }> {
  const res = await client.iq(requestIq({ filename, size, 'content-type': contentType }));
  assert.equal(res.attrs.type, 'result', res.toString());
  const s = res.getChild('slot', NS_UPLOAD)!;
  const put = s.getChild('put', NS_UPLOAD)!;
  return {
    put: put.attrs.url!,
    get: s.getChild('get', NS_UPLOAD)!.attrs.url!,
    headers: put.getChildren('header'),
  };
}

/** The error of an IQ reply: its condition, type, and the element itself. */
function errorOf(res: Element): { condition: string; type: string; error: Element } {
  assert.equal(res.attrs.type, 'error', res.toString());
  const error = res.getChild('error')!;
  const condition = error.elements().find((e) => e.xmlns === NS.stanzas && e.name !== 'text')!.name;
  return { condition, type: error.attrs.type!, error };
}

interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** An HTTP request with node:http (full control over Content-Length); resolves with the answer. */
function http(
  method: string,
  url: string,
  headers: Record<string, string | number> = {},
  body?: Buffer | Readable,
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body === undefined) req.end();
    else if (Buffer.isBuffer(body)) req.end(body);
    else body.pipe(req);
  });
}

const put = (url: string, body: Buffer, type?: string, length: number = body.length) =>
  http('PUT', url, { 'content-length': length, ...(type ? { 'content-type': type } : {}) }, body);

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Every file under the upload folder, relative to the data directory. */
function storeContents(server: TestServer): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(relative(server.dataDir, p));
    }
  };
  walk(join(server.dataDir, 'upload'));
  return out.sort();
}

/** Every path under the data directory (to prove nothing was written outside the store). */
function everything(dir: string, root = dir): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory()
      ? [relative(root, p) + '/', ...everything(p, root)]
      : [relative(root, p)];
  });
}

async function until(check: () => boolean | Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('XEP-0363 discovery and slot requests', () => {
  let server: TestServer & { base: string };
  let romeo: TestClient;
  before(async () => {
    server = await startUploadServer(
      { maxFileBytes: 1000, quotaBytes: 3000, slotsPerMinute: 1000, allowComponents: ['bot.localhost'] },
      {
        hosts: ['localhost', 'elsewhere.example'],
        components: { 'bot.localhost': { secret: 'bot-secret' }, 'gw.localhost': { secret: 'gw-secret' } },
      },
    );
    await server.addUser('romeo', PW);
    await server.addUser('mallory', PW, 'elsewhere.example');
    romeo = await TestClient.login(server, 'romeo', PW);
  });
  after(async () => {
    await romeo.close();
    await server.destroy();
  });

  test('XEP-0363 §3: the server lists upload.<domain>; it is a store/file with the feature and max-file-size', async () => {
    const items = await romeo.iq(
      xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: NS.discoItems })),
    );
    const jids = items
      .getChild('query', NS.discoItems)!
      .getChildren('item')
      .map((i) => i.attrs.jid);
    assert.ok(jids.includes('upload.localhost'), String(jids));
    const info = await romeo.iq(
      xml('iq', { type: 'get', to: 'upload.localhost' }, xml('query', { xmlns: NS.discoInfo })),
    );
    const q = info.getChild('query', NS.discoInfo)!;
    const identity = q.getChild('identity')!;
    assert.deepEqual([identity.attrs.category, identity.attrs.type], ['store', 'file']);
    assert.ok(q.getChildren('feature').some((f) => f.attrs.var === NS_UPLOAD));
    const form = q.getChild('x', NS.dataForms)!;
    assert.equal(form.attrs.type, 'result');
    const field = (name: string) =>
      form
        .getChildren('field')
        .find((f) => f.attrs.var === name)!
        .getChildText('value');
    assert.equal(field('FORM_TYPE'), NS_UPLOAD);
    assert.equal(field('max-file-size'), '1000');
    // The service has no items and answers nothing else.
    const sub = await romeo.iq(
      xml('iq', { type: 'get', to: 'upload.localhost' }, xml('query', { xmlns: NS.discoItems })),
    );
    assert.equal(sub.attrs.type, 'result');
    const other = await romeo.iq(
      xml('iq', { type: 'get', to: 'upload.localhost' }, xml('ping', { xmlns: NS.ping })),
    );
    assert.equal(errorOf(other).condition, 'service-unavailable');
  });

  test('XEP-0363 §4: a slot has a PUT and a GET URL under the http listener, the file name kept and percent-encoded', async () => {
    const s = await slot(romeo, 'my juliet.jpg', 100, 'image/jpeg');
    assert.equal(s.put, s.get);
    const m = /^http:\/\/127\.0\.0\.1:\d+\/upload\/([A-Za-z0-9_-]{32})\/my%20juliet\.jpg$/.exec(s.put);
    assert.ok(m, s.put);
    assert.ok(s.put.startsWith(server.base));
    // 32 base64url characters: 192 random bits; two slots never share them.
    const again = await slot(romeo, 'my juliet.jpg', 100, 'image/jpeg');
    assert.notEqual(again.put, s.put);
    assert.deepEqual(s.headers, []);
  });

  test('XEP-0363 §5: a file over max-file-size is not-acceptable with <file-too-large><max-file-size/>', async () => {
    const res = await romeo.iq(requestIq({ filename: 'big.bin', size: 1001 }));
    const { condition, type, error } = errorOf(res);
    assert.deepEqual([condition, type], ['not-acceptable', 'modify']);
    const tooLarge = error.getChild('file-too-large', NS_UPLOAD)!;
    assert.equal(tooLarge.getChildText('max-file-size', NS_UPLOAD), '1000');
    // The request is echoed (RFC 6120 §8.3.1).
    assert.equal(res.getChild('request', NS_UPLOAD)?.attrs.filename, 'big.bin');
  });

  test('XEP-0363 §4: a request without a size, with a bad size, name or type is bad-request', async () => {
    for (const attrs of [
      { filename: 'a.txt' },
      { filename: 'a.txt', size: '-1' },
      { filename: 'a.txt', size: '12abc' },
      { size: 10 },
      { filename: '', size: 10 },
      { filename: 'a.txt', size: 10, 'content-type': 'text/html\r\nSet-Cookie: x=1' },
      { filename: 'a.txt', size: 10, 'content-type': 'nonsense' },
      // Would pass a loose check and make every download of the file fail in writeHead.
      { filename: 'a.txt', size: 10, 'content-type': 'text/plain\n; a=b' },
      { filename: 'a.txt', size: 10, 'content-type': 'text/plain; a="\u0100"' },
      { filename: 'a.txt', size: 10, 'content-type': 'text/plain;\u2028a=b' },
      // A right-to-left override disguises the extension: shows as 'invoiceexe.pdf'.
      { filename: 'invoice\u202efdp.exe', size: 10 },
    ]) {
      const res = await romeo.iq(requestIq(attrs));
      assert.equal(errorOf(res).condition, 'bad-request', JSON.stringify(attrs));
    }
  });

  test('XEP-0363 §5: past the quota (stored files and open slots count) a request is resource-constraint, type wait', async () => {
    const juliet = await (async () => {
      await server.addUser('juliet', PW);
      return TestClient.login(server, 'juliet', PW);
    })();
    const a = await slot(juliet, 'one.bin', 1000);
    assert.equal((await put(a.put, randomBytes(1000))).status, 201);
    await slot(juliet, 'two.bin', 1000); // reserved, not yet uploaded
    await slot(juliet, 'three.bin', 900);
    const res = await juliet.iq(requestIq({ filename: 'four.bin', size: 200 }));
    const { condition, type, error } = errorOf(res);
    assert.deepEqual([condition, type], ['resource-constraint', 'wait']);
    // Room comes back when the oldest file expires: the retry stamp says when (XEP-0082, UTC).
    const stamp = error.getChild('retry', NS_UPLOAD)?.attrs.stamp ?? '';
    assert.match(stamp, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
    assert.ok(Date.parse(stamp) > Date.now() + 29 * 86_400_000);
    assert.equal(await api(server).usage('juliet@localhost'), 2900);
    // What still fits is granted.
    await slot(juliet, 'five.bin', 100);
    await juliet.close();
  });

  test('XEP-0363 §5: accounts of other servers (here another virtual host) and unlisted components are forbidden', async () => {
    const mallory = await TestClient.login({ ...server, domain: 'elsewhere.example' }, 'mallory', PW);
    const res = await mallory.iq(requestIq({ filename: 'x.txt', size: 5 }));
    assert.equal(errorOf(res).condition, 'forbidden');
    await mallory.close();

    const gw = await connectComponent(server, 'gw.localhost', 'gw-secret');
    gw.write(
      `<iq type='get' id='c1' from='gw.localhost' to='upload.localhost'><request xmlns='${NS_UPLOAD}' filename='x.txt' size='5'/></iq>`,
    );
    const refused = await gw.receive((e) => e.name === 'iq' && e.attrs.id === 'c1');
    assert.equal(errorOf(refused).condition, 'forbidden');
    gw.kill();

    // A component listed in allowComponents gets slots (its domain owns the files).
    const bot = await connectComponent(server, 'bot.localhost', 'bot-secret');
    bot.write(
      `<iq type='get' id='c2' from='someone@bot.localhost' to='upload.localhost'><request xmlns='${NS_UPLOAD}' filename='x.txt' size='5'/></iq>`,
    );
    const granted = await bot.receive((e) => e.name === 'iq' && e.attrs.id === 'c2');
    assert.equal(granted.attrs.type, 'result', granted.toString());
    assert.equal(await api(server).usage('bot.localhost'), 5);
    bot.kill();
  });

  test('RFC 6120 §6: an unauthenticated stream cannot ask for a slot at all', async () => {
    const anon = await TestClient.open(server, 'plain');
    anon.write(
      `<iq type='get' id='u1' to='upload.localhost'><request xmlns='${NS_UPLOAD}' filename='x.txt' size='5'/></iq>`,
    );
    await anon.waitClosed();
    assert.equal(anon.received.filter((e) => e.name === 'iq').length, 0);
  });
});

describe('XEP-0363 slot rate limit', () => {
  let server: TestServer & { base: string };
  before(async () => {
    server = await startUploadServer({ slotsPerMinute: 2 });
    await server.addUser('romeo', PW);
  });
  after(() => server.destroy());

  test('XEP-0363 §5: slot requests past the per-account rate are resource-constraint with a retry stamp', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW);
    await slot(romeo, 'a.txt', 1);
    await slot(romeo, 'b.txt', 1);
    const res = await romeo.iq(requestIq({ filename: 'c.txt', size: 1 }));
    const { condition, type, error } = errorOf(res);
    assert.deepEqual([condition, type], ['resource-constraint', 'wait']);
    const stamp = Date.parse(error.getChild('retry', NS_UPLOAD)!.attrs.stamp!);
    assert.ok(stamp > Date.now() && stamp <= Date.now() + 31_000, String(stamp - Date.now()));
    await romeo.close();
  });
});

describe('XEP-0363 upload and download over HTTP', () => {
  let server: TestServer & { base: string };
  let romeo: TestClient;
  before(async () => {
    server = await startUploadServer({ quotaBytes: 20 * MiB, slotsPerMinute: 1000 });
    await server.addUser('romeo', PW);
    await server.addUser('juliet', PW);
    romeo = await TestClient.login(server, 'romeo', PW);
  });
  after(async () => {
    await romeo.close();
    await server.destroy();
  });

  test('XEP-0363 §5: a 5 MiB file streamed with PUT comes back byte for byte with GET; HEAD has the headers only', async () => {
    const size = 5 * MiB;
    const data = randomBytes(size);
    const file = join(server.dataDir, 'source.bin');
    writeFileSync(file, data);
    const s = await slot(romeo, 'holiday.mp4', size, 'video/mp4');
    const created = await http(
      'PUT',
      s.put,
      { 'content-length': size, 'content-type': 'video/mp4' },
      createReadStream(file, { highWaterMark: 64 * 1024 }),
    );
    assert.equal(created.status, 201, created.body.toString());

    const got = await fetch(s.get);
    assert.equal(got.status, 200);
    assert.equal(got.headers.get('content-type'), 'video/mp4');
    assert.equal(got.headers.get('content-length'), String(size));
    assert.equal(got.headers.get('x-content-type-options'), 'nosniff');
    assert.match(got.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    assert.equal(got.headers.get('access-control-allow-origin'), '*');
    assert.equal(got.headers.get('accept-ranges'), 'bytes');
    assert.match(got.headers.get('content-disposition') ?? '', /^inline; filename="holiday\.mp4"/);
    assert.match(got.headers.get('etag') ?? '', /^"[0-9a-f]+"$/);
    assert.ok(got.headers.get('last-modified'));
    assert.match(got.headers.get('cache-control') ?? '', /max-age=\d+/);
    // Streamed and hashed as it arrives.
    const hash = createHash('sha256');
    const reader = got.body!.getReader();
    for (let r = await reader.read(); !r.done; r = await reader.read()) hash.update(r.value);
    assert.equal(hash.digest('hex'), sha256(data));

    const head = await http('HEAD', s.get);
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], String(size));
    assert.equal(head.body.length, 0);

    // A validator the client holds: 304, no body.
    const cached = await http('GET', s.get, { 'if-none-match': got.headers.get('etag')! });
    assert.equal(cached.status, 304);
    assert.equal(cached.body.length, 0);

    // On disk: one file named by a random id, with the bytes; the name appears nowhere.
    const files = storeContents(server);
    assert.ok(
      files.every((f) => /^upload\/files\/[0-9a-f]{64}$/.test(f)),
      String(files),
    );
    assert.ok(!everything(server.dataDir).some((p) => p.includes('holiday')));
  });

  test('RFC 9110 §14: a single Range is 206 with the right bytes; past the end is 416', async () => {
    const data = randomBytes(10_000);
    const s = await slot(romeo, 'range.bin', data.length);
    assert.equal((await put(s.put, data)).status, 201);
    const mid = await http('GET', s.get, { range: 'bytes=100-1099' });
    assert.equal(mid.status, 206);
    assert.equal(mid.headers['content-range'], `bytes 100-1099/${data.length}`);
    assert.deepEqual(mid.body, data.subarray(100, 1100));
    const tail = await http('GET', s.get, { range: 'bytes=-10' });
    assert.equal(tail.status, 206);
    assert.deepEqual(tail.body, data.subarray(data.length - 10));
    const open = await http('GET', s.get, { range: 'bytes=9990-' });
    assert.deepEqual(open.body, data.subarray(9990));
    const beyond = await http('GET', s.get, { range: 'bytes=20000-20010' });
    assert.equal(beyond.status, 416);
    assert.equal(beyond.headers['content-range'], `bytes */${data.length}`);
    // Several ranges are answered with the whole file (RFC 9110 lets a server ignore Range).
    const several = await http('GET', s.get, { range: 'bytes=0-1,5-6' });
    assert.equal(several.status, 200);
    assert.equal(several.body.length, data.length);
  });

  test('XEP-0363 §5: the slot is single-use; a PUT with another size or Content-Type is refused and leaves the slot usable', async () => {
    const data = Buffer.from('hello, world\n');
    const s = await slot(romeo, 'note.txt', data.length, 'text/plain');
    assert.equal((await put(s.put, Buffer.concat([data, Buffer.from('!')]), 'text/plain')).status, 413);
    assert.equal((await put(s.put, data.subarray(1), 'text/plain')).status, 400);
    assert.equal((await put(s.put, data, 'text/html')).status, 415);
    assert.equal((await put(s.put, data)).status, 415); // no type when the slot named one
    const chunked = await http(
      'PUT',
      s.put,
      { 'content-type': 'text/plain', 'transfer-encoding': 'chunked' },
      data,
    );
    assert.equal(chunked.status, 411);
    // Nothing was stored by the refusals.
    assert.equal((await http('GET', s.get)).status, 404);
    assert.equal((await put(s.put, data, 'text/plain; charset=utf-8')).status, 201);
    const reuse = await put(s.put, Buffer.from('evil, world\n'), 'text/plain');
    assert.equal(reuse.status, 409);
    const got = await http('GET', s.get);
    assert.deepEqual(got.body, data);
    assert.equal(got.headers['content-type'], 'text/plain');
    // Not media: saved, not shown.
    assert.match(String(got.headers['content-disposition']), /^attachment; filename="note\.txt"/);
  });

  test('RFC 6266/5987: unicode and odd names are percent-encoded in the URL and Content-Disposition', async () => {
    const name = 'résumé "final" 日本 100%.pdf';
    const data = randomBytes(64);
    const s = await slot(romeo, name, data.length, 'application/pdf');
    assert.ok(s.put.endsWith('/' + encodeURIComponent(name)), s.put);
    assert.equal((await put(s.put, data, 'application/pdf')).status, 201);
    const got = await fetch(s.get);
    assert.deepEqual(Buffer.from(await got.arrayBuffer()), data);
    const cd = got.headers.get('content-disposition')!;
    assert.match(cd, /^attachment; filename="r_sum_ _final_ __ 100_\.pdf"; filename\*=UTF-8''/);
    assert.equal(decodeURIComponent(cd.split("UTF-8''")[1]!), name);
    // The name in the URL must be the slot's.
    assert.equal((await http('GET', s.get.replace(/\/[^/]+$/, '/other.pdf'))).status, 404);
  });

  test('path tricks: names with ../, / or control characters are refused, NUL breaks the stream, nothing is written outside the store', async () => {
    const before = everything(server.dataDir);
    for (const filename of [
      '../../etc/passwd',
      'a/b.txt',
      '..\\..\\boot.ini',
      '..',
      '.',
      'a\nb.txt',
      'x'.repeat(256),
    ]) {
      const res = await romeo.iq(requestIq({ filename, size: 5 }));
      assert.equal(errorOf(res).condition, 'bad-request', JSON.stringify(filename));
    }
    // A 255-byte name is fine (it never touches the file system anyway).
    await slot(romeo, 'é'.repeat(127) + '.', 5);
    // Names that only look like paths once decoded stay names.
    const tricky = await slot(romeo, '%2e%2e%2fpasswd', 5);
    assert.ok(tricky.put.endsWith('/%252e%252e%252fpasswd'));
    assert.equal((await put(tricky.put, Buffer.from('12345'))).status, 201);
    assert.equal((await http('GET', tricky.get)).body.toString(), '12345');
    // Paths that try to climb out of /upload/ lead nowhere.
    const secret = /\/upload\/([^/]+)\//.exec(tricky.get)![1]!;
    for (const path of [
      `/upload/${secret}/..%2F..%2F..%2Fetc%2Fpasswd`,
      `/upload/../../etc/passwd`,
      `/upload/${secret}/../../natter.sqlite`,
      `/upload/${secret}`,
      `/upload/`,
    ]) {
      const res = await new Promise<number>((resolve, reject) => {
        const sock = connect(Number(new URL(server.base).port), '127.0.0.1', () =>
          sock.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`),
        );
        let text = '';
        sock.on('data', (d) => (text += d.toString()));
        sock.on('end', () => resolve(Number(text.split(' ')[1])));
        sock.on('error', reject);
      });
      assert.equal(res, 404, path);
    }
    // NUL cannot be written in XML: the stream ends (not-well-formed) and nothing is created.
    const eve = await TestClient.login(server, 'juliet', PW);
    eve.write(
      `<iq type='get' id='n1' to='upload.localhost'><request xmlns='${NS_UPLOAD}' filename='a&#0;b' size='5'/></iq>`,
    );
    await eve.waitClosed();
    const after = everything(server.dataDir);
    const added = after.filter((p) => !before.includes(p));
    assert.ok(
      added.every((p) => /^upload\/files\/[0-9a-f]{64}$/.test(p)),
      `unexpected paths: ${added.join(', ')}`,
    );
    assert.ok(!existsSync(join(server.dataDir, '..', 'etc')));
  });

  test('CORS: a preflight for PUT with Content-Type is allowed from any origin', async () => {
    const s = await slot(romeo, 'cors.txt', 2, 'text/plain');
    const pre = await http('OPTIONS', s.put, {
      origin: 'https://converse.example',
      'access-control-request-method': 'PUT',
      'access-control-request-headers': 'content-type',
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers['access-control-allow-origin'], '*');
    assert.match(String(pre.headers['access-control-allow-methods']), /PUT/);
    assert.match(String(pre.headers['access-control-allow-headers']), /Content-Type/i);
    const done = await http(
      'PUT',
      s.put,
      { origin: 'https://converse.example', 'content-type': 'text/plain', 'content-length': 2 },
      Buffer.from('ok'),
    );
    assert.equal(done.status, 201);
    assert.equal(done.headers['access-control-allow-origin'], '*');
    assert.equal((await http('DELETE', s.get)).status, 405);
  });

  test('a client that aborts mid-upload leaves no file and consumes no quota', async () => {
    await server.addUser('tybalt', PW);
    const tybalt = await TestClient.login(server, 'tybalt', PW);
    const size = 2 * MiB;
    const s = await slot(tybalt, 'partial.bin', size);
    assert.equal(await api(server).usage('tybalt@localhost'), size);
    const before = storeContents(server);
    await new Promise<void>((resolve) => {
      const req = httpRequest(s.put, { method: 'PUT', headers: { 'content-length': size }, agent: false });
      req.on('error', () => resolve());
      req.write(randomBytes(512 * 1024), () => {
        // Let the server write some of it to its temporary file, then vanish.
        setTimeout(() => {
          req.destroy();
          resolve();
        }, 100);
      });
    });
    await until(async () => (await api(server).usage('tybalt@localhost')) === 0, 'the quota is free again');
    await until(() => storeContents(server).length === before.length, 'the partial file is gone');
    assert.deepEqual(storeContents(server), before);
    assert.equal((await http('GET', s.get)).status, 404);
    await tybalt.close();
  });

  test('account deletion (XEP-0077 remove) deletes the account’s files and slots', async () => {
    await server.addUser('paris', PW);
    const paris = await TestClient.login(server, 'paris', PW);
    const s = await slot(paris, 'letter.txt', 6, 'text/plain');
    assert.equal((await put(s.put, Buffer.from('adieu!'), 'text/plain')).status, 201);
    await slot(paris, 'unused.txt', 6);
    const mine = storeContents(server);
    const res = await paris.iq(
      xml('iq', { type: 'set' }, xml('query', { xmlns: NS.register }, xml('remove'))),
    );
    assert.equal(res.attrs.type, 'result');
    assert.equal((await http('GET', s.get)).status, 404);
    assert.equal(await api(server).usage('paris@localhost'), 0);
    assert.equal(storeContents(server).length, mine.length - 1);
  });

  test('expiry: the sweep deletes files older than expiryDays and their rows', async () => {
    const s = await slot(romeo, 'old.txt', 3);
    assert.equal((await put(s.put, Buffer.from('old'))).status, 201);
    const count = storeContents(server).length;
    // 29 days on, only slots never used are gone; the file is still served.
    await api(server).sweep(Date.now() + 29 * 86_400_000);
    assert.equal((await http('GET', s.get)).status, 200);
    assert.equal(storeContents(server).length, count);
    const removed = await api(server).sweep(Date.now() + 30 * 86_400_000 + 1000);
    assert.ok(removed >= 1);
    assert.equal((await http('GET', s.get)).status, 404);
    assert.ok(storeContents(server).length < count);
    assert.equal(storeContents(server).length, 0);
  });
});

describe('XEP-0363 slot expiry', () => {
  let server: TestServer & { base: string };
  before(async () => {
    server = await startUploadServer({ slotTtlSeconds: 1 });
    await server.addUser('romeo', PW);
  });
  after(() => server.destroy());

  test('XEP-0363 §7: a PUT after the slot’s TTL is refused', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW);
    const s = await slot(romeo, 'late.txt', 4);
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal((await put(s.put, Buffer.from('late'))).status, 410);
    assert.equal((await http('GET', s.get)).status, 404);
    // The expired slot no longer counts against the quota, and the sweep removes its row.
    assert.equal(await api(server).usage('romeo@localhost'), 0);
    assert.equal(await api(server).sweep(), 1);
    await romeo.close();
  });
});

describe('XEP-0363 base URL', () => {
  test('baseUrl, when set, is the base of slot URLs (a TLS reverse proxy in front)', async () => {
    const server = await startUploadServer({ baseUrl: 'https://files.example.com/xmpp/' });
    try {
      await server.addUser('romeo', PW);
      const romeo = await TestClient.login(server, 'romeo', PW);
      const s = await slot(romeo, 'a b.png', 1, 'image/png');
      assert.match(s.put, /^https:\/\/files\.example\.com\/xmpp\/upload\/[A-Za-z0-9_-]{32}\/a%20b\.png$/);
      await romeo.close();
    } finally {
      await server.destroy();
    }
  });
});
