import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { StreamParser, serialize, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import type { ServerCore } from '../core/server-core.js';
import type { HttpRequestContext } from '../core/http-routes.js';
import { ipKey } from '../util/ip-key.js';
import { resolveMaxConnections } from './socket-guard.js';
import {
  BOSH_VERSION,
  BoshTransport,
  NS_HTTPBIND,
  NS_XBOSH,
  terminateBody,
  type BoshCondition,
  type BoshReply,
  type BoshRequest,
} from './bosh-transport.js';

/** What BOSH needs of the http listener's view of a request: who sent it, over TLS or not. */
type RequestClient = Pick<HttpRequestContext, 'ip' | 'secure'>;

/** Where the http and https listeners serve BOSH (XEP-0206), with or without a trailing slash. */
export const BOSH_PATH = '/http-bind';

const DEFAULT_CONTENT_TYPE = 'text/xml; charset=utf-8';
/**
 * `content` attributes we agree to echo as the Content-Type (XEP-0124 §7.1): XML only, with an
 * optional charset, spaces only (a `&#10;` in the attribute would otherwise reach writeHead, which
 * throws from a timer, and `text/html` would let a response render as a page).
 */
const CONTENT_TYPE = /^(?:text|application)\/xml(?: ?; ?charset=(?:utf-8|UTF-8))?$/;
/** Nothing in a BOSH response may ever run as a page (a form POST from another site can navigate to one). */
const SAFE = {
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'none'; sandbox; frame-ancestors 'none'",
};
/** Cross-origin web clients (XEP-0124 over XMLHttpRequest/fetch from another origin). */
const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'POST, OPTIONS',
  'access-control-allow-headers': 'Content-Type',
  'access-control-max-age': '86400',
};
/** A request body past the cap is read on (and dropped) up to this many times the cap, then cut. */
const DRAIN_FACTOR = 4;

/** The `<body/>` wrapper of a request, parsed. */
interface ParsedBody {
  attrs: Record<string, string>;
  payloads: Element[];
}

/**
 * XMPP over BOSH (XEP-0124, XEP-0206) for the http and https listeners of one server: reads and
 * checks each POSTed `<body/>`, creates sessions (admitted like a WebSocket connection, and at
 * most `limits.maxSocketsPerIp` per address and `limits.maxConnections` in all besides), and hands
 * the requests of a session to its BoshTransport. Bodies are capped at twice `limits.maxStanzaBytes` and every payload at the
 * stanza limit; anything over, or malformed, ends the session it names with `policy-violation` or
 * `bad-request` and touches no other.
 */
export class BoshSessions {
  private readonly sessions = new Map<string, BoshTransport>();
  /** Open sessions per address key (IPv6 by limits.ipv6Prefix). */
  private readonly perIp = new Map<string, number>();
  /** Open sessions in all. */
  private open = 0;
  /** Sessions hold no socket: they count against `limits.maxConnections` like one. */
  private readonly maxSessions: number;

  constructor(
    private readonly core: ServerCore,
    /** The listener's admission (connection caps per IP of the limits module). */
    private readonly admit: (ip: string) => boolean,
    /** Starts the client stream over a new session's transport. */
    private readonly accept: (transport: BoshTransport) => void,
  ) {
    this.maxSessions = resolveMaxConnections(core.config.limits.maxConnections);
    // In a cluster (`--workers`), a client's requests reach any node: those for a session held
    // here are forwarded here by the node that received them (docs/cluster.md).
    core.cluster?.answer('bosh', (data) => this.forwarded(data as ForwardedRequest));
  }

  /** The node whose session a sid names (`<random>.<node>` in a cluster), when another live one. */
  private ownerOf(sid: string): string | undefined {
    const cluster = this.core.cluster;
    const dot = sid.indexOf('.');
    if (!cluster || dot < 0) return undefined;
    const node = sid.slice(dot + 1);
    return node !== cluster.nodeId && cluster.isMember(node) ? node : undefined;
  }

