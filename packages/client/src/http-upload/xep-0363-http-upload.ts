import { xml, type Element } from '@natter/xml';
import type { Jid } from '@natter/jid';
import { NS, StanzaError, parseForm, formType, fieldValue } from '@natter/protocol';
import type { Client } from '../core/client.js';
import { emitterWith, type Emitter } from '../core/emitter.js';
import type { PluginDefinition } from '../core/plugin.js';

export const NS_HTTP_UPLOAD = 'urn:xmpp:http:upload:0';

/** XEP-0363 §5: the only slot headers a client may pass on to the PUT (any other is dropped). */
const ALLOWED_HEADERS = new Set(['authorization', 'cookie', 'expires']);

export type HttpUploadErrorCode =
  /** No upload service on the server (disco#items/#info found none). */
  | 'no-service'
  /** The file is larger than the service takes; `maxFileSize` tells the limit when known. */
  | 'file-too-large'
  /** The service refused the request otherwise (`not-acceptable`: file name, content type, …). */
  | 'not-acceptable'
  /** The PUT got an HTTP status other than 2xx (`status`). */
  | 'http'
  /** The PUT failed below HTTP (connection refused or reset, DNS, TLS). */
  | 'network'
  /** The slot's URLs are not https: (XEP-0363 §4 wants HTTPS) and `allowInsecure` is not set. */
  | 'insecure'
  /** The upload was cancelled through its AbortSignal (`cause`: the signal's reason). */
  | 'aborted';

export class HttpUploadError extends Error {
  override readonly name = 'HttpUploadError';
  constructor(
    readonly code: HttpUploadErrorCode,
    message: string,
    readonly details: { maxFileSize?: number; status?: number; cause?: unknown } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
  }
  get maxFileSize(): number | undefined {
    return this.details.maxFileSize;
  }
  get status(): number | undefined {
    return this.details.status;
  }
}

/** What to upload: bytes, or a Blob/File (browsers; Node ≥ 20 has Blob too). */
export type UploadBody = Uint8Array | ArrayBuffer | Blob;

/** One HTTP PUT of a slot, as the runtime does it (XMLHttpRequest, fetch, node:http). */
export interface HttpPutRequest {
  url: string;
  /** Content-Type and Content-Length included, plus the slot's allowed headers. */
  headers: Record<string, string>;
  body: Uint8Array | Blob;
  size: number;
  signal?: AbortSignal;
  onProgress?(loaded: number, total: number): void;
}

/**
 * Performs a PUT; resolves with the HTTP status, rejects with HttpUploadError `aborted` (the
 * signal fired) or `network`.
 */
export type HttpPut = (req: HttpPutRequest) => Promise<{ status: number; statusText?: string }>;

export interface UploadService {
  jid: string;
  /** The largest file the service takes (XEP-0363 §3 max-file-size), when it says. */
  maxFileSize?: number;
}

export interface UploadSlot {
  put: string;
  get: string;
  /** The slot's PUT headers the client may send (Authorization, Cookie, Expires). */
  headers: Record<string, string>;
}

export interface HttpUploadEvents {
  /** Bytes sent so far of an upload (`url`: its GET URL, to tell concurrent uploads apart). */
  progress: { filename: string; url: string; loaded: number; total: number };
  /** An upload finished. */
  uploaded: { filename: string; url: string; size: number; contentType: string };
}

export interface UploadOptions {
  /** The file name to announce (default: a File's `name`). */
  filename?: string;
  /** Default: a Blob's `type`, else application/octet-stream. */
  contentType?: string;
  /** Cancels the slot request or the PUT; the upload then rejects with HttpUploadError `aborted`. */
  signal?: AbortSignal;
  onProgress?(loaded: number, total: number): void;
}

export interface HttpUploadOptions {
  /** The upload service's JID; found by disco#items/#info on the account's server when absent. */
  service?: string;
  /**
   * How the PUT is made. Default in browsers: XMLHttpRequest (upload progress), else fetch
   * (progress at the start and the end only); the Node entry point uses node:http/https.
   */
  put?: HttpPut;
  /** ms to wait for the slot (default: the client's IQ timeout). */
  slotTimeout?: number;
  /**
   * Accept slots with http: URLs (default false): the file and the slot's Authorization or
   * Cookie header would cross the network in the clear. For tests and private networks.
   */
  allowInsecure?: boolean;
}

export interface HttpUploadApi extends Emitter<HttpUploadEvents> {
  /** The upload service and its size limit (cached for the session; `refresh` asks again). */
  discover(refresh?: boolean): Promise<UploadService>;
  /** Requests a slot (XEP-0363 §4); errors as HttpUploadError (file-too-large, not-acceptable) or StanzaError. */
  requestSlot(
    req: { filename: string; size: number; contentType?: string },
    opts?: { service?: string | Jid; signal?: AbortSignal },
  ): Promise<UploadSlot>;
  /** Uploads a file: discovery, slot, PUT with progress; resolves with the GET URL to share. */
  upload(body: UploadBody, opts?: UploadOptions): Promise<string>;
}

