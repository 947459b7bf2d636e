import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { X509Certificate } from 'node:crypto';
import { StreamParser, serialize, xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';

/**
 * A hand-driven server-to-server peer for hostile and edge-case tests: it opens a `jabber:server`
 * stream to a Natter s2s listener, upgrades with STARTTLS when told, and sends exactly what the
 * test writes, recording every element and the stream header it gets back.
 */
export class RawS2SPeer {
  readonly received: Element[] = [];
  header: Record<string, string> | undefined;
  closed = false;
  /** After startTls with `ca`: whether the server's certificate verified against it. */
  tlsAuthorized = false;
  tlsError: string | undefined;
  /** The certificate the server presented. */
  tlsCertificate: X509Certificate | undefined;
  private socket: Socket | TLSSocket;
  private parser!: StreamParser;
  private waiters: { match: (el: Element) => boolean; resolve: (el: Element) => void }[] = [];
  private headerWaiters: (() => void)[] = [];
  private closeWaiters: (() => void)[] = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    this.attach(socket);
  }

  /** `localAddress` (127.0.0.x) makes it another machine as far as per-address caps go. */
  static connect(port: number, localAddress?: string): Promise<RawS2SPeer> {
    return new Promise((resolve, reject) => {
      const s = netConnect({ host: '127.0.0.1', port, ...(localAddress ? { localAddress } : {}) });
      s.once('error', reject);
      s.once('connect', () => resolve(new RawS2SPeer(s)));
    });
  }

  private attach(socket: Socket | TLSSocket): void {
    this.parser = new StreamParser(
      {
        streamStart: (h) => {
          this.header = h.attrs;
          for (const w of this.headerWaiters.splice(0)) w();
        },
        element: (el) => {
          const i = this.waiters.findIndex((w) => w.match(el));
          if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(el);
          else this.received.push(el);
        },
        streamEnd: () => undefined,
        error: () => undefined,
      },
      { maxStanzaBytes: 1 << 20, maxDepth: 64, maxAttributes: 64 },
    );
    socket.on('data', (d: Buffer) => this.parser.write(d));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.closeWaiters.splice(0)) w();
    });
  }

  write(data: string): void {
    this.socket.write(data);
  }

  send(el: Element): void {
    this.write(serialize(el, NS.server, true));
  }

  /** Sends a stream header and waits for the server's. */
  async open(from: string, to: string): Promise<Record<string, string>> {
    this.header = undefined;
    const got = new Promise<void>((resolve, reject) => {
      this.headerWaiters.push(resolve);
      this.closeWaiters.push(() => reject(new Error('the server closed the connection before its header')));
    });
    this.write(
      `<?xml version='1.0'?><stream:stream xmlns='${NS.server}' xmlns:stream='${NS.stream}' ` +
        `xmlns:db='${NS.dialback}' from='${from}' to='${to}' version='1.0'>`,
    );
    await got;
    return this.header!;
  }

  receive(match: (el: Element) => boolean, timeoutMs = 5000): Promise<Element> {
    const i = this.received.findIndex(match);
    if (i >= 0) return Promise.resolve(this.received.splice(i, 1)[0]!);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`timed out; received: ${this.received.map((e) => e.toString()).join('\n')}`));
      }, timeoutMs);
      const waiter = {
        match,
        resolve: (el: Element) => {
          clearTimeout(timer);
          resolve(el);
        },
      };
      this.waiters.push(waiter);
    });
  }

  /** STARTTLS (the features must have been read), then a new stream over TLS. */
  async startTls(
    from: string,
    to: string,
    cert?: { cert: Buffer; key: Buffer },
    /** The SNI name ('' sends none, as Prosody does on STARTTLS); default `to`. */
    sni?: string,
    /** CAs to verify the server's certificate against; the verdict is in `tlsAuthorized`. */
    ca?: string,
  ): Promise<Element> {
    this.send(xml('starttls', { xmlns: NS.tls }));
    await this.receive((e) => e.name === 'proceed');
    const raw = this.socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    const tls = tlsConnect({
      socket: raw,
      servername: sni ?? to,
      rejectUnauthorized: false,
      ...(cert ?? {}),
      ...(ca ? { ca } : {}),
    });
    await new Promise<void>((resolve, reject) => {
      tls.once('secureConnect', () => resolve());
      tls.once('error', reject);
    });
    this.tlsAuthorized = tls.authorized;
    this.tlsError = tls.authorizationError ? String(tls.authorizationError) : undefined;
    this.tlsCertificate = tls.getPeerX509Certificate();
    this.socket = tls;
    this.attach(tls);
    await this.open(from, to);
    return this.receive((e) => e.name === 'features');
  }

  /** The stream error condition the server sent, if any, waiting up to `timeoutMs`. */
  async streamError(timeoutMs = 5000): Promise<string> {
    const err = await this.receive((e) => e.name === 'error' && e.xmlns === NS.stream, timeoutMs);
    const cond = err.elements().find((c) => c.xmlns === NS.streams);
    return cond?.name ?? '';
  }

  waitClosed(timeoutMs = 5000): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the server did not close the connection')), timeoutMs);
      this.closeWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  destroy(): void {
    this.socket.destroy();
  }
}
