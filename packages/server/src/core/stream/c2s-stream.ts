import { isIP } from 'node:net';
import { xml, type Element } from '@natter/xml';
import { parseJid, tryParseJid, type Jid } from '@natter/jid';
import { NS, StanzaError, errorReply } from '@natter/protocol';
import type { Transport } from '../transport.js';
import type { Session } from '../session.js';
import type { Host } from '../host.js';
import type { ServerCore } from '../server-core.js';
import { resultReply } from '../iq-dispatcher.js';
import { StreamMachine } from './stream-machine.js';
import { saslOffer } from '../sasl-offer.js';
import { answerable, checkStanza } from './stanza-checks.js';
import { StreamPipeline } from './stream-pipeline.js';
import { NOT_MINE, type ClientNegotiation, type NegotiationStep } from './steps/step.js';
import { StartTlsStep } from './steps/starttls.js';
import { SaslStep } from './steps/sasl.js';
import { Sasl2Step } from './steps/sasl2.js';
import { SaslAttempt } from './steps/sasl-attempt.js';
import { RegisterStep } from './steps/register.js';
import { BindStep } from './steps/bind.js';

/** Before authentication: one SASL attempt shared by both profiles, so failures count across them. */
function negotiationSteps(stream: ClientNegotiation): NegotiationStep[] {
  const sasl = new SaslAttempt(stream);
  return [
    new StartTlsStep(stream),
    new SaslStep(stream, sasl),
    new Sasl2Step(stream, sasl),
    new RegisterStep(stream),
  ];
}

const NO_STEPS: readonly NegotiationStep[] = Object.freeze([]);

function isLoopback(address: string): boolean {
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  return a === '::1' || (isIP(a) === 4 && a.startsWith('127.'));
}

/**
 * The client profile of the stream machine (RFC 6120 §4–§7): stream header, STARTTLS, SASL,
 * resource binding, then stanzas validated, stamped and handed to the router in order. Knows
 * nothing of rosters or rooms.
 */
export class C2SStream extends StreamMachine implements ClientNegotiation {
  readonly kind = 'c2s';
  protected readonly contentNs = NS.client;
  host: Host | undefined;
  /** Authenticated account (bare JID), after SASL. */
  account: Jid | undefined;
  session: Session | undefined;
  /** Outbound filters, counters and holders (CSI, stream management). */
  readonly pipeline = new StreamPipeline();

  protected override peerBehind(): boolean {
    return this.pipeline.busy;
  }

  /**
   * Negotiation steps before authentication, then before binding (RFC 6120 §5–§7). Let go once a
   * resource is bound: a session lives for hours without them.
   */
  private negotiating: readonly NegotiationStep[] = negotiationSteps(this);
  private binding: readonly NegotiationStep[] = [new BindStep(this)];

  constructor(
    transport: Transport,
    readonly server: ServerCore,
  ) {
    super(transport, server);
    this.start();
  }

  protected override errorHeaderFrom(): string | undefined {
    return this.host?.domain;
  }

  // --- stream header ------------------------------------------------------------------------

  protected openStream(attrs: Record<string, string>, contentNs: string): void {
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

  /** May credentials be sent on this connection now? */
  credentialsAllowed(): boolean {
    if (this.transport.secure) return true;
    const policy = this.server.config.auth.allowPlaintext;
    return policy === 'always' || (policy === 'loopback' && isLoopback(this.transport.remoteAddress));
  }

  /** Runs `fn` with the transport's writes held, so that they leave in one piece. */
  corked(fn: () => void): void {
    this.transport.cork?.();
    try {
      fn();
    } finally {
      this.transport.uncork?.();
    }
  }

  channelBinding(type: string): Uint8Array | undefined {
    return saslOffer(this.transport).channelBindingTypes.includes(type)
      ? this.transport.channelBinding?.(type)
      : undefined;
  }

  sendFeatures(): void {
    const features: Element[] = [];
    const steps =
      this.state === 'negotiating' ? this.negotiating : this.state === 'authenticated' ? this.binding : [];
    for (const step of steps) features.push(...step.features());
    if (this.state === 'authenticated') {
      for (const f of this.server.streamFeatures) {
        const el = f(this);
        if (el) features.push(el);
      }
    }
    this.writeElement(xml('features', { xmlns: NS.stream }, features));
  }

  /** Authenticated (SASL succeeded), bound or not. */
  get authenticated(): boolean {
    return this.account !== undefined;
  }

  protected handleElement(el: Element): void | Promise<void> {
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
    for (const step of this.negotiating) {
      const r = step.handle(el);
      if (r !== NOT_MINE) return r;
    }
    if (el.name === 'message' || el.name === 'presence' || el.name === 'iq') {
      this.fail('not-authorized', 'stanzas are not accepted before authentication');
      return;
    }
    this.fail('unsupported-stanza-type', `<${el.name} xmlns='${el.xmlns}'/> is not allowed here`);
  }

  private handleAuthenticated(el: Element): void | Promise<void> {
    for (const step of this.binding) {
      const r = step.handle(el);
      if (r !== NOT_MINE) return r;
    }
    if (el.name !== 'message' && el.name !== 'presence' && el.name !== 'iq') return this.nonza(el);
    this.fail('not-authorized', 'bind a resource first');
  }

  // --- what the steps do to the stream -----------------------------------------------------------

  tlsStarting(): void {
    this.discardInput = true;
  }

  tlsEstablished(): void {
    // Anything the client sent after <starttls/> in the clear is discarded (RFC 6120 §5.4.3.3).
    this.queue = undefined;
    this.state = 'header';
    this.discardInput = false;
    this.newParser();
  }

  authenticatedAs(account: Jid, restart = true): void {
    this.account = account;
    this.state = 'authenticated';
    if (restart && !this.transport.framed) this.newParser();
  }

  boundTo(session: Session): void {
    this.session = session;
    this.state = 'bound';
    this.established();
  }

  protected override established(): void {
    super.established();
    this.negotiating = NO_STEPS;
    this.binding = NO_STEPS;
  }

  // --- established stream -------------------------------------------------------------------------

  private handleBound(el: Element): void | Promise<void> {
    if (el.name === 'message' || el.name === 'presence' || el.name === 'iq') {
      if (el.xmlns !== this.contentNs) {
        this.fail('invalid-namespace', `stanzas must be qualified by ${this.contentNs}`);
        return;
      }
      this.pipeline.received(el);
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
    const invalid = checkStanza(el);
    if (invalid) {
      if (answerable(el)) this.writeStanza(errorReply(el, invalid));
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
      if (s && !s.closed && s.stream === this && stanza.name === 'message' && !this.pipeline.tracksDelivery)
        s.undelivered.push(stanza);
      return;
    }
    const el = this.pipeline.outbound(stanza);
    if (el !== null) this.writeStanza(el);
  }

  protected override beforeWrite(el: Element): void {
    this.pipeline.written(el);
  }

  protected override keepsUntilSent(el: Element): boolean {
    return el.name === 'message' && !this.pipeline.tracksDelivery;
  }

  protected override cutOffUnsent(unsent: Element[]): void {
    const session = this.session;
    if (session && session.stream === this && !session.closed) session.undelivered.push(...unsent);
  }

  /**
   * Attaches a session resumed from another stream (XEP-0198): this stream becomes bound to it
   * without binding a resource again.
   */
  adoptSession(session: Session): void {
    session.stream = this;
    this.session = session;
    this.state = 'bound';
    this.established();
  }

  protected async finished_(clean: boolean): Promise<void> {
    await this.server.streamClosed(this, clean);
  }
}
