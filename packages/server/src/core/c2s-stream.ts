import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { StreamParser, serialize, xml, escapeAttr, type Element, type XmlError } from '@natter/xml';
import { jid, parseJid, tryParseJid, JidError, type Jid } from '@natter/jid';
import {
  NS,
  StanzaError,
  StreamError,
  errorReply,
  createServerMechanism,
  fromBase64,
  toBase64,
  SaslFailure,
  type SaslServerMechanism,
  type ServerMechanismName,
  type StreamErrorCondition,
} from '@natter/protocol';
import type { Transport } from './transport.js';
import { channelBindingOptions, saslOffer, saslOfferFeatures } from './sasl-offer.js';
import type { Session } from './session.js';
import type { Host } from './host.js';
import type { ServerCore } from './server-core.js';
import { resultReply } from './iq-dispatcher.js';
import { logAuthFailure } from './auth-log.js';

type State = 'header' | 'negotiating' | 'authenticated' | 'bound' | 'closing' | 'closed';

const MESSAGE_TYPES = new Set(['chat', 'error', 'groupchat', 'headline', 'normal']);
const PRESENCE_TYPES = new Set([
  'error',
  'probe',
  'subscribe',
  'subscribed',
  'unavailable',
  'unsubscribe',
  'unsubscribed',
]);
/** How long a client may leave more than `limits.maxSendBufferBytes` unread without reading anything. */
const SLOW_READER_GRACE_MS = 5000;
/** Elements queued while an async handler runs before reading from the socket pauses. */
const MAX_PENDING = 256;
/** A read larger than this is parsed in slices of this size, yielding to the event loop between them. */
const READ_SLICE_BYTES = 4 * 1024;

let streamCounter = 0;

/** Queued in place of the client's closing tag, so that it is handled after what preceded it. */
const STREAM_END = xml('stream-end', { xmlns: 'urn:natter:internal' });

function isLoopback(address: string): boolean {
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  return a === '::1' || (isIP(a) === 4 && a.startsWith('127.'));
}

/**
 * One client stream (RFC 6120 §4–§7): stream header, STARTTLS, SASL, resource binding, then
 * stanzas handed to the router in order. Owns the connection's limits; knows nothing of rosters
 * or rooms.
 */
export class C2SStream {
  readonly id = randomBytes(9).toString('base64url') + (++streamCounter).toString(36);
  readonly createdAt = Date.now();
  state: State = 'header';
  host: Host | undefined;
  /** Authenticated account (bare JID), after SASL. */
  account: Jid | undefined;
  session: Session | undefined;
  /** Last time bytes arrived from the client (idle detection, ping). */
  lastReceived = Date.now();
  /** Per-module stream state (stream management, CSI), keyed by the module. */
  readonly data = new Map<symbol, unknown>();
  /** Outbound filters run on every stanza written to the client (CSI, SM); returning null holds it back. */
  readonly outbound: ((stanza: Element) => Element | null)[] = [];
  /** Called with every stanza actually written (stream management counting). */
  readonly onWritten: ((stanza: Element) => void)[] = [];
  /** Called with every stanza received from the client, after validation (SM counting). */
  readonly onReceived: ((stanza: Element) => void)[] = [];
  /**
   * Modules whose outbound filters hold stanzas back (CSI) register here a function that gives up
   * what they hold, so that stream management can keep it when the stream dies.
   */
  readonly holders: (() => Element[])[] = [];
  /** Stream management accounts for every stanza written (acks, resumption, re-routing). */
  tracksDelivery = false;
  /** The stream error the server closed this stream with, if any. */
  closeCondition: string | undefined;

