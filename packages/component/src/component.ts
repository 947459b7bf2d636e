import net from 'node:net';
import { jid as makeJid, tryParseJid, type Jid } from '@natter/jid';
import { NS, StanzaError, StreamError, errorReply } from '@natter/protocol';
import { Element, StreamParser, serialize, xml, type StreamHeader, type XmlError } from '@natter/xml';
import { Emitter } from './emitter.js';
import { ComponentError, TimeoutError, type ComponentErrorCondition } from './errors.js';
import { handshakeDigest, parseService } from './xep-0114-handshake.js';
import { Disco, type DiscoIdentity } from './disco/xep-0030-disco.js';
import { Puppets, type PuppetsOptions } from './puppets/puppets.js';
import { Rooms } from './rooms/rooms.js';
import { registration, type RegistrationOptions } from './registration/xep-0077-registration.js';
import { Commands, type CommandHandler, type CommandOptions } from './commands/xep-0050-commands.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type Logger = (level: LogLevel, message: string, data?: Record<string, unknown>) => void;

export interface ReconnectOptions {
  /** First delay after a lost connection (default 1,000 ms); doubles on each failure. */
  initialDelayMs?: number;
  /** Longest delay between attempts (default 30,000 ms). */
  maxDelayMs?: number;
}

export interface ComponentOptions {
  /** The server's component port: `xmpp://host:port` (port 5347 by default). */
  service: string;
  /** The component's domain, as configured on the server (e.g. `gw.example.com`). */
  domain: string;
  /** The shared secret configured for the domain on the server. */
  secret: string;
  /** Reconnect after a lost connection, with exponential backoff and jitter. Default true. */
  reconnect?: boolean | ReconnectOptions;
  /** What disco#info on the domain announces besides what the SDK derives from registrations. */
  disco?: { identities?: DiscoIdentity[]; features?: string[] };
  /** IQ timeout for `iq()`, and the handshake timeout. Default 30,000 ms. */
  timeoutMs?: number;
  /** Where the SDK logs; silent by default. */
  log?: Logger;
  /** Largest incoming stanza in bytes; a bigger one ends the stream with policy-violation. Default 1 MiB. */
  maxStanzaBytes?: number;
  /** Sends a whitespace keepalive after this long without output (default 60,000 ms; 0 disables). */
  keepaliveMs?: number;
  /** Most stanzas kept while offline, sent on reconnect; `send()` beyond throws `queue-full`. Default 1,000. */
  maxQueue?: number;
  /** Options of `gw.puppets`. */
  puppets?: PuppetsOptions;
}

export type ComponentStatus = 'offline' | 'connecting' | 'online' | 'closed';

/** A message received by the component. */
export interface ComponentMessage {
  from: Jid;
  to: Jid;
  /** `normal` when the stanza has no type. */
  type: string;
  body?: string;
  id?: string;
  element: Element;
}

/** A presence received by the component. */
export interface ComponentPresence {
  from: Jid;
  to: Jid;
  /** `available` when the stanza has no type. */
  type: string;
  show?: string;
  status?: string;
  id?: string;
  element: Element;
}

/** An IQ request handed to a handler registered with `handleIq`. */
export interface IqRequest {
  from: Jid;
  to: Jid;
  type: 'get' | 'set';
  id: string;
  /** The IQ's child element. */
  payload: Element;
  element: Element;
}

/** Returns the result payload (or nothing); throws a StanzaError for an error reply. */
export type IqHandler = (req: IqRequest) => Promise<Element | undefined | void> | Element | undefined | void;

export interface ComponentEvents {
  /** The handshake succeeded (again, after a reconnect). */
  online: { domain: string };
  /** The stream ended; `error` says why when it was not `disconnect()`. `reconnectInMs` is set when a reconnect is scheduled. */
  offline: { error?: ComponentError; reconnectInMs?: number };
  error: Error;
  message: ComponentMessage;
  presence: ComponentPresence;
  /** Every incoming IQ request (get/set), before it is handled. */
  iq: IqRequest;
  /** Every incoming stanza, before anything else. */
  stanza: Element;
}

