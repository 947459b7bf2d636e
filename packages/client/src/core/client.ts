import { Element, xml } from '@natter/xml';
import { parseJid, tryParseJid, type Jid } from '@natter/jid';
import { NS, StanzaError, errorReply } from '@natter/protocol';
import { Emitter, TimeoutError } from './emitter.js';
import { AuthenticationError, ClientError, NotConnectedError } from './errors.js';
import { randomId } from './ids.js';
import {
  authenticate,
  bindResource,
  establishSession,
  negotiateStartTls,
  type SaslOutcome,
} from './negotiate.js';
import type { Hooks, IncomingHook, OutgoingHook, PluginApis, PluginContext, PluginMap } from './plugin.js';
import { XmppStream, withTimeout } from './xmpp-stream.js';
import {
  capsElement,
  capsVerification,
  discoInfoQuery,
  CAPS_NODE,
  type DiscoIdentity,
} from './xep-0115-caps.js';
import type { TlsOptions, Transport, TransportFactory } from '../transport/transport.js';
import type { EndpointResolver } from '../connect/discovery.js';
import { memoryCredentials, type CredentialStore, type StoredCredentials } from './credentials.js';
import { authenticate2, FastTokenRefused, type Sasl2Outcome } from './sasl2.js';
import { revokeToken } from './revoke.js';

export type ClientStatus = 'offline' | 'connecting' | 'online' | 'disconnecting';

export interface ClientOptions<P extends PluginMap = PluginMap> {
  /**
   * `xmpp://host[:5222]` (STARTTLS), `xmpps://host[:5223]` (direct TLS), `ws://…` or `wss://…` (RFC 7395).
   * A list gives endpoints of one service (the nodes of a cluster): each connection tries them in
   * order, starting with the one that last worked, and moves on when one cannot be reached.
   * Without it, the endpoints are found from the JID's domain with `discover`.
   */
  service?: string | readonly string[];
  /**
   * How to find the endpoints when `service` is not given, at each connection: DNS SRV records
   * (RFC 6120, XEP-0368) by default in Node; `hostMetaResolver()` (XEP-0156) in browsers, where
   * there is no default (it stays out of the bundle of apps that give `service`).
   */
  discover?: EndpointResolver;
  /** The account, `user@domain` (a resource here is used unless `resource` is given). */
  jid: string;
  /**
   * The account's password. May be left out when `credentials` holds a FAST token the server
   * accepts (a reconnect, or an app's next start with a persistent store).
   */
  password?: string;
  /** Authenticate with SASL2 (XEP-0388) when the server offers it (default true). */
  sasl2?: boolean;
  /**
   * Bind the resource inside the SASL2 exchange with Bind2 (XEP-0386) when the server offers it
   * (default true): no round trip for binding, and modules enable their features in the same
   * message (stream management, carbons, CSI). The server then chooses the resource, starting with
   * `resource` (the Bind2 tag); `false` asks for exactly `resource` in a separate step.
   */
  bind2?: boolean;
  /**
   * FAST (XEP-0484, needs SASL2): ask for a token at each password login and log in with it next
   * time, in one round trip and without the password (default true).
   */
  fast?: boolean;
  /**
   * Where the installation's user-agent id and the FAST token are kept between connections
   * (default: in memory, for this client object). Give a persistent one (`webStorageCredentials`,
   * or the platform's secure storage) for logins without a password after an app restart.
   */
  credentials?: CredentialStore;
  /** Sent with SASL2 logins (XEP-0388 §2.3): the software (default "Natter") and device name. */
  userAgent?: { software?: string; device?: string };
  /**
   * Resource to request at binding; the server picks one when absent. With Bind2 it is the tag the
   * server's resource starts with (default: `userAgent.software`).
   */
  resource?: string;
  tls?: TlsOptions;
  /** Allow SASL PLAIN over an unencrypted connection (never by default). */
  allowPlaintextAuth?: boolean;
  /**
   * Only use these SASL mechanisms (default: SCRAM-SHA-256-PLUS and SCRAM-SHA-1-PLUS where the
   * connection allows channel binding, SCRAM-SHA-256, SCRAM-SHA-1, then PLAIN over TLS).
   */
  saslMechanisms?: string[];
  /** Refuse to authenticate over an unencrypted connection (default false: STARTTLS is still used whenever offered). */
  requireTls?: boolean;
  /** Modules to activate, by key: `{ roster: roster(), ping: ping() }`. */
  plugins?: P;
  /** Timeout for `iq()` when none is given, ms (default 30 s). */
  iqTimeout?: number;
  /** Timeout for each step of connecting, ms (default 30 s). */
  connectTimeout?: number;
  /** Our disco identity (default client/pc "Natter"). */
  identity?: DiscoIdentity;
  /** Transports to choose from by URL scheme (the runtime's entry point supplies defaults). */
  transports?: TransportFactory[];
  lang?: string;
}