  /** Sends a request for another node's session there, and its answer back to the client. */
  private async forward(node: string, body: Buffer, res: ServerResponse, ctx: RequestClient): Promise<void> {
    const timeoutMs = (this.core.config.bosh.maxWaitSeconds + 10) * 1000;
    const data: ForwardedRequest = { b: body.toString('utf8'), s: ctx.secure, ip: ctx.ip };
    const answer = (await this.core.cluster!.request(node, 'bosh', data, timeoutMs)) as
      ForwardedAnswer | undefined;
    if (answer?.drop) {
      res.socket?.destroy();
      return;
    }
    // No answer: the node holding the session left (its sessions are gone).
    reply(res, answer?.ct ?? DEFAULT_CONTENT_TYPE).send(
      answer?.b ?? terminateBody('item-not-found'),
      answer?.st,
    );
  }

  /** A request another node received for a session of this node. */
  private forwarded(data: ForwardedRequest): Promise<ForwardedAnswer> {
    const parsed = parseBody(Buffer.from(data.b, 'utf8'), this.core.config.limits);
    if ('error' in parsed) return Promise.resolve({ b: terminateBody(parsed.error) });
    const session = parsed.attrs.sid === undefined ? undefined : this.sessions.get(parsed.attrs.sid);
    if (!session) return Promise.resolve({ b: terminateBody('item-not-found') });
    if (session.secure && !data.s) return Promise.resolve({ drop: true });
    return new Promise((resolve) => {
      let sent = false;
      const answer: BoshReply = {
        send(body, status = 200) {
          if (sent) return;
          sent = true;
          resolve({ b: body, st: status, ct: session.contentType });
        },
      };
      const request = toRequest(parsed, answer);
      if (!request) session.fail('bad-request', answer, { reason: 'rid' });
      else session.request(request);
    });
  }

  /** One request to BOSH_PATH. */
  handle(req: IncomingMessage, res: ServerResponse, ctx: RequestClient): void {
    if (req.method === 'OPTIONS') {
      res.writeHead(204, CORS).end();
      return;
    }
    if (req.method !== 'POST') {
      res
        .writeHead(405, { ...CORS, allow: 'POST, OPTIONS', 'content-type': 'text/plain' })
        .end('XMPP over BOSH (XEP-0206): POST a <body/>\n');
      return;
    }
    void this.post(req, res, ctx).catch((err: unknown) => {
      this.core.log.error({ err }, 'BOSH request failed');
      reply(res, DEFAULT_CONTENT_TYPE).send(terminateBody('bad-request'));
    });
  }

  private async post(req: IncomingMessage, res: ServerResponse, ctx: RequestClient): Promise<void> {
    const limits = this.core.config.limits;
    const cap = limits.maxStanzaBytes * 2;
    const answer = reply(res, DEFAULT_CONTENT_TYPE);
    const encoding = req.headers['content-encoding'];
    const read = encoding && encoding !== 'identity' ? undefined : await readBody(req, cap);
    if (!read) {
      answer.send(terminateBody('bad-request'));
      return;
    }
    if (read.tooLarge) {
      this.refuse(read.head, 'policy-violation', answer, ctx.secure, { bytes: read.bytes, cap });
      return;
    }
    const parsed = parseBody(read.body, limits);
    if ('error' in parsed) {
      this.refuse(read.body.subarray(0, 1024), parsed.error, answer, ctx.secure, { reason: parsed.text });
      return;
    }
    const { attrs } = parsed;
    if (attrs.sid === undefined) {
      this.create(parsed, res, ctx, req.socket.localPort ?? 0);
      return;
    }
    const session = this.sessions.get(attrs.sid);
    if (!session) {
      const node = this.ownerOf(attrs.sid);
      if (node !== undefined) return this.forward(node, read.body, res, ctx);
      answer.send(terminateBody('item-not-found'));
      return;
    }
    // XEP-0124 §16.1: a session begun over TLS continues over TLS only; the connection is dropped,
    // the session kept (a denial of service otherwise).
    if (session.secure && !ctx.secure) {
      req.socket.destroy();
      return;
    }
    const sessionReply = reply(res, session.contentType);
    const request = toRequest(parsed, sessionReply);
    if (!request) {
      session.fail('bad-request', sessionReply, { reason: 'rid' });
      return;
    }
    session.request(request);
  }

