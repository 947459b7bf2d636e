import { randomBytes } from 'node:crypto';
import {
  StreamParser,
  serialize,
  xml,
  escapeAttr,
  type Element,
  type StreamHeader,
  type StreamParserHandlers,
  type XmlError,
} from '@natter/xml';
import { NS, StreamError, type StreamErrorCondition } from '@natter/protocol';
import type { Transport } from '../transport.js';
import type { Logger } from '../logger.js';
import type { Jid } from '@natter/jid';
import type { Limits } from '../../config.js';
import type { Session } from '../session.js';
import type { StreamState, StreamView } from './stream-view.js';

export type { StreamState } from './stream-view.js';

/** How long a peer may leave more than `limits.maxSendBufferBytes` unread without reading anything. */
const SLOW_READER_GRACE_MS = 5000;
/** Elements queued while an async handler runs before reading from the socket pauses. */
const MAX_PENDING = 256;
/** A read larger than this is parsed in slices of this size, yielding to the event loop between them. */
const READ_SLICE_BYTES = 4 * 1024;

let streamCounter = 0;

/** Queued in place of the peer's closing tag, so that it is handled after what preceded it. */
const STREAM_END = xml('stream-end', { xmlns: 'urn:natter:internal' });

/** Byte accounting seen from a stream (implemented by the limits module). */
export interface MachineLimiter {
  consume(stream: StreamView, bytes: number): void;
  opened?(stream: StreamView): void;
  closed?(stream: StreamView): void;
}

/** Counting stanzas by stream and kind (core/metrics.ts). */
export interface MachineMetrics {
  stanzaIn(stream: StreamMachine['kind'], name: string): void;
  stanzaOut(stream: StreamMachine['kind'], name: string): void;
}

/** What a stream machine needs from the server: limits, a log, the rate limiter, the metrics. */
export interface MachineEnv {
  readonly config: { readonly limits: Limits };
  readonly log: Logger;
  readonly limiter?: MachineLimiter | undefined;
  readonly metrics?: MachineMetrics | undefined;
}

/**
 * The part of every XML stream that knows no stream kind (RFC 6120 §4): parser (re)creation, read
 * slicing, the element queue and back-pressure, the slow-reader cut-off, the stream header, stream
 * errors and closing. A profile (client, component, server-to-server) subclasses it and supplies
 * its content namespace, what opening the stream means, and how each element is handled; its
 * negotiation steps (STARTTLS, SASL, bind, handshake …) live in files of their own.
 */
export abstract class StreamMachine implements StreamView {
  /**
   * The parser's callbacks into one machine: a single small object rather than a closure per
   * callback (every connection holds its parser for as long as it lives).
   */
  private static readonly ParserSink = class implements StreamParserHandlers {
    constructor(private readonly m: StreamMachine) {}
    streamStart(h: StreamHeader): void {
      this.m.onHeader(h.name, h.xmlns, h.attrs, h.contentNs);
    }
    element(el: Element): void {
      this.m.onElement(el);
    }
    streamEnd(): void {
      // The closing tag waits its turn: stanzas before it are processed and answered first (§4.4).
      this.m.onElement(STREAM_END);
    }
    error(err: XmlError): void {
      // Input after <starttls/> is discarded, malformed or not: no plaintext error follows <proceed/>.
      if (!this.m.discardInput) this.m.fail(err.condition, err.message);
    }
  };

  readonly id = randomBytes(9).toString('base64url') + (++streamCounter).toString(36);
  readonly createdAt = Date.now();
  state: StreamState = 'header';
  /** Last time bytes arrived from the peer (idle detection, ping). */
  lastReceived = Date.now();
  private data_: Map<symbol, unknown> | undefined;
  /** The stream error the server closed this stream with, if any. */
  closeCondition: string | undefined;
  /** The id sent in the last stream header (XEP-0114 hashes it with the secret). */
  streamId = '';

  /** Content namespace of the stream (jabber:client, jabber:component:accept, jabber:server). */
  protected abstract readonly contentNs: string;
  /** Which kind of stream this profile serves (logs, limits). */
  abstract readonly kind: 'c2s' | 'component' | 's2s-in' | 's2s-out';
  /** The virtual host (client streams). */
  abstract readonly host: { readonly domain: string } | undefined;
  /** The authenticated account (client streams). */
  abstract readonly account: Jid | undefined;
  /** The bound session (client streams). */
  abstract readonly session: Session | undefined;
  /** Negotiation done: SASL for a client, the handshake for a component. */
  abstract get authenticated(): boolean;

