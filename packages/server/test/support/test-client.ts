import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { WebSocket } from 'ws';
import { StreamParser, serialize, xml, parseElement, type Element } from '@natter/xml';
import { NS, StreamError } from '@natter/protocol';
import { saslExchange } from './sasl-exchange.js';

export type TestTransport = 'plain' | 'starttls' | 'tls' | 'ws';

export interface Target {
  port(kind: 'c2s' | 'c2s-tls' | 'http'): number;
  domain: string;
}

type Matcher = (el: Element) => boolean;

/** As if behind a reverse proxy: HTTP headers on the WebSocket upgrade, or a PROXY header first on TCP. */
export interface Via {
  headers?: Record<string, string>;
  proxyHeader?: Buffer;
}

/**
 * A deliberately plain XMPP client for protocol tests: it speaks exactly what a test tells it,
 * so tests can assert on the server's answers element by element.
 */
export class TestClient {
  jid = '';
  readonly received: Element[] = [];
  features: Element | undefined;
  streamHeader: Record<string, string> | undefined;
  streamError: StreamError | undefined;
  closed = false;
  private waiters: { match: Matcher; resolve: (el: Element) => void }[] = [];
  private closeWaiters: (() => void)[] = [];
  private parser!: StreamParser;
  private socket: Socket | undefined;
  private localAddress: string | undefined;
  private via: Via = {};
  private ws: WebSocket | undefined;

  private constructor(
    readonly target: Target,
    readonly transport: TestTransport,
  ) {}

  /** Opens the connection and the stream; does not authenticate. */
  static async open(
    target: Target,
    transport: TestTransport = 'starttls',
    domain = target.domain,
    /** Source address (127.0.0.x) for `plain` and `starttls`, to appear as another client machine. */
    localAddress?: string,
    via: Via = {},
  ): Promise<TestClient> {
    const c = new TestClient(target, transport);
    c.localAddress = localAddress;
    c.via = via;
    await c.connectTransport();
    await c.openStream(domain);
    if (transport === 'starttls') {
      c.send(xml('starttls', { xmlns: NS.tls }));
      await c.receive((e) => e.name === 'proceed');
      await c.upgrade();
      await c.openStream(domain);
    }
    return c;
  }

  /** Opens, authenticates with SCRAM (or `mechanism`), binds `resource`. */
  static async login(
    target: Target,
    user: string,
    password: string,
    opts: {
      transport?: TestTransport;
      resource?: string;
      mechanism?: string;
      presence?: boolean;
      localAddress?: string;
    } = {},
  ): Promise<TestClient> {
    const c = await TestClient.open(target, opts.transport ?? 'starttls', undefined, opts.localAddress);
    await c.authenticate(user, password, opts.mechanism);
    await c.bind(opts.resource);
    if (opts.presence) c.send(xml('presence'));
    return c;
  }