function abortError(signal: AbortSignal): HttpUploadError {
  return new HttpUploadError('aborted', 'the upload was cancelled', { cause: signal.reason });
}

const isBlob = (b: unknown): b is Blob => typeof Blob === 'function' && b instanceof Blob;

/** The body's size and the form the PUT takes. */
function normalize(body: UploadBody): { data: Uint8Array | Blob; size: number } {
  if (body instanceof ArrayBuffer) return { data: new Uint8Array(body), size: body.byteLength };
  if (body instanceof Uint8Array) return { data: body, size: body.byteLength };
  if (isBlob(body)) return { data: body, size: body.size };
  throw new TypeError('httpUpload.upload(): the body must be a Uint8Array, an ArrayBuffer or a Blob');
}

/** The PUT with XMLHttpRequest (browsers): upload progress events, abort through the signal. */
export const xhrPut: HttpPut = (req) =>
  new Promise((resolve, reject) => {
    const signal = req.signal;
    if (signal?.aborted) return reject(abortError(signal));
    const x = new XMLHttpRequest();
    x.open('PUT', req.url);
    for (const [k, v] of Object.entries(req.headers)) {
      // Browsers set Content-Length themselves and refuse Cookie from scripts.
      const lk = k.toLowerCase();
      if (lk !== 'content-length' && lk !== 'cookie') x.setRequestHeader(k, v);
    }
    const onAbort = () => x.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    const done = () => signal?.removeEventListener('abort', onAbort);
    x.upload.onprogress = (e) => req.onProgress?.(e.loaded, e.lengthComputable ? e.total : req.size);
    x.onload = () => {
      done();
      resolve({ status: x.status, statusText: x.statusText });
    };
    x.onerror = () => {
      done();
      reject(new HttpUploadError('network', `the PUT to ${req.url} failed`));
    };
    x.onabort = () => {
      done();
      reject(signal ? abortError(signal) : new HttpUploadError('aborted', 'the upload was cancelled'));
    };
    req.onProgress?.(0, req.size);
    x.send(req.body as XMLHttpRequestBodyInit);
  });

/** The PUT with fetch (no upload progress: reported at the start and the end). */
export const fetchPut: HttpPut = async (req) => {
  const signal = req.signal;
  if (signal?.aborted) throw abortError(signal);
  const headers = { ...req.headers };
  delete headers['Content-Length'];
  req.onProgress?.(0, req.size);
  let res: Response;
  try {
    res = await fetch(req.url, {
      method: 'PUT',
      headers,
      body: req.body as BodyInit,
      signal,
    });
  } catch (err) {
    if (signal?.aborted) throw abortError(signal);
    throw new HttpUploadError('network', `the PUT to ${req.url} failed: ${(err as Error).message}`, {
      cause: err,
    });
  }
  await res.arrayBuffer().catch(() => undefined);
  if (res.ok) req.onProgress?.(req.size, req.size);
  return { status: res.status, statusText: res.statusText };
};

/** Browsers: XMLHttpRequest when there is one, else fetch. */
export const defaultPut: HttpPut = (req) =>
  typeof XMLHttpRequest === 'function' ? xhrPut(req) : fetchPut(req);

/** Reads a disco#info result of an upload service (XEP-0363 §3). */
function serviceFrom(jid: string, info: Element | undefined): UploadService | undefined {
  if (!info) return undefined;
  const features = info.getChildren('feature', NS.discoInfo).map((f) => f.attr('var'));
  if (!features.includes(NS_HTTP_UPLOAD)) return undefined;
  const s: UploadService = { jid };
  for (const x of info.getChildren('x', NS.dataForms)) {
    const form = parseForm(x);
    if (formType(form) !== NS_HTTP_UPLOAD) continue;
    const max = Number(fieldValue(form, 'max-file-size'));
    if (Number.isSafeInteger(max) && max > 0) s.maxFileSize = max;
  }
  return s;
}

/** Requests a slot (XEP-0363 §4) and maps the §4 errors to HttpUploadError. */
async function requestSlot(
  client: Client,
  service: string,
  req: { filename: string; size: number; contentType?: string },
  timeout: number | undefined,
  allowInsecure = false,
): Promise<UploadSlot> {
  let res: Element | undefined;
  try {
    res = await client.request(
      'get',
      service,
      xml('request', {
        xmlns: NS_HTTP_UPLOAD,
        filename: req.filename,
        size: String(req.size),
        'content-type': req.contentType,
      }),
      timeout === undefined ? {} : { timeout },
    );
  } catch (err) {
    if (err instanceof StanzaError) {
      const app = err.appCondition;
      if (app?.name === 'file-too-large' && app.xmlns === NS_HTTP_UPLOAD) {
        const max = Number(app.getChildText('max-file-size', NS_HTTP_UPLOAD));
        throw new HttpUploadError(
          'file-too-large',
          `${req.filename} (${req.size} bytes) is too large for ${service}${Number.isFinite(max) ? `: at most ${max} bytes` : ''}`,
          { maxFileSize: Number.isFinite(max) ? max : undefined, cause: err },
        );
      }
      if (err.condition === 'not-acceptable')
        throw new HttpUploadError('not-acceptable', `${service} refused the upload: ${err.message}`, {
          cause: err,
        });
    }
    throw err;
  }
  const slot = res?.name === 'slot' ? res : undefined;
  const put = slot?.getChild('put', NS_HTTP_UPLOAD);
  const get = slot?.getChild('get', NS_HTTP_UPLOAD)?.attr('url');
  const putUrl = put?.attr('url');
  if (!putUrl || !get) throw new StanzaError('undefined-condition', { text: 'the slot has no put/get URL' });
  if (!allowInsecure && (!/^https:/i.test(putUrl) || !/^https:/i.test(get)))
    throw new HttpUploadError(
      'insecure',
      `the upload service gave non-HTTPS URLs (${putUrl}); set allowInsecure to use them`,
    );
  const headers: Record<string, string> = {};
  for (const h of put!.getChildren('header', NS_HTTP_UPLOAD)) {
    const name = h.attr('name') ?? '';
    // §5: only these headers, and no line breaks in them (header injection).
    if (ALLOWED_HEADERS.has(name.toLowerCase())) headers[name] = h.text().replace(/[\r\n]/g, '');
  }
  return { put: putUrl, get, headers };
}

