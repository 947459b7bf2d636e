import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { HttpHandler } from '../../core/module-api.js';
import { UploadSizeError, type ByteRange } from './file-store.js';
import { SECRET, UPLOAD_PATH, keyOf, type UploadService } from './upload-service.js';
import type { UploadRow } from './upload-store.js';

/*
 * The HTTP half of XEP-0363 (§5 "Upload" and the GET URL), on the http listeners under /upload/.
 *
 * Authorisation of the PUT: the slot's URL itself. Its secret has 192 random bits, travels only
 * to the requester over its authenticated XMPP stream, and works for one PUT, before the slot's
 * TTL: a second PUT is refused, whatever happened to the first. The GET URL is the same URL (the
 * client shares it only once its PUT got 201, and by then the slot is used up), so no header has
 * to be carried from the slot to the PUT: every client, including those that drop <header/>s
 * and browsers (no CORS preflight for Authorization), can upload.
 */

/** An upload that sends nothing for this long is given up (its slot and bytes dropped). */
const UPLOAD_IDLE_MS = 60_000;

/** Request bodies this small are read and thrown away when a PUT is refused (keeps the connection). */
const DRAIN_LIMIT = 64 * 1024;

const CORS: OutgoingHttpHeaders = {
  'access-control-allow-origin': '*',
  'access-control-expose-headers':
    'Content-Length, Content-Range, Content-Disposition, Accept-Ranges, ETag, Last-Modified',
};

/** Headers on every answer: nothing served here is ever sniffed into HTML or runs script. */
const SAFE: OutgoingHttpHeaders = {
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'; sandbox",
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'cross-origin',
};

function reply(
  res: ServerResponse,
  status: number,
  text: string,
  headers: OutgoingHttpHeaders = {},
  head = false,
): void {
  const body = `${text}\n`;
  res.writeHead(status, {
    ...CORS,
    ...SAFE,
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    ...headers,
  });
  res.end(head ? undefined : body);
}

/** `type/subtype`, lower case, without parameters. */
const essence = (type: string | undefined) => (type ?? '').split(';')[0]!.trim().toLowerCase();

/** Shown in the page (inline) or saved (attachment)? Only media a browser plays without script. */
function disposition(type: string): 'inline' | 'attachment' {
  const t = essence(type);
  if (t === 'image/svg+xml') return 'attachment';
  return /^(image|audio|video)\//.test(t) ? 'inline' : 'attachment';
}

