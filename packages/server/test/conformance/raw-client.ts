import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { StreamParser, type Element } from '@natter/xml';
import { NS, toBase64 } from '@natter/protocol';
import type { Target } from '../support/test-client.js';

/**
 * A byte-level client for conformance tests: the test writes exactly the bytes it wants (stream
 * headers with any attributes, several stanzas in one TCP segment, partial XML) and reads the
 * server's stream header, elements, raw text and connection close.
 */
export class RawClient {
  readonly received: Element[] = [];
  raw = '';
  header: { name: string; xmlns: string; attrs: Record<string, string> } | undefined;
  headers = 0;
  streamEnded = false;
  closed = false;
  private parser!: StreamParser;
  private waiters: { match: (e: Element) => boolean; resolve: (e: Element) => void }[] = [];
  private closeWaiters: (() => void)[] = [];
  private headerWaiters: (() => void)[] = [];

  private constructor(
    private socket: Socket,
    readonly target: Target,
  ) {
    this.resetParser();
    this.attach(socket);
  }

  static connect(target: Target, kind: 'c2s' | 'c2s-tls' = 'c2s'): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const sock =
        kind === 'c2s-tls'
          ? tlsConnect({
              host: '127.0.0.1',
              port: target.port('c2s-tls'),
              rejectUnauthorized: false,
              servername: target.domain,
            })
          : netConnect({ host: '127.0.0.1', port: target.port('c2s') });
      sock.once(kind === 'c2s-tls' ? 'secureConnect' : 'connect', () => resolve(new RawClient(sock, target)));
      sock.once('error', reject);
    });
  }

  private attach(sock: Socket): void {
    sock.on('data', (d: Buffer) => {
      this.raw += d.toString('utf8');
      try {
        this.parser.write(d);
      } catch {
        /* the raw text is still recorded */
      }
    });
    sock.on('close', () => {
      this.closed = true;
      for (const w of this.closeWaiters) w();
      this.closeWaiters = [];
    });
    sock.on('error', () => {});
  }

  resetParser(): void {
    this.parser = new StreamParser({
      streamStart: (h) => {
        this.header = { name: h.name, xmlns: h.xmlns, attrs: h.attrs };
        this.headers++;
        for (const w of this.headerWaiters) w();
        this.headerWaiters = [];
      },
      element: (el) => {
        const i = this.waiters.findIndex((w) => w.match(el));
        if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(el);
        else this.received.push(el);
      },
      streamEnd: () => {
        this.streamEnded = true;
      },
      error: () => {},
    });
  }

  write(data: string): void {
    this.socket.write(data);
  }

  /** The stream header as most clients send it, with `attrs` overriding or removing (undefined) attributes. */
  static header(attrs: Record<string, string | undefined> = {}, name = 'stream:stream'): string {
    const all: Record<string, string | undefined> = {
      xmlns: NS.client,
      'xmlns:stream': NS.stream,
      version: '1.0',
      ...attrs,
    };
    const text = Object.entries(all)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => ` ${k}='${v}'`)
      .join('');
    return `<?xml version='1.0'?><${name}${text}>`;
  }

  /** Opens a stream (`to` = the test domain unless overridden) and waits for the features. */
  async open(attrs: Record<string, string | undefined> = {}): Promise<Element> {
    this.resetParser();
    const f = this.receive((e) => e.name === 'features');
    this.write(RawClient.header({ to: this.target.domain, ...attrs }));
    return f;
  }

  waitHeader(timeoutMs = 3000): Promise<void> {
    if (this.header) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no stream header')), timeoutMs);
      this.headerWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  receive(match: ((e: Element) => boolean) | string, timeoutMs = 5000): Promise<Element> {
    const m = typeof match === 'string' ? (e: Element) => e.name === match : match;
    const i = this.received.findIndex(m);
    if (i >= 0) return Promise.resolve(this.received.splice(i, 1)[0]!);
    return new Promise((resolve, reject) => {
      const waiter = {
        match: m,
        resolve: (e: Element) => {
          clearTimeout(t);
          resolve(e);
        },
      };
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`timed out waiting; raw so far: ${this.raw.slice(-600)}`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  async nothing(match: ((e: Element) => boolean) | string, ms = 400): Promise<void> {
    let el: Element | undefined;
    try {
      el = await this.receive(match, ms);
    } catch {
      return;
    }
    throw new Error(`unexpected element: ${el.toString()}`);
  }

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

  /** The stream error condition the server sent, if any. */
  streamError(): string | undefined {
    const all = [...this.received];
    const err = all.find((e) => e.name === 'error' && e.xmlns === NS.stream);
    return err?.elements().find((c) => c.xmlns === NS.streams && c.name !== 'text')?.name;
  }

  /** Upgrades to TLS in place (after <proceed/>). */
  upgrade(): Promise<void> {
    const raw = this.socket;
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

  /** SASL PLAIN (allowed on loopback without TLS), then the stream restart. */
  async plain(user: string, password: string, authzid = ''): Promise<Element> {
    const out = this.receive((e) => e.xmlns === NS.sasl && (e.name === 'success' || e.name === 'failure'));
    this.write(
      `<auth xmlns='${NS.sasl}' mechanism='PLAIN'>${toBase64(new TextEncoder().encode(`${authzid}\0${user}\0${password}`))}</auth>`,
    );
    return out;
  }

  async login(user: string, password: string, resource?: string): Promise<string> {
    await this.open();
    const r = await this.plain(user, password);
    if (r.name !== 'success') throw new Error(`login failed: ${r.toString()}`);
    await this.open();
    const bound = this.receive((e) => e.name === 'iq' && e.attrs.id === 'bind1');
    this.write(
      `<iq type='set' id='bind1'><bind xmlns='${NS.bind}'>${resource ? `<resource>${resource}</resource>` : ''}</bind></iq>`,
    );
    const res = await bound;
    return res.getChild('bind', NS.bind)!.getChildText('jid', NS.bind)!;
  }

  kill(): void {
    this.socket.destroy();
  }
}
