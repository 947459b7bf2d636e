import { createHash } from 'node:crypto';
import { escapeAttr, parseElement, serialize, xml } from '@natter/xml';
import { NS } from '@natter/protocol';
import type { Transport } from '../core/transport.js';

/** XEP-0124's namespace of the `<body/>` wrapper. */
export const NS_HTTPBIND = 'http://jabber.org/protocol/httpbind';
/** XEP-0206's namespace of the `xmpp:version`, `xmpp:restart` … attributes. */
export const NS_XBOSH = 'urn:xmpp:xbosh';
/** The XEP-0124 version implemented (1.11). */
export const BOSH_VERSION: readonly [number, number] = [1, 11];

/** XEP-0124 §17.2 terminal binding conditions this connection manager sends. */
export type BoshCondition =
  | 'bad-request'
  | 'item-not-found'
  | 'policy-violation'
  | 'remote-connection-failed'
  | 'remote-stream-error'
  | 'system-shutdown';

/**
 * HTTP status of a terminal condition for a legacy client (no `ver` in its session request,
 * XEP-0124 §17.1); others always get 200 and read the condition from the body.
 */
const LEGACY_STATUS: Partial<Record<BoshCondition, number>> = {
  'bad-request': 400,
  'policy-violation': 403,
  'item-not-found': 404,
};

/** Where the answer to one request goes: the HTTP exchange it arrived on. */
export interface BoshReply {
  /** Sends the response (once; later calls, or calls after the client went away, do nothing). */
  send(body: string, status?: number): void;
}

/** A client request (one `<body/>`), parsed and checked by the session manager. */
export interface BoshRequest {
  rid: number;
  /** Stanzas and nonzas inside the wrapper, each serialised as a standalone element (RFC 7395 frame). */
  payloads: string[];
  /** `xmpp:restart='true'` (XEP-0206 §5). */
  restart: boolean;
  /** `type='terminate'` (XEP-0124 §12). */
  terminate: boolean;
  /** `to` and `xml:lang` (session creation and restarts). */
  to: string | undefined;
  lang: string | undefined;
  /** Key sequencing (XEP-0124 §15). */
  key: string | undefined;
  newkey: string | undefined;
  /** The client's response acknowledgement (XEP-0124 §9.2). */
  ack: number | undefined;
  reply: BoshReply;
  /** When it arrived (ms). */
  arrived: number;
}

/** What a session was agreed on at creation (XEP-0124 §7). */
export interface BoshSessionParams {
  sid: string;
  /** Seconds a request may be held. */
  wait: number;
  /** Requests held at once; `requests` = hold + 1. */
  hold: number;
  /** Seconds without any request before the session ends. */
  inactivity: number;
  /** Shortest interval (s) between empty requests answered empty; 0: unchecked. */
  polling: number;
  /** The negotiated BOSH version ("1.11"), or undefined for a legacy client. */
  ver: string | undefined;
  /** The client asked for acknowledgements (`ack='1'`). */
  acks: boolean;
  /** XEP-0206 `xmpp:version` the client asked for (the stream's version). */
  xmppVersion: string;
  /** Content-Type of every response (the client's `content`, else text/xml; charset=utf-8). */
  contentType: string;
  remoteAddress: string;
  localPort: number;
  /** Created over TLS (https, or a trusted TLS proxy): later requests must be too. */
  secure: boolean;
  /** Largest body of payloads put in one response (at least one element goes in any response). */
  maxResponseBytes: number;
}

export interface BoshSessionHooks {
  /**
   * The session is over. `keepMs`: how long its sid should still answer (with the terminating
   * body or a cached response) before it is forgotten; 0: at once.
   */
  closed(session: BoshTransport, keepMs: number): void;
  log(condition: string, detail: Record<string, unknown>): void;
}

/** How long a session that ended still answers its sid (the client may not have seen the end yet). */
const TOMBSTONE_MS = 10_000;

const OPEN_FRAME = `<open xmlns="${NS.framing}"`;
const CLOSE_FRAME_PREFIX = `<close xmlns="${NS.framing}"`;
const CLOSE_FRAME = serialize(xml('close', { xmlns: NS.framing }), '');

