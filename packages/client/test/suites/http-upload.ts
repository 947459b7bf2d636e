import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { httpUpload, HttpUploadError, nodeHttpPut } from '../../src/index.node.js';
import type { SuiteContext } from '../helpers.js';

/** GET with a bounded wait: status and body. */
async function get(url: string): Promise<{ status: number; body: Buffer }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
}

/** The test servers' upload services are plain HTTP on loopback: allowed explicitly below. */
export function httpUploadSuite(ctx: SuiteContext): void {
  test('XEP-0363 §4: a slot with http: URLs is refused unless allowInsecure (the file and its headers would travel in the clear)', async () => {
    const c = await ctx.online({ plugins: { upload: httpUpload() } });
    await assert.rejects(
      c.plugins.upload.upload(randomBytes(100), { filename: 'a.bin' }),
      (e: unknown) => e instanceof HttpUploadError && e.code === 'insecure',
    );
  });

  test('XEP-0363 §3: the upload service is found by disco#items/#info, with max-file-size', async () => {
    const c = await ctx.online({ plugins: { upload: httpUpload({ allowInsecure: true }) } });
    const service = await c.plugins.upload.discover();
    assert.equal(service.jid, ctx.target.upload!.domain);
    assert.equal(service.maxFileSize, ctx.target.upload!.maxFileSize);
  });

  test('XEP-0363 §4-5: a few hundred KB uploaded with progress events; the GET URL serves the same bytes', async () => {
    const c = await ctx.online({ plugins: { upload: httpUpload({ allowInsecure: true }) } });
    const data = randomBytes(300 * 1024);
    const progress: { loaded: number; total: number }[] = [];
    const events: number[] = [];
    c.plugins.upload.on('progress', (e) => events.push(e.loaded));
    const uploaded = c.plugins.upload.waitFor('uploaded', { timeout: 5000 });
    const url = await c.plugins.upload.upload(data, {
      filename: 'photo one.bin',
      contentType: 'application/octet-stream',
      onProgress: (loaded, total) => progress.push({ loaded, total }),
    });
    assert.ok(progress.length >= 3, `progress reported ${progress.length} times`);
    assert.ok(progress.every((p) => p.total === data.length));
    for (let i = 1; i < progress.length; i++) assert.ok(progress[i]!.loaded >= progress[i - 1]!.loaded);
    assert.equal(progress.at(-1)!.loaded, data.length);
    assert.deepEqual(
      events,
      progress.map((p) => p.loaded),
    );
    assert.equal((await uploaded).url, url);
    const res = await get(url);
    assert.equal(res.status, 200);
    assert.ok(res.body.equals(data), 'the GET returns the uploaded bytes');
  });

  test('XEP-0363 §4: a file larger than max-file-size is refused with the limit (client check and server refusal)', async () => {
    const c = await ctx.online({ plugins: { upload: httpUpload({ allowInsecure: true }) } });
    const max = ctx.target.upload!.maxFileSize;
    await assert.rejects(
      c.plugins.upload.upload(new Uint8Array(max + 1), { filename: 'big.bin' }),
      (e: unknown) => e instanceof HttpUploadError && e.code === 'file-too-large' && e.maxFileSize === max,
    );
    // Asking anyway: the service's own <file-too-large/> with its <max-file-size/>.
    await assert.rejects(
      c.plugins.upload.requestSlot({
        filename: 'big.bin',
        size: max + 1,
        contentType: 'application/octet-stream',
      }),
      (e: unknown) => e instanceof HttpUploadError && e.code === 'file-too-large' && e.maxFileSize === max,
    );
  });

  test('XEP-0363: a cancelled upload rejects with an abort error and its URL serves nothing', async () => {
    const c = await ctx.online({
      plugins: { upload: httpUpload({ put: nodeHttpPut({ chunkSize: 16 * 1024 }), allowInsecure: true }) },
    });
    const data = randomBytes(400 * 1024);
    const ac = new AbortController();
    let getUrl: string | undefined;
    c.plugins.upload.on('progress', (e) => {
      getUrl = e.url;
      // Cancel once the first chunk is on its way (synchronously: the next chunk is never written).
      if (e.loaded > 0) ac.abort(new Error('user cancelled'));
    });
    await assert.rejects(
      c.plugins.upload.upload(data, { filename: 'cancelled.bin', signal: ac.signal }),
      (e: unknown) => e instanceof HttpUploadError && e.code === 'aborted',
    );
    assert.ok(getUrl);
    const res = await get(getUrl);
    assert.notEqual(res.status, 200, `a cancelled upload is not served (got ${res.status})`);
    assert.ok(!res.body.equals(data));
    // An already-aborted signal: nothing is asked for.
    await assert.rejects(
      c.plugins.upload.upload(data, { filename: 'x.bin', signal: AbortSignal.abort() }),
      (e: unknown) => e instanceof HttpUploadError && e.code === 'aborted',
    );
  });

  test('XEP-0363 §5: an HTTP failure of the PUT is an HttpUploadError with the status', async () => {
    const node = nodeHttpPut();
    // A PUT to a URL the service never handed out (the slot's secret altered).
    const c = await ctx.online({
      plugins: {
        upload: httpUpload({
          allowInsecure: true,
          put: (req) => node({ ...req, url: req.url.replace(/\/([^/]+)\/([^/]+)$/, '/x$1/$2') }),
        }),
      },
    });
    await assert.rejects(
      c.plugins.upload.upload(randomBytes(1000), { filename: 'a.bin' }),
      (e: unknown) => e instanceof HttpUploadError && e.code === 'http' && e.status! >= 400,
    );
  });
}