  protected parser!: StreamParser;
  /** Input is dropped (between <starttls/> and the TLS handshake). */
  protected discardInput = false;
  /** Elements received while a handler runs; made on first use, dropped once drained. */
  protected queue: Element[] | undefined;
  protected cleanClose = false;
  /** Language of the stream (RFC 6120 §4.7.4). */
  protected lang = 'en';
  private busy = false;
  /** Why reading is paused (back-pressure); undefined while it is not. */
  private pauses: Set<string> | undefined;
  private bytesIn = 0;
  /** Bytes handed to the transport so far. */
  private bytesOut = 0;
  /**
   * Stanzas written while the send buffer was not empty, with their end offset in the output;
   * undefined while the buffer is empty (most of a stream's life).
   */
  private backlog: { el: Element; end: number }[] | undefined;
  private slowTimer: NodeJS.Timeout | undefined;
  private authTimer: NodeJS.Timeout | undefined;
  /** The rest of a large read, parsed slice by slice (readSliced). */
  private sliced: { rest: Buffer; parser: StreamParser; scheduled: boolean } | undefined;
  private headerSent = false;
  private finished = false;

  constructor(
    readonly transport: Transport,
    protected readonly env: MachineEnv,
  ) {
    transport.onData((chunk) => this.onData(chunk));
    transport.onClose(() => this.onTransportClosed());
    transport.onDrain(() => this.flushCheck());
    this.authTimer = setTimeout(() => {
      if (this.state !== 'bound') this.fail('connection-timeout', 'authentication took too long');
    }, env.config.limits.authTimeoutMs);
    this.authTimer.unref();
  }

  /** Called by the profile's constructor once its own fields exist. */
  protected start(): void {
    this.newParser();
    this.env.limiter?.opened?.(this);
  }

  get secure(): boolean {
    return this.transport.secure;
  }

  get bytesReceived(): number {
    return this.bytesIn;
  }

  get readingPaused(): boolean {
    return this.pauses !== undefined;
  }

  /**
   * Per-module stream state (stream management, CSI), keyed by the module; made on first use, since
   * most streams never get any and idle sessions are counted in KiB (docs/performance.md).
   */
  get data(): Map<symbol, unknown> {
    return (this.data_ ??= new Map());
  }

  // --- profile hooks ------------------------------------------------------------------------------

  /** The peer opened (or restarted) the stream with these header attributes. */
  protected abstract openStream(attrs: Record<string, string>, contentNs: string): void;
  /** A first-level element, in order; the machine waits for a returned promise before the next. */
  protected abstract handleElement(el: Element): void | Promise<void>;
  /** The stream is over (closed or failed, transport gone or going). */
  protected abstract finished_(clean: boolean): Promise<void>;
  /** The domain to put in `from` of a header sent only to carry a stream error. */
  protected errorHeaderFrom(): string | undefined {
    return undefined;
  }
  /** Kept until the kernel took its bytes, to be handed back by `cutOffUnsent` (messages). */
  protected keepsUntilSent(_el: Element): boolean {
    return false;
  }
  /** What a cut-off slow reader never received (see keepsUntilSent). */
  protected cutOffUnsent(_unsent: Element[]): void {}
  /** Before a stanza is written (stream management counts it here); may close the stream. */
  protected beforeWrite(_el: Element): void {}

  // --- input ------------------------------------------------------------------------------------

  protected newParser(): void {
    this.headerSent = false; // every (re)started stream gets its own header
    const limits = this.env.config.limits;
    this.parser = new StreamParser(new StreamMachine.ParserSink(this), {
      maxStanzaBytes: limits.maxStanzaBytes,
      maxDepth: limits.maxDepth + (this.transport.framed ? 1 : 0),
      maxAttributes: limits.maxAttributes,
    });
    if (this.transport.framed) {
      // RFC 7395: every frame is a standalone element; a synthetic root makes them first-level children.
      this.parser.write(`<framing xmlns='${this.contentNs}' xmlns:stream='${NS.stream}'>`);
    }
  }

