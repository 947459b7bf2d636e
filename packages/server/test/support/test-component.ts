import { createHash } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { StreamParser, serialize, parseElement, type Element } from '@natter/xml';

const NS_COMPONENT = 'jabber:component:accept';

type Matcher = (el: Element) => boolean;

/**
 * A plain XEP-0114 component for tests: opens a `jabber:component:accept` stream, answers the
 * handshake, then sends exactly what the test tells it and records every stanza it receives.
 */
export class TestComponent {
  readonly received: Element[] = [];
  closed = false;
  streamError: string | undefined;
  private waiters: { match: Matcher; resolve: (el: Element) => void }[] = [];
  private closeWaiters: (() => void)[] = [];
  private parser: StreamParser;
  private streamId = '';
  private headerWaiter: (() => void) | undefined;
  private counter = 0;

  private constructor(
    private readonly socket: Socket,
    readonly domain: string,
  ) {
    this.parser = new StreamParser({
      streamStart: (h) => {
        this.streamId = h.attrs.id ?? '';
        this.headerWaiter?.();
      },
      element: (el) => this.onElement(el),
      streamEnd: () => socket.end(),
      error: () => socket.destroy(),
    });
    socket.on('data', (d: Buffer) => {
      try {
        this.parser.write(d);
      } catch {
        socket.destroy();
      }
    });
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.closeWaiters) w();
      this.closeWaiters = [];
    });
    socket.on('error', () => {});
  }

  /** Connects, opens the stream and completes the handshake (rejects on a stream error). */
  static async connect(
    port: number,
    domain: string,
    secret: string,
    host = '127.0.0.1',
  ): Promise<TestComponent> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect(port, host, () => resolve(s));
      s.once('error', reject);
    });
    const c = new TestComponent(socket, domain);
    const header = new Promise<void>((r) => (c.headerWaiter = r));
    socket.write(
      `<?xml version='1.0'?><stream:stream xmlns='${NS_COMPONENT}' xmlns:stream='http://etherx.jabber.org/streams' to='${domain}'>`,
    );
    await Promise.race([
      header,
      c.waitClosed(5000).then(() => Promise.reject(new Error('closed before header'))),
    ]);
    const digest = createHash('sha1')
      .update(c.streamId + secret)
      .digest('hex');
    socket.write(`<handshake>${digest}</handshake>`);
    const answer = await c.receive((e) => e.name === 'handshake' || e.name === 'error');
    if (answer.name !== 'handshake') throw new Error(`handshake refused: ${answer.toString()}`);
    return c;
  }

  private onElement(el: Element): void {
    if (el.name === 'error' && el.xmlns === 'http://etherx.jabber.org/streams')
      this.streamError = el.elements()[0]?.name;
    this.received.push(el);
    this.waiters = this.waiters.filter((w) => {
      if (!w.match(el)) return true;
      w.resolve(el);
      return false;
    });
  }

  /** Sends a stanza (an element or XML text); `from` defaults to the component's domain. */
  send(stanza: Element | string): void {
    const el = typeof stanza === 'string' ? parseElement(stanza) : stanza;
    el.attrs.from ??= this.domain;
    this.socket.write(serialize(el, NS_COMPONENT, true));
  }

  /** The first received stanza (already there or to come) that matches, within the bound. */
  receive(match: Matcher, timeoutMs = 10_000): Promise<Element> {
    const seen = this.received.find(match);
    if (seen) {
      this.received.splice(this.received.indexOf(seen), 1);
      return Promise.resolve(seen);
    }
    return new Promise((resolve, reject) => {
      const w = {
        match,
        resolve: (el: Element) => {
          clearTimeout(timer);
          this.received.splice(this.received.indexOf(el), 1);
          resolve(el);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(
          new Error(
            `component ${this.domain}: no matching stanza within ${timeoutMs} ms; got:\n${this.received
              .map((e) => e.toString())
              .join('\n')}`,
          ),
        );
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  /** Asserts that nothing matching arrives within `ms` (after a round trip, so it is not early). */
  async nothing(match: Matcher, ms = 300): Promise<void> {
    await new Promise((r) => setTimeout(r, ms));
    const seen = this.received.find(match);
    if (seen) throw new Error(`component ${this.domain}: unexpected ${seen.toString()}`);
  }

  /** Sends an IQ and resolves with its response (result or error). */
  async iq(el: Element | string, timeoutMs = 10_000): Promise<Element> {
    const stanza = typeof el === 'string' ? parseElement(el) : el;
    stanza.attrs.id ??= `c${++this.counter}`;
    const id = stanza.attrs.id;
    const answer = this.receive(
      (e) => e.name === 'iq' && e.attrs.id === id && (e.attrs.type === 'result' || e.attrs.type === 'error'),
      timeoutMs,
    );
    this.send(stanza);
    return answer;
  }

  waitClosed(timeoutMs = 10_000): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('component stream not closed in time')), timeoutMs);
      this.closeWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** Closes the stream and waits for the socket to close. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.socket.write('</stream:stream>');
    this.socket.end();
    const t = setTimeout(() => this.socket.destroy(), 2000);
    await this.waitClosed().catch(() => this.socket.destroy());
    clearTimeout(t);
  }

  /** Drops the connection without closing the stream. */
  kill(): void {
    this.socket.destroy();
  }
}