interface Held {
  rid: number;
  reply: BoshReply;
  timer: NodeJS.Timeout | undefined;
  /** The session creation request: its response carries the session's attributes. */
  creation: boolean;
  /** Carried no payload (and was no restart nor terminate): counts for the polling rule. */
  empty: boolean;
  arrived: number;
  /** Set once answered: whether the response carried payloads. */
  answeredWithPayload?: boolean;
}

/** A `<body/>` with these attributes (undefined ones left out) around serialised payloads. */
export function bodyXml(attrs: Record<string, string | number | undefined>, payload = ''): string {
  let s = `<body xmlns="${NS_HTTPBIND}"`;
  let xmpp = false;
  for (const k in attrs) {
    const v = attrs[k];
    if (v === undefined) continue;
    if (k.startsWith('xmpp:')) xmpp = true;
    s += ` ${k}="${escapeAttr(String(v))}"`;
  }
  if (xmpp) s += ` xmlns:xmpp="${NS_XBOSH}"`;
  if (payload === '') return s + '/>';
  // XEP-0206 §2: stream features and errors inside need the stream prefix declared on the wrapper.
  return s + ` xmlns:stream="${NS.stream}">` + payload + '</body>';
}

/** `<body type='terminate' condition='…'/>` (XEP-0124 §17.2). */
export function terminateBody(condition: BoshCondition | undefined, payload = ''): string {
  return bodyXml({ type: 'terminate', condition }, payload);
}

/**
 * One BOSH session (XEP-0124, XMPP over it per XEP-0206) as a stream transport. The stream
 * machine sees a framed transport like WebSocket (RFC 7395): the session creation request and
 * each `xmpp:restart` become an `<open/>` frame, every payload inside a request a frame of its own,
 * `type='terminate'` a `<close/>` frame; what the machine writes is queued and goes out in the
 * responses to held requests (its `<open/>`/`<close/>` frames are not: the wrapper says what they
 * said). The HTTP side — request ids and their window, holding, `wait`, acknowledgements, resent
 * requests, inactivity, overactivity — stays here; the machine does not know it is BOSH.
 */
export class BoshTransport implements Transport {
  readonly kind = 'bosh' as const;
  readonly framed = true;
  readonly canStartTls = false;
  readonly remoteAddress: string;
  readonly localPort: number;
  readonly secure: boolean;
  readonly sid: string;
  readonly contentType: string;
  /** requests = hold + 1 (XEP-0124 §7.1): unanswered requests allowed at once. */
  readonly requests: number;

  private state: 'open' | 'ending' | 'closed' = 'open';
  /** Highest rid processed; every lower one was processed too. */
  private lastRid = 0;
  private creationRid = 0;
  /** Requests received ahead of `lastRid + 1` (or while input is paused), by rid. */
  private readonly pending = new Map<number, BoshRequest>();
  /** Processed requests waiting for their response, in rid order. */
  private held: Held[] = [];
  /** The latest responses by rid, for resent requests (XEP-0124 §14.3). */
  private readonly cache = new Map<number, string>();
  /** Frames written by the stream machine, not yet in a response. */
  private out: { data: string; bytes: number }[] = [];
  private outBytes = 0;
  /** Frames of processed requests not yet handed to the stream machine (input paused). */
  private inbound: string[] = [];
  private paused = false;
  private pumping = false;
  private flushScheduled = false;
  /** The machine wrote a stream error: the session ends with remote-stream-error (XEP-0206 §6). */
  private streamError = false;
  /** Condition of the terminating body when the stream went away without a close (destroy). */
  private lostCondition: BoshCondition | undefined;
  /** What a request to this session gets once it is over. */
  private tombstone = '';
  private inactivityTimer: NodeJS.Timeout | undefined;
  /** The last empty request, for the polling rule (XEP-0124 §11, §12). */
  private lastEmpty: Held | undefined;
  /** The key the next request's `key` must hash to (XEP-0124 §15), when the client uses keys. */
  private key: string | undefined;
  /**
   * With keys, the key each recent request came with: a resent request must carry the same one
   * before it takes over a held or cached response (else anyone who can see the sid and rid, on
   * plain HTTP, could divert the client's responses).
   */
  private readonly ridKeys = new Map<number, string | undefined>();
  /** `from` and `id` of the stream header the machine wrote last. */
  private streamFrom: string | undefined;
  private streamId: string | undefined;
  private to: string | undefined;
  private lang: string | undefined;

