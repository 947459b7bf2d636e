import { xml, type Element } from '@natter/xml';
import { parseJid, type Jid } from '@natter/jid';
import { NS, errorReply, StanzaError } from '@natter/protocol';
import type { Transport } from '../transport.js';
import type { ServerCore } from '../server-core.js';
import { StreamMachine } from './stream-machine.js';
import { answerable, bounceUnsent, bouncedIfUnsent, checkStanza } from './stanza-checks.js';
import { handshakeMatches } from './steps/handshake.js';
import { logAuthFailure } from '../auth-log.js';

/**
 * The component profile of the stream machine (XEP-0114, accept side): the component opens a
 * `jabber:component:accept` stream to its domain, proves the shared secret with the handshake, then
 * exchanges stanzas: everything addressed to its domain is written to it, and what it sends (from
 * an address on its domain) is validated and routed like a local entity's stanza.
 */
export class ComponentStream extends StreamMachine {
  readonly kind = 'component';
  protected readonly contentNs = NS.component;
  /** The component's domain, once the header named a configured one. */
  domain: string | undefined;
  /** Components belong to no virtual host and have no account or session. */
  readonly host = undefined;
  readonly account = undefined;
  readonly session = undefined;

  constructor(
    transport: Transport,
    readonly server: ServerCore,
  ) {
    super(transport, server);
    server.componentStreams.add(this);
    this.start();
  }

  /** The handshake succeeded (the limiter gives it the authenticated allowance). */
  get authenticated(): boolean {
    return this.state === 'bound';
  }

  /** XEP-0114 streams carry no version: a component expects no stream features. */
  protected override headerExtra(): string {
    return '';
  }

  protected override errorHeaderFrom(): string | undefined {
    return this.domain;
  }

  protected openStream(attrs: Record<string, string>, contentNs: string): void {
    if (this.state !== 'header') {
      this.fail('not-authorized', 'a component stream is not restarted');
      return;
    }
    const to = (attrs.to ?? '').toLowerCase();
    // An own key only: `to='constructor'` must not find Object.prototype's (secret: undefined).
    const known = Object.hasOwn(this.server.config.components, to);
    if (known) this.domain = to;
    this.sendHeader(known ? to : undefined, undefined);
    if (contentNs !== NS.component) {
      this.fail('invalid-namespace', `the content namespace of a component stream is ${NS.component}`);
      return;
    }
    if (!known) {
      this.fail('host-unknown', to === '' ? 'name the component domain in to' : `no component ${to} here`);
      return;
    }
    this.state = 'negotiating';
  }

  protected handleElement(el: Element): void | Promise<void> {
    if (this.state === 'negotiating') return this.handshake(el);
    if (this.state !== 'bound') return;
    if (el.name === 'message' || el.name === 'presence' || el.name === 'iq') {
      if (el.xmlns !== this.contentNs) {
        this.fail('invalid-namespace', `stanzas must be qualified by ${this.contentNs}`);
        return;
      }
      return this.stanza(el);
    }
    this.fail('unsupported-stanza-type', `<${el.name} xmlns='${el.xmlns}'/> is not supported`);
  }

  private handshake(el: Element): void {
    const domain = this.domain!;
    if (el.name !== 'handshake' || el.xmlns !== NS.component) {
      this.fail('not-authorized', 'send the handshake first');
      return;
    }
    const secret = this.server.config.components[domain]!.secret;
    if (typeof secret !== 'string' || secret === '') {
      this.fail('not-authorized');
      return;
    }
    const ip = this.transport.remoteAddress;
    // Secret guessing, one connection per guess: the address's failed attempts (SASL's and
    // handshakes alike) are limited before anything is checked.
    const wait = this.server.limiter?.authWait?.(ip) ?? 0;
    if (wait > 0) {
      this.fail(
        'policy-violation',
        `too many failed authentication attempts from your address; try again in ${Math.ceil(wait / 1000)} s`,
      );
      return;
    }
    if (!handshakeMatches(this.streamId, secret, el.text())) {
      logAuthFailure(this.server.log, {
        address: ip,
        username: domain,
        mechanism: 'XEP-0114',
        condition: 'not-authorized',
      });
      this.server.limiter?.authFailed(ip);
      this.fail('not-authorized', 'wrong handshake');
      return;
    }
    if (this.server.stopping) {
      this.fail('system-shutdown');
      return;
    }
    if (!this.server.bindComponent(domain, this)) {
      // The working connection is kept: a stray or misconfigured second instance cannot hijack it.
      // Whether it still works is checked: a silent one is closed, and the next attempt gets in.
      this.server.probeComponent(domain);
      this.fail('conflict', `component ${domain} is already connected`);
      return;
    }
    this.state = 'bound';
    this.established();
    this.writeElement(xml('handshake', { xmlns: NS.component }));
    this.server.log.info({ component: domain, ip: this.transport.remoteAddress }, 'component connected');
    this.server.componentReady(domain);
  }

  /** XEP-0114 §3.1 / RFC 6120 §8.1: addresses on the component's own domain only, then the router. */
  private stanza(el: Element): void | Promise<void> {
    const domain = this.domain!;
    if (this.server.limiter && !this.server.limiter.stanza(this)) return;
    const fromAttr = el.attrs.from;
    const toAttr = el.attrs.to;
    if (fromAttr === undefined || fromAttr === '' || toAttr === undefined || toAttr === '') {
      this.fail('improper-addressing', 'a component stanza needs both from and to');
      return;
    }
    let from: Jid;
    try {
      from = parseJid(fromAttr);
    } catch {
      this.fail('invalid-from', `${fromAttr} is not a valid JID`);
      return;
    }
    if (from.domain !== domain) {
      this.fail('invalid-from', `you may send from ${domain} and addresses on it, not ${fromAttr}`);
      return;
    }
    el.attrs.from = from.toString();
    const invalid = checkStanza(el);
    if (invalid) {
      if (answerable(el)) this.writeStanza(errorReply(el, invalid));
      return;
    }
    let to: Jid;
    try {
      to = parseJid(toAttr);
    } catch (err) {
      const type = el.attrs.type;
      if (type !== 'error' && type !== 'result') {
        const reply = errorReply(el, new StanzaError('jid-malformed', { text: (err as Error).message }));
        delete reply.attrs.from;
        this.writeStanza(reply);
      }
      return;
    }
    el.attrs.to = to.toString();
    return this.server.routeFromComponent({ stanza: el, from, to, origin: undefined });
  }

  /** A stanza routed to the component's domain. */
  deliver(stanza: Element): void {
    this.writeStanza(stanza);
  }

  /** Messages and IQ requests are kept until sent: a component cut off as a slow reader bounces them. */
  protected override keepsUntilSent(el: Element): boolean {
    return bouncedIfUnsent(el);
  }

  protected override cutOffUnsent(unsent: Element[]): void {
    // Bounced once the domain is unbound (finished_), so that an error to an address of the
    // component itself is not written to the stream being cut off.
    this.unsent = unsent;
  }

  private unsent: Element[] = [];

  protected async finished_(): Promise<void> {
    this.server.componentStreams.delete(this);
    if (this.domain !== undefined) this.server.unbindComponent(this.domain, this);
    const unsent = this.unsent;
    this.unsent = [];
    // XEP-0114: what the component never got is answered as if it had been away.
    bounceUnsent(this.server.router, unsent, 'service-unavailable');
  }
}
