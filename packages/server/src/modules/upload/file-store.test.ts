import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { DiskStore, UploadSizeError } from './file-store.js';

const key = (s: string) => createHash('sha256').update(s).digest('hex');

async function read(stream: Readable | undefined): Promise<Buffer> {
  assert.ok(stream);
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('DiskStore', () => {
  let root: string;
  let store: DiskStore;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'natter-upload-store-'));
    store = new DiskStore(root);
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  const leftovers = () => [...readdirSync(join(root, 'files')), ...readdirSync(join(root, 'tmp'))];

  test('stores exactly the announced bytes and reads them back, whole or a range', async () => {
    const data = randomBytes(100_000);
    await store.put(key('a'), Readable.from([data.subarray(0, 40_000), data.subarray(40_000)]), data.length);
    assert.deepEqual(await read(await store.get(key('a'))), data);
    assert.deepEqual(await read(await store.get(key('a'), { start: 10, end: 19 })), data.subarray(10, 20));
    assert.equal((await store.stat(key('a')))?.size, data.length);
    assert.deepEqual(await store.usage(), { files: 1, bytes: data.length });
    await store.delete(key('a'));
    assert.equal(await store.get(key('a')), undefined);
    assert.equal(await store.stat(key('a')), undefined);
    await store.delete(key('a')); // twice is fine
  });

  test('more bytes than announced, fewer, or a failing stream leave nothing behind', async () => {
    await assert.rejects(
      store.put(key('b'), Readable.from([randomBytes(600), randomBytes(600)]), 1000),
      UploadSizeError,
    );
    await assert.rejects(store.put(key('b'), Readable.from([randomBytes(999)]), 1000), UploadSizeError);
    const broken = new Readable({
      read() {
        this.push(randomBytes(100));
        this.destroy(new Error('connection reset'));
      },
    });
    await assert.rejects(store.put(key('b'), broken, 1000), /connection reset/);
    assert.deepEqual(leftovers(), []);
  });

  test('keys are the module’s hex ids: anything else never becomes a path', async () => {
    for (const bad of ['../../etc/passwd', 'a/b', '', key('c').toUpperCase(), key('c') + '/..']) {
      await assert.rejects(store.put(bad, Readable.from([Buffer.from('x')]), 1), /invalid file key/);
      await assert.rejects(store.get(bad), /invalid file key/);
      await assert.rejects(store.delete(bad), /invalid file key/);
    }
    assert.deepEqual(leftovers(), []);
  });
});