  private onData(chunk: Buffer | string): void {
    // After a stream error, whatever the peer still sends is ignored (and costs nobody a token).
    if (this.state === 'closing' || this.state === 'closed') return;
    this.lastReceived = Date.now();
    if (!this.transport.framed && chunk.length > READ_SLICE_BYTES && typeof chunk !== 'string') {
      this.readSliced(chunk, this.parser);
      return;
    }
    this.bytesIn += chunk.length;
    this.env.limiter?.consume(this, chunk.length);
    this.parser.write(chunk);
    // RFC 7395 §3.3.3: each WebSocket message holds complete elements; a partial one never completes.
    const state = this.state as StreamState; // handlers may have closed the stream meanwhile
    if (this.transport.framed && this.parser.midElement && state !== 'closing' && state !== 'closed')
      this.fail('not-well-formed', 'a WebSocket message must contain only complete XML elements');
  }

  /**
   * A large read (up to 64 KiB, ~1000 small stanzas) is handled a slice at a time, the event loop
   * turning between slices, so that one busy connection cannot hold every other peer up for the
   * whole chunk. Reading is paused meanwhile, and a slice waits while anything else paused this
   * connection (the rate limiter): a flooder's chunk is consumed at its allowed rate, not at once.
   * What is left when the parser was replaced (STARTTLS, SASL restart) is dropped (RFC 6120 §5.4.3.3).
   */
  private readSliced(chunk: Buffer, parser: StreamParser): void {
    const slice = chunk.subarray(0, READ_SLICE_BYTES);
    this.bytesIn += slice.length;
    this.env.limiter?.consume(this, slice.length);
    parser.write(slice);
    if (chunk.length <= READ_SLICE_BYTES) {
      this.sliced = undefined;
      this.resumeReading('slice');
      return;
    }
    this.sliced = { rest: chunk.subarray(READ_SLICE_BYTES), parser, scheduled: false };
    this.pauseReading('slice');
    this.nextSlice();
  }

  /** Schedules the next slice unless something other than slicing holds reading back. */
  private nextSlice(): void {
    const pending = this.sliced;
    if (!pending || pending.scheduled || (this.pauses !== undefined && this.pauses.size > 1)) return;
    pending.scheduled = true;
    setImmediate(() => {
      if (this.sliced !== pending) return;
      this.sliced = undefined;
      if (
        this.state === 'closing' ||
        this.state === 'closed' ||
        this.parser !== pending.parser ||
        this.discardInput
      ) {
        this.resumeReading('slice');
        return;
      }
      this.readSliced(pending.rest, pending.parser);
    });
  }

  private onHeader(name: string, xmlns: string, attrs: Record<string, string>, contentNs: string): void {
    if (this.transport.framed) return; // the synthetic root
    if (name !== 'stream' || xmlns !== NS.stream) {
      this.sendHeader(undefined, undefined);
      this.fail(
        'invalid-namespace',
        'the stream element must be <stream xmlns="http://etherx.jabber.org/streams">',
      );
      return;
    }
    this.openStream(attrs, contentNs);
  }

  private onElement(el: Element): void {
    if (this.state === 'closed' || this.state === 'closing' || this.discardInput) return;
    if (this.busy) {
      const queue = (this.queue ??= []);
      queue.push(el);
      if (queue.length >= MAX_PENDING) this.pauseReading('queue');
      return;
    }
    const r = this.handle(el);
    if (r instanceof Promise) {
      this.busy = true;
      void r.then(
        () => this.drainQueue(),
        (err: unknown) => {
          this.env.log.error({ err }, 'stream handler failed');
          this.fail('internal-server-error');
        },
      );
    }
  }

  private async drainQueue(): Promise<void> {
    while (this.queue !== undefined && this.queue.length > 0 && this.state !== 'closed') {
      const el = this.queue.shift()!;
      try {
        await this.handle(el);
      } catch (err) {
        this.env.log.error({ err }, 'stream handler failed');
        this.fail('internal-server-error');
        return;
      }
      if (this.queue === undefined || this.queue.length < MAX_PENDING / 2) this.resumeReading('queue');
    }
    // An emptied array keeps the capacity it grew to: let it go until the next burst.
    this.queue = undefined;
    this.busy = false;
    this.resumeReading('queue');
  }