  private connectTransport(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.transport === 'ws') {
        const ws = new WebSocket(`ws://127.0.0.1:${this.target.port('http')}/xmpp-websocket`, 'xmpp', {
          headers: this.via.headers,
        });
        this.ws = ws;
        ws.on('open', () => resolve());
        ws.on('error', reject);
        ws.on('message', (d) => this.parser.write(d.toString()));
        ws.on('close', () => this.onClose());
        return;
      }
      const proxyHeader = this.via.proxyHeader;
      if (proxyHeader) {
        const raw = netConnect({
          host: '127.0.0.1',
          port: this.target.port(this.transport === 'tls' ? 'c2s-tls' : 'c2s'),
        });
        raw.once('error', reject);
        raw.write(proxyHeader);
        const sock =
          this.transport === 'tls'
            ? tlsConnect({ socket: raw, rejectUnauthorized: false, servername: this.target.domain })
            : raw;
        this.socket = sock;
        sock.once(this.transport === 'tls' ? 'secureConnect' : 'connect', () => resolve());
        sock.once('error', reject);
        sock.once('close', () => reject(new Error('connection closed')));
        this.attach(sock);
        return;
      }
      const sock =
        this.transport === 'tls'
          ? tlsConnect({
              host: '127.0.0.1',
              port: this.target.port('c2s-tls'),
              rejectUnauthorized: false,
              servername: this.target.domain,
            })
          : netConnect({ host: '127.0.0.1', port: this.target.port('c2s'), localAddress: this.localAddress });
      this.socket = sock;
      sock.once(this.transport === 'tls' ? 'secureConnect' : 'connect', () => resolve());
      sock.once('error', reject);
      this.attach(sock);
    });
  }

  private attach(sock: Socket): void {
    sock.on('data', (d: Buffer) => this.parser.write(d));
    sock.on('close', () => this.onClose());
    sock.on('error', () => {});
  }

  private onClose(): void {
    this.closed = true;
    for (const w of this.closeWaiters) w();
    this.closeWaiters = [];
  }

  private newParser(): void {
    this.parser = new StreamParser({
      streamStart: (h) => {
        this.streamHeader = h.attrs;
      },
      element: (el) => this.onElement(el),
      streamEnd: () => {},
      error: (e) => {
        throw new Error(`server sent bad XML: ${e.message}`);
      },
    });
    if (this.transport === 'ws')
      this.parser.write(`<root xmlns='jabber:client' xmlns:stream='${NS.stream}'>`);
  }

  private onElement(el: Element): void {
    if (el.name === 'error' && el.xmlns === NS.stream) this.streamError = StreamError.fromElement(el);
    if (el.name === 'open' && el.xmlns === NS.framing) this.streamHeader = el.attrs;
    const i = this.waiters.findIndex((w) => w.match(el));
    if (i >= 0) {
      const [w] = this.waiters.splice(i, 1);
      w!.resolve(el);
      return;
    }
    this.received.push(el);
  }

  async openStream(domain = this.target.domain): Promise<Element> {
    this.newParser();
    const features = this.receive((e) => e.name === 'features' && e.xmlns === NS.stream);
    if (this.transport === 'ws')
      this.write(serialize(xml('open', { xmlns: NS.framing, to: domain, version: '1.0' }), ''));
    else
      this.write(
        `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='${NS.stream}' to='${domain}' version='1.0'>`,
      );
    this.features = await features;
    return this.features;
  }

  private upgrade(): Promise<void> {
    const raw = this.socket!;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    return new Promise((resolve, reject) => {
      const tls = tlsConnect({ socket: raw, servername: this.target.domain, rejectUnauthorized: false });
      tls.once('secureConnect', () => {
        this.socket = tls;
        this.attach(tls);
        resolve();
      });
      tls.once('error', reject);
    });
  }

  write(data: string): void {
    if (this.ws) this.ws.send(data);
    else this.socket!.write(data);
  }

  send(el: Element | string): void {
    if (typeof el === 'string') el = parseElement(el);
    this.write(this.ws ? serialize(el, '') : serialize(el, NS.client, true));
  }

  /** Resolves with the first element (already received or future) that matches. */
  receive(match: Matcher | string, timeoutMs = 5000): Promise<Element> {
    const m: Matcher = typeof match === 'string' ? (e) => e.name === match : match;
    const i = this.received.findIndex(m);
    if (i >= 0) return Promise.resolve(this.received.splice(i, 1)[0]!);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for a stanza; received: ${this.received.map((e) => e.toString().slice(0, 200)).join('\n')}`,
          ),
        );
      }, timeoutMs);
      const waiter = {
        match: m,
        resolve: (el: Element) => {
          clearTimeout(timer);
          resolve(el);
        },
      };
      this.waiters.push(waiter);
    });
  }

  /** Asserts nothing matching arrives within `ms`. */
  async nothing(match: Matcher | string, ms = 300): Promise<void> {
    const m: Matcher = typeof match === 'string' ? (e) => e.name === match : match;
    try {
      const el = await this.receive(m, ms);
      throw new Error(`unexpected stanza: ${el.toString()}`);
    } catch (err) {
      if ((err as Error).message.startsWith('unexpected')) throw err;
    }
  }

  /** Sends an IQ and waits for its response. */
  async iq(el: Element | string, timeoutMs = 5000): Promise<Element> {
    if (typeof el === 'string') el = parseElement(el);
    el.attrs.id ??= `t${Math.random().toString(36).slice(2)}`;
    const id = el.attrs.id;
    const p = this.receive(
      (e) => e.name === 'iq' && e.attrs.id === id && (e.attrs.type === 'result' || e.attrs.type === 'error'),
      timeoutMs,
    );
    this.send(el);
    return p;
  }

  /** Resolves when the server closed the connection. */
  waitClosed(timeoutMs = 5000): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('connection not closed')), timeoutMs);
      this.closeWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  async authenticate(user: string, password: string, mechanism?: string): Promise<void> {
    await saslExchange(
      { features: this.features, send: (el) => this.send(el), receive: (m) => this.receive(m) },
      user,
      password,
      mechanism,
    );
    await this.openStream();
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

  /** Closes the stream cleanly and waits for the server to close. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.ws) this.ws.send(serialize(xml('close', { xmlns: NS.framing }), ''));
    else this.socket!.write('</stream:stream>');
    await this.waitClosed().catch(() => this.kill());
  }

  /** Drops the TCP connection without closing the stream (a crashed client). */
  kill(): void {
    if (this.ws) this.ws.terminate();
    else this.socket!.destroy();
  }
}
