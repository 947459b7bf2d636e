import { createHash, randomBytes } from 'node:crypto';
import { xml } from '@natter/xml';
import { StanzaError, dateTime } from '@natter/protocol';
import type { Logger } from '../../core/module-api.js';
import { TokenBucket } from '../../util/token-bucket.js';
import type { FileStore } from './file-store.js';
import type { UploadOptions } from './options.js';
import type { UploadStore } from './upload-store.js';

export const NS_UPLOAD = 'urn:xmpp:http:upload:0';

/** The path prefix of slot URLs on the http listeners. */
export const UPLOAD_PATH = '/upload/';

/** What a client asked for (XEP-0363 §4), checked. */
export interface SlotRequest {
  filename: string;
  size: number;
  contentType: string | undefined;
}

/**
 * The secret part of a slot URL: 24 random bytes (192 bits), base64url. Whoever holds the URL may
 * PUT once (before the TTL) and GET (XEP-0363 §2: "everyone who knows the URL SHOULD be able to
 * access it").
 */
export const newSecret = (): string => randomBytes(24).toString('base64url');
export const SECRET = /^[A-Za-z0-9_-]{32}$/;

/** The row and file key of a secret: its SHA-256, so stored data never holds a working URL. */
export const keyOf = (secret: string): string => createHash('sha256').update(secret).digest('hex');

/** The largest file anyone may upload: the per-file limit, or less when a quota is smaller. */
export function largestFile(o: UploadOptions): number {
  return Math.min(o.maxFileBytes, o.quotaBytes, o.maxTotalBytes ?? Infinity);
}

const retry = (at: number) => xml('retry', { xmlns: NS_UPLOAD, stamp: dateTime(new Date(at)) });

/**
 * The upload service's state, one per server process (every host's `upload.<domain>` shares it,
 * with the HTTP paths): the file store, the table, per-account rate limits, the uploads in
 * progress, and the sweep.
 */
export class UploadService {
  private readonly buckets = new Map<string, TokenBucket>();
  /** Slot creation per owner, one at a time (quota checks cannot race each other). */
  private readonly queues = new Map<string, Promise<unknown>>();
  /** PUTs in progress: aborted on stop, awaited so their rows and files are cleaned first. */
  readonly uploads = new Set<{ abort(): void; done: Promise<void> }>();
  stopping = false;

  constructor(
    readonly store: FileStore,
    readonly files: UploadStore,
    readonly options: UploadOptions,
    readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  get expiryMs(): number {
    return this.options.expiryDays * 86_400_000;
  }

  get slotTtlMs(): number {
    return this.options.slotTtlSeconds * 1000;
  }

  /** Per-account rate of slot requests: throws resource-constraint (with XEP-0363 `<retry/>`) when over it. */
  charge(owner: string): void {
    const perMinute = this.options.slotsPerMinute;
    let bucket = this.buckets.get(owner);
    if (!bucket) {
      // Idle buckets are full ones: forget them rather than keep one per account forever.
      if (this.buckets.size >= 10_000)
        for (const [k, b] of this.buckets) if (b.available >= b.burst) this.buckets.delete(k);
      this.buckets.set(owner, (bucket = new TokenBucket(perMinute / 60, perMinute, this.now)));
    }
    const wait = bucket.waitFor(1);
    if (wait > 0)
      throw new StanzaError('resource-constraint', {
        type: 'wait',
        text: `too many upload slots requested: ${perMinute} per minute`,
        appCondition: retry(this.now() + wait),
      });
    bucket.take(1);
  }

  /**
   * XEP-0363 §4-5: a slot for `owner`, or a StanzaError (file too large, quota or service full).
   * Returns the secret of the slot's URLs.
   */
  requestSlot(owner: string, req: SlotRequest): Promise<string> {
    const prev = this.queues.get(owner) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(() => this.createSlot(owner, req));
    const tail = next.catch(() => undefined);
    this.queues.set(owner, tail);
    void tail.then(() => {
      if (this.queues.get(owner) === tail) this.queues.delete(owner);
    });
    return next;
  }

  private async createSlot(owner: string, req: SlotRequest): Promise<string> {
    const o = this.options;
    const max = largestFile(o);
    if (req.size > max)
      throw new StanzaError('not-acceptable', {
        type: 'modify',
        text: `File too large. The maximum file size is ${max} bytes`,
        appCondition: xml(
          'file-too-large',
          { xmlns: NS_UPLOAD },
          xml('max-file-size', { xmlns: NS_UPLOAD }, String(max)),
        ),
      });
    const now = this.now();
    const used = await this.files.usedBy(owner, now);
    if (used + req.size > o.quotaBytes) {
      const at = await this.roomAt(owner, used + req.size - o.quotaBytes, now);
      throw new StanzaError('resource-constraint', {
        type: 'wait',
        text: `Quota reached: ${used} of ${o.quotaBytes} bytes used; the file needs ${req.size}`,
        appCondition: at === undefined ? undefined : retry(at),
      });
    }
    if (o.maxTotalBytes !== undefined && (await this.files.usedByAll(now)) + req.size > o.maxTotalBytes)
      throw new StanzaError('resource-constraint', { type: 'wait', text: 'the upload service is full' });
    const secret = newSecret();
    await this.files.create({
      id: keyOf(secret),
      owner,
      filename: req.filename,
      size: req.size,
      contentType: req.contentType,
      createdAt: now,
    });
    return secret;
  }

  /** When `need` bytes of the owner's files will have expired (undefined: not through expiry alone). */
  private async roomAt(owner: string, need: number, now: number): Promise<number | undefined> {
    let freed = 0;
    for (const f of await this.files.storedBy(owner, now)) {
      freed += f.size;
      if (freed >= need) return f.storedAt + this.expiryMs;
    }
    return undefined;
  }

  /** Deletes expired files, unused slots and abandoned uploads; returns how many rows went. */
  async sweep(now = this.now()): Promise<number> {
    let removed = 0;
    // A file that cannot be deleted (permissions, I/O error) is logged and kept for the next sweep;
    // it must not stop the others, nor be picked again in this one.
    const failed = new Set<string>();
    for (;;) {
      const ids = (await this.files.expired(now, 500 + failed.size)).filter((id) => !failed.has(id));
      for (const id of ids) {
        try {
          await this.store.delete(id);
          await this.files.remove(id);
          removed++;
        } catch (err) {
          failed.add(id);
          this.log.error({ err, id }, 'could not delete an expired upload');
        }
      }
      if (ids.length < 500) break;
    }
    if (removed > 0) this.log.info({ removed }, 'expired uploads deleted');
    return removed;
  }

  /** Deletes every file and slot of an owner (account deletion). */
  async removeOwner(owner: string): Promise<number> {
    const ids = await this.files.idsOf(owner);
    for (const id of ids) {
      await this.store.delete(id);
      await this.files.remove(id);
    }
    return ids.length;
  }

  /** Usage of an owner, as the quota counts it. */
  usage(owner: string): Promise<number> {
    return this.files.usedBy(owner, this.now());
  }

  /** Aborts the uploads in progress and waits until each has cleaned up. */
  async stop(): Promise<void> {
    this.stopping = true;
    const running = [...this.uploads];
    for (const u of running) u.abort();
    await Promise.all(running.map((u) => u.done.catch(() => undefined)));
  }
}