  private handle(el: Element): void | Promise<void> {
    if (el === STREAM_END) return this.onStreamEnd();
    if (this.transport.framed && el.xmlns === NS.framing) {
      if (el.name === 'open') return this.openStream(el.attrs, this.contentNs);
      if (el.name === 'close') return this.onStreamEnd();
    }
    if (this.state === 'header') {
      if (this.transport.framed) {
        // RFC 7395 §3.3.1: the stream is opened by <open/> qualified by the framing namespace.
        this.sendHeader(undefined, undefined);
        this.fail('invalid-namespace', `the stream must be opened with <open xmlns='${NS.framing}'/>`);
        return;
      }
      this.fail('not-authorized', 'the stream must be opened first');
      return;
    }
    if (el.name === 'error' && el.xmlns === NS.stream) {
      this.env.log.info(
        { stream: this.id, error: StreamError.fromElement(el).condition },
        'peer sent a stream error',
      );
      this.cleanClose = true;
      this.close();
      return;
    }
    this.env.metrics?.stanzaIn(this.kind, el.name);
    return this.handleElement(el);
  }

  /** Stops reading from the connection for `reason` (back-pressure); reading resumes when no reason is left. */
  pauseReading(reason: string): void {
    if (this.pauses?.has(reason) === true) return;
    if (this.pauses === undefined && this.state !== 'closed') this.transport.pause();
    (this.pauses ??= new Set()).add(reason);
  }

  resumeReading(reason: string): void {
    if (this.pauses?.delete(reason) !== true) return;
    if (this.pauses.size === 0) this.pauses = undefined;
    if (this.sliced) {
      this.nextSlice(); // the rest of a read goes first; reading resumes after it
      return;
    }
    if (this.pauses === undefined && this.state !== 'closed') this.transport.resume();
  }

  /** Negotiation is over: the authentication timeout no longer applies. */
  protected established(): void {
    clearTimeout(this.authTimer);
    this.authTimer = undefined;
  }

  // --- output -----------------------------------------------------------------------------------

  /** Sends the stream header (`<stream:stream>` or RFC 7395 `<open/>`) with a fresh id. */
  protected sendHeader(from: string | undefined, to: string | undefined): void {
    this.headerSent = true;
    // RFC 6120 §4.7.3: a fresh stream id for every stream header, restarts included.
    const id = randomBytes(12).toString('base64url');
    this.streamId = id;
    if (this.transport.framed) {
      this.transport.write(
        serialize(
          xml('open', { xmlns: NS.framing, id, from, to, version: '1.0', 'xml:lang': this.lang }),
          '',
        ),
      );
      return;
    }
    this.transport.write(
      `<?xml version='1.0'?><stream:stream xmlns='${this.contentNs}' xmlns:stream='${NS.stream}' id='${id}'` +
        (from ? ` from='${escapeAttr(from)}'` : '') +
        (to ? ` to='${escapeAttr(to)}'` : '') +
        this.headerExtra() +
        ` xml:lang='${this.lang}'>`,
    );
  }

  /** Attributes after `to` in the stream header (the version, for RFC 6120 streams). */
  protected headerExtra(): string {
    return ` version='1.0'`;
  }

  /**
   * Writes a stanza now. Every stanza to a peer goes through here (never `writeElement`), so that
   * stream management counts it.
   */
  writeStanza(el: Element): void {
    if (this.state === 'closed' || this.state === 'closing') return;
    // Counted first (stream management): if writing it ends the stream, it is still unacknowledged.
    this.beforeWrite(el);
    if ((this.state as StreamState) === 'closing' || (this.state as StreamState) === 'closed') return;
    this.env.metrics?.stanzaOut(this.kind, el.name);
    const data = this.transport.framed ? serialize(el, '') : serialize(el, this.contentNs, true);
    if (this.keepsUntilSent(el)) {
      // Kept until the kernel took the bytes: if the peer never reads them, they are routed again.
      const sent = this.bytesOut - this.transport.bufferedBytes;
      const backlog = (this.backlog ??= []);
      while (backlog.length > 0 && backlog[0]!.end <= sent) backlog.shift();
      backlog.push({ el, end: this.bytesOut + Buffer.byteLength(data) });
    }
    this.writeData(data);
  }

  /** Serialises and writes any element (stanza or nonza) now. */
  writeElement(el: Element): void {
    if (this.state === 'closed') return;
    this.writeData(this.transport.framed ? serialize(el, '') : serialize(el, this.contentNs, true));
  }

  private writeData(data: string): void {
    this.bytesOut += Buffer.byteLength(data);
    this.transport.write(data);
    this.flushCheck();
  }

