import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { defineModule, type ModuleContext } from '../../core/module-api.js';
import type { UploadApi } from './api.js';
import { DiskStore } from './file-store.js';
import { uploadHttpHandler } from './http.js';
import { uploadOptions, type UploadOptions } from './options.js';
import { UPLOAD_PATH, UploadService } from './upload-service.js';
import { UploadStore, uploadMigrations } from './upload-store.js';
import { SlotService } from './xep-0363-slots.js';

const WILDCARD = new Set(['::', '0.0.0.0', '::0', '']);

/**
 * The base of this host's slot URLs: `baseUrl`, else the first http listener as
 * `http://<its address, or the domain when it listens on every address>:<port>`.
 */
function baseUrlOf(ctx: ModuleContext<UploadOptions>): string | undefined {
  if (ctx.options.baseUrl !== undefined) return ctx.options.baseUrl;
  const http = ctx.config.listeners.find((l) => l.type === 'http');
  if (!http || http.port === 0) {
    ctx.log.warn(
      'no baseUrl for the upload module and no http listener with a fixed port: slot requests will be refused',
    );
    return undefined;
  }
  const host = WILDCARD.has(http.host) ? ctx.domain : isIP(http.host) === 6 ? `[${http.host}]` : http.host;
  const url = `http://${host}:${http.port}`;
  ctx.log.warn(
    { url },
    'upload slots point at the plain http listener; clients need HTTPS in production: put a TLS reverse proxy in front and set modules.upload.baseUrl',
  );
  return url;
}

/**
 * XEP-0363 HTTP File Upload with its own file store: a service on `upload.<domain>` hands out
 * slots to the host's accounts (and to allowed components), and the http listeners take the PUT
 * and serve the GET under `/upload/`. Split: slot requests and disco (xep-0363-slots.ts), the HTTP
 * side (http.ts), quotas, rates and the sweep (upload-service.ts), the metadata table
 * (upload-store.ts), the bytes (file-store.ts: the disk; an S3-compatible store fits its
 * `FileStore` interface).
 */
export default defineModule({
  name: 'upload',
  description:
    'HTTP file upload on upload.<domain>: one-use slots, files stored in dataDir/upload and served under /upload/ on the http listeners, with quotas and expiry',
  specs: ['XEP-0363'],
  enabledByDefault: false,
  options: uploadOptions,
  migrations: uploadMigrations,
  setup(ctx) {
    // One store, one table, one set of HTTP paths and one sweep for the whole process.
    const service = ctx.processScoped('upload:service', () => {
      const s = new UploadService(
        new DiskStore(resolve(ctx.config.dataDir, 'upload')),
        new UploadStore(ctx.db, {
          slotTtlMs: ctx.options.slotTtlSeconds * 1000,
          expiryMs: ctx.options.expiryDays * 86_400_000,
        }),
        ctx.options,
        ctx.log,
      );
      ctx.httpRoute(UPLOAD_PATH, uploadHttpHandler(s));
      ctx.every(ctx.options.sweepIntervalSeconds * 1000, async () => {
        await s.sweep();
      });
      ctx.onStop(() => s.stop());
      return s;
    });
    for (const d of ctx.options.allowComponents)
      if (!Object.hasOwn(ctx.config.components, d))
        ctx.log.warn({ component: d }, 'allowComponents names a domain that is not a configured component');

    const domain = `upload.${ctx.domain}`;
    const slots = new SlotService(ctx, domain, service, baseUrlOf(ctx));
    ctx.service(domain, (ev) => slots.handle(ev));
    ctx.hook('user/deleted', async ({ jid }) => {
      const removed = await service.removeOwner(jid.toBareString());
      if (removed > 0)
        ctx.log.info({ account: jid.toBareString(), removed }, 'uploads of a deleted account removed');
    });
    ctx.provide<UploadApi>('upload', {
      domain,
      sweep: (now) => service.sweep(now),
      usage: (owner) => service.usage(owner),
    });
  },
});
