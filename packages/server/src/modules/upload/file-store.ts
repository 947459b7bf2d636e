import { createWriteStream, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { open, readdir, rename, rm, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** A byte range, both ends included (as HTTP's `Range: bytes=start-end`). */
export interface ByteRange {
  start: number;
  end: number;
}

/** Why `FileStore.put` refused a stream: it was longer or shorter than announced. */
export class UploadSizeError extends Error {
  readonly code = 'UPLOAD_SIZE';
  constructor(
    readonly expected: number,
    readonly received: number,
  ) {
    super(`expected ${expected} bytes, ${received > expected ? 'more' : received} arrived`);
  }
}

/**
 * Where uploaded files live. Keys are the module's own random ids (64 hex digits), never anything
 * a user chose. The disk implementation is below; an S3-compatible one fits the same interface:
 * `put` as a (multipart) upload that is committed only once exactly `size` bytes arrived, `get` as
 * a GET with a `Range` header, `delete` as a DELETE, `usage` as a listing of the bucket's prefix.
 * The module keeps every file's metadata (owner, name, size, type, dates) in its own table, so a
 * store only has to keep bytes.
 */
export interface FileStore {
  /**
   * Stores exactly `size` bytes read from `source` under `key`. All or nothing: a stream that ends
   * early, carries more than `size` bytes or fails leaves nothing behind, and the promise rejects
   * (with `UploadSizeError` for a wrong length).
   */
  put(key: string, source: Readable, size: number): Promise<void>;
  /** The stored file's bytes, all of them or `range`; undefined when there is no such file. */
  get(key: string, range?: ByteRange): Promise<Readable | undefined>;
  /** Size and modification time of a stored file; undefined when there is none. */
  stat(key: string): Promise<{ size: number; modified: Date } | undefined>;
  /** Removes a file; nothing happens when it is not there. */
  delete(key: string): Promise<void>;
  /** What the store holds, for operators and checks. */
  usage(): Promise<{ files: number; bytes: number }>;
}

const KEY = /^[0-9a-f]{64}$/;

/**
 * Files on the local disk: `<root>/files/<key>`, written to `<root>/tmp/` first and renamed into
 * place once complete and synced, so a reader never sees half a file and a crash leaves only
 * temporary files (those older than an hour are cleared when the store opens). A key that is not 64 hex digits is refused
 * before any path is built, so nothing a client sends can name a path.
 */
export class DiskStore implements FileStore {
  private readonly files: string;
  private readonly tmp: string;

  constructor(readonly root: string) {
    this.files = join(root, 'files');
    this.tmp = join(root, 'tmp');
    mkdirSync(this.files, { recursive: true, mode: 0o700 });
    mkdirSync(this.tmp, { recursive: true, mode: 0o700 });
    // Partial uploads of a previous run (a crash, a kill) are of no use to anyone. Recent ones are
    // spared: they may be another process's uploads in progress (`natter user remove` loads the
    // modules beside a running server).
    const old = Date.now() - 3600_000;
    for (const name of readdirSync(this.tmp)) {
      const p = join(this.tmp, name);
      if ((statSync(p, { throwIfNoEntry: false })?.mtimeMs ?? 0) < old) rmSync(p, { force: true });
    }
  }

  private path(key: string): string {
    if (!KEY.test(key)) throw new Error('invalid file key');
    return join(this.files, key);
  }

  async put(key: string, source: Readable, size: number): Promise<void> {
    const final = this.path(key);
    const temp = join(this.tmp, `${key}.${randomBytes(8).toString('hex')}`);
    let received = 0;
    const count = new Transform({
      transform(chunk: Buffer, _enc, done) {
        received += chunk.length;
        if (received > size) done(new UploadSizeError(size, received));
        else done(null, chunk);
      },
    });
    try {
      await pipeline(source, count, createWriteStream(temp, { flags: 'wx', mode: 0o600 }));
      if (received !== size) throw new UploadSizeError(size, received);
      // Synced before the rename: a file acknowledged with 201 survives a crash.
      const fh = await open(temp, 'r+');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(temp, final);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
  }

  async get(key: string, range?: ByteRange): Promise<Readable | undefined> {
    let fh;
    try {
      fh = await open(this.path(key), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    return fh.createReadStream(range ? { start: range.start, end: range.end } : {});
  }

  async stat(key: string): Promise<{ size: number; modified: Date } | undefined> {
    try {
      const s = await stat(this.path(key));
      return { size: s.size, modified: s.mtime };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }

  async usage(): Promise<{ files: number; bytes: number }> {
    let files = 0;
    let bytes = 0;
    for (const name of await readdir(this.files)) {
      const s = await stat(join(this.files, name)).catch(() => undefined);
      if (!s?.isFile()) continue;
      files++;
      bytes += s.size;
    }
    return { files, bytes };
  }
}