  /**
   * Slow readers (RFC 6120 §13.12): unread output above `limits.maxSendBufferBytes` is tolerated
   * while the peer makes progress (a burst such as an offline-message flush); a peer that reads
   * nothing for SLOW_READER_GRACE_MS, or lets twice the cap pile up, is cut off and its unsent
   * messages handed back to the profile.
   */
  private flushCheck(): void {
    if (this.state === 'closed') return;
    const buffered = this.transport.bufferedBytes;
    if (buffered === 0) this.backlog = undefined;
    const soft = this.env.config.limits.maxSendBufferBytes;
    if (buffered <= soft) {
      clearTimeout(this.slowTimer);
      this.slowTimer = undefined;
      return;
    }
    if (this.state === 'closing') return;
    if (buffered > soft * 2) {
      this.cutOff(buffered);
      return;
    }
    if (this.slowTimer) return;
    const mark = this.bytesOut - buffered;
    this.slowTimer = setTimeout(() => {
      this.slowTimer = undefined;
      if (this.state === 'closing' || this.state === 'closed') return;
      const now = this.transport.bufferedBytes;
      if (now <= soft) return;
      if (this.bytesOut - now <= mark) this.cutOff(now);
      else this.flushCheck(); // reading, slowly: keep watching
    }, SLOW_READER_GRACE_MS);
    this.slowTimer.unref();
  }

  /** Whether the peer owes acknowledgements enough that bursts should wait (c2s: stream management). */
  protected peerBehind(): boolean {
    return false;
  }

  /**
   * Back-pressure for producers of long bursts (offline flush): resolves true once no more than
   * `bytes` wait to be sent and no stage says the peer is behind (stream management's
   * unacknowledged stanzas), false as soon as the stream is closing. Polls, because WebSocket
   * transports have no drain event; a peer that stops reading is cut off by flushCheck meanwhile.
   */
  async sendRoom(bytes: number): Promise<boolean> {
    while (
      this.state !== 'closing' &&
      this.state !== 'closed' &&
      (this.transport.bufferedBytes > bytes || this.peerBehind())
    )
      await new Promise((r) => setTimeout(r, 10));
    return this.state !== 'closing' && this.state !== 'closed';
  }

  private cutOff(buffered: number): void {
    this.env.log.warn({ stream: this.id, buffered }, 'peer does not read: disconnecting');
    const sent = this.bytesOut - buffered;
    this.cutOffUnsent((this.backlog ?? []).filter((b) => b.end > sent).map((b) => b.el));
    this.backlog = undefined;
    this.closeCondition = 'policy-violation';
    this.state = 'closing';
    // What is buffered will never be read: drop it rather than wait for the peer.
    this.transport.destroy();
    void this.finish();
  }

  // --- closing ----------------------------------------------------------------------------------

  /** Ends the stream with a stream error (RFC 6120 §4.9). */
  fail(condition: StreamErrorCondition | XmlError['condition'], text?: string): void {
    if (this.state === 'closed' || this.state === 'closing') return;
    if (!this.headerSent && !this.transport.framed) this.sendHeader(this.errorHeaderFrom(), undefined);
    this.env.log.info(
      { stream: this.id, kind: this.kind, ip: this.transport.remoteAddress, condition, text },
      'stream error',
    );
    this.closeCondition = condition;
    this.writeElement(new StreamError(condition, text).toElement());
    this.close();
  }

  /** Closes the stream gracefully. */
  close(): void {
    if (this.state === 'closed' || this.state === 'closing') return;
    this.state = 'closing';
    this.transport.write(
      this.transport.framed ? serialize(xml('close', { xmlns: NS.framing }), '') : '</stream:stream>',
    );
    this.transport.end();
    // A peer that never closes its side is cut off after a grace period.
    setTimeout(() => this.transport.destroy(), 5000).unref();
    void this.finish();
  }

  private onStreamEnd(): void {
    this.cleanClose = true;
    this.close();
  }

  private onTransportClosed(): void {
    void this.finish();
    this.state = 'closed';
  }

  protected async finish(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.authTimer);
    clearTimeout(this.slowTimer);
    this.parser = new StreamParser({ streamStart() {}, element() {}, streamEnd() {}, error() {} });
    this.queue = undefined;
    this.env.limiter?.closed?.(this);
    await this.finished_(this.cleanClose);
  }
}