  private dataCb: (chunk: string) => void = () => {};
  private closeCb: (hadError: boolean) => void = () => {};
  private drainCb: () => void = () => {};

  constructor(
    private readonly params: BoshSessionParams,
    private readonly hooks: BoshSessionHooks,
  ) {
    this.sid = params.sid;
    this.remoteAddress = params.remoteAddress;
    this.localPort = params.localPort;
    this.secure = params.secure;
    this.contentType = params.contentType;
    this.requests = params.hold + 1;
  }

  // --- Transport ------------------------------------------------------------------------------

  /** TLS, if any, ends at the HTTP server or a proxy in front, and spans many connections. */
  peerCertificate(): undefined {
    return undefined;
  }
  peerVerification(): { authorized: boolean; error?: string } {
    return { authorized: false, error: 'no TLS client certificates over BOSH' };
  }

  /** Bytes the machine wrote that no response has carried yet (its slow-reader check reads this). */
  get bufferedBytes(): number {
    return this.outBytes;
  }

  get closed(): boolean {
    return this.state === 'closed';
  }

  write(data: string): void {
    if (this.state === 'closed') return;
    if (data.startsWith(OPEN_FRAME)) {
      // The stream header: the wrapper carries what matters of it (XEP-0206 §4).
      try {
        const open = parseElement(data);
        this.streamFrom = open.attrs.from ?? this.streamFrom;
        this.streamId = open.attrs.id ?? this.streamId;
      } catch {
        // our own serialiser wrote it
      }
      return;
    }
    // The end of the stream is said by end() and the terminating wrapper.
    if (data.startsWith(CLOSE_FRAME_PREFIX)) return;
    if (data.startsWith('<stream:error')) this.streamError = true;
    const bytes = Buffer.byteLength(data);
    this.out.push({ data, bytes });
    this.outBytes += bytes;
    this.scheduleFlush();
  }

  startTls(): Promise<void> {
    return Promise.reject(new Error('STARTTLS is not available over BOSH'));
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.pump();
  }

  /** The stream is closing: what was written goes out with the terminating body. */
  end(): void {
    if (this.state !== 'open') return;
    this.state = 'ending';
    this.inbound = [];
    clearTimeout(this.inactivityTimer);
    // Delivered to the next request (one held now, or the client's next); else kept for a while.
    if (this.held.length > 0 || this.pending.size > 0) this.scheduleFlush();
  }

  /** Closes now: held requests get the terminating body at once. */
  destroy(): void {
    if (this.state === 'closed') return;
    if (this.state === 'open') {
      // Cut without a stream close (a reader that fell too far behind): what was queued is dropped.
      this.lostCondition = 'remote-connection-failed';
      this.out = [];
      this.outBytes = 0;
      this.state = 'ending';
    }
    this.finish();
  }

  onData(cb: (chunk: string) => void): void {
    this.dataCb = cb;
  }

  onClose(cb: (hadError: boolean) => void): void {
    this.closeCb = cb;
  }

  onDrain(cb: () => void): void {
    this.drainCb = cb;
  }

  // --- requests ---------------------------------------------------------------------------------

  /** The session creation request (XEP-0124 §7.1): opens the stream, and is held like any other. */
  start(r: BoshRequest): void {
    this.creationRid = r.rid;
    this.lastRid = r.rid;
    this.key = r.newkey;
    this.to = r.to;
    this.lang = r.lang;
    this.hold(r, true, false);
    this.inbound.push(this.openFrame(r.to, r.lang, this.params.xmppVersion), ...r.payloads);
    if (r.terminate) this.inbound.push(CLOSE_FRAME);
    this.pump();
  }