  private parser!: StreamParser;
  private sasl: SaslServerMechanism | undefined;
  private authFailures = 0;
  /** Mechanism and username of the current authentication attempt (for the failure log line). */
  private saslAttempt: { mechanism: string; username?: string } = { mechanism: '' };
  private authTimer: NodeJS.Timeout | undefined;
  private readonly contentNs = NS.client;
  private queue: Element[] = [];
  private busy = false;
  private readonly pauses = new Set<string>();
  private cleanClose = false;
  private bytesIn = 0;
  /** Bytes handed to the transport so far. */
  private bytesOut = 0;
  /** Messages written while the send buffer was not empty, with their end offset in the output. */
  private backlog: { el: Element; end: number }[] = [];
  private slowTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly transport: Transport,
    readonly server: ServerCore,
  ) {
    this.newParser();
    transport.onData((chunk) => this.onData(chunk));
    transport.onClose(() => this.onTransportClosed());
    transport.onDrain(() => this.flushCheck());
    const limits = server.config.limits;
    this.authTimer = setTimeout(() => {
      if (this.state !== 'bound') this.fail('connection-timeout', 'authentication took too long');
    }, limits.authTimeoutMs);
    this.authTimer.unref();
    server.limiter?.opened?.(this);
  }

  get secure(): boolean {
    return this.transport.secure;
  }

  get bytesReceived(): number {
    return this.bytesIn;
  }

  private newParser(): void {
    this.headerSent = false; // every (re)started stream gets its own header
    const limits = this.server.config.limits;
    this.parser = new StreamParser(
      {
        streamStart: (h) => this.onHeader(h.name, h.xmlns, h.attrs, h.contentNs),
        element: (el) => this.onElement(el),
        // The closing tag waits its turn: stanzas before it are processed and answered first (§4.4).
        streamEnd: () => this.onElement(STREAM_END),
        // Input after <starttls/> is discarded, malformed or not: no plaintext error follows <proceed/>.
        error: (err: XmlError) => {
          if (!this.tlsStarting) this.fail(err.condition, err.message);
        },
      },
      {
        maxStanzaBytes: limits.maxStanzaBytes,
        maxDepth: limits.maxDepth + (this.transport.framed ? 1 : 0),
        maxAttributes: limits.maxAttributes,
      },
    );
    if (this.transport.framed) {
      // RFC 7395: every frame is a standalone element; a synthetic root makes them first-level children.
      this.parser.write(`<framing xmlns='${NS.client}' xmlns:stream='${NS.stream}'>`);
    }
  }

  private onData(chunk: Buffer | string): void {
    // After a stream error, whatever the client still sends is ignored (and costs nobody a token).
    if (this.state === 'closing' || this.state === 'closed') return;
    this.lastReceived = Date.now();
    if (!this.transport.framed && chunk.length > READ_SLICE_BYTES && typeof chunk !== 'string') {
      this.readSliced(chunk, this.parser);
      return;
    }
    this.bytesIn += chunk.length;
    this.server.limiter?.consume(this, chunk.length);
    this.parser.write(chunk);
    // RFC 7395 §3.3.3: each WebSocket message holds complete elements; a partial one never completes.
    const state = this.state as State; // handlers may have closed the stream meanwhile
    if (this.transport.framed && this.parser.midElement && state !== 'closing' && state !== 'closed')
      this.fail('not-well-formed', 'a WebSocket message must contain only complete XML elements');
  }

  /**
   * A large read (up to 64 KiB, ~1000 small stanzas) is handled a slice at a time, the event loop
   * turning between slices, so that one busy connection cannot hold every other client up for the
   * whole chunk. Reading is paused meanwhile, and a slice waits while anything else paused this
   * connection (the rate limiter): a flooder's chunk is consumed at its allowed rate, not at once.
   * What is left when the parser was replaced (STARTTLS, SASL restart) is dropped (RFC 6120 §5.4.3.3).
   */
  private readSliced(chunk: Buffer, parser: StreamParser): void {
    const slice = chunk.subarray(0, READ_SLICE_BYTES);
    this.bytesIn += slice.length;
    this.server.limiter?.consume(this, slice.length);
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
    if (!pending || pending.scheduled || this.pauses.size > 1) return;
    pending.scheduled = true;
    setImmediate(() => {
      if (this.sliced !== pending) return;
      this.sliced = undefined;
      if (
        this.state === 'closing' ||
        this.state === 'closed' ||
        this.parser !== pending.parser ||
        this.tlsStarting
      ) {
        this.resumeReading('slice');
        return;
      }
      this.readSliced(pending.rest, pending.parser);
    });
  }

  // --- stream header ------------------------------------------------------------------------

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

  private openStream(attrs: Record<string, string>, contentNs: string): void {
    const to = (attrs.to ?? '').toLowerCase();
    const host = to === '' ? this.server.defaultHost : this.server.hosts.get(to);
    if (this.host === undefined && host) this.host = host;
    // RFC 6120 §4.7.1/§4.7.4: answer with our domain, and `to` the client's `from` when valid.
    const clientFrom = attrs.from !== undefined ? tryParseJid(attrs.from)?.toString() : undefined;
    const lang = attrs['xml:lang'];
    if (lang !== undefined && /^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$/.test(lang)) this.lang = lang;
    this.sendHeader(this.host?.domain ?? (to || undefined), clientFrom);
    if (contentNs !== NS.client) {
      this.fail('invalid-namespace', `the content namespace of a client stream is ${NS.client}`);
      return;
    }
    if (!host || (this.host && host !== this.host)) {
      this.fail('host-unknown', `this server does not serve ${to}`);
      return;
    }
    // RFC 6120 §4.7.5: major.minor, each an integer (leading zeros ignored); major 1 is ours.
    const version = /^(\d+)\.(\d+)$/.exec(attrs.version ?? '');
    if (!version || Number(version[1]) !== 1) {
      this.fail('unsupported-version', 'XMPP version 1.0 is required');
      return;
    }
    if (this.state === 'header') this.state = 'negotiating';
    this.sendFeatures();
  }

  /** The rest of a large read, parsed slice by slice (readSliced). */
  private sliced: { rest: Buffer; parser: StreamParser; scheduled: boolean } | undefined;
  private headerSent = false;
  /** Between <starttls/> and the TLS handshake: whatever else arrives in the clear is dropped. */
  private tlsStarting = false;

  /** Language of the stream (RFC 6120 §4.7.4), given to stanzas that carry none (§8.1.5). */
  private lang = 'en';

  private sendHeader(from: string | undefined, to: string | undefined): void {
    this.headerSent = true;
    // RFC 6120 §4.7.3: a fresh stream id for every stream header, restarts included.
    const id = randomBytes(12).toString('base64url');
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
      `<?xml version='1.0'?><stream:stream xmlns='${NS.client}' xmlns:stream='${NS.stream}' id='${id}'` +
        (from ? ` from='${escapeAttr(from)}'` : '') +
        (to ? ` to='${escapeAttr(to)}'` : '') +
        ` version='1.0' xml:lang='${this.lang}'>`,
    );
  }

  /** May credentials be sent on this connection now? */
  credentialsAllowed(): boolean {
    if (this.transport.secure) return true;
    const policy = this.server.config.auth.allowPlaintext;
    return policy === 'always' || (policy === 'loopback' && isLoopback(this.transport.remoteAddress));
  }

  private sendFeatures(): void {
    const features: Element[] = [];
    if (this.state === 'negotiating') {
      if (this.transport.canStartTls) {
        features.push(xml('starttls', { xmlns: NS.tls }, !this.credentialsAllowed() && xml('required')));
      }
      if (this.credentialsAllowed()) {
        features.push(...saslOfferFeatures(saslOffer(this.transport)));
        if (this.server.config.registration.enabled)
          features.push(xml('register', { xmlns: NS.registerFeature }));
      }
    } else if (this.state === 'authenticated') {
      features.push(xml('bind', { xmlns: NS.bind }));
      features.push(xml('session', { xmlns: NS.session }, xml('optional')));
      for (const f of this.server.streamFeatures) {
        const el = f(this);
        if (el) features.push(el);
      }
    }
    this.writeElement(xml('features', { xmlns: NS.stream }, features));
  }

  // --- elements ------------------------------------------------------------------------------

  private onElement(el: Element): void {
    if (this.state === 'closed' || this.state === 'closing' || this.tlsStarting) return;
    if (this.busy) {
      this.queue.push(el);
      if (this.queue.length >= MAX_PENDING) this.pauseReading('queue');
      return;
    }
    const r = this.handle(el);
    if (r instanceof Promise) {
      this.busy = true;
      void r.then(
        () => this.drainQueue(),
        (err: unknown) => {
          this.server.log.error({ err }, 'stream handler failed');
          this.fail('internal-server-error');
        },
      );
    }
  }

  private async drainQueue(): Promise<void> {
    while (this.queue.length > 0 && this.state !== 'closed') {
      const el = this.queue.shift()!;
      try {
        await this.handle(el);
      } catch (err) {
        this.server.log.error({ err }, 'stream handler failed');
        this.fail('internal-server-error');
        return;
      }
      if (this.queue.length < MAX_PENDING / 2) this.resumeReading('queue');
    }
    this.busy = false;
    this.resumeReading('queue');
  }

  /** Stops reading from the connection for `reason` (back-pressure); reading resumes when no reason is left. */
  pauseReading(reason: string): void {
    if (this.pauses.has(reason)) return;
    if (this.pauses.size === 0 && this.state !== 'closed') this.transport.pause();
    this.pauses.add(reason);
  }

  resumeReading(reason: string): void {
    if (!this.pauses.delete(reason)) return;
    if (this.sliced) {
      this.nextSlice(); // the rest of a read goes first; reading resumes after it
      return;
    }
    if (this.pauses.size === 0 && this.state !== 'closed') this.transport.resume();
  }

  get readingPaused(): boolean {
    return this.pauses.size > 0;
  }

  /** Authenticated (SASL succeeded), bound or not. */
  get authenticated(): boolean {
    return this.account !== undefined;
  }

  private handle(el: Element): void | Promise<void> {
    if (el === STREAM_END) return this.onStreamEnd();
    if (this.transport.framed && el.xmlns === NS.framing) {
      if (el.name === 'open') return this.openStream(el.attrs, NS.client);
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
      this.server.log.info(
        { stream: this.id, error: StreamError.fromElement(el).condition },
        'client sent a stream error',
      );
      this.cleanClose = true;
      this.close();
      return;
    }
    switch (this.state) {
      case 'negotiating':
        return this.handleNegotiating(el);
      case 'authenticated':
        return this.handleAuthenticated(el);
      case 'bound':
        return this.handleBound(el);
      default:
        return;
    }
  }

  private handleNegotiating(el: Element): void | Promise<void> {
    if (el.xmlns === NS.tls && el.name === 'starttls') return this.startTls();
    if (el.xmlns === NS.sasl) {
      if (!this.credentialsAllowed()) {
        this.writeElement(xml('failure', { xmlns: NS.sasl }, xml('encryption-required')));
        return;
      }
      if (el.name === 'auth') return this.saslAuth(el);
      if (el.name === 'response') return this.saslResponse(el);
      if (el.name === 'abort') {
        this.sasl = undefined;
        this.saslFailure(new SaslFailure('aborted', 'authentication aborted by the client'));
        return;
      }
    }
    if (el.name === 'iq' && this.server.config.registration.enabled && el.getChild('query', NS.register)) {
      if (!this.credentialsAllowed()) {
        this.writeElement(
          errorReply(el, new StanzaError('not-authorized', { text: 'registration requires TLS' })),
        );
        return;
      }
      return this.server.registration.handlePreAuth(this, el);
    }
    if (el.name === 'message' || el.name === 'presence' || el.name === 'iq') {
      this.fail('not-authorized', 'stanzas are not accepted before authentication');
      return;
    }
    this.fail('unsupported-stanza-type', `<${el.name} xmlns='${el.xmlns}'/> is not allowed here`);
  }

  private async startTls(): Promise<void> {
    if (!this.transport.canStartTls) {
      this.writeElement(xml('failure', { xmlns: NS.tls }));
      this.close();
      return;
    }
    this.tlsStarting = true;
    this.transport.pause();
    try {
      await this.transport.startTls(serialize(xml('proceed', { xmlns: NS.tls }), NS.client));
    } catch (err) {
      this.server.log.info({ err: (err as Error).message, stream: this.id }, 'TLS handshake failed');
      this.transport.destroy();
      return;
    }
    // Anything the client sent after <starttls/> in the clear is discarded (RFC 6120 §5.4.3.3).
    this.queue = [];
    this.state = 'header';
    this.tlsStarting = false;
    this.newParser();
  }

  // --- SASL (RFC 6120 §6) -----------------------------------------------------------------------

  private async saslAuth(el: Element): Promise<void> {
    const name = el.attrs.mechanism ?? '';
    this.saslAttempt = { mechanism: name };
    const offer = saslOffer(this.transport);
    if (!(offer.mechanisms as string[]).includes(name)) {
      this.saslFailure(new SaslFailure('invalid-mechanism', `mechanism ${name} is not offered`));
      return;
    }
    // Password guessing spread over connections: the address waits before anything is checked.
    const wait = this.server.limiter?.authWait?.(this.transport.remoteAddress) ?? 0;
    if (wait > 0) {
      this.saslFailure(
        new SaslFailure(
          'temporary-auth-failure',
          `too many failed authentication attempts from your address; try again in ${Math.ceil(wait / 1000)} s`,
        ),
      );
      return;
    }
    const host = this.host!;
    this.sasl = createServerMechanism(
      name as ServerMechanismName,
      {
        scram: async (username, hash) => {
          this.saslAttempt.username = username;
          let account: Jid;
          try {
            account = jid(username, host.domain);
          } catch {
            return null;
          }
          return this.server.accounts.scram(account.local, account.domain, hash);
        },
      },
      channelBindingOptions(offer, this.transport),
    );
    const text = el.text();
    await this.saslStep(text === '' ? null : text === '=' ? '' : text);
  }

  private async saslResponse(el: Element): Promise<void> {
    if (!this.sasl) {
      this.saslFailure(new SaslFailure('malformed-request', 'no authentication in progress'));
      return;
    }
    const text = el.text();
    await this.saslStep(text === '=' ? '' : text);
  }

  private async saslStep(b64: string | null): Promise<void> {
    const mech = this.sasl!;
    let input: Uint8Array | null;
    try {
      input = b64 === null ? null : fromBase64(b64.trim());
    } catch {
      this.sasl = undefined;
      this.saslFailure(new SaslFailure('incorrect-encoding', 'the data is not valid base64'));
      return;
    }
    try {
      const r = await mech.step(input);
      if (this.state === 'closed') return;
      if (!r.done) {
        this.writeElement(xml('challenge', { xmlns: NS.sasl }, toBase64(r.challenge)));
        return;
      }
      this.sasl = undefined;
      const account = jid(r.result.username, this.host!.domain);
      if (r.result.authzid !== undefined && r.result.authzid !== '') {
        let authz: Jid | undefined;
        try {
          authz = parseJid(r.result.authzid);
        } catch {
          authz = undefined;
        }
        if (!authz || !authz.equals(account)) {
          this.saslFailure(new SaslFailure('invalid-authzid', 'you may only authorise as yourself'));
          return;
        }
      }
      this.account = account;
      this.state = 'authenticated';
      const extra = r.result.additionalData;
      this.writeElement(
        xml('success', { xmlns: NS.sasl }, extra && extra.length > 0 ? toBase64(extra) : undefined),
      );
      this.server.log.debug({ stream: this.id, account: account.toString() }, 'authenticated');
      if (!this.transport.framed) this.newParser();
    } catch (err) {
      this.sasl = undefined;
      if (err instanceof SaslFailure) this.saslFailure(err);
      else if (err instanceof JidError)
        this.saslFailure(new SaslFailure('not-authorized', 'authentication failed'));
      else throw err;
    }
  }

  private saslFailure(f: SaslFailure): void {
    this.writeElement(
      xml('failure', { xmlns: NS.sasl }, xml(f.condition), xml('text', { 'xml:lang': 'en' }, f.message)),
    );
    logAuthFailure(this.server.log, {
      address: this.transport.remoteAddress,
      username: this.saslAttempt.username,
      mechanism: this.saslAttempt.mechanism,
      condition: f.condition,
    });
    if (f.condition === 'not-authorized') this.server.limiter?.authFailed(this.transport.remoteAddress);
    const counts = f.condition === 'not-authorized' || f.condition === 'temporary-auth-failure';
    if (counts && ++this.authFailures >= this.server.config.limits.maxAuthFailures)
      this.fail('policy-violation', 'too many failed authentication attempts');
  }

  // --- resource binding (RFC 6120 §7) -----------------------------------------------------------

  private handleAuthenticated(el: Element): void | Promise<void> {
    if (el.name === 'iq' && el.getChild('bind', NS.bind)) {
      if (el.attrs.type === 'set' && el.attrs.id) return this.bind(el);
      // RFC 6120 §7.6.1 / §8.1.3: binding is an IQ set, and every IQ needs an id.
      this.writeElement(
        errorReply(
          el,
          new StanzaError('bad-request', { text: 'resource binding is an <iq type="set"/> with an id' }),
        ),
      );
      return;
    }
    if (el.name === 'iq' && el.getChild('session', NS.session)) {
      this.writeElement(resultReply(el, undefined));
      return;
    }
    if (el.name !== 'message' && el.name !== 'presence' && el.name !== 'iq') return this.nonza(el);
    this.fail('not-authorized', 'bind a resource first');
  }

  private async bind(iq: Element): Promise<void> {
    const requested = iq.getChild('bind', NS.bind)!.getChildText('resource', NS.bind)?.trim();
    let full: Jid;
    try {
      full = this.account!.withResource(requested ? requested : randomBytes(6).toString('hex'));
    } catch (err) {
      this.writeElement(errorReply(iq, new StanzaError('bad-request', { text: (err as Error).message })));
      return;
    }
    const result = await this.server.bind(this, full);
    if (result instanceof StanzaError) {
      this.writeElement(errorReply(iq, result));
      return;
    }
    this.session = result;
    this.state = 'bound';
    clearTimeout(this.authTimer);
    this.writeElement(
      xml(
        'iq',
        { type: 'result', id: iq.attrs.id },
        xml('bind', { xmlns: NS.bind }, xml('jid', null, full.toString())),
      ),
    );
    await this.host!.hooks.notify('session/bound', { session: result });
  }

  // --- established stream -------------------------------------------------------------------------

  private handleBound(el: Element): void | Promise<void> {
    if (el.name === 'message' || el.name === 'presence' || el.name === 'iq') {
      if (el.xmlns !== this.contentNs) {
        this.fail('invalid-namespace', `stanzas must be qualified by ${this.contentNs}`);
        return;
      }
      for (const cb of this.onReceived) cb(el);
      if (el.name === 'iq' && el.attrs.type === 'set' && el.getChild('bind', NS.bind) && !el.attrs.to) {
        // RFC 6120 §7.7.2.2: one resource per stream here (binding several was removed from the RFC).
        this.writeStanza(
          errorReply(
            el,
            new StanzaError('not-allowed', { text: 'a resource is already bound to this stream' }),
          ),
        );
        return;
      }
      if (el.name === 'iq' && el.attrs.type === 'set' && el.getChild('session', NS.session) && !el.attrs.to) {
        this.writeStanza(resultReply(el, undefined)); // RFC 6121 §1.4 legacy session establishment
        return;
      }
      return this.stanza(el);
    }
    return this.nonza(el);
  }

  private nonza(el: Element): void | Promise<void> {
    const r = this.host!.hooks.run('stream/nonza', { stream: this, element: el });
    const after = (handled: boolean) => {
      if (!handled)
        this.fail('unsupported-stanza-type', `<${el.name} xmlns='${el.xmlns}'/> is not supported`);
    };
    if (r instanceof Promise) return r.then(after);
    after(r);
  }

  /** RFC 6120 §8.1: validate, stamp `from`, hand to the router. */
  private stanza(el: Element): void | Promise<void> {
    const session = this.session!;
    if (this.server.limiter && !this.server.limiter.stanza(this)) return;
    const fromAttr = el.attrs.from;
    if (fromAttr !== undefined && fromAttr !== session.jid.toString()) {
      let claimed: Jid | undefined;
      try {
        claimed = parseJid(fromAttr);
      } catch {
        claimed = undefined;
      }
      if (!claimed || !(claimed.equals(session.jid) || (claimed.isBare && claimed.equals(session.bare)))) {
        this.fail('invalid-from', `you are ${session.jid.toString()}, not ${fromAttr}`);
        return;
      }
    }
    el.attrs.from = session.jid.toString();
    const type = el.attrs.type;
    if (el.name === 'iq') {
      if (type !== 'get' && type !== 'set' && type !== 'result' && type !== 'error') {
        this.writeStanza(
          errorReply(
            el,
            new StanzaError('bad-request', { text: 'IQ type must be get, set, result or error' }),
          ),
        );
        return;
      }
      if (el.attrs.id === undefined) {
        this.writeStanza(errorReply(el, new StanzaError('bad-request', { text: 'an IQ needs an id' })));
        return;
      }
      if ((type === 'get' || type === 'set') && el.elements().length !== 1) {
        this.writeStanza(
          errorReply(el, new StanzaError('bad-request', { text: 'a get or set IQ has exactly one child' })),
        );
        return;
      }
    } else if (el.name === 'message') {
      if (type !== undefined && !MESSAGE_TYPES.has(type)) delete el.attrs.type; // RFC 6121 §5.2.2: treat as normal
    } else if (type !== undefined && !PRESENCE_TYPES.has(type)) {
      this.writeStanza(
        errorReply(el, new StanzaError('bad-request', { text: `unknown presence type ${type}` })),
      );
      return;
    }
    let to: Jid;
    const toAttr = el.attrs.to;
    if (toAttr === undefined || toAttr === '') {
      delete el.attrs.to;
      to = session.bare;
    } else {
      try {
        to = parseJid(toAttr);
      } catch (err) {
        if (type !== 'error' && type !== 'result') {
          const reply = errorReply(el, new StanzaError('jid-malformed', { text: (err as Error).message }));
          delete reply.attrs.from;
          this.writeStanza(reply);
        }
        return;
      }
      el.attrs.to = to.toString(); // delivered in its canonical form (RFC 7622 §3)
    }
    if (el.attrs['xml:lang'] === undefined) el.attrs['xml:lang'] = this.lang; // RFC 6120 §8.1.5
    let transition: 'session/available' | 'session/unavailable' | undefined;
    if (el.name === 'presence' && toAttr === undefined) {
      // The core keeps each resource's broadcast presence: routing decisions depend on it.
      if (type === undefined) {
        if (session.presence === null) transition = 'session/available';
        session.presence = el;
        const p = Number.parseInt(el.getChildText('priority') ?? '0', 10);
        session.priority = Number.isFinite(p) ? Math.max(-128, Math.min(127, p)) : 0;
      } else if (type === 'unavailable') {
        if (session.presence !== null) transition = 'session/unavailable';
        session.presence = null;
      }
    }
    const routed = this.server.routeFromClient({ stanza: el, from: session.jid, to, origin: session });
    if (transition === undefined) return routed;
    const hook = transition;
    return Promise.resolve(routed).then(() => this.host!.hooks.notify(hook, { session }));
  }

  // --- output ---------------------------------------------------------------------------------

  /** Writes a stanza to the client through the outbound filters. */
  deliver(stanza: Element): void {
    if (this.state === 'closed' || this.state === 'closing') {
      // The session outlives its stream for a moment: a message must not vanish in that gap.
      const s = this.session;
      if (s && !s.closed && s.stream === this && stanza.name === 'message' && !this.tracksDelivery)
        s.undelivered.push(stanza);
      return;
    }
    let el: Element | null = stanza;
    for (const f of this.outbound) {
      el = f(el);
      if (el === null) return;
    }
    this.writeStanza(el);
  }

  /**
   * Writes a stanza now, bypassing the outbound filters (filters flushing what they held, replies of
   * the stream itself). Every stanza to a client must go through here or `deliver`, never
   * `writeElement`, so that stream management counts it.
   */
  writeStanza(el: Element): void {
    if (this.state === 'closed' || this.state === 'closing') return;
    // Counted first (stream management): if writing it ends the stream, it is still unacknowledged.
    for (const cb of this.onWritten) cb(el);
    if ((this.state as State) === 'closing' || (this.state as State) === 'closed') return; // closed by a callback
    const data = this.transport.framed ? serialize(el, '') : serialize(el, NS.client, true);
    if (el.name === 'message' && !this.tracksDelivery) {
      // Kept until the kernel took the bytes: if the client never reads them, they are routed again.
      const sent = this.bytesOut - this.transport.bufferedBytes;
      while (this.backlog.length > 0 && this.backlog[0]!.end <= sent) this.backlog.shift();
      this.backlog.push({ el, end: this.bytesOut + Buffer.byteLength(data) });
    }
    this.writeData(data);
  }

  /** Serialises and writes any element (stanza or nonza) now. */
  writeElement(el: Element): void {
    if (this.state === 'closed') return;
    this.writeData(this.transport.framed ? serialize(el, '') : serialize(el, NS.client, true));
  }

  private writeData(data: string): void {
    this.bytesOut += Buffer.byteLength(data);
    this.transport.write(data);
    this.flushCheck();
  }

  /**
   * Slow readers (RFC 6120 §13.12): unread output above `limits.maxSendBufferBytes` is tolerated
   * while the client makes progress (a burst such as an offline-message flush); a client that reads
   * nothing for SLOW_READER_GRACE_MS, or lets twice the cap pile up, is cut off and its unsent
   * messages routed again.
   */
  private flushCheck(): void {
    if (this.state === 'closed') return;
    const buffered = this.transport.bufferedBytes;
    if (buffered === 0) this.backlog.length = 0;
    const soft = this.server.config.limits.maxSendBufferBytes;
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

  /**
   * Back-pressure for producers of long bursts (offline flush): resolves true once no more than
   * `bytes` wait to be sent, false as soon as the stream is closing. Polls, because WebSocket
   * transports have no drain event; a client that stops reading is cut off by flushCheck meanwhile.
   */
  async sendRoom(bytes: number): Promise<boolean> {
    while (this.state !== 'closing' && this.state !== 'closed' && this.transport.bufferedBytes > bytes)
      await new Promise((r) => setTimeout(r, 10));
    return this.state !== 'closing' && this.state !== 'closed';
  }

  private cutOff(buffered: number): void {
    this.server.log.warn({ stream: this.id, buffered }, 'client does not read: disconnecting');
    const sent = this.bytesOut - buffered;
    const session = this.session;
    if (session && session.stream === this && !session.closed) {
      for (const b of this.backlog) if (b.end > sent) session.undelivered.push(b.el);
    }
    this.backlog = [];
    this.closeCondition = 'policy-violation';
    this.state = 'closing';
    // What is buffered will never be read: drop it rather than wait for the client.
    this.transport.destroy();
    void this.finish();
  }

  /**
   * Attaches a session resumed from another stream (XEP-0198): this stream becomes bound to it
   * without binding a resource again.
   */
  adoptSession(session: Session): void {
    this.session = session;
    this.state = 'bound';
    clearTimeout(this.authTimer);
  }

  // --- closing --------------------------------------------------------------------------------

  /** Ends the stream with a stream error (RFC 6120 §4.9). */
  fail(condition: StreamErrorCondition | XmlError['condition'], text?: string): void {
    if (this.state === 'closed' || this.state === 'closing') return;
    if (!this.headerSent && !this.transport.framed) this.sendHeader(this.host?.domain, undefined);
    this.server.log.info(
      { stream: this.id, ip: this.transport.remoteAddress, condition, text },
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
    // A client that never closes its side is cut off after a grace period.
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

  private finished = false;

  private async finish(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.authTimer);
    clearTimeout(this.slowTimer);
    this.parser = new StreamParser({ streamStart() {}, element() {}, streamEnd() {}, error() {} });
    this.queue = [];
    this.server.limiter?.closed?.(this);
    await this.server.streamClosed(this, this.cleanClose);
  }
}