  /** An unreadable request: the session it names (if any) ends with `condition`. */
  private refuse(
    head: Buffer,
    condition: BoshCondition,
    answer: BoshReply,
    secure: boolean,
    detail: Record<string, unknown>,
  ): void {
    const sid = /\ssid\s*=\s*(?:'([^']*)'|"([^"]*)")/.exec(head.toString('utf8'));
    const session = sid ? this.sessions.get(sid[1] ?? sid[2] ?? '') : undefined;
    // A request in clear cannot end (nor read the end of) a session begun over TLS (§16.1).
    if (session?.secure && !secure) answer.send(terminateBody(condition));
    else if (session) session.fail(condition, answer, detail);
    else {
      this.core.log.info({ condition, ...detail }, 'BOSH request refused');
      answer.send(terminateBody(condition));
    }
  }

  /** XEP-0124 §7: a session creation request. */
  private create(parsed: ParsedBody, res: ServerResponse, ctx: RequestClient, localPort: number): void {
    const { attrs } = parsed;
    const config = this.core.config.bosh;
    const content =
      attrs.content !== undefined && CONTENT_TYPE.test(attrs.content) ? attrs.content : undefined;
    const answer = reply(res, content ?? DEFAULT_CONTENT_TYPE);
    const ver = negotiateVersion(attrs.ver);
    const refuse = (condition: BoshCondition, detail: Record<string, unknown> = {}) => {
      this.core.log.info({ ip: ctx.ip, condition, ...detail }, 'BOSH session refused');
      answer.send(terminateBody(condition), ver === undefined && condition === 'bad-request' ? 400 : 200);
    };
    if (this.core.stopping) return refuse('system-shutdown');
    const request = toRequest(parsed, answer);
    if (!request) return refuse('bad-request', { reason: 'rid' });
    const wait = Math.min(nonNegative(attrs.wait) ?? config.maxWaitSeconds, config.maxWaitSeconds);
    const hold = Math.min(nonNegative(attrs.hold) ?? 1, config.maxHold);
    const limits = this.core.config.limits;
    const key = ipKey(ctx.ip, limits.ipv6Prefix);
    // Backstops for when the limits module is off: no more sessions per address, nor in all, than
    // sockets (sessions outlive their HTTP connections, which the socket guard counts).
    if (!limits.disabled && (this.perIp.get(key) ?? 0) >= limits.maxSocketsPerIp)
      return refuse('policy-violation', { reason: 'sessions per address' });
    if (!limits.disabled && this.open >= this.maxSessions)
      return refuse('policy-violation', { reason: 'sessions in all' });
    if (!this.admit(ctx.ip)) return refuse('policy-violation', { reason: 'admission' });
    // In a cluster the sid names this node, so that any node can forward the session's requests.
    const node = this.core.cluster ? `.${this.core.cluster.nodeId}` : '';
    const sid = randomBytes(18).toString('base64url') + node;
    // XEP-0124 §12: a polling session (nothing held) gets the full polling interval and a longer
    // inactivity; otherwise the interval stays under `wait`, so a poll sent right after an empty
    // answer at the end of `wait` is never too early.
    const pollingSession = hold === 0 || wait === 0;
    const polling = pollingSession ? config.pollingSeconds : Math.min(config.pollingSeconds, wait - 1);
    const inactivity = config.inactivitySeconds + (pollingSession ? polling : 0);
    const session = new BoshTransport(
      {
        sid,
        wait,
        hold,
        inactivity,
        polling,
        ver,
        acks: attrs.ack === '1',
        xmppVersion: xbosh(attrs, 'version') ?? '1.0',
        contentType: content ?? DEFAULT_CONTENT_TYPE,
        remoteAddress: ctx.ip,
        localPort,
        secure: ctx.secure,
        maxResponseBytes: Math.max(256 * 1024, limits.maxStanzaBytes),
      },
      {
        closed: (s, keepMs) => this.closed(s, key, keepMs),
        log: (condition, detail) => this.core.log.info({ condition, ...detail }, 'BOSH session ended'),
      },
    );
    this.sessions.set(sid, session);
    this.perIp.set(key, (this.perIp.get(key) ?? 0) + 1);
    this.open++;
    this.accept(session);
    session.start(request);
  }

  private closed(session: BoshTransport, key: string, keepMs: number): void {
    // Called once per session; a closed session may still answer its sid for a while, uncounted.
    this.open--;
    const n = (this.perIp.get(key) ?? 1) - 1;
    if (n <= 0) this.perIp.delete(key);
    else this.perIp.set(key, n);
    const forget = () => {
      if (this.sessions.get(session.sid) === session) this.sessions.delete(session.sid);
    };
    if (keepMs <= 0) forget();
    else setTimeout(forget, keepMs).unref();
  }
}

