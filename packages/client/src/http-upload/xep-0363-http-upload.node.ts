// XEP-0363 uploads in Node: the PUT over node:http/https, with progress as the bytes are written.
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { PluginDefinition } from '../core/plugin.js';
import {
  HttpUploadError,
  httpUpload as baseHttpUpload,
  type HttpPut,
  type HttpUploadApi,
  type HttpUploadOptions,
} from './xep-0363-http-upload.js';

export interface NodeHttpPutOptions {
  /** Extra CA certificates to trust for https slot URLs (PEM). */
  ca?: string | Buffer | (string | Buffer)[];
  /** Bytes written between progress reports (default 64 KiB). */
  chunkSize?: number;
}

/** The PUT with node:http/https: the body goes in chunks, each reported once written. */
export function nodeHttpPut(opts: NodeHttpPutOptions = {}): HttpPut {
  const chunkSize = opts.chunkSize ?? 64 * 1024;
  return (req) =>
    new Promise((resolve, reject) => {
      const signal = req.signal;
      const aborted = () =>
        new HttpUploadError('aborted', 'the upload was cancelled', { cause: signal?.reason });
      if (signal?.aborted) return reject(aborted());
      let url: URL;
      try {
        url = new URL(req.url);
      } catch (err) {
        return reject(new HttpUploadError('network', `not a URL: ${req.url}`, { cause: err }));
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:')
        return reject(new HttpUploadError('network', `not an http(s) URL: ${req.url}`));
      let settled = false;
      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        fn();
      };
      const headers = { ...req.headers, 'Content-Length': String(req.size) };
      const r: ClientRequest =
        url.protocol === 'https:'
          ? httpsRequest(url, { method: 'PUT', headers, ca: opts.ca })
          : httpRequest(url, { method: 'PUT', headers });
      const onAbort = () => {
        finish(() => reject(aborted()));
        r.destroy();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      r.on('error', (err) =>
        finish(() =>
          reject(
            signal?.aborted
              ? aborted()
              : new HttpUploadError('network', `the PUT to ${req.url} failed: ${err.message}`, {
                  cause: err,
                }),
          ),
        ),
      );
      r.on('response', (res: IncomingMessage) => {
        res.resume();
        res.on('end', () =>
          finish(() => resolve({ status: res.statusCode ?? 0, statusText: res.statusMessage })),
        );
        res.on('error', (err) =>
          finish(() =>
            reject(new HttpUploadError('network', `reading the PUT's response failed: ${err.message}`)),
          ),
        );
      });
      void (async () => {
        const bytes =
          req.body instanceof Uint8Array ? req.body : new Uint8Array(await req.body.arrayBuffer());
        req.onProgress?.(0, req.size);
        for (let off = 0; off < bytes.byteLength; off += chunkSize) {
          if (settled || r.destroyed) return;
          const chunk = bytes.subarray(off, Math.min(off + chunkSize, bytes.byteLength));
          await new Promise<void>((ok, fail) => r.write(chunk, (err) => (err ? fail(err) : ok())));
          if (settled || r.destroyed) return;
          req.onProgress?.(off + chunk.byteLength, req.size);
        }
        r.end();
      })().catch((err: unknown) => {
        r.destroy(err instanceof Error ? err : new Error(String(err)));
      });
    });
}

/** XEP-0363 HTTP File Upload for Node: as the browser's `httpUpload`, the PUT made with node:http/https. */
export function httpUpload(options: HttpUploadOptions = {}): PluginDefinition<HttpUploadApi> {
  return baseHttpUpload({ ...options, put: options.put ?? nodeHttpPut() });
}