export interface ClientEvents {
  /** Negotiation finished: `resumed` is true when a stream management session was resumed (no new session). */
  online: { jid: Jid; resumed: boolean };
  /** The connection is gone; `resumable` tells whether stream management can resume the session. */
  offline: { manual: boolean; error?: Error; resumable: boolean };
  /** A problem that does not stop the client (a listener threw, a stream error arrived, …). */
  error: Error;
  status: ClientStatus;
  /** Every incoming stanza. */
  stanza: Element;
  message: Element;
  presence: Element;
  /** Incoming IQ requests (get/set). */
  iq: Element;
  /** Every stanza written to the wire (after modules' hooks). */
  sent: Element;
}

export type IqType = 'get' | 'set';
/** Answers an IQ request: return the payload of the result (or nothing), throw a StanzaError for an error reply. */
export type IqHandler = (iq: Element) => Element | void | undefined | Promise<Element | void | undefined>;

interface PendingIq {
  resolve(el: Element): void;
  reject(err: Error): void;
  timer: ReturnType<typeof setTimeout>;
  to: string | undefined;
}

export class Client<P extends PluginMap = PluginMap> extends Emitter<ClientEvents> {
  /** The active modules' APIs, typed from the `plugins` option. */
  readonly plugins: PluginApis<P>;
  readonly options: Readonly<ClientOptions<P>>;
  /** The account's bare JID. */
  readonly account: Jid;
  #jid: Jid | undefined;
  #sasl: SaslOutcome | undefined;
  #status: ClientStatus = 'offline';
  #stream: XmppStream | undefined;
  #connecting: Promise<Jid> | undefined;
  #manualClose = false;
  #resumable = false;
  #pending = new Map<string, PendingIq>();
  #iqHandlers = new Map<string, IqHandler>();
  #hooks: { [K in keyof Hooks]: Hooks[K][] } = {
    sasl2: [],
    authenticated: [],
    beforeBind: [],
    afterBind: [],
    nonza: [],
    connectionLost: [],
    sent: [],
  };
  #outgoing: { fn: OutgoingHook; priority: number }[] = [];
  #incoming: { fn: IncomingHook; priority: number }[] = [];
  #features = new Set<string>([NS.discoInfo, NS.caps]);
  #identity: DiscoIdentity;
  #caps: { key: string; ver: Promise<string> } | undefined;
  #pluginsByName = new Map<string, unknown>();
  /** Which endpoint of the service to try first: the last one that worked. */
  #current = 0;

  /** The endpoints found by `discover` at the last connection. */
  #discovered: readonly string[] = [];

  /** The endpoints of the service (read at each connection: an application may change them). */
  get #services(): readonly string[] {
    const s = this.options.service;
    return s === undefined ? this.#discovered : [s].flat();
  }

  /** The endpoint in use (or tried first by the next connection); '' before discovery. */
  get service(): string {
    const list = this.#services;
    return list.length === 0 ? '' : list[this.#current % list.length]!;
  }

  constructor(options: ClientOptions<P>) {
    super();
    this.options = options;
    const given = options.service === undefined ? undefined : [options.service].flat();
    if (given ? given.length === 0 || given.some((x) => !x) : !options.discover)
      throw new ClientError(
        'invalid-options',
        'createClient: `service` (e.g. wss://example.com/xmpp-websocket, or a list of them) or `discover` (e.g. hostMetaResolver()) is required',
      );
    const j = tryParseJid(options.jid ?? '');
    if (!j || j.local === '')
      throw new ClientError(
        'invalid-options',
        `createClient: \`jid\` must be user@domain, got "${options.jid}"`,
      );
    this.account = j.bare;
    this.#credentials = options.credentials ?? memoryCredentials();
    this.#identity = options.identity ?? { category: 'client', type: 'pc', name: 'Natter' };
    this.handleIq('get', 'query', NS.discoInfo, (iq) => this.#answerDiscoInfo(iq));
    // XEP-0115 §4: available presence carries our capabilities.
    this.#outgoing.push({
      priority: 100,
      fn: async (el) => {
        if (el.name === 'presence' && el.attr('type') === undefined && !el.getChild('c', NS.caps))
          el.append(await this.capsElement());
      },
    });
    const apis: Record<string, unknown> = {};
    const ctx = this.#context();
    for (const [key, def] of Object.entries(options.plugins ?? {})) {
      const api = def.setup(ctx);
      apis[key] = api;
      this.#pluginsByName.set(def.name, api);
    }
    this.plugins = apis as PluginApis<P>;
  }

  protected override onListenerError(err: unknown, event: keyof ClientEvents): void {
    if (event === 'error') super.onListenerError(err, event);
    else this.emit('error', err instanceof Error ? err : new Error(String(err)));
  }

  /**
   * The SASL mechanism of the last successful login, e.g. `SCRAM-SHA-256-PLUS` when the login was
   * bound to the TLS channel (undefined before the first login).
   */
  get saslMechanism(): string | undefined {
    return this.#sasl?.mechanism;
  }

  /** The channel binding type of the last login (`tls-exporter`, `tls-server-end-point`), if bound. */
  get channelBinding(): string | undefined {
    return this.#sasl?.channelBinding;
  }

  /** The full JID bound for the current session (undefined before the first `online`). */
  get jid(): Jid | undefined {
    return this.#jid;
  }

  get status(): ClientStatus {
    return this.#status;
  }

  /** True while connected over an encrypted channel (direct TLS, STARTTLS or wss:). */
  get secure(): boolean {
    return this.#stream?.transport.secure ?? false;
  }

  /** The XMPP domain of the account. */
  get domain(): string {
    return this.account.domain;
  }

  #setStatus(s: ClientStatus): void {
    if (this.#status === s) return;
    this.#status = s;
    this.emit('status', s);
  }

  #context(): PluginContext {
    return {
      client: this as unknown as Client<PluginMap>,
      addFeature: (f) => {
        this.#features.add(f);
        this.#caps = undefined;
      },
      hook: (name, fn) => {
        (this.#hooks[name] as unknown[]).push(fn);
      },
      outgoing: (fn, priority = 0) => {
        this.#outgoing.push({ fn, priority });
        this.#outgoing.sort((a, b) => a.priority - b.priority);
      },
      incoming: (fn, priority = 0) => {
        this.#incoming.push({ fn, priority });
        this.#incoming.sort((a, b) => a.priority - b.priority);
      },
      writeRaw: (el) => this.#write(el),
      reportError: (err) => this.emit('error', err),
      plugin: <T>(name: string) => this.#pluginsByName.get(name) as T | undefined,
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Connecting

  /** Connects, authenticates and binds; resolves with the full JID. Connecting while online resolves at once. */
  connect(): Promise<Jid> {
    if (this.#status === 'online' && this.#jid) return Promise.resolve(this.#jid);
    if (this.#connecting) return this.#connecting;
    this.#manualClose = false;
    const p = this.#doConnect().finally(() => {
      if (this.#connecting === p) this.#connecting = undefined;
    });
    this.#connecting = p;
    return p;
  }

  #transportFor(url: URL): TransportFactory {
    const t = (this.options.transports ?? []).find((f) => f.protocols.includes(url.protocol));
    if (!t) {
      throw new ClientError(
        'unsupported-service',
        `no transport for ${url.protocol} in this runtime (browsers support ws: and wss:; Node also xmpp: and xmpps:)`,
      );
    }
    return t;
  }

  /**
   * Connects the transport to the first endpoint that answers, starting with the last one that
   * worked; only a connection failure moves on (a refused login is the same on every node).
   */
  async #reachOne(): Promise<Transport> {
    const failures: string[] = [];
    if (this.options.service === undefined) {
      let found: string[];
      try {
        found = await this.options.discover!(this.domain);
      } catch (err) {
        throw new ClientError(
          'connection-failed',
          `could not find the endpoints of ${this.domain}: ${(err as Error).message}`,
          { cause: err },
        );
      }
      if (found.length === 0)
        throw new ClientError('connection-failed', `${this.domain} has no endpoint this client can use`);
      // The same endpoints as last time: start with the one that worked.
      const same =
        found.length === this.#discovered.length && found.every((f, i) => f === this.#discovered[i]);
      if (!same) this.#current = 0;
      this.#discovered = found;
    }
    const services = this.#services;
    let cause: unknown;
    for (let i = 0; i < services.length; i++) {
      const index = (this.#current + i) % services.length;
      const service = services[index]!;
      let url: URL;
      try {
        url = new URL(service);
      } catch {
        throw new ClientError('invalid-options', `service "${service}" is not a URL`);
      }
      let transport: Transport | undefined;
      try {
        // An endpoint of a scheme this runtime cannot use (a discovered xmpp: in a browser) is
        // passed over like one that cannot be reached, unless it is the only one.
        transport = this.#transportFor(url).create(url, { domain: this.domain, tls: this.options.tls ?? {} });
        // An endpoint that never answers (a dead machine, dropped packets) must not hold up the others.
        await withTimeout(transport.connect(), this.options.connectTimeout ?? 30000, 'answer');
        this.#current = index;
        return transport;
      } catch (err) {
        if (!transport && services.length === 1) throw err;
        transport?.destroy();
        failures.push(`${service}: ${(err as Error).message}`);
        cause = err;
      }
    }
    throw new ClientError('connection-failed', `could not connect to ${failures.join('; ')}`, { cause });
  }

  /** The credentials of this client's account between connections. */
  readonly #credentials: CredentialStore;

  /**
   * Logs this device out for good: invalidates the stored FAST token on the server (XEP-0484, on
   * a connection of its own that logs in with the token and `<fast invalidate='true'/>`), then
   * forgets it and the user-agent id here. A server out of reach gets it at the next `connect()`
   * (the token is kept for that only, never to log in). The current session, if any, goes on.
   * Resolves true once no token of this device is left valid on the server (or none was kept),
   * false when the invalidation waits for the next connection.
   */
  async forgetCredentials(): Promise<boolean> {
    const key = this.account.toString();
    const stored = await this.#credentials.get(key);
    const revoke =
      stored?.revoke ?? (stored?.token && { userAgentId: stored.userAgentId, token: stored.token });
    if (!revoke) {
      await this.#credentials.delete(key);
      return true;
    }
    // A new installation id for the next login (the old one stays with the token, for the server).
    const userAgentId = globalThis.crypto?.randomUUID?.() ?? `${randomId(16)}`;
    await this.#credentials.set(key, { userAgentId, revoke });
    return this.#revoke().catch(() => false);
  }

  #revoke(): Promise<boolean> {
    return revokeToken({
      store: this.#credentials,
      key: this.account.toString(),
      username: this.account.local,
      domain: this.domain,
      ...(this.options.lang !== undefined ? { lang: this.options.lang } : {}),
      timeout: this.options.connectTimeout ?? 30000,
      software: this.options.userAgent?.software ?? 'Natter',
      reach: () => this.#reachOne(),
    });
  }

  async #doConnect(): Promise<Jid> {
    // A token forgetCredentials() left to invalidate: first (a server out of reach fails the connect).
    if ((await this.#credentials.get(this.account.toString()))?.revoke) await this.#revoke();
    try {
      return await this.#connectOnce();
    } catch (err) {
      // The token was forgotten: the password, if there is one, gets a fresh connection.
      if (err instanceof FastTokenRefused && this.options.password !== undefined) return this.#connectOnce();
      throw err;
    }
  }

  /**
   * SASL2 (XEP-0388) with FAST (XEP-0484): the stored token when there is one, else the password
   * (asking for a token). Modules add their inline requests, and Bind2 (XEP-0386) binds the
   * resource in the same exchange when the server offers it.
   */
  async #authenticate2(stream: XmppStream, features: Element, allowPlain: boolean): Promise<Sasl2Outcome> {
    const key = this.account.toString();
    const store = this.#credentials;
    let stored: StoredCredentials | undefined = await store.get(key);
    if (!stored) {
      stored = { userAgentId: globalThis.crypto?.randomUUID?.() ?? `${randomId(16)}` };
      await store.set(key, stored);
    }
    const useFast = this.options.fast !== false;
    let token = useFast && stored.token && stored.token.expiry > Date.now() ? stored.token : undefined;
    if (token) {
      // XEP-0484 §3.2: each use counts up, kept before it is sent (a count is never used twice).
      token = { ...token, count: token.count + 1 };
      stored = { ...stored, token };
      await store.set(key, stored);
    }
    const software = this.options.userAgent?.software ?? 'Natter';
    const offer =
      features.getChild('authentication', NS.sasl2)!.getChild('inline', NS.sasl2) ?? xml('inline');
    const bindOffer = this.options.bind2 !== false ? offer.getChild('bind', NS.bind2) : undefined;
    const bind2 = bindOffer
      ? (bindOffer
          .getChild('inline', NS.bind2)
          ?.getChildren('feature', NS.bind2)
          .map((f) => f.attr('var') ?? '') ?? [])
      : undefined;
    const inline: Element[] = [];
    const bindChildren: Element[] = [];
    for (const h of this.#hooks.sasl2)
      h({ offer, bind2, authenticate: (el) => inline.push(el), bind: (el) => bindChildren.push(el) });
    if (bind2) {
      // XEP-0386 §2.2: the tag names the client; the server adds what makes the resource unique.
      const tag = Array.from(
        (this.options.resource || tryParseJid(this.options.jid)?.resource || software).replace(
          /[^\p{L}\p{N} ._+-]/gu,
          '',
        ),
      )
        .slice(0, 64)
        .join('');
      inline.push(xml('bind', { xmlns: NS.bind2 }, tag && xml('tag', null, tag), bindChildren));
    }
    let out;
    try {
      out = await authenticate2(stream, features, {
        username: this.account.local,
        password: this.options.password,
        allowPlain,
        only: this.options.saslMechanisms,
        userAgent: {
          id: stored.userAgentId,
          software,
          ...(this.options.userAgent?.device !== undefined ? { device: this.options.userAgent.device } : {}),
        },
        ...(token ? { token } : {}),
        requestToken: useFast,
        inline,
      });
    } catch (err) {
      // Forgotten only if it is still the one refused (another client on the same store may
      // have stored a fresh one meanwhile).
      if (err instanceof FastTokenRefused) {
        const now = await store.get(key);
        if (now?.token?.token === token?.token)
          await store.set(key, {
            userAgentId: stored.userAgentId,
            ...(now?.revoke && { revoke: now.revoke }),
          });
      }
      throw err;
    }
    if (out.token) await store.set(key, { ...stored, token: out.token });
    this.#sasl = out;
    return out;
  }

  async #connectOnce(): Promise<Jid> {
    this.#setStatus('connecting');
    let stream: XmppStream | undefined;
    try {
      const transport = await this.#reachOne();
      const timeout = this.options.connectTimeout ?? 30000;
      stream = new XmppStream(transport, this.domain, this.options.lang);
      this.#stream = stream;
      let features = await stream.open(timeout);
      if (!transport.secure && features.getChild('starttls', NS.tls)) {
        await negotiateStartTls(stream);
        features = await stream.open(timeout);
      }
      if (!transport.secure && this.options.requireTls) {
        throw new ClientError('tls-required', 'the connection is not encrypted and requireTls is set');
      }
      const allowPlain = transport.secure || this.options.allowPlaintextAuth === true;
      let resumed = false;
      /** The full JID (Bind2's authorization identifier, or RFC 6120 binding's answer). */
      let full = '';
      /** Bind2's answer: the resource is bound, and no stream features follow. */
      let bound: Element | undefined;
      if (this.options.sasl2 !== false && features.getChild('authentication', NS.sasl2)) {
        const { success, authorizationId } = await this.#authenticate2(stream, features, allowPlain);
        for (const h of this.#hooks.authenticated) if (h(success)) resumed = true;
        bound = resumed ? undefined : success.getChild('bound', NS.bind2);
        full = authorizationId ?? '';
        // XEP-0388 §2.6.2: without Bind2 or a resumption the stream goes on, with features and no restart.
        if (!resumed && !bound) {
          features = await stream.next(timeout);
          if (!features.is('features', NS.stream))
            throw new ClientError(
              'connection-failed',
              `expected stream features after SASL2, got <${features.name}/>`,
            );
        }
      } else {
        if (this.options.password === undefined)
          throw new AuthenticationError(
            'not-authorized',
            'no password (a FAST token needs a server that offers SASL2)',
          );
        this.#sasl = await authenticate(stream, features, {
          username: this.account.local,
          password: this.options.password,
          allowPlain,
          only: this.options.saslMechanisms,
        });
        features = await stream.open(timeout);
      }
      const step = { stream, features, bound };
      if (!resumed && !bound) for (const h of this.#hooks.beforeBind) if (await h(step)) resumed = true;
      if (!resumed) {
        if (bound) {
          // XEP-0386 §2.4: the full JID the server bound is the authorization identifier.
          if (!tryParseJid(full)?.resource)
            throw new ClientError('bind-failed', `Bind2 bound no full JID (got "${full}")`);
        } else {
          full = await bindResource(
            stream,
            this.options.resource ?? (tryParseJid(this.options.jid)?.resource || undefined),
          );
          await establishSession(stream, features);
        }
        this.#jid = parseJid(full);
        this.#failPending(new NotConnectedError('the session was replaced by a new one'));
        for (const h of this.#hooks.afterBind) await h(step);
      }
      stream.events.on('element', (el) => this.#onElement(el));
      stream.events.once('closed', ({ error }) => this.#onClosed(stream!, error));
      this.#resumable = false;
      this.#setStatus('online');
      stream.run();
      const jid = this.#jid!;
      this.emit('online', { jid, resumed });
      return jid;
    } catch (err) {
      if (stream && !stream.ended) stream.destroy(err instanceof Error ? err : new Error(String(err)));
      if (this.#stream === stream) this.#stream = undefined;
      this.#setStatus('offline');
      throw err;
    }
  }

  #onClosed(stream: XmppStream, error: Error | undefined): void {
    if (this.#stream !== stream) return;
    this.#stream = undefined;
    const manual = this.#manualClose;
    let resumable = false;
    for (const h of this.#hooks.connectionLost)
      if (h(error ? { manual, error } : { manual })) resumable = true;
    this.#resumable = resumable && !manual;
    if (!this.#resumable)
      this.#failPending(new NotConnectedError('the connection was closed before a reply arrived'));
    this.#setStatus('offline');
    this.emit(
      'offline',
      error && !manual
        ? { manual, error, resumable: this.#resumable }
        : { manual, resumable: this.#resumable },
    );
  }

  /** Closes the stream gracefully; automatic reconnection (if active) stops. */
  async disconnect(): Promise<void> {
    this.#manualClose = true;
    const connecting = this.#connecting;
    if (connecting) await connecting.catch(() => undefined);
    const stream = this.#stream;
    if (!stream) {
      for (const h of this.#hooks.connectionLost) h({ manual: true });
      this.#resumable = false;
      this.#failPending(new NotConnectedError('disconnected'));
      if (this.#status !== 'offline') this.#setStatus('offline');
      return;
    }
    this.#setStatus('disconnecting');
    for (const h of this.#hooks.connectionLost) h({ manual: true });
    await stream.close();
  }

  /**
   * Abandons the connection without closing the stream, as a network failure would: stream
   * management can resume the session, and `reconnect` reconnects. Used by `autoPing` on timeouts.
   */
  dropConnection(reason: Error = new ClientError('connection-lost', 'connection dropped')): void {
    this.#stream?.destroy(reason);
  }

  /** True when a dropped session can still be resumed (XEP-0198). */
  get resumable(): boolean {
    return this.#resumable;
  }

  #failPending(err: Error): void {
    for (const [id, p] of this.#pending) {
      clearTimeout(p.timer);
      this.#pending.delete(id);
      p.reject(err);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Sending

  /**
   * Sends a stanza (or any element). Messages and IQs without an id get one. While offline with a
   * resumable session, stanzas are queued and sent on resumption; otherwise throws NotConnectedError.
   */
  async send(el: Element): Promise<void> {
    if (this.#status !== 'online' && !this.#resumable) throw new NotConnectedError();
    if ((el.name === 'message' || el.name === 'iq') && el.attr('id') === undefined)
      el.setAttr('id', randomId());
    for (const { fn } of this.#outgoing) {
      if ((await fn(el)) === false) return;
    }
    if (this.#status === 'online' && this.#stream) this.#write(el);
    else if (!this.#resumable) throw new NotConnectedError();
  }

  #write(el: Element): void {
    const stream = this.#stream;
    if (!stream) throw new NotConnectedError();
    stream.send(el);
    if (el.name === 'message' || el.name === 'presence' || el.name === 'iq') {
      for (const h of this.#hooks.sent) h(el);
      this.emit('sent', el);
    }
  }

  /** Sends a message; returns its id. */
  async sendMessage(msg: {
    to: string | Jid;
    body?: string;
    type?: 'chat' | 'normal' | 'groupchat' | 'headline';
    id?: string;
    children?: Element[];
  }): Promise<string> {
    const id = msg.id ?? randomId();
    await this.send(
      xml(
        'message',
        { to: String(msg.to), type: msg.type ?? 'chat', id },
        msg.body !== undefined && xml('body', null, msg.body),
        msg.children ?? [],
      ),
    );
    return id;
  }

  /** Sends presence (initial presence when called without arguments). */
  async sendPresence(
    p: {
      to?: string | Jid;
      type?: string;
      show?: 'away' | 'chat' | 'dnd' | 'xa';
      status?: string;
      priority?: number;
      children?: Element[];
    } = {},
  ): Promise<void> {
    await this.send(
      xml(
        'presence',
        { to: p.to === undefined ? undefined : String(p.to), type: p.type },
        p.show && xml('show', null, p.show),
        p.status !== undefined && xml('status', null, p.status),
        p.priority !== undefined && xml('priority', null, String(p.priority)),
        p.children ?? [],
      ),
    );
  }

  /**
   * Sends an IQ request and resolves with the `result` IQ; rejects with a StanzaError for an
   * `error` reply, a TimeoutError after `timeout` ms, or NotConnectedError when the session ends.
   */
  iq(request: Element, opts: { timeout?: number } = {}): Promise<Element> {
    const type = request.attr('type');
    if (type !== 'get' && type !== 'set')
      return Promise.reject(new TypeError('iq(): type must be get or set'));
    let id = request.attr('id');
    if (id === undefined) request.setAttr('id', (id = randomId()));
    const timeout = opts.timeout ?? this.options.iqTimeout ?? 30000;
    return new Promise<Element>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new TimeoutError(`no reply to IQ ${id} within ${timeout} ms`));
      }, timeout);
      this.#pending.set(id, { resolve, reject, timer, to: request.attr('to') });
      this.send(request).catch((err: unknown) => {
        clearTimeout(timer);
        this.#pending.delete(id);
        reject(err);
      });
    });
  }

  /** IQ request with one payload; resolves with the result's payload (undefined for an empty result). */
  async request(
    type: IqType,
    to: string | Jid | undefined,
    payload: Element,
    opts: { timeout?: number } = {},
  ): Promise<Element | undefined> {
    const res = await this.iq(
      xml('iq', { type, to: to === undefined ? undefined : String(to) }, payload),
      opts,
    );
    return res.firstElement();
  }

  /**
   * Handles incoming IQs of `type` whose payload is `<name xmlns=ns/>`. The handler's return
   * value becomes the result's payload; a thrown StanzaError becomes the error reply, any other
   * error `internal-server-error`. IQs nobody handles get `service-unavailable` (RFC 6120 §8.4).
   * Returns a function that removes the handler.
   */
  handleIq(type: IqType, name: string, ns: string, handler: IqHandler): () => void {
    const key = `${type} ${ns} ${name}`;
    this.#iqHandlers.set(key, handler);
    return () => {
      if (this.#iqHandlers.get(key) === handler) this.#iqHandlers.delete(key);
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Receiving

  #onElement(el: Element): void {
    const isStanza =
      (el.name === 'message' || el.name === 'presence' || el.name === 'iq') &&
      (el.xmlns === NS.client || el.xmlns === '');
    if (!isStanza) {
      for (const h of this.#hooks.nonza) h(el);
      return;
    }
    for (const { fn } of this.#incoming) {
      try {
        if (fn(el) === false) return;
      } catch (err) {
        this.emit('error', err as Error);
      }
    }
    this.emit('stanza', el);
    if (el.name === 'iq') this.#onIq(el);
    else if (el.name === 'message') this.emit('message', el);
    else this.emit('presence', el);
  }

  #onIq(iq: Element): void {
    const type = iq.attr('type');
    const id = iq.attr('id') ?? '';
    if (type === 'result' || type === 'error') {
      const p = this.#pending.get(id);
      if (!p || !this.#replyFromExpected(iq.attr('from'), p.to)) return;
      this.#pending.delete(id);
      clearTimeout(p.timer);
      if (type === 'result') p.resolve(iq);
      else p.reject(StanzaError.fromStanza(iq));
      return;
    }
    if (type !== 'get' && type !== 'set') return;
    this.emit('iq', iq);
    const payload = iq.firstElement();
    const handler = payload && this.#iqHandlers.get(`${type} ${payload.xmlns} ${payload.name}`);
    void this.#answerIq(iq, handler);
  }

  async #answerIq(iq: Element, handler: IqHandler | undefined): Promise<void> {
    let reply: Element;
    if (!handler) reply = errorReply(iq, new StanzaError('service-unavailable'));
    else {
      try {
        const payload = await handler(iq);
        reply = xml('iq', { type: 'result', id: iq.attr('id'), to: iq.attr('from') }, payload ?? undefined);
      } catch (err) {
        if (!(err instanceof StanzaError))
          this.emit('error', err instanceof Error ? err : new Error(String(err)));
        reply = errorReply(iq, err instanceof StanzaError ? err : new StanzaError('internal-server-error'));
      }
    }
    reply.setAttr('from', undefined);
    await this.send(reply).catch(() => undefined);
  }

  /** RFC 6120 §8.1.2.1: a reply comes from whom the request went to (no `to` means our account/server). */
  #replyFromExpected(from: string | undefined, to: string | undefined): boolean {
    const own = this.#jid;
    const norm = (s: string | undefined): string | undefined =>
      s === undefined ? undefined : (tryParseJid(s)?.toString() ?? s);
    const f = norm(from);
    const t = norm(to);
    if (f === t) return true;
    const selfish = (x: string | undefined) =>
      x === undefined || x === this.domain || x === this.account.toString() || x === own?.toString();
    return selfish(f) && selfish(t);
  }

  // ---------------------------------------------------------------------------------------------
  // Service discovery of ourselves (XEP-0030) and entity capabilities (XEP-0115)

  /** The features we advertise, from the active modules. */
  get features(): string[] {
    return [...this.#features].sort();
  }

  get identity(): DiscoIdentity {
    return this.#identity;
  }

  /** Our current XEP-0115 verification string. */
  capsVer(): Promise<string> {
    const key = this.features.join('\n');
    if (!this.#caps || this.#caps.key !== key)
      this.#caps = { key, ver: capsVerification([this.#identity], this.features) };
    return this.#caps.ver;
  }

  /** The `<c/>` element for presence. */
  async capsElement(): Promise<Element> {
    return capsElement(await this.capsVer());
  }

  async #answerDiscoInfo(iq: Element): Promise<Element> {
    const node = iq.firstElement()?.attr('node');
    if (node !== undefined && node !== `${CAPS_NODE}#${await this.capsVer()}`)
      throw new StanzaError('item-not-found');
    return discoInfoQuery([this.#identity], this.features, node);
  }
}

export { CAPS_NODE };