  /** A request of this session (`sid` matched): ordered by rid, then processed. */
  request(r: BoshRequest): void {
    if (this.state === 'closed') {
      r.reply.send(this.cache.get(r.rid) ?? this.tombstone);
      return;
    }
    if (this.state === 'ending') {
      // The stream is over: this request carries the end to the client.
      this.pending.set(r.rid, r);
      this.finish();
      return;
    }
    clearTimeout(this.inactivityTimer);
    this.inactivityTimer = undefined;
    if (r.rid <= this.lastRid) {
      this.resent(r);
      return;
    }
    if (r.rid > this.lastRid + this.requests) {
      // XEP-0124 §14.2: beyond the window.
      this.fail('item-not-found', r.reply, { rid: r.rid, expected: this.lastRid + 1 });
      return;
    }
    const earlier = this.pending.get(r.rid);
    if (earlier && this.key !== undefined && earlier.key !== r.key) {
      r.reply.send(terminateBody('item-not-found')); // not the client's: the session is left alone
      return;
    }
    if (earlier) {
      // The same request again before it was processed: the new connection waits for it instead.
      earlier.reply.send(bodyXml({}));
      earlier.reply = r.reply;
      this.idleCheck(); // the inactivity timer was cleared above: re-arm it if nothing is held
      return;
    }
    // XEP-0124 §11: no more unanswered requests than `requests` (one more to terminate).
    const outstanding = this.held.length + this.pending.size;
    if (outstanding >= this.requests && !(r.terminate && outstanding === this.requests)) {
      this.fail('policy-violation', r.reply, { outstanding, requests: this.requests });
      return;
    }
    this.pending.set(r.rid, r);
    this.pump();
    this.idleCheck();
  }

  /** A request for this session that could not be read (too large, malformed): terminal. */
  fail(condition: BoshCondition, reply: BoshReply | undefined, detail: Record<string, unknown> = {}): void {
    if (this.state === 'closed') {
      reply?.send(this.tombstone);
      return;
    }
    this.hooks.log(condition, { sid: this.sid, ip: this.remoteAddress, ...detail });
    const body = terminateBody(condition);
    const status = this.params.ver === undefined ? (LEGACY_STATUS[condition] ?? 200) : 200;
    reply?.send(body, status);
    this.tombstone = body;
    // XEP-0124 §14.2/§14.3 give item-not-found for unknown sessions too: forget this one at once.
    this.close(0, body, status);
  }

  /** XEP-0124 §14.3: a rid already processed. */
  private resent(r: BoshRequest): void {
    if (this.ridKeys.has(r.rid) && this.ridKeys.get(r.rid) !== r.key) {
      r.reply.send(terminateBody('item-not-found')); // not the client's: the session is left alone
      return;
    }
    const held = this.held.find((h) => h.rid === r.rid);
    if (held) {
      // The client gave up on the first connection: the response goes to the new one.
      held.reply.send(bodyXml({}));
      held.reply = r.reply;
      return;
    }
    const cached = this.cache.get(r.rid);
    if (cached !== undefined) {
      r.reply.send(cached);
      this.idleCheck();
      return;
    }
    this.fail('item-not-found', r.reply, { rid: r.rid, resend: true });
  }

