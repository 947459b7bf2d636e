import { Element, NS_STREAM, StreamParser, serialize, xml, type XmlError } from '@natter/xml';
import { NS, StreamError } from '@natter/protocol';
import { Emitter, TimeoutError } from './emitter.js';
import { ClientError } from './errors.js';
import type { Transport } from '../transport/transport.js';

export interface XmppStreamEvents {
  /** A top-level element (stanza or nonza) once negotiation handed the stream over. */
  element: Element;
  /** The stream is over: closed by either side or dropped. */
  closed: { error?: Error; clean: boolean };
}

/**
 * One connection's XML stream over a transport: writes the stream header (or the RFC 7395
 * `<open/>`), parses what arrives, and during negotiation lets the caller await the next element.
 */
export class XmppStream {
  readonly events = new Emitter<XmppStreamEvents>();
  #parser: StreamParser | undefined;
  #queue: Element[] = [];
  #waiters: { resolve(el: Element): void; reject(err: Error): void }[] = [];
  #headerWaiter: { resolve(): void; reject(err: Error): void } | undefined;
  #running = false;
  #ended: { error?: Error; clean: boolean } | undefined;
  #closeRequested = false;
  streamId: string | undefined;

  constructor(
    readonly transport: Transport,
    readonly domain: string,
    private readonly lang = 'en',
  ) {
    transport.events.on('data', (data) => this.#parser?.write(data));
    transport.events.on('close', ({ error }) => {
      this.#end(
        error ??
          (this.#closeRequested
            ? undefined
            : new ClientError('connection-lost', 'the server closed the connection')),
        this.#closeRequested,
      );
    });
  }

  get ended(): boolean {
    return this.#ended !== undefined;
  }

  /** Opens (or restarts, RFC 6120 §4.3.3) the stream and resolves with the server's features. */
  async open(timeout = 30000): Promise<Element> {
    this.#newParser();
    const header = new Promise<void>((resolve, reject) => (this.#headerWaiter = { resolve, reject }));
    if (this.transport.framing === 'stream') {
      this.transport.send(
        `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='${NS_STREAM}' to='${this.domain}' version='1.0' xml:lang='${this.lang}'>`,
      );
    } else {
      this.transport.send(
        serialize(
          xml('open', { xmlns: NS.framing, to: this.domain, version: '1.0', 'xml:lang': this.lang }),
          '',
        ),
      );
    }
    await withTimeout(header, timeout, 'stream header');
    const features = await this.next(timeout);
    if (!features.is('features', NS_STREAM))
      throw new ClientError('connection-failed', `expected stream features, got <${features.name}/>`);
    return features;
  }

  #newParser(): void {
    const parser = new StreamParser({
      streamStart: (header) => {
        if (this.transport.framing === 'stream') {
          if (header.xmlns !== NS_STREAM || header.name !== 'stream') {
            this.#fail(new StreamError('invalid-namespace', 'not an XMPP stream'));
            return;
          }
          this.streamId = header.attrs.id;
          this.#headerWaiter?.resolve();
        }
      },
      element: (el) => this.#onElement(el),
      streamEnd: () => this.#remoteClosed(),
      error: (err: XmlError) => this.#fail(new StreamError(err.condition, err.message)),
    });
    this.#parser = parser;
    // RFC 7395: every message is a document; a synthetic root lets one parser read them all.
    if (this.transport.framing === 'websocket') parser.write('<frames>');
  }

  #onElement(el: Element): void {
    if (this.transport.framing === 'websocket' && el.xmlns === NS.framing) {
      if (el.name === 'open') {
        this.streamId = el.attr('id');
        this.#headerWaiter?.resolve();
      } else if (el.name === 'close') this.#remoteClosed();
      return;
    }
    if (el.is('error', NS_STREAM)) {
      this.#fail(StreamError.fromElement(el), false);
      return;
    }
    if (this.#running) {
      this.events.emit('element', el);
      return;
    }
    const w = this.#waiters.shift();
    if (w) w.resolve(el);
    else this.#queue.push(el);
  }

  /** Next element during negotiation. */
  next(timeout = 30000): Promise<Element> {
    const queued = this.#queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.#ended)
      return Promise.reject(this.#ended.error ?? new ClientError('connection-lost', 'stream closed'));
    const p = new Promise<Element>((resolve, reject) => this.#waiters.push({ resolve, reject }));
    return withTimeout(p, timeout, 'server reply');
  }

  /** Hands the stream over to `element` events (after negotiation); queued elements are delivered first. */
  run(): void {
    this.#running = true;
    const queued = this.#queue;
    this.#queue = [];
    for (const el of queued) this.events.emit('element', el);
  }

  send(el: Element): void {
    if (this.#ended) throw new ClientError('connection-lost', 'stream closed');
    this.transport.send(
      this.transport.framing === 'stream' ? serialize(el, NS.client, true) : serialize(el, ''),
    );
  }

  /** Closes the stream gracefully (RFC 6120 §4.4) and resolves when the connection is gone. */
  async close(timeout = 2000): Promise<void> {
    if (this.#ended) return;
    this.#closeRequested = true;
    const done = this.events.waitFor('closed');
    try {
      this.transport.send(
        this.transport.framing === 'stream'
          ? '</stream:stream>'
          : serialize(xml('close', { xmlns: NS.framing }), ''),
      );
    } catch {
      this.transport.destroy();
    }
    const timer = setTimeout(() => this.transport.destroy(), timeout);
    await done;
    clearTimeout(timer);
  }

  /** Drops the connection without closing the stream (what a network failure does). */
  destroy(error: Error): void {
    this.transport.destroy(error);
    this.#end(error, false);
  }

  #remoteClosed(): void {
    if (!this.#closeRequested) {
      this.#closeRequested = true;
      try {
        this.transport.send(
          this.transport.framing === 'stream'
            ? '</stream:stream>'
            : serialize(xml('close', { xmlns: NS.framing }), ''),
        );
      } catch {
        /* gone already */
      }
      this.transport.close();
      this.#end(new ClientError('connection-lost', 'the server closed the stream'), true);
    } else this.transport.close();
  }

  #fail(error: Error, sendError = true): void {
    if (sendError && error instanceof StreamError) {
      try {
        this.send(error.toElement());
      } catch {
        /* ignore */
      }
    }
    this.transport.destroy(error);
    this.#end(error, false);
  }

  #end(error: Error | undefined, clean: boolean): void {
    if (this.#ended) return;
    this.#ended = error ? { error, clean } : { clean };
    const err = error ?? new ClientError('connection-lost', 'stream closed');
    this.#headerWaiter?.reject(err);
    for (const w of this.#waiters.splice(0)) w.reject(err);
    this.events.emit('closed', this.#ended);
  }
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new TimeoutError(`no ${what} within ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}
