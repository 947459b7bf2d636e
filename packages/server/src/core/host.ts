import type { Element } from '@natter/xml';
import { HookBus, type RouteEvent } from './hooks.js';
import { IqDispatcher } from './iq-dispatcher.js';
import type { Router } from './router.js';
import type { SessionRegistry } from './session-registry.js';
import type { SessionRecord } from './session.js';
import type { Logger } from './logger.js';
import type { AccountStore } from '../accounts/account-store.js';
import type { Bind2Feature, Sasl2Extension } from './sasl2-extension.js';

/** Disco identity (XEP-0030). */
export interface Identity {
  category: string;
  type: string;
  name?: string;
}

const CORE_PRIORITY = -1000;

/**
 * A virtual host: its hook bus, its IQ tables (to the domain, to an account's bare JID), its
 * disco data, and the core delivery rules of RFC 6121 §8.5 registered at the lowest priority.
 */
export class Host {
  readonly hooks: HookBus;
  readonly hostIq: IqDispatcher;
  readonly accountIq: IqDispatcher;
  readonly hostFeatures = new Set<string>();
  readonly accountFeatures = new Set<string>();
  readonly hostIdentities: Identity[] = [{ category: 'server', type: 'im', name: 'Natter' }];
  readonly accountIdentities: Identity[] = [{ category: 'account', type: 'registered' }];
  /** Service domains registered by this host's modules (conference.…, pubsub.…). */
  readonly services = new Set<string>();
  /** APIs modules offer each other on this host, by name (e.g. 'roster'). */
  readonly provided = new Map<string, unknown>();
  /** Modules' parts of SASL2 and Bind2 (XEP-0388, XEP-0386), in registration order. */
  readonly sasl2Extensions: Sasl2Extension[] = [];
  readonly bind2Features: Bind2Feature[] = [];

  constructor(
    readonly domain: string,
    readonly router: Router,
    readonly sessions: SessionRegistry,
    readonly accounts: AccountStore,
    readonly log: Logger,
  ) {
    this.hooks = new HookBus((hook, owner, err) =>
      log.error({ err, hook, module: owner }, 'hook handler failed'),
    );
    const crash = (owner: string, err: unknown, stanza: Element) =>
      log.error({ err, module: owner, stanza: stanza.toString().slice(0, 500) }, 'IQ handler failed');
    this.hostIq = new IqDispatcher(crash);
    this.accountIq = new IqDispatcher(crash);
    this.registerCoreDelivery();
  }

  private registerCoreDelivery(): void {
    const h = this.hooks;
    h.add('message/bare', (ev) => this.messageToBare(ev), CORE_PRIORITY);
    h.add('message/full', (ev) => this.messageToFull(ev), CORE_PRIORITY);
    h.add('message/host', () => true, CORE_PRIORITY); // nothing to do with messages to the server itself
    h.add(
      'message/offline',
      (ev) => {
        this.router.bounce(ev, 'service-unavailable');
        return true;
      },
      CORE_PRIORITY,
    );
    h.add('presence/bare', (ev) => this.presenceToBare(ev), CORE_PRIORITY);
    h.add('presence/full', (ev) => this.presenceToFull(ev), CORE_PRIORITY);
    h.add('presence/host', () => true, CORE_PRIORITY);
    h.add('iq/host', (ev) => this.unhandledIq(ev), CORE_PRIORITY);
    h.add('iq/bare', (ev) => this.unhandledIq(ev), CORE_PRIORITY);
    h.add('iq/full', (ev) => this.iqToFull(ev), CORE_PRIORITY);
  }

  /** RFC 6120 §8.4: a request nobody handles gets service-unavailable; responses are dropped. */
  private unhandledIq(ev: RouteEvent): boolean {
    const type = ev.stanza.attrs.type;
    if (type === 'get' || type === 'set') this.router.bounce(ev, 'service-unavailable');
    return true;
  }