/** XEP-0363 HTTP File Upload: find the service, request a slot, PUT the file, share the GET URL. */
export function httpUpload(options: HttpUploadOptions = {}): PluginDefinition<HttpUploadApi> {
  return {
    name: 'httpUpload',
    setup(ctx) {
      const { client } = ctx;
      const put = options.put ?? defaultPut;
      let discovered: Promise<UploadService> | undefined;
      client.on('online', ({ resumed }) => {
        if (!resumed) discovered = undefined;
      });
      const info = (jid: string) =>
        client.request('get', jid, xml('query', { xmlns: NS.discoInfo })).catch(() => undefined);

      const discover = async (): Promise<UploadService> => {
        if (options.service)
          return serviceFrom(options.service, await info(options.service)) ?? { jid: options.service };
        // XEP-0363 §3: the server itself, then its items.
        const own = serviceFrom(client.domain, await info(client.domain));
        if (own) return own;
        const items = await client.request('get', client.domain, xml('query', { xmlns: NS.discoItems }));
        const jids = (items?.getChildren('item', NS.discoItems) ?? [])
          .filter((i) => i.attr('node') === undefined)
          .map((i) => i.attr('jid'))
          .filter((j): j is string => !!j);
        const found = await Promise.all(jids.map(async (j) => serviceFrom(j, await info(j))));
        const s = found.find((x) => x !== undefined);
        if (!s)
          throw new HttpUploadError(
            'no-service',
            `${client.domain} offers no HTTP upload service (XEP-0363)`,
          );
        return s;
      };

      const api: HttpUploadApi = emitterWith<HttpUploadApi>(
        {
          discover(refresh = false) {
            if (refresh || !discovered) {
              const p = discover();
              discovered = p;
              p.catch(() => {
                if (discovered === p) discovered = undefined;
              });
            }
            return discovered!;
          },
          async requestSlot(req, opts = {}) {
            const service = opts.service ? String(opts.service) : (await api.discover()).jid;
            if (opts.signal?.aborted) throw abortError(opts.signal);
            return requestSlot(client, service, req, options.slotTimeout, options.allowInsecure);
          },
          async upload(body: UploadBody, opts: UploadOptions = {}) {
            const { data, size } = normalize(body);
            const filename = opts.filename ?? (body as { name?: unknown }).name;
            if (typeof filename !== 'string' || filename === '')
              throw new TypeError('httpUpload.upload(): a filename is needed (or a File with a name)');
            const contentType = opts.contentType || (isBlob(body) && body.type) || 'application/octet-stream';
            const signal = opts.signal;
            if (signal?.aborted) throw abortError(signal);
            const service = await api.discover();
            if (service.maxFileSize !== undefined && size > service.maxFileSize)
              throw new HttpUploadError(
                'file-too-large',
                `${filename} (${size} bytes) is too large for ${service.jid}: at most ${service.maxFileSize} bytes`,
                { maxFileSize: service.maxFileSize },
              );
            const slot = await requestSlot(
              client,
              service.jid,
              { filename, size, contentType },
              options.slotTimeout,
              options.allowInsecure,
            );
            if (signal?.aborted) throw abortError(signal);
            const onProgress = (loaded: number, total: number) => {
              opts.onProgress?.(loaded, total);
              api.emit('progress', { filename, url: slot.get, loaded, total });
            };
            const res = await put({
              url: slot.put,
              headers: { ...slot.headers, 'Content-Type': contentType, 'Content-Length': String(size) },
              body: data,
              size,
              signal,
              onProgress,
            });
            if (res.status < 200 || res.status > 299)
              throw new HttpUploadError(
                'http',
                `the PUT of ${filename} got HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`,
                { status: res.status },
              );
            api.emit('uploaded', { filename, url: slot.get, size, contentType });
            return slot.get;
          },
        },
        ctx.reportError,
      );
      return api;
    },
  };
}