  /** Feeds the machine: frames already due, then the next requests in rid order, while not paused. */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (;;) {
        if (this.state !== 'open') break;
        if (this.inbound.length > 0) {
          if (this.paused) break;
          this.dataCb(this.inbound.shift()!);
          continue;
        }
        if (this.paused) break;
        const r = this.pending.get(this.lastRid + 1);
        if (!r) break;
        this.pending.delete(r.rid);
        this.process(r);
      }
    } finally {
      this.pumping = false;
    }
    this.scheduleFlush();
  }

  private process(r: BoshRequest): void {
    this.lastRid = r.rid;
    // XEP-0124 §15: each key hashes to the previous one.
    if (this.key !== undefined) {
      const hashed = r.key === undefined ? undefined : createHash('sha1').update(r.key).digest('hex');
      if (hashed !== this.key.toLowerCase()) {
        this.fail('item-not-found', r.reply, { rid: r.rid, key: 'invalid' });
        return;
      }
      this.key = r.newkey ?? r.key;
      this.ridKeys.set(r.rid, r.key);
      for (const rid of this.ridKeys.keys()) if (rid < r.rid - this.requests - 1) this.ridKeys.delete(rid);
    }
    if (r.ack !== undefined) for (const rid of this.cache.keys()) if (rid <= r.ack) this.cache.delete(rid);
    const empty = r.payloads.length === 0 && !r.restart && !r.terminate;
    if (empty && this.tooFrequent(r)) {
      this.fail('policy-violation', r.reply, { rid: r.rid, polling: this.params.polling });
      return;
    }
    if (r.restart && r.payloads.length > 0) {
      // XEP-0206 §5: the restart request is empty.
      this.fail('bad-request', r.reply, { rid: r.rid, restart: 'with payloads' });
      return;
    }
    const held = this.hold(r, false, empty);
    // Only consecutive empty requests count.
    this.lastEmpty = empty ? held : undefined;
    if (r.restart) {
      this.to = r.to ?? this.to;
      this.lang = r.lang ?? this.lang;
      this.inbound.push(this.openFrame(this.to, this.lang, this.params.xmppVersion));
    } else this.inbound.push(...r.payloads);
    if (r.terminate) this.inbound.push(CLOSE_FRAME);
  }

  /**
   * XEP-0124 §11/§12: two empty requests closer than `polling` seconds, the first of which was
   * answered (or is about to be) without payload.
   */
  private tooFrequent(r: BoshRequest): boolean {
    const prev = this.lastEmpty;
    if (this.params.polling <= 0 || !prev) return false;
    if (r.arrived - prev.arrived >= this.params.polling * 1000) return false;
    const emptyAnswer =
      prev.answeredWithPayload === undefined ? this.out.length === 0 : !prev.answeredWithPayload;
    return emptyAnswer;
  }

  private hold(r: BoshRequest, creation: boolean, empty: boolean): Held {
    const h: Held = { rid: r.rid, reply: r.reply, timer: undefined, creation, empty, arrived: r.arrived };
    h.timer = setTimeout(() => this.expire(h), this.params.wait * 1000);
    h.timer.unref();
    this.held.push(h);
    return h;
  }

  private openFrame(to: string | undefined, lang: string | undefined, version: string): string {
    return serialize(xml('open', { xmlns: NS.framing, to, version, 'xml:lang': lang }), '');
  }

  // --- responses --------------------------------------------------------------------------------

  private scheduleFlush(): void {
    if (this.flushScheduled || this.state === 'closed') return;
    this.flushScheduled = true;
    // After the current turn: what the machine writes in reply to one request goes out together.
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.state === 'closed') return;
    if (this.state === 'ending') {
      if (this.held.length > 0 || this.pending.size > 0) this.finish();
      return;
    }
    let took = false;
    // Everything written goes to the oldest held request; beyond `hold`, the oldest is answered now.
    while (this.held.length > 0 && (this.out.length > 0 || this.held.length > this.params.hold)) {
      took = this.answer(this.held.shift()!, this.takeOutput()) || took;
    }
    if (took) this.drainCb();
    this.idleCheck();
  }

  /** `wait` is over for `h`: it and every request before it are answered. */
  private expire(h: Held): void {
    const i = this.held.indexOf(h);
    if (i < 0 || this.state !== 'open') return;
    let took = false;
    for (const next of this.held.splice(0, i + 1)) took = this.answer(next, this.takeOutput()) || took;
    if (took) this.drainCb();
    this.idleCheck();
  }

  /** Answers a held request; true if it carried payloads. */
  private answer(h: Held, payload: string): boolean {
    clearTimeout(h.timer);
    const attrs: Record<string, string | number | undefined> = h.creation ? this.creationAttrs() : {};
    // XEP-0124 §9.1: acknowledge a later request received meanwhile.
    if (this.params.acks && !h.creation && this.lastRid > h.rid) attrs.ack = this.lastRid;
    const body = bodyXml(attrs, payload);
    h.answeredWithPayload = payload !== '';
    this.remember(h.rid, body);
    h.reply.send(body);
    return payload !== '';
  }

  /** XEP-0124 §7.2 and XEP-0206 §4: what the session creation response says. */
  private creationAttrs(): Record<string, string | number | undefined> {
    const p = this.params;
    return {
      sid: p.sid,
      wait: p.wait,
      requests: this.requests,
      inactivity: p.inactivity,
      polling: p.polling > 0 ? p.polling : undefined,
      hold: p.hold,
      ack: p.acks ? this.creationRid : undefined,
      ver: p.ver,
      from: this.streamFrom ?? this.to,
      authid: this.streamId,
      secure: 'true',
      'xmpp:version': '1.0',
      'xmpp:restartlogic': 'true',
    };
  }

  /** Output for one response: whole frames, up to `maxResponseBytes` (at least one frame). */
  private takeOutput(): string {
    if (this.out.length === 0) return '';
    let n = 0;
    let bytes = 0;
    while (n < this.out.length) {
      const b = this.out[n]!.bytes;
      if (n > 0 && bytes + b > this.params.maxResponseBytes) break;
      bytes += b;
      n++;
    }
    const taken = this.out.splice(0, n);
    this.outBytes -= bytes;
    return taken.map((f) => f.data).join('');
  }

  private remember(rid: number, body: string): void {
    this.cache.set(rid, body);
    // The last `requests` responses (XEP-0124 §14.3), oldest dropped first (Map keeps insertion order).
    while (this.cache.size > this.requests + 1) this.cache.delete(this.cache.keys().next().value!);
  }

  /**
   * No request held: the client must come back within `inactivity` (XEP-0124 §10). Requests
   * waiting for an earlier rid that never comes do not keep the session alive either.
   */
  private idleCheck(): void {
    if (this.state !== 'open' || this.held.length > 0 || this.inactivityTimer) return;
    this.inactivityTimer = setTimeout(() => {
      this.inactivityTimer = undefined;
      if (this.state !== 'open' || this.held.length > 0) return;
      this.hooks.log('inactivity', {
        sid: this.sid,
        ip: this.remoteAddress,
        seconds: this.params.inactivity,
      });
      // As a dropped connection: the stream machine sees its transport close.
      this.close(0, terminateBody('item-not-found'));
    }, this.params.inactivity * 1000);
    this.inactivityTimer.unref();
  }

  /**
   * The stream ended: the first waiting request gets what is left with the terminating body, the
   * others an empty terminating body; with no request waiting, the next one gets it.
   */
  private finish(): void {
    if (this.state === 'closed') return;
    const payload = this.out.map((f) => f.data).join('');
    this.out = [];
    this.outBytes = 0;
    const condition = this.streamError ? 'remote-stream-error' : this.lostCondition;
    const final = terminateBody(condition, payload);
    const plain = terminateBody(condition);
    const targets: { rid: number; reply: BoshReply }[] = [
      ...this.held,
      ...[...this.pending.values()].sort((a, b) => a.rid - b.rid),
    ];
    for (const h of this.held) clearTimeout(h.timer);
    this.held = [];
    this.pending.clear();
    targets.forEach((t, i) => {
      const body = i === 0 ? final : plain;
      this.remember(t.rid, body);
      t.reply.send(body);
    });
    this.close(TOMBSTONE_MS, targets.length > 0 ? plain : final);
  }

  /** Over: whatever still waits gets `tombstone`; the stream machine sees its transport close. */
  private close(keepMs: number, tombstone: string, status = 200): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.tombstone = tombstone;
    clearTimeout(this.inactivityTimer);
    for (const h of this.held) {
      clearTimeout(h.timer);
      h.reply.send(tombstone, status);
    }
    for (const r of this.pending.values()) r.reply.send(tombstone, status);
    this.held = [];
    this.pending.clear();
    this.out = [];
    this.outBytes = 0;
    this.inbound = [];
    this.lastEmpty = undefined;
    this.hooks.closed(this, keepMs);
    this.closeCb(false);
  }
}