  private iqToFull(ev: RouteEvent): boolean {
    const session = this.sessions.get(ev.to);
    if (session) this.router.deliver(session, ev.stanza);
    else this.router.bounce(ev, 'service-unavailable');
    return true;
  }

  /** Whether a local account exists (sessions prove it without a query). */
  async accountExists(ev: RouteEvent): Promise<boolean> {
    if (this.sessions.ofAccount(ev.to).length > 0) return true;
    return this.accounts.exists(ev.to.local, ev.to.domain);
  }

  /** RFC 6121 §8.5.2 message to a bare JID. */
  private async messageToBare(ev: RouteEvent): Promise<boolean> {
    const type = ev.stanza.attrs.type ?? 'normal';
    if (type === 'error') return true;
    if (!(await this.accountExists(ev))) {
      this.router.bounce(ev, 'service-unavailable');
      return true;
    }
    if (type === 'groupchat') {
      this.router.bounce(ev, 'service-unavailable');
      return true;
    }
    const candidates = this.sessions.available(ev.to).filter((s) => s.priority >= 0);
    if (type === 'headline') {
      for (const s of candidates) this.router.deliver(s, ev.stanza);
      if (candidates.length > 0)
        await this.hooks.notify('message/delivered', { ...ev, sessions: candidates });
      return true;
    }
    if (candidates.length === 0) {
      await this.hooks.run('message/offline', ev);
      return true;
    }
    let top = -Infinity;
    for (const s of candidates) if (s.priority > top) top = s.priority;
    const targets = candidates.filter((s) => s.priority === top);
    for (const s of targets) this.router.deliver(s, ev.stanza);
    await this.hooks.notify('message/delivered', { ...ev, sessions: targets });
    return true;
  }

  /** RFC 6121 §8.5.3 message to a full JID. */
  private messageToFull(ev: RouteEvent): boolean | Promise<boolean> {
    const session = this.sessions.get(ev.to);
    if (session) {
      this.router.deliver(session, ev.stanza);
      if (!this.hooks.has('message/delivered')) return true;
      return this.hooks.notify('message/delivered', { ...ev, sessions: [session] }).then(() => true);
    }
    // RFC 6121 §8.5.3.2.1: only chat falls back to the bare JID; headlines are dropped (no
    // presence leak), errors ignored, normal and groupchat answered with service-unavailable.
    const type = ev.stanza.attrs.type ?? 'normal';
    if (type === 'chat') return this.messageToBare({ ...ev, to: ev.to.bare });
    if (type === 'normal' || type === 'groupchat') this.router.bounce(ev, 'service-unavailable');
    return true;
  }

  /**
   * Presence to a bare JID that no module consumed: directed presence, and presence errors (e.g.
   * a subscription request that could not reach its contact), go to every available resource.
   */
  private presenceToBare(ev: RouteEvent): boolean {
    const type = ev.stanza.attrs.type;
    if (type !== undefined && type !== 'unavailable' && type !== 'error') return true;
    for (const s of this.sessions.available(ev.to)) this.router.deliver(s, ev.stanza);
    return true;
  }

  private presenceToFull(ev: RouteEvent): boolean | Promise<boolean> {
    const session = this.sessions.get(ev.to);
    const type = ev.stanza.attrs.type;
    if (session) {
      this.router.deliver(session, ev.stanza);
      return true;
    }
    if (
      type === 'subscribe' ||
      type === 'subscribed' ||
      type === 'unsubscribe' ||
      type === 'unsubscribed' ||
      type === 'probe'
    ) {
      const r = this.hooks.run('presence/bare', { ...ev, to: ev.to.bare });
      return r instanceof Promise ? r.then(() => true) : true;
    }
    return true;
  }

  /** Sessions of an account that should receive roster pushes. */
  interestedSessions(bare: string): SessionRecord[] {
    return this.sessions.ofAccount(bare).filter((s) => s.interested);
  }
}
