import type { Element } from '@natter/xml';
import type { Jid } from '@natter/jid';
import type { SaslFailure, SaslServerMechanism } from '@natter/protocol';
import type { Session } from './session.js';
import type { ClientStreamView } from './stream/stream-view.js';

/** XEP-0388 §2.3 `<user-agent/>`: who is logging in (validated by the core before anything else). */
export interface UserAgent {
  /** A stable identifier of this installation (a UUID by the XEP's advice); bounded, checked. */
  id: string | undefined;
  software: string | undefined;
  device: string | undefined;
}

/** One `<authenticate/>` (XEP-0388) as extensions see it. */
export interface Sasl2Request {
  readonly stream: ClientStreamView;
  /** The whole `<authenticate/>`: extensions read their own children (FAST, SM). */
  readonly authenticate: Element;
  readonly mechanism: string;
  readonly userAgent: UserAgent | undefined;
}

/** What an extension's mechanism may tell the core (the failure log names the username). */
export interface Sasl2MechanismRequest extends Sasl2Request {
  readonly domain: string;
  noteUsername(username: string): void;
}

/** An `<authenticate/>` that succeeded for `account`. */
export interface Sasl2Authenticated extends Sasl2Request {
  readonly account: Jid;
}

/** What an extension adds once authentication succeeded. */
export interface Sasl2InlineResult {
  /** Children of `<success/>` (XEP-0484 `<token/>`, XEP-0198 `<resumed/>` or `<failed/>`). */
  elements?: Element[];
  /** The stream is now bound to a session (XEP-0198 resumption): Bind2 is skipped. */
  bound?: boolean;
  /** Runs once `<success/>` is written (XEP-0198: stanzas the client had not acknowledged, again). */
  after?: () => void;
}

/**
 * A module's part of SASL2 (XEP-0388 inline features): what it offers in the `<authentication/>`
 * feature's `<inline/>`, the mechanisms only it knows (FAST's HT-*), a check of the request before
 * anything is verified, and what it does once the client is authenticated (stream resumption,
 * tokens). Registered with `ModuleContext.sasl2`; extensions run in registration order.
 */
export interface Sasl2Extension {
  /** Elements of `<inline/>` in the `<authentication/>` feature for this stream. */
  inline?(stream: ClientStreamView): Element[];
  /** Checks an `<authenticate/>` before its mechanism runs; a SaslFailure refuses it. */
  check?(req: Sasl2Request): SaslFailure | undefined;
  /** The mechanism `req.mechanism` when this extension implements it (not in `<mechanism/>`s). */
  mechanism?(req: Sasl2MechanismRequest): SaslServerMechanism | undefined;
  /** After a successful authentication, before Bind2. */
  authenticated?(
    ev: Sasl2Authenticated,
  ): Sasl2InlineResult | undefined | Promise<Sasl2InlineResult | undefined>;
}

/**
 * A module's Bind2 inline feature (XEP-0386 §2.3): advertised as `<feature var/>` in Bind2's
 * `<inline/>`; the children of the client's `<bind/>` in namespace `var` are handed to it once the
 * resource is bound, and what it returns goes into `<bound/>`. Registered with
 * `ModuleContext.bind2Feature`.
 */
export interface Bind2Feature {
  readonly var: string;
  bound(ev: {
    stream: ClientStreamView;
    session: Session;
    element: Element;
  }): Element | undefined | Promise<Element | undefined>;
}