/** A request forwarded between the nodes of a cluster: its body, over TLS or not, the client's address. */
interface ForwardedRequest {
  b: string;
  s: boolean;
  ip: string;
}

/** The answer: the response body, status and content type, or `drop` (the connection is cut). */
interface ForwardedAnswer {
  b?: string;
  st?: number;
  ct?: string;
  drop?: boolean;
}

/** A reply on `res` with BOSH's headers; once only, and nothing once the client has gone. */
function reply(res: ServerResponse, contentType: string): BoshReply {
  return {
    send(body, status = 200) {
      if (res.headersSent || res.writableEnded || res.destroyed) return;
      try {
        res
          .writeHead(status, {
            ...CORS,
            ...SAFE,
            'content-type': contentType,
            'cache-control': 'no-store',
            'content-length': Buffer.byteLength(body),
          })
          .end(body);
      } catch {
        // Sent from timers: a failure here must never escape and end the process.
        res.destroy();
      }
    },
  };
}

type ReadResult =
  { tooLarge: false; body: Buffer } | { tooLarge: true; head: Buffer; bytes: number } | undefined;

/** Longest a BOSH request body may take to arrive. */
const BODY_DEADLINE_MS = 10_000;

/**
 * The request body, up to `cap` bytes. Past the cap the rest is read and dropped (so that the
 * client reads our answer rather than a reset) up to DRAIN_FACTOR × cap, then the connection is cut.
 */
function readBody(req: IncomingMessage, cap: number): Promise<ReadResult> {
  return new Promise((resolve) => {
    // The listener sets no deadline on whole requests (uploads may take minutes): BOSH bodies are
    // small, and one that has not arrived within BODY_DEADLINE_MS is a stalled or hostile client.
    const deadline = setTimeout(() => req.socket.destroy(), BODY_DEADLINE_MS);
    deadline.unref();
    req.once('close', () => clearTimeout(deadline));
    req.once('end', () => clearTimeout(deadline));
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (declared > cap * DRAIN_FACTOR) {
      req.socket.destroy();
      resolve(undefined);
      return;
    }
    const chunks: Buffer[] = [];
    let bytes = 0;
    let head: Buffer | undefined;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (head) {
        if (bytes > cap * DRAIN_FACTOR) req.socket.destroy();
        return;
      }
      if (bytes > cap) {
        head = Buffer.concat(chunks).subarray(0, 1024);
        if (head.length < 1024) head = Buffer.concat([head, chunk]).subarray(0, 1024);
        chunks.length = 0;
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () =>
      resolve(head ? { tooLarge: true, head, bytes } : { tooLarge: false, body: Buffer.concat(chunks) }),
    );
    req.on('error', () => resolve(undefined));
    req.on('close', () => resolve(undefined));
  });
}

/**
 * Parses a request's `<body/>` with the stream parser and its limits (a payload over
 * `maxStanzaBytes` is policy-violation; comments, DTDs, text between payloads are bad-request).
 */
