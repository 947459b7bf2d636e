import type { Element } from '@natter/xml';
import type { Client } from './client.js';
import type { XmppStream } from './xmpp-stream.js';

/**
 * A module activated on a client: `roster({ storage })` returns one. `setup` runs once, in
 * `createClient`, and returns the module's API, reachable as `client.plugins.<key>`.
 */
export interface PluginDefinition<Api> {
  /** The module's name (also the folder it lives in), e.g. `roster`. */
  readonly name: string;
  setup(ctx: PluginContext): Api;
}

export type PluginMap = Record<string, PluginDefinition<unknown>>;

/** The API object of every plugin passed to `createClient`, by key. */
export type PluginApis<P extends PluginMap> = {
  [K in keyof P]: P[K] extends PluginDefinition<infer A> ? A : never;
};

/** What happens at one step of stream negotiation, for modules such as stream management. */
export interface NegotiationStep {
  readonly stream: XmppStream;
  /**
   * The stream features the server sent last: those after authentication, or those before it when
   * Bind2 bound the resource (no features follow a Bind2 login).
   */
  readonly features: Element;
  /**
   * Bind2's `<bound/>` (XEP-0386 §2.4) when the resource was bound inside the SASL2 exchange: the
   * answers to what the `sasl2` hooks added to `<bind/>`.
   */
  readonly bound?: Element;
}

/**
 * A SASL2 login (XEP-0388) about to be sent: what the server offers inline, and where modules put
 * their requests, so that they travel with the authentication instead of after it.
 */
export interface InlineRequest {
  /** The `<inline/>` of the server's `<authentication/>` feature (e.g. XEP-0198's `<sm/>`). */
  readonly offer: Element;
  /**
   * The namespaces of the features Bind2's `<bind/>` may enable (XEP-0386 §2.3), e.g.
   * `urn:xmpp:sm:3`; undefined when the resource is not bound with Bind2 in this login.
   */
  readonly bind2: readonly string[] | undefined;
  /** Adds a child to `<authenticate/>`; its answer is in `<success/>` (the `authenticated` hook). */
  authenticate(el: Element): void;
  /** Adds a child to Bind2's `<bind/>`; its answer is in `NegotiationStep.bound` (`afterBind`). */
  bind(el: Element): void;
}

/** Outgoing stanza hook: may modify the stanza; returning `false` drops it. */
export type OutgoingHook = (stanza: Element) => void | false | Promise<void | false>;
/** Incoming stanza hook: runs before events are emitted; returning `false` stops processing. */
export type IncomingHook = (stanza: Element) => void | false;

export interface Hooks {
  /** A SASL2 login is being prepared: add inline requests (stream resumption, Bind2 features). */
  sasl2(req: InlineRequest): void;
  /** SASL2 succeeded: read the answers in `<success/>`; return `true` when it resumed the session (binding is then skipped). */
  authenticated(success: Element): boolean | void;
  /**
   * Before resource binding, after the stream features that follow authentication; return `true`
   * when the session was resumed (binding is then skipped). Not called when Bind2 bound the
   * resource or SASL2 resumed the session.
   */
  beforeBind(step: NegotiationStep): Promise<boolean> | boolean;
  /** After binding (not after a resumption); `step.bound` is set when Bind2 bound the resource. */
  afterBind(step: NegotiationStep): Promise<void> | void;
  /** A top-level element that is not a stanza (e.g. `<r/>`, `<a/>`). */
  nonza(el: Element): void;
  /** The connection was lost or closed; return true if the session can be resumed. */
  connectionLost(info: { manual: boolean; error?: Error }): boolean | void;
  /** A stanza was written to the wire (after every outgoing hook). */
  sent(stanza: Element): void;
}

export interface PluginContext {
  readonly client: Client<PluginMap>;
  /** Adds a disco#info feature (XEP-0030) advertised, and hashed into entity capabilities (XEP-0115). */
  addFeature(feature: string): void;
  /** Registers a negotiation/stream hook. */
  hook<K extends keyof Hooks>(name: K, fn: Hooks[K]): void;
  /** Outgoing stanza hook; lower `priority` runs first (stream management uses 1000 to see the final stanza). */
  outgoing(fn: OutgoingHook, priority?: number): void;
  /** Incoming stanza hook; lower `priority` runs first. */
  incoming(fn: IncomingHook, priority?: number): void;
  /** Writes a stanza or nonza directly, bypassing hooks (for stream-level protocols). */
  writeRaw(el: Element): void;
  /** Reports an error on the client's `error` event (give it to module emitters for their listeners' errors). */
  reportError(err: Error): void;
  /** Another plugin's API by its definition name, if active. */
  plugin<T>(name: string): T | undefined;
}

/** The plugin map of a client created without plugins. */
export type NoPlugins = Record<never, never>;
