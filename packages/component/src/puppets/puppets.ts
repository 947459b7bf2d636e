import type { Jid } from '@natter/jid';
import { xml, type Element } from '@natter/xml';
import type { Component, ComponentPresence } from '../component.js';
import { Emitter } from '../emitter.js';

const NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info';

/** A puppet's presence: available with an optional show/status, or unavailable. */
export interface PuppetPresence {
  /** Default `available`. */
  type?: 'available' | 'unavailable';
  /** `away`, `chat`, `dnd` or `xa` (RFC 6121 §4.7.2.1); absent means online. */
  show?: 'away' | 'chat' | 'dnd' | 'xa';
  status?: string;
}

export interface PuppetsOptions {
  /**
   * Approve every subscription request to a known puppet at once (answer `subscribed` and send its
   * presence). Default true. When false, each request is a `subscribe` event to approve or deny.
   */
  autoApprove?: boolean;
  /** Most puppets (default 100,000): `add()` beyond throws, bounding memory. */
  maxPuppets?: number;
  /**
   * Called when a probe or a subscription request reaches a name that is not a puppet: return
   * puppet presence to create it on the fly (e.g. after a look-up on the legacy network), or
   * undefined to answer as for an unknown contact (unavailable to probes, unsubscribed to requests).
   */
  resolve?: (name: string, from: Jid) => PuppetPresence | undefined | Promise<PuppetPresence | undefined>;
}

export interface SubscribeRequest {
  puppet: Puppet;
  from: Jid;
  approve(): void;
  deny(): void;
}

export interface PuppetsEvents {
  /** A user asked to see a puppet's presence (only when autoApprove is false). */
  subscribe: SubscribeRequest;
  /** A user stopped seeing a puppet's presence. */
  unsubscribe: { puppet: Puppet; from: Jid };
  /** A user's presence reached a puppet (directed presence, or the user's broadcast to contacts). */
  presence: { puppet: Puppet; presence: ComponentPresence };
}

/**
 * A legacy contact shown as `name@domain`: it has presence, answers probes with it, sends it to
 * the users subscribed to it, and can send messages.
 */
export class Puppet {
  readonly jid: Jid;
  #presence: PuppetPresence;
  /** Bare JIDs of the users that receive this puppet's presence. */
  readonly subscribers = new Set<string>();

  constructor(
    private readonly gw: Component,
    readonly name: string,
    presence: PuppetPresence,
  ) {
    this.jid = gw.jid(name);
    this.#presence = presence;
  }

  get presence(): PuppetPresence {
    return { ...this.#presence };
  }

  /** Sets the puppet's presence and sends it to every subscriber. */
  setPresence(presence: PuppetPresence): void {
    this.#presence = { ...presence };
    for (const to of this.subscribers) this.sendPresenceTo(to);
  }

  /** Sends the current presence to one address (used for probes and new subscribers). */
  sendPresenceTo(to: Jid | string): void {
    const p = this.#presence;
    this.gw.sendPresence({
      from: this.jid,
      to,
      type: p.type === 'unavailable' ? 'unavailable' : undefined,
      show: p.type === 'unavailable' ? undefined : p.show,
      status: p.status,
    });
  }

  /** Sends a chat message from the puppet; returns its id. */
  say(
    to: Jid | string,
    body: string,
    opts: { type?: string; id?: string; children?: Element[] } = {},
  ): string {
    return this.gw.sendMessage({ from: this.jid, to, body, type: opts.type ?? 'chat', ...opts });
  }

  /**
   * Asks a user to add this puppet to their roster (presence subscribe from the puppet, RFC 6121
   * §3.1); the user's answer arrives as a `presence` event. The user is recorded as a subscriber
   * so that the puppet's presence reaches them once the user's server accepts it.
   */
  requestSubscription(user: Jid | string, nick?: string): void {
    const bare = typeof user === 'string' ? user.split('/')[0]! : user.toBareString();
    this.subscribers.add(bare);
    this.gw.sendPresence({
      from: this.jid,
      to: bare,
      type: 'subscribe',
      children: nick ? [nickElement(nick)] : undefined,
    });
  }
}

/** XEP-0172 user nickname, so that the user's client shows the legacy name. */
function nickElement(nick: string): Element {
  return xml('nick', { xmlns: 'http://jabber.org/protocol/nick' }, nick);
}

/** The gateway's puppets, `gw.puppets`. */
export class Puppets extends Emitter<PuppetsEvents> {
  readonly #all = new Map<string, Puppet>();
  readonly #opts: Required<Omit<PuppetsOptions, 'resolve'>> & Pick<PuppetsOptions, 'resolve'>;