/** RFC 6266 with an RFC 5987 `filename*` for the real name and an ASCII stand-in for old agents. */
export function contentDisposition(type: string, name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\%]/g, '_');
  const encoded = encodeURIComponent(name).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `${disposition(type)}; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

/**
 * RFC 9110 §14.2, one range: the range to send, 'unsatisfiable' (416), or undefined (send the whole
 * file: no Range, one we do not parse, or several ranges, which a server may ignore).
 */
export function parseRange(
  header: string | undefined,
  size: number,
): ByteRange | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== '' && Number(m[2]) < start) return undefined; // invalid: ignored (RFC 9110 §14.1.1)
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

/** The path's slot: its secret and the file name as the URL spells it (decoded); undefined when malformed. */
function slotOf(url: string | undefined): { secret: string; name: string } | undefined {
  const path = (url ?? '').split('?')[0]!;
  if (!path.startsWith(UPLOAD_PATH)) return undefined;
  const parts = path.slice(UPLOAD_PATH.length).split('/');
  if (parts.length !== 2 || !SECRET.test(parts[0]!)) return undefined;
  try {
    return { secret: parts[0]!, name: decodeURIComponent(parts[1]!) };
  } catch {
    return undefined;
  }
}

export function uploadHttpHandler(service: UploadService): HttpHandler {
  const now = () => Date.now();

  /** The stored file a URL names, if it exists and has not expired. */
  async function storedFile(secret: string, name: string): Promise<UploadRow | undefined> {
    const row = await service.files.find(keyOf(secret));
    if (!row || row.filename !== name || row.state !== 'stored') return undefined;
    if ((row.storedAt ?? 0) + service.expiryMs <= now()) return undefined;
    return row;
  }

  /** Refuses a PUT; a large unread body is not waited for: the connection closes after the answer. */
  function refuse(req: IncomingMessage, res: ServerResponse, status: number, text: string): void {
    const length = Number(req.headers['content-length'] ?? NaN);
    const drain = Number.isFinite(length) && length <= DRAIN_LIMIT;
    reply(res, status, text, drain ? {} : { connection: 'close' });
  }

  async function put(req: IncomingMessage, res: ServerResponse, secret: string, name: string): Promise<void> {
    const id = keyOf(secret);
    const row = await service.files.find(id);
    if (!row || row.filename !== name) return refuse(req, res, 404, 'no such upload slot');
    if (row.state !== 'pending') return refuse(req, res, 409, 'this slot was used already');
    if (row.createdAt + service.slotTtlMs <= now()) return refuse(req, res, 410, 'this slot has expired');
    // XEP-0363 §5: the length MUST match the request; the type SHOULD, when the request named one.
    if (req.headers['transfer-encoding'] !== undefined || req.headers['content-length'] === undefined)
      return refuse(req, res, 411, 'Content-Length is required');
    if (Number(req.headers['content-length']) !== row.size)
      return refuse(
        req,
        res,
        row.size < Number(req.headers['content-length']) ? 413 : 400,
        `Content-Length must be ${row.size}`,
      );
    if (row.contentType !== undefined && essence(req.headers['content-type']) !== essence(row.contentType))
      return refuse(req, res, 415, `Content-Type must be ${row.contentType}`);
    if (!(await service.files.claim(id, now()))) return refuse(req, res, 409, 'this slot was used already');

    let aborted = false;
    const upload = {
      abort: () => {
        aborted = true;
        req.destroy();
      },
      done: Promise.resolve(),
    };
    upload.done = (async () => {
      try {
        await service.store.put(id, req, row.size);
      } catch (err) {
        // Aborted, too short, too long, or the disk failed: nothing is kept, the quota is free.
        await service.files.remove(id);
        if (err instanceof UploadSizeError) {
          if (!res.headersSent && !req.destroyed) refuse(req, res, 400, err.message);
        } else if (!aborted && !req.destroyed && !res.headersSent) {
          service.log.error({ err }, 'storing an upload failed');
          reply(res, 500, 'the file could not be stored', { connection: 'close' });
        }
        return;
      }
      if (!(await service.files.stored(id, now()))) {
        // The slot went while the bytes arrived (its account was deleted): do not keep them.
        await service.store.delete(id);
        reply(res, 410, 'this slot is gone');
        return;
      }
      service.log.info({ owner: row.owner, size: row.size }, 'file uploaded');
      reply(res, 201, 'created');
    })();
    service.uploads.add(upload);
    req.setTimeout(UPLOAD_IDLE_MS, upload.abort);
    try {
      await upload.done;
    } finally {
      req.setTimeout(0);
      service.uploads.delete(upload);
    }
  }

  async function get(req: IncomingMessage, res: ServerResponse, secret: string, name: string): Promise<void> {
    const head = req.method === 'HEAD';
    const row = await storedFile(secret, name);
    const stat = row && (await service.store.stat(row.id));
    if (!row || !stat) {
      if (row) service.log.warn({ id: row.id }, 'an uploaded file is missing from the store');
      return reply(res, 404, 'not found', {}, head);
    }
    const type = row.contentType ?? 'application/octet-stream';
    const modified = new Date(row.storedAt ?? row.createdAt);
    const etag = `"${row.id.slice(0, 32)}"`;
    const remaining = Math.max(0, Math.floor(((row.storedAt ?? 0) + service.expiryMs - now()) / 1000));
    const headers: OutgoingHttpHeaders = {
      ...CORS,
      ...SAFE,
      'content-type': type,
      'content-disposition': contentDisposition(type, row.filename),
      'accept-ranges': 'bytes',
      etag,
      'last-modified': modified.toUTCString(),
      // The bytes behind a URL never change; they are gone after the expiry.
      'cache-control': `max-age=${remaining}, immutable`,
    };
    // Conditional requests (RFC 9110 §13): If-None-Match wins over If-Modified-Since.
    const inm = req.headers['if-none-match'];
    const ims = req.headers['if-modified-since'];
    const notModified =
      inm !== undefined
        ? inm.trim() === '*' || inm.split(',').some((t) => t.trim().replace(/^W\//, '') === etag)
        : ims !== undefined && Date.parse(ims) >= Math.floor(modified.getTime() / 1000) * 1000;
    if (notModified) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    let range = parseRange(req.headers.range, stat.size);
    const ifRange = req.headers['if-range'];
    if (
      range !== undefined &&
      ifRange !== undefined &&
      ifRange !== etag &&
      ifRange !== headers['last-modified']
    )
      range = undefined; // the client's copy is another one: the whole file
    if (range === 'unsatisfiable') {
      res.writeHead(416, { ...headers, 'content-range': `bytes */${stat.size}`, 'content-length': 0 });
      res.end();
      return;
    }
    if (range) {
      headers['content-range'] = `bytes ${range.start}-${range.end}/${stat.size}`;
      headers['content-length'] = range.end - range.start + 1;
    } else headers['content-length'] = stat.size;
    if (head) {
      res.writeHead(range ? 206 : 200, headers);
      res.end();
      return;
    }
    const body = await service.store.get(row.id, range);
    if (!body) return reply(res, 404, 'not found');
    try {
      res.writeHead(range ? 206 : 200, headers);
    } catch (err) {
      body.destroy(); // never leave the file open behind a failed answer
      throw err;
    }
    await pipeline(body, res).catch((err: unknown) => {
      // A client going away mid-download is no error of ours.
      if ((err as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE')
        service.log.warn({ err }, 'serving an upload failed');
    });
  }

  return async (req, res) => {
    const method = req.method ?? 'GET';
    if (method === 'OPTIONS') {
      // CORS preflight (web clients such as Converse.js PUT from their own origin).
      res.writeHead(204, {
        ...CORS,
        'access-control-allow-methods': 'GET, HEAD, PUT, OPTIONS',
        'access-control-allow-headers': 'Content-Type, Range, If-None-Match, If-Modified-Since, If-Range',
        'access-control-max-age': '86400',
      });
      res.end();
      return;
    }
    if (service.stopping) return reply(res, 503, 'the server is shutting down', { connection: 'close' });
    const slot = slotOf(req.url);
    if (method === 'PUT') {
      if (!slot) return refuse(req, res, 404, 'no such upload slot');
      return put(req, res, slot.secret, slot.name);
    }
    if (method === 'GET' || method === 'HEAD') {
      if (!slot) return reply(res, 404, 'not found', {}, method === 'HEAD');
      return get(req, res, slot.secret, slot.name);
    }
    reply(res, 405, 'method not allowed', { allow: 'GET, HEAD, PUT, OPTIONS' });
  };
}
