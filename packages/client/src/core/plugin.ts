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
  readonly features: Element;
}

/** Outgoing stanza hook: may modify the stanza; returning `false` drops it. */
export type OutgoingHook = (stanza: Element) => void | false | Promise<void | false>;
/** Incoming stanza hook: runs before events are emitted; returning `false` stops processing. */
export type IncomingHook = (stanza: Element) => void | false;

export interface Hooks {
  /** Before resource binding, after authentication; return `true` when the session was resumed (binding is then skipped). */
  beforeBind(step: NegotiationStep): Promise<boolean> | boolean;
  /** After binding (not after a resumption). */
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
