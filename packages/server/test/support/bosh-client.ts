import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { randomInt } from 'node:crypto';
import { StreamParser, escapeAttr, serialize, xml, parseElement, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { saslExchange } from './sasl-exchange.js';

export const NS_HTTPBIND = 'http://jabber.org/protocol/httpbind';
export const NS_XBOSH = 'urn:xmpp:xbosh';

export interface BoshResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The response body as received. */
  raw: string;
  /** The wrapper's attributes (prefixed ones as written: `xmpp:version`). */
  attrs: Record<string, string>;
  /** The payloads. */
  children: Element[];
}

type Attrs = Record<string, string | number | undefined>;
type Matcher = (el: Element) => boolean;

/** Parses a `<body/>` response (throws on anything else). */
export function parseBody(raw: string): { attrs: Record<string, string>; children: Element[] } {
  let attrs: Record<string, string> | undefined;
  let error: Error | undefined;
  const children: Element[] = [];
  const parser = new StreamParser({
    streamStart: (h) => {
      if (h.name !== 'body' || h.xmlns !== NS_HTTPBIND) error ??= new Error(`not a BOSH body: ${raw}`);
      attrs = h.attrs;
    },
    element: (el) => children.push(el),
    streamEnd: () => {},
    error: (e) => {
      error ??= e;
    },
  });
  parser.write(raw);
  if (error) throw error;
  if (!attrs) throw new Error(`no <body/> in ${JSON.stringify(raw)}`);
  return { attrs, children };
}

/** A `<body/>` request wrapper (rid, sid … given in `attrs`) around payloads. */
export function bodyOf(attrs: Attrs, payloads: (Element | string)[] = []): string {
  let s = `<body xmlns='${NS_HTTPBIND}' xmlns:xmpp='${NS_XBOSH}'`;
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) s += ` ${k}="${escapeAttr(String(v))}"`;
  if (payloads.length === 0) return s + '/>';
  return s + '>' + payloads.map((p) => (typeof p === 'string' ? p : serialize(p, ''))).join('') + '</body>';
}

/**
 * A deliberately small BOSH client (XEP-0124/XEP-0206) for protocol tests: one HTTP connection per
 * request (no keep-alive), requests built and numbered as the test says, responses parsed; the
 * payloads of every response land in `received`, where `receive()` finds them (polling as needed).
 */
export class BoshClient {
  sid = '';
  rid = randomInt(1_000_000, 1_000_000_000);
  jid = '';
  features: Element | undefined;
  /** The session creation response's attributes. */
  session: Record<string, string> = {};
  /** Payloads received and not taken by receive(). */
  readonly received: Element[] = [];
  /** The terminating response, once one came. */
  terminated: BoshResponse | undefined;
  private polling: Promise<BoshResponse> | undefined;
  private readonly inflight = new Set<Promise<BoshResponse>>();
  /** receive() calls waiting for the next response. */
  private wake: (() => void)[] = [];

  constructor(
    /** Where requests go (a test may move a session's requests to another node of a cluster). */
    public url: string,
    readonly opts: { ca?: string | Buffer; headers?: Record<string, string>; domain?: string } = {},
  ) {}

  /** POSTs raw text; resolves with the parsed response (HTTP errors resolve too). */
  post(text: string | Buffer, headers: Record<string, string> = {}): Promise<BoshResponse> {
    const u = new URL(this.url);
    const send = u.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(
        u,
        {
          method: 'POST',
          agent: false,
          headers: {
            'content-type': 'text/xml; charset=utf-8',
            'content-length': String(Buffer.byteLength(text)),
            ...this.opts.headers,
            ...headers,
          },
          ...(u.protocol === 'https:' ? { ca: this.opts.ca, servername: 'localhost' } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const raw = Buffer.concat(chunks).toString('utf8');
            let parsed: { attrs: Record<string, string>; children: Element[] } = { attrs: {}, children: [] };
            try {
              if (raw.startsWith('<body')) parsed = parseBody(raw);
            } catch (err) {
              reject(err as Error);
              return;
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, raw, ...parsed });
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(text);
    });
  }

  /** Sends a request of this session with the next rid (or `rid`), and absorbs its payloads. */
  request(payloads: (Element | string)[] = [], attrs: Attrs = {}, rid = this.rid++): Promise<BoshResponse> {
    const p = this.post(bodyOf({ rid, sid: this.sid, ...attrs }, payloads)).then((res) => {
      this.absorb(res);
      return res;
    });
    this.inflight.add(p);
    const done = () => this.inflight.delete(p);
    p.then(done, done);
    return p;
  }