interface Pending {
  resolve(el: Element): void;
  reject(err: Error): void;
  timer: ReturnType<typeof setTimeout>;
  to: string;
}

/** Internal hooks that puppets, rooms and registration use; a hook returns true when it consumed the stanza. */
export interface Interceptors {
  presence: ((p: ComponentPresence) => boolean)[];
  message: ((m: ComponentMessage) => boolean)[];
}

let idCounter = 0;
function newId(): string {
  return `c${(++idCounter).toString(36)}${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * An XEP-0114 external component ("gateway"): one TCP stream to a server's component port,
 * authenticated with the handshake, that receives every stanza addressed to its domain.
 */
export class Component extends Emitter<ComponentEvents> {
  readonly domain: string;
  readonly puppets: Puppets;
  readonly rooms: Rooms;
  /** @internal */
  readonly disco: Disco;
  /** @internal */
  readonly interceptors: Interceptors = { presence: [], message: [] };
  #status: ComponentStatus = 'offline';
  readonly #opts: Required<Omit<ComponentOptions, 'reconnect' | 'disco' | 'log' | 'puppets'>> & {
    reconnect: false | Required<ReconnectOptions>;
  };
  readonly #log: Logger;
  readonly #host: string;
  readonly #port: number;
  #socket: net.Socket | undefined;
  #queue: string[] = [];
  #pending = new Map<string, Pending>();
  #handlers = new Map<string, IqHandler>();
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #keepaliveTimer: ReturnType<typeof setInterval> | undefined;
  #lastWrite = 0;
  #attempt = 0;
  #wasOnline = false;
  #commands: Commands | undefined;

  constructor(options: ComponentOptions) {
    // What a listener throws becomes an 'error' event; what an 'error' listener throws is rethrown
    // asynchronously, so a faulty error handler cannot recurse.
    let reporting = false;
    super((err) => {
      if (reporting)
        queueMicrotask(() => {
          throw err;
        });
      else {
        reporting = true;
        try {
          this.emit('error', err);
        } finally {
          reporting = false;
        }
      }
    });
    const { host, port } = parseService(options.service);
    this.#host = host;
    this.#port = port;
    this.domain = makeJid(undefined, options.domain).domain;
    const rc = options.reconnect ?? true;
    this.#opts = {
      service: options.service,
      domain: this.domain,
      secret: options.secret,
      timeoutMs: options.timeoutMs ?? 30_000,
      maxStanzaBytes: options.maxStanzaBytes ?? 1024 * 1024,
      keepaliveMs: options.keepaliveMs ?? 60_000,
      maxQueue: options.maxQueue ?? 1000,
      reconnect:
        rc === false
          ? false
          : {
              initialDelayMs: (rc === true ? undefined : rc.initialDelayMs) ?? 1000,
              maxDelayMs: (rc === true ? undefined : rc.maxDelayMs) ?? 30_000,
            },
    };
    this.#log = options.log ?? (() => {});
    this.disco = new Disco(this, options.disco);
    this.puppets = new Puppets(this, options.puppets);
    this.rooms = new Rooms(this);
    // XEP-0199: the server and users may ping the gateway; replace with handleIq to do more
    this.handleIq('get', NS.ping, 'ping', () => undefined);
  }

  get status(): ComponentStatus {
    return this.#status;
  }

  /** An address on the component's domain: `gw.jid()`, `gw.jid('alice')`, `gw.jid('room', 'nick')`. */
  jid(local?: string, resource?: string): Jid {
    return makeJid(local, this.domain, resource);
  }

  /** Opens the stream; resolves when the handshake succeeded, rejects with a ComponentError. */
  connect(): Promise<void> {
    if (this.#status === 'online') return Promise.resolve();
    if (this.#status === 'connecting') return this.#waitOnline();
    this.#status = 'offline';
    this.#wasOnline = false;
    this.#attempt = 0;
    clearTimeout(this.#reconnectTimer);
    return this.#open();
  }

  #waitOnline(): Promise<void> {
    return new Promise((resolve, reject) => {
      const offOnline = this.once('online', () => {
        offOffline();
        resolve();
      });
      const offOffline = this.once('offline', ({ error }) => {
        offOnline();
        reject(error ?? new ComponentError('not-connected'));
      });
    });
  }

  #open(): Promise<void> {
    this.#status = 'connecting';
    const done = this.#waitOnline();
    const socket = net.connect({ host: this.#host, port: this.#port });
    this.#socket = socket;
    let streamOpen = false;
    let headerProblem: ComponentError | undefined;
    const handshakeTimer = setTimeout(
      () =>
        this.#fail(
          socket,
          new ComponentError('timeout', `no handshake answer within ${this.#opts.timeoutMs} ms`),
        ),
      this.#opts.timeoutMs,
    );
    handshakeTimer.unref();
    const parser = new StreamParser(
      {
        streamStart: (header: StreamHeader) => {
          streamOpen = true;
          const id = header.attrs.id;
          if (!id) {
            // Some servers open the stream without an id only to send a stream error (Prosody for
            // an unknown domain): report that error when it comes, this one if none does.
            headerProblem = new ComponentError('invalid-xml', 'the stream header has no id');
            return;
          }
          this.#write(
            socket,
            serialize(
              xml('handshake', { xmlns: NS.component }, handshakeDigest(id, this.#opts.secret)),
              NS.component,
              true,
            ),
          );
        },
        element: (el) => {
          if (socket !== this.#socket) return; // a stream already given up: nothing it says counts
          if (el.is('handshake') && this.#status === 'connecting') {
            clearTimeout(handshakeTimer);
            this.#online(socket);
          } else if (el.is('error', NS.stream)) {
            const se = StreamError.fromElement(el);
            this.#fail(socket, new ComponentError(se.condition, se.text, { cause: se }), false);
          } else if (this.#status === 'online') this.#incoming(el);
        },
        streamEnd: () =>
          this.#fail(socket, new ComponentError('connection-closed', 'the server closed the stream')),
        error: (err: XmlError) => {
          const condition: ComponentErrorCondition = err.condition;
          this.#fail(socket, new ComponentError(condition, err.message, { cause: err }), true, condition);
        },
      },
      { maxStanzaBytes: this.#opts.maxStanzaBytes },
    );
    socket.on('connect', () => {
      this.#log('debug', 'connected, opening stream', { host: this.#host, port: this.#port });
      this.#write(
        socket,
        `<?xml version='1.0'?><stream:stream xmlns='${NS.component}' xmlns:stream='${NS.stream}' to='${this.domain}'>`,
      );
    });
    socket.on('data', (chunk: Buffer) => parser.write(chunk));
    socket.on('error', (err) =>
      this.#fail(
        socket,
        new ComponentError(streamOpen ? 'connection-closed' : 'connection-failed', err.message, {
          cause: err,
        }),
        false,
      ),
    );
    socket.on('close', () => {
      clearTimeout(handshakeTimer);
      this.#fail(
        socket,
        headerProblem ?? new ComponentError('connection-closed', 'the connection closed'),
        false,
      );
    });
    return done;
  }

  #online(socket: net.Socket): void {
    this.#status = 'online';
    this.#attempt = 0;
    this.#wasOnline = true;
    this.#log('info', 'component online', { domain: this.domain });
    const queued = this.#queue;
    this.#queue = [];
    for (const s of queued) this.#write(socket, s);
    if (this.#opts.keepaliveMs > 0) {
      this.#keepaliveTimer = setInterval(
        () => {
          if (Date.now() - this.#lastWrite >= this.#opts.keepaliveMs) this.#write(socket, ' ');
        },
        Math.max(1000, Math.floor(this.#opts.keepaliveMs / 2)),
      );
      this.#keepaliveTimer.unref();
    }
    this.emit('online', { domain: this.domain });
  }

  /** Ends the stream for `error`; sends a stream error first when `streamErrorCondition` is given. */
  #fail(
    socket: net.Socket,
    error: ComponentError,
    closeStream = true,
    streamErrorCondition?: ComponentErrorCondition,
  ): void {
    if (socket !== this.#socket) return;
    this.#socket = undefined;
    clearInterval(this.#keepaliveTimer);
    if (streamErrorCondition && !socket.destroyed)
      socket.write(serialize(new StreamError(streamErrorCondition as never).toElement(), NS.component, true));
    if (closeStream && !socket.destroyed) socket.end('</stream:stream>');
    setTimeout(() => socket.destroy(), 2000).unref();
    this.#rejectPending(new ComponentError('not-connected', 'the stream ended before the answer'));
    this.#log(error.fatal ? 'error' : 'warn', `component offline: ${error.message}`);
    let reconnectInMs: number | undefined;
    if (this.#opts.reconnect && !error.fatal && this.#wasOnline && this.#status !== 'closed') {
      const { initialDelayMs, maxDelayMs } = this.#opts.reconnect;
      const base = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(this.#attempt, 30));
      reconnectInMs = Math.round(base / 2 + Math.random() * (base / 2));
      this.#attempt++;
      this.#status = 'offline';
      this.#reconnectTimer = setTimeout(() => {
        this.#open().catch(() => {
          /* reported through 'offline' and 'error' */
        });
      }, reconnectInMs);
    } else {
      this.#status = 'closed';
      this.#queue = [];
    }
    this.emit('error', error);
    this.emit('offline', { error, ...(reconnectInMs !== undefined ? { reconnectInMs } : {}) });
  }

  #rejectPending(err: Error): void {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) {
      clearTimeout(p.timer);
      p.reject(err);
    }
  }

  /** Closes the stream; no reconnect follows. Stanzas still queued are dropped. */
  async disconnect(): Promise<void> {
    clearTimeout(this.#reconnectTimer);
    const socket = this.#socket;
    const wasConnected = this.#status === 'online' || this.#status === 'connecting';
    this.#status = 'closed';
    this.#socket = undefined;
    this.#queue = [];
    clearInterval(this.#keepaliveTimer);
    this.#rejectPending(new ComponentError('not-connected', 'disconnected'));
    if (socket && !socket.destroyed) {
      const closed = new Promise<void>((r) => socket.once('close', () => r()));
      socket.end('</stream:stream>');
      const t = setTimeout(() => socket.destroy(), 2000);
      await closed;
      clearTimeout(t);
    }
    if (wasConnected) this.emit('offline', {});
  }

  #write(socket: net.Socket, data: string): void {
    if (socket.destroyed) return;
    this.#lastWrite = Date.now();
    socket.write(data);
  }

  /**
   * Sends a stanza. A stanza without `from` is sent from the domain; a `from` off the domain or a
   * missing `to` throws a TypeError (the server would end the stream for it). While offline (before a
   * reconnect) it is queued, up to `maxQueue`; after `disconnect()` this throws `not-connected`.
   */
  send(element: Element): void {
    if (element.name === 'message' || element.name === 'presence' || element.name === 'iq') {
      const from = element.attr('from');
      if (from === undefined) element.setAttr('from', this.domain);
      // the server would end the whole stream with invalid-from (XEP-0114 §4): refuse this one stanza
      else if (tryParseJid(from)?.domain !== this.domain)
        throw new TypeError(`a component sends only from its own domain ${this.domain}, not from ${from}`);
      if (element.attr('to') === undefined) throw new TypeError(`a component's ${element.name} needs a to`);
    }
    const data = serialize(element, NS.component, true);
    if (this.#status === 'online' && this.#socket) {
      this.#write(this.#socket, data);
      return;
    }
    if (this.#status === 'closed') throw new ComponentError('not-connected', 'the component is disconnected');
    if (this.#queue.length >= this.#opts.maxQueue)
      throw new ComponentError(
        'queue-full',
        `${this.#opts.maxQueue} stanzas already wait for the connection`,
      );
    this.#queue.push(data);
  }

  /** Sends an IQ get/set and resolves with the result stanza; rejects with StanzaError, TimeoutError or ComponentError. */
  iq(element: Element, timeoutMs = this.#opts.timeoutMs): Promise<Element> {
    const type = element.attr('type');
    if (element.name !== 'iq' || (type !== 'get' && type !== 'set'))
      return Promise.reject(new TypeError('iq() takes an <iq type="get|set"/>'));
    let id = element.attr('id');
    if (!id) element.setAttr('id', (id = newId()));
    if (element.attr('from') === undefined) element.setAttr('from', this.domain);
    const rawTo = element.attr('to') ?? '';
    // answers come from the address asked, as the server normalised it (RFC 7622)
    const to = tryParseJid(rawTo)?.toString() ?? rawTo;
    const key = `${id}\u0000${to}`;
    return new Promise<Element>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(key);
        reject(new TimeoutError(`no answer to IQ ${id} from ${to} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(key, { resolve, reject, timer, to });
      try {
        this.send(element);
      } catch (err) {
        clearTimeout(timer);
        this.#pending.delete(key);
        reject(err as Error);
      }
    });
  }

  /**
   * Answers IQs of `type` whose child is `<childName xmlns=xmlns/>`, to any address on the domain.
   * The handler's return value is the result payload; a thrown StanzaError becomes the error reply,
   * anything else `internal-server-error`. IQs nobody handles get `service-unavailable`. The
   * namespace is announced in disco#info on the domain. Returns a function that removes the handler.
   */
  handleIq(type: 'get' | 'set', xmlns: string, childName: string, handler: IqHandler): () => void {
    const key = `${type} ${xmlns} ${childName}`;
    this.#handlers.set(key, handler);
    return () => {
      if (this.#handlers.get(key) === handler) this.#handlers.delete(key);
    };
  }

  /** @internal Namespaces of registered IQ handlers, for disco#info. */
  handledNamespaces(): string[] {
    return [...new Set([...this.#handlers.keys()].map((k) => k.split(' ')[1]!))];
  }

  /** Sends a message; returns its id. */
  sendMessage(m: {
    from?: Jid | string;
    to: Jid | string;
    body?: string;
    type?: string;
    id?: string;
    children?: Element[];
  }): string {
    const id = m.id ?? newId();
    this.send(
      xml(
        'message',
        { from: m.from?.toString() ?? this.domain, to: m.to.toString(), type: m.type, id },
        m.body !== undefined && xml('body', null, m.body),
        m.children,
      ),
    );
    return id;
  }

  /** Sends a presence (`type` omitted: available). */
  sendPresence(p: {
    from?: Jid | string;
    to: Jid | string;
    type?: string;
    show?: string;
    status?: string;
    children?: Element[];
  }): void {
    this.send(
      xml(
        'presence',
        {
          from: p.from?.toString() ?? this.domain,
          to: p.to.toString(),
          type: p.type === 'available' ? undefined : p.type,
        },
        p.show !== undefined && xml('show', null, p.show),
        p.status !== undefined && xml('status', null, p.status),
        p.children,
      ),
    );
  }

  /** XEP-0077/XEP-0100: answers jabber:iq:register (and jabber:iq:gateway) on the domain. */
  registration(options: RegistrationOptions): () => void {
    return registration(this, options);
  }

  /** XEP-0050: an ad-hoc command on the domain, listed under the commands node. */
  command(node: string, name: string, handler: CommandHandler, options: CommandOptions = {}): () => void {
    this.#commands ??= new Commands(this);
    return this.#commands.add(node, name, handler, options);
  }

  /** A puppet (legacy contact) `name@domain`, added if it is not there yet. */
  puppet(name: string): ReturnType<Puppets['add']> {
    return this.puppets.get(name) ?? this.puppets.add(name);
  }

  #incoming(el: Element): void {
    this.emit('stanza', el);
    const from = tryParseJid(el.attr('from') ?? '');
    const to = tryParseJid(el.attr('to') ?? '');
    const type = el.attr('type');
    if (!from || !to) {
      this.#log('warn', 'dropped a stanza without a valid from/to', { stanza: el.toString().slice(0, 200) });
      return;
    }
    if (el.name === 'iq') this.#incomingIq(el, from, to, type);
    else if (el.name === 'message') {
      const m: ComponentMessage = {
        from,
        to,
        type: type ?? 'normal',
        body: el.getChildText('body'),
        id: el.attr('id'),
        element: el,
      };
      if (m.type !== 'error') for (const h of this.interceptors.message) if (h(m)) return;
      this.emit('message', m);
    } else if (el.name === 'presence') {
      const p: ComponentPresence = {
        from,
        to,
        type: type ?? 'available',
        show: el.getChildText('show'),
        status: el.getChildText('status'),
        id: el.attr('id'),
        element: el,
      };
      if (p.type !== 'error') for (const h of this.interceptors.presence) if (h(p)) return;
      this.emit('presence', p);
    }
  }

  #incomingIq(el: Element, from: Jid, to: Jid, type: string | undefined): void {
    if (type === 'result' || type === 'error') {
      const k = `${el.attr('id') ?? ''}\u0000${from.toString()}`;
      const p = this.#pending.get(k);
      if (!p) return; // unknown id, or an answer from someone not asked: ignored (RFC 6120 §8.2.3)
      this.#pending.delete(k);
      clearTimeout(p.timer);
      if (type === 'result') p.resolve(el);
      else p.reject(StanzaError.fromStanza(el));
      return;
    }
    if (type !== 'get' && type !== 'set') {
      this.send(
        errorReply(el, new StanzaError('bad-request', { text: 'IQ type must be get, set, result or error' })),
      );
      return;
    }
    const payload = el.firstElement();
    const id = el.attr('id');
    if (!payload || !id || el.elements().length !== 1) {
      this.send(
        errorReply(el, new StanzaError('bad-request', { text: 'an IQ get/set has exactly one child' })),
      );
      return;
    }
    const req: IqRequest = { from, to, type, id, payload, element: el };
    this.emit('iq', req);
    const handler =
      this.disco.handlerFor(req) ?? this.#handlers.get(`${type} ${payload.xmlns} ${payload.name}`) ?? null;
    if (!handler) {
      this.send(errorReply(el, new StanzaError('service-unavailable')));
      return;
    }
    void (async () => {
      try {
        const result = await handler(req);
        this.#trySend(
          xml('iq', { type: 'result', id, from: to.toString(), to: from.toString() }, result ?? undefined),
        );
      } catch (err) {
        if (err instanceof StanzaError) this.#trySend(errorReply(el, err));
        else {
          this.#log('error', 'an IQ handler threw', { error: String(err), ns: payload.xmlns });
          this.emit('error', err instanceof Error ? err : new Error(String(err)));
          this.#trySend(errorReply(el, new StanzaError('internal-server-error')));
        }
      }
    })();
  }

  /** Sends, ignoring a closed or full connection (for replies, which are worthless later). */
  #trySend(el: Element): void {
    try {
      this.send(el);
    } catch {
      /* the requester will time out */
    }
  }
}

/** Creates a component; call `connect()` to open the stream. */
export function createComponent(options: ComponentOptions): Component {
  return new Component(options);
}

export { TimeoutError };