  constructor(
    private readonly gw: Component,
    opts: PuppetsOptions = {},
  ) {
    super((err) => gw.emit('error', err));
    this.#opts = {
      autoApprove: opts.autoApprove ?? true,
      maxPuppets: opts.maxPuppets ?? 100_000,
      resolve: opts.resolve,
    };
    gw.interceptors.presence.push((p) => this.#onPresence(p));
    // XEP-0030: a puppet answers disco#info as the legacy contact it stands for
    gw.disco.providers.push({
      info: (req, node) => {
        const puppet = node === '' && req.to.resource === '' ? this.#all.get(req.to.local) : undefined;
        if (!puppet) return undefined;
        return {
          identities: [{ category: 'client', type: 'pc', name: puppet.name }],
          features: [NS_DISCO_INFO],
        };
      },
    });
  }

  /** Adds (or returns) the puppet `name@domain`; `name` is the escaped local part (see escapeLocal). */
  add(name: string, presence: PuppetPresence = { type: 'unavailable' }): Puppet {
    const key = this.gw.jid(name).local;
    const existing = this.#all.get(key);
    if (existing) return existing;
    if (this.#all.size >= this.#opts.maxPuppets)
      throw new RangeError(`more than ${this.#opts.maxPuppets} puppets`);
    const puppet = new Puppet(this.gw, key, presence);
    this.#all.set(key, puppet);
    return puppet;
  }

  get(name: string): Puppet | undefined {
    return this.#all.get(this.gw.jid(name).local);
  }

  /** Removes a puppet; its subscribers see it go unavailable. */
  remove(name: string): boolean {
    const puppet = this.get(name);
    if (!puppet) return false;
    puppet.setPresence({ type: 'unavailable' });
    this.#all.delete(puppet.name);
    return true;
  }

  list(): Puppet[] {
    return [...this.#all.values()];
  }

  get size(): number {
    return this.#all.size;
  }

  set autoApprove(value: boolean) {
    this.#opts.autoApprove = value;
  }

  get autoApprove(): boolean {
    return this.#opts.autoApprove;
  }

  #onPresence(p: ComponentPresence): boolean {
    if (p.to.local === '' || p.to.resource !== '' || this.gw.rooms.get(p.to.local)) return false;
    const puppet = this.#all.get(p.to.local);
    if (!puppet) {
      // A gateway that uses no puppets (none added, no resolver) sees these presences itself.
      if (this.#all.size === 0 && !this.#opts.resolve) return false;
      if (p.type === 'probe' || p.type === 'subscribe') {
        void this.#resolveUnknown(p);
        return true;
      }
      return false;
    }
    this.#forPuppet(puppet, p);
    return true;
  }

  async #resolveUnknown(p: ComponentPresence): Promise<void> {
    let presence: PuppetPresence | undefined;
    try {
      presence = await this.#opts.resolve?.(p.to.local, p.from);
    } catch (err) {
      this.gw.emit('error', err instanceof Error ? err : new Error(String(err)));
    }
    const puppet = presence ? this.add(p.to.local, presence) : this.#all.get(p.to.local);
    if (puppet) {
      this.#forPuppet(puppet, p);
      return;
    }
    // RFC 6121 §3.1.3 / §4.3.2: a contact that does not exist
    if (p.type === 'subscribe')
      this.gw.sendPresence({ from: p.to.bare, to: p.from.bare, type: 'unsubscribed' });
    else this.gw.sendPresence({ from: p.to.bare, to: p.from, type: 'unavailable' });
  }

  #forPuppet(puppet: Puppet, p: ComponentPresence): void {
    const user = p.from.toBareString();
    switch (p.type) {
      case 'probe':
        // RFC 6121 §4.3: the contact answers a probe with its current presence
        puppet.sendPresenceTo(p.from);
        return;
      case 'subscribe': {
        let answered = false;
        const approve = () => {
          if (answered) return;
          answered = true;
          puppet.subscribers.add(user);
          this.gw.sendPresence({ from: puppet.jid, to: user, type: 'subscribed' });
          puppet.sendPresenceTo(user);
        };
        const deny = () => {
          if (answered) return;
          answered = true;
          this.gw.sendPresence({ from: puppet.jid, to: user, type: 'unsubscribed' });
        };
        if (this.#opts.autoApprove) approve();
        else this.emit('subscribe', { puppet, from: p.from.bare, approve, deny });
        return;
      }
      case 'unsubscribe':
        // RFC 6121 §3.3: the user no longer wants the puppet's presence
        if (puppet.subscribers.delete(user)) {
          this.gw.sendPresence({ from: puppet.jid, to: user, type: 'unavailable' });
        }
        this.emit('unsubscribe', { puppet, from: p.from.bare });
        return;
      case 'subscribed':
      case 'unsubscribed':
        // the user's answer to the puppet's own request: of interest to the gateway
        this.gw.emit('presence', p);
        return;
      default:
        this.emit('presence', { puppet, presence: p });
        this.gw.emit('presence', p);
    }
  }
}