  /** Resolves once no request of this client is out (held requests come back after `wait`). */
  async idle(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  private absorb(res: BoshResponse): void {
    this.received.push(...res.children);
    if (res.attrs.type === 'terminate') this.terminated ??= res;
    const waiting = this.wake;
    this.wake = [];
    for (const w of waiting) w();
  }

  /** XEP-0124 §7.1 / XEP-0206 §3: a new session; waits for the stream features. */
  async create(attrs: Attrs = {}): Promise<BoshResponse> {
    const res = await this.post(
      bodyOf({
        rid: this.rid++,
        to: this.opts.domain ?? 'localhost',
        wait: 10,
        hold: 1,
        ver: '1.6',
        'xml:lang': 'en',
        'xmpp:version': '1.0',
        ...attrs,
      }),
    );
    this.absorb(res);
    if (res.attrs.type === 'terminate') return res;
    this.sid = res.attrs.sid ?? '';
    this.session = res.attrs;
    this.features = await this.receive((e) => e.name === 'features' && e.xmlns === NS.stream);
    return res;
  }

  /**
   * The first payload matching, from those received or from the next responses: while waiting, a
   * request is kept out (an empty one, the long poll, when no other is), and every response that
   * comes back is looked at.
   */
  async receive(match: Matcher | string, timeoutMs = 5000): Promise<Element> {
    const m: Matcher = typeof match === 'string' ? (e) => e.name === match : match;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.received.findIndex(m);
      if (i >= 0) return this.received.splice(i, 1)[0]!;
      if (this.terminated) throw new Error(`session terminated: ${this.terminated.raw}`);
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `timed out waiting for a payload; received: ${this.received.map((e) => e.toString().slice(0, 200)).join('\n')}`,
        );
      const woken = new Promise<void>((resolve) => this.wake.push(resolve));
      // A request already out is held for us; a second would only release it (XEP-0124 §8).
      if (this.inflight.size === 0) this.poll().catch(() => {});
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([woken, new Promise((resolve) => (timer = setTimeout(resolve, left)))]);
      clearTimeout(timer);
    }
  }

  /** One empty request (shared while one is out), answered when something arrives or after `wait`. */
  poll(): Promise<BoshResponse> {
    this.polling ??= this.request().finally(() => {
      this.polling = undefined;
    });
    return this.polling;
  }

  /** Sends payloads in one request; does not wait for its (held) response. */
  send(...payloads: (Element | string)[]): Promise<BoshResponse> {
    return this.request(payloads.map((p) => (typeof p === 'string' ? parseElement(p) : p)));
  }

  async iq(el: Element, timeoutMs = 5000): Promise<Element> {
    el.attrs.id ??= `b${Math.random().toString(36).slice(2)}`;
    const id = el.attrs.id;
    this.send(el).catch(() => {});
    return this.receive(
      (e) => e.name === 'iq' && e.attrs.id === id && (e.attrs.type === 'result' || e.attrs.type === 'error'),
      timeoutMs,
    );
  }

  /** SASL with the best mechanism offered (or `mechanism`), then the XEP-0206 restart. */
  async authenticate(user: string, password: string, mechanism?: string): Promise<void> {
    await saslExchange(
      {
        features: this.features,
        send: (el) => void this.send(el).catch(() => {}),
        receive: (m) => this.receive(m),
      },
      user,
      password,
      mechanism,
    );
    await this.restart();
  }

  /** XEP-0206 §5: restart the stream; waits for the new features. */
  async restart(): Promise<Element> {
    this.request([], {
      to: this.opts.domain ?? 'localhost',
      'xml:lang': 'en',
      'xmpp:restart': 'true',
    }).catch(() => {});
    this.features = await this.receive((e) => e.name === 'features' && e.xmlns === NS.stream);
    return this.features;
  }

  async bind(resource?: string): Promise<string> {
    const res = await this.iq(
      xml(
        'iq',
        { type: 'set' },
        xml('bind', { xmlns: NS.bind }, resource && xml('resource', null, resource)),
      ),
    );
    if (res.attrs.type !== 'result') throw new Error(`bind failed: ${res.toString()}`);
    this.jid = res.getChild('bind', NS.bind)!.getChildText('jid', NS.bind)!;
    return this.jid;
  }

  /** New session, SASL, restart, bind. */
  static async login(
    url: string,
    user: string,
    password: string,
    opts: { ca?: string | Buffer; resource?: string; mechanism?: string; create?: Attrs } = {},
  ): Promise<BoshClient> {
    const c = new BoshClient(url, { ca: opts.ca });
    const created = await c.create(opts.create);
    if (created.attrs.type === 'terminate') throw new Error(`session refused: ${created.raw}`);
    await c.authenticate(user, password, opts.mechanism);
    await c.bind(opts.resource);
    return c;
  }

  /** XEP-0124 §12: ends the session (with final payloads, e.g. unavailable presence). */
  terminate(...payloads: (Element | string)[]): Promise<BoshResponse> {
    return this.request(
      payloads.map((p) => (typeof p === 'string' ? parseElement(p) : p)),
      { type: 'terminate' },
    );
  }
}