function parseBody(
  data: Buffer,
  limits: { maxStanzaBytes: number; maxDepth: number; maxAttributes: number },
): ParsedBody | { error: BoshCondition; text: string } {
  let attrs: Record<string, string> | undefined;
  let wrong: string | undefined;
  let ended = false;
  let failure: { condition: string; message: string } | undefined;
  const payloads: Element[] = [];
  const parser = new StreamParser(
    {
      streamStart: (h) => {
        if (h.name !== 'body' || h.xmlns !== NS_HTTPBIND) wrong = `<${h.name} xmlns='${h.xmlns}'>`;
        attrs = h.attrs;
      },
      element: (el) => payloads.push(el),
      streamEnd: () => {
        ended = true;
      },
      error: (err) => {
        failure ??= { condition: err.condition, message: err.message };
      },
    },
    {
      maxStanzaBytes: limits.maxStanzaBytes,
      maxDepth: limits.maxDepth + 1,
      maxAttributes: limits.maxAttributes,
    },
  );
  parser.write(data);
  if (failure)
    return {
      error: failure.condition === 'policy-violation' ? 'policy-violation' : 'bad-request',
      text: failure.message,
    };
  if (wrong)
    return { error: 'bad-request', text: `the wrapper must be <body xmlns='${NS_HTTPBIND}'/>, not ${wrong}` };
  if (!attrs || !ended) return { error: 'bad-request', text: 'incomplete <body/>' };
  return { attrs, payloads };
}

/** The wrapper's attributes and payloads as the session takes them; undefined without a valid rid. */
function toRequest(parsed: ParsedBody, reply: BoshReply): BoshRequest | undefined {
  const { attrs } = parsed;
  const rid = rid53(attrs.rid);
  if (rid === undefined) return undefined;
  const restart = xbosh(attrs, 'restart');
  return {
    rid,
    payloads: parsed.payloads.map((el) => serialize(clientNamespace(el), '')),
    restart: restart === 'true' || restart === '1',
    terminate: attrs.type === 'terminate',
    to: attrs.to,
    lang: attrs['xml:lang'],
    key: attrs.key,
    newkey: attrs.newkey,
    ack: rid53(attrs.ack),
    reply,
    arrived: Date.now(),
  };
}

/**
 * XEP-0206 §2: clients often leave stanzas in the wrapper's namespace, taking jabber:client to be
 * part of httpbind; such elements are read as jabber:client.
 */
function clientNamespace(el: Element): Element {
  if (el.xmlns === NS_HTTPBIND) el.xmlns = NS.client;
  for (const c of el.children) if (typeof c !== 'string') clientNamespace(c);
  return el;
}

/** An XEP-0206 attribute (`xmpp:restart`), whatever prefix the client bound urn:xmpp:xbosh to. */
function xbosh(attrs: Record<string, string>, local: string): string | undefined {
  for (const k in attrs) {
    if (!k.startsWith('xmlns:') || attrs[k] !== NS_XBOSH) continue;
    const v = attrs[`${k.slice(6)}:${local}`];
    if (v !== undefined) return v;
  }
  return undefined;
}

/** A rid (XEP-0124 §14.1): a positive integer up to 2^53 − 1. */
function rid53(s: string | undefined): number | undefined {
  if (s === undefined || !/^\d{1,16}$/.test(s)) return undefined;
  const n = Number(s);
  return n > 0 && Number.isSafeInteger(n) ? n : undefined;
}

function nonNegative(s: string | undefined): number | undefined {
  if (s === undefined || !/^\d{1,9}$/.test(s)) return undefined;
  return Number(s);
}

/** The lower of the client's `ver` and ours (XEP-0124 §7.2); undefined for a legacy client. */
function negotiateVersion(ver: string | undefined): string | undefined {
  const m = ver === undefined ? null : /^(\d{1,4})\.(\d{1,4})$/.exec(ver);
  if (!m) return ver === undefined ? undefined : BOSH_VERSION.join('.');
  const [major, minor] = [Number(m[1]), Number(m[2])];
  const [ourMajor, ourMinor] = BOSH_VERSION;
  const lower = major < ourMajor || (major === ourMajor && minor < ourMinor);
  return lower ? `${major}.${minor}` : `${ourMajor}.${ourMinor}`;
}
