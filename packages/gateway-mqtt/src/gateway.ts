// The XMPP↔MQTT bridge. Topics are addresses on the gateway's domain (see topic-address.ts).
// - Roster: a user who subscribes to the presence of `topic@domain` follows the topic; messages
//   published on it arrive as chat messages from that contact; a message to the contact is published.
//   Each followed topic is a puppet of the component (gw.puppets) that answers probes and
//   subscription requests.
// - Rooms: a user who joins `topic@domain/nick` (XEP-0045 join) gets the topic's messages as
//   groupchat; a groupchat message to the room is published on the topic.
// The gateway subscribes at the broker to each topic filter somebody needs, and unsubscribes when
// nobody does any more. Subscriptions are kept in a file and renewed at start.
import { randomBytes } from 'node:crypto';
import {
  StanzaError,
  createComponent,
  jid,
  parseJid,
  xml,
  type Component,
  type ComponentMessage,
  type ComponentPresence,
  type Element,
  type Jid,
  type Puppet,
  type PuppetPresence,
  type SubscribeRequest,
} from '@natter/component';
import type { IClientPublishOptions, MqttClient, Packet } from 'mqtt';
import type { GatewayConfig } from './config.js';
import { payloadBody } from './payload.js';
import { Policy } from './policy.js';
import { RateLimiter } from './rate-limiter.js';
import { SubscriptionStore, type StoredState } from './subscription-store.js';
import { isWildcard, localToTopic, topicProblem, topicToLocal } from './topic-address.js';

/** Namespace of the element that tells a machine reader which topic a message came from. */
export const NS_MQTT = 'urn:natter:gateway-mqtt:0';

const NS_MUC_USER = 'http://jabber.org/protocol/muc#user';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type Log = (level: LogLevel, message: string, data?: Record<string, unknown>) => void;

export interface GatewayOptions {
  config: GatewayConfig;
  /** A connected MQTT client (MQTT 5), owned by the caller. */
  mqtt: MqttClient;
  log?: Log;
  /** Reconnect the component after a lost connection (default true). */
  reconnect?: boolean;
  /** How long a publish may wait for the broker's acknowledgement (ms). */
  publishTimeoutMs?: number;
}

interface Room {
  /** Full JID of an occupant → nick. */
  occupants: Map<string, string>;
}

interface BrokerSubscription {
  id: number;
  ready: Promise<void>;
}

interface PendingEcho {
  filter: string;
  nick: string;
  id: string | undefined;
  expires: number;
}

const MAX_PENDING_ECHOES = 1000;
/** Presences waiting to be handled; beyond, new ones are dropped (a flood must not grow memory). */
const MAX_QUEUED_PRESENCES = 10_000;
const ECHO_TTL_MS = 60_000;

export class MqttGateway {
  readonly domain: string;
  /** The XEP-0114 component (connected by `start()`). */
  readonly component: Component;
  private readonly config: GatewayConfig;
  private readonly mqtt: MqttClient;
  private readonly log: Log;
  private readonly policy: Policy;
  private readonly rate: RateLimiter;
  private readonly store: SubscriptionStore;
  private readonly publishTimeoutMs: number;
  /** Bare JID of a user → filters followed as contacts. */
  private readonly contacts = new Map<string, Set<string>>();
  /** Filter → bare JIDs following it as a contact. */
  private readonly followers = new Map<string, Set<string>>();
  private readonly rooms = new Map<string, Room>();
  /** Filter → its subscription at the broker. */
  private readonly broker = new Map<string, BrokerSubscription>();
  private readonly filterById = new Map<number, string>();
  private readonly echoes = new Map<string, PendingEcho>();
  private nextSubscriptionId = 1;
  /** Presence handling is serialised: joins, leaves and (un)subscriptions change shared state. */
  private presenceQueue: Promise<void> = Promise.resolve();
  private queued = 0;
  private stopped = false;

  constructor(opts: GatewayOptions) {
    this.config = opts.config;
    this.domain = opts.config.component.domain;
    this.mqtt = opts.mqtt;
    this.log = opts.log ?? (() => {});
    this.component = createComponent({
      service: opts.config.component.service,
      domain: opts.config.component.domain,
      secret: opts.config.component.secret,
      reconnect: opts.reconnect ?? true,
      disco: {
        identities: [{ category: 'conference', type: 'text', name: 'MQTT topics' }],
        features: ['http://jabber.org/protocol/muc'],
      },
      puppets: {
        // Each subscription request is checked (user, topic, limits) before it is approved.
        autoApprove: false,
        resolve: (name, from) => this.resolveContact(name, from),
        maxPuppets: opts.config.limits.maxTopics,
      },
      log: this.log,
    });
    this.publishTimeoutMs = opts.publishTimeoutMs ?? 10_000;
    this.policy = new Policy(opts.config.allowedUsers, opts.config.topicPrefixes, opts.config.allowWildcards);
    this.rate = new RateLimiter(opts.config.limits.publishRate);
    this.store = new SubscriptionStore(
      opts.config.dataFile,
      () => this.snapshot(),
      (err) => this.log('error', 'cannot save subscriptions', { err: String(err) }),
    );
  }

  /**
   * Loads saved subscriptions, subscribes at the broker, starts handling stanzas, and connects the
   * component (rejects with a ComponentError when the server refuses it).
   */
  async start(): Promise<void> {
    const saved = await this.store.load();
    // What the configuration no longer allows (users, topics) is dropped, not renewed.
    let dropped = 0;
    const allowed = (user: string, filter: string): boolean => {
      const jid = tryParse(user);
      const ok = !!jid && this.policy.userAllowed(jid) && !this.policy.topicRefusal(filter);
      if (!ok) dropped++;
      return ok;
    };
    for (const [user, filters] of Object.entries(saved.contacts)) {
      for (const f of filters) {
        if (!allowed(user, f)) continue;
        this.addContact(user, f);
        this.contactPuppet(f).subscribers.add(user);
      }
    }
    for (const [filter, occupants] of Object.entries(saved.rooms)) {
      for (const [full, nick] of Object.entries(occupants)) {
        if (allowed(full, filter)) this.room(filter).occupants.set(full, nick);
      }
    }
    if (dropped > 0) {
      this.log('warn', 'saved subscriptions the configuration no longer allows were dropped', { dropped });
      this.store.save();
    }
    this.mqtt.on('message', (topic, payload, packet) => this.fromBroker(topic, payload, packet));
    // A clean session forgets subscriptions: renew them on every reconnection.
    this.mqtt.on('connect', () => {
      for (const [filter, sub] of this.broker) {
        this.brokerSubscribe(filter, sub.id).catch((err: unknown) =>
          this.log('warn', 'cannot renew a subscription', { filter, err: String(err) }),
        );
      }
    });
    for (const filter of this.neededFilters()) {
      await this.ensureBroker(filter).catch((err: unknown) =>
        this.log('warn', 'cannot renew a subscription', { filter, err: String(err) }),
      );
    }
    this.component.on('message', (m) => {
      this.onMessage(m).catch((err: unknown) =>
        this.log('error', 'message handling failed', { err: String(err) }),
      );
    });
    this.component.on('presence', (p) => this.enqueue(() => this.onPresence(p)));
    this.component.puppets.on('subscribe', (req) => this.enqueue(() => this.follow(req)));
    this.component.puppets.on('unsubscribe', ({ puppet, from }) =>
      this.enqueue(() => this.unfollow(from, localToTopic(puppet.name))),
    );
    this.component.on('online', () => this.announce());
    this.component.on('error', (err) => this.log('warn', 'component error', { err: String(err) }));
    await this.component.connect();
  }

  /** Stops handling stanzas and broker messages, writes pending changes, disconnects the component. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.presenceQueue;
    await this.store.flush();
    await this.component.disconnect();
  }

  /** Topic filters a user follows (as contacts and in rooms). */
  subscriptionsOf(user: Jid): string[] {
    return [...this.topicsOf(user.toBareString())];
  }

  // ------------------------------------------------------------------------------------------
  // State

  private snapshot(): StoredState {
    const contacts: StoredState['contacts'] = {};
    for (const [user, filters] of this.contacts) if (filters.size > 0) contacts[user] = [...filters];
    const rooms: StoredState['rooms'] = {};
    for (const [filter, room] of this.rooms) {
      if (room.occupants.size > 0) rooms[filter] = Object.fromEntries(room.occupants);
    }
    return { contacts, rooms };
  }

  private addContact(user: string, filter: string): void {
    let filters = this.contacts.get(user);
    if (!filters) this.contacts.set(user, (filters = new Set()));
    filters.add(filter);
    let users = this.followers.get(filter);
    if (!users) this.followers.set(filter, (users = new Set()));
    users.add(user);
  }

  private removeContact(user: string, filter: string): boolean {
    const filters = this.contacts.get(user);
    if (!filters?.delete(filter)) return false;
    if (filters.size === 0) this.contacts.delete(user);
    const users = this.followers.get(filter);
    users?.delete(user);
    if (users?.size === 0) this.followers.delete(filter);
    return true;
  }

  private room(filter: string): Room {
    let room = this.rooms.get(filter);
    if (!room) this.rooms.set(filter, (room = { occupants: new Map() }));
    return room;
  }

  private contactPresence(filter: string): PuppetPresence {
    return { status: `MQTT topic ${filter}` };
  }

  private contactPuppet(filter: string): Puppet {
    const name = topicToLocal(filter);
    return this.component.puppets.get(name) ?? this.component.puppets.add(name, this.contactPresence(filter));
  }

  private topicsOf(user: string): Set<string> {
    const topics = new Set(this.contacts.get(user));
    for (const [filter, room] of this.rooms) {
      for (const full of room.occupants.keys()) if (bareOf(full) === user) topics.add(filter);
    }
    return topics;
  }

  /** Users with at least one subscription (contact or room). */
  private userCount(): number {
    const users = new Set(this.contacts.keys());
    for (const room of this.rooms.values()) for (const full of room.occupants.keys()) users.add(bareOf(full));
    return users.size;
  }

  private neededFilters(): Set<string> {
    const filters = new Set(this.followers.keys());
    for (const [filter, room] of this.rooms) if (room.occupants.size > 0) filters.add(filter);
    return filters;
  }

  private needed(filter: string): boolean {
    return (this.followers.get(filter)?.size ?? 0) > 0 || (this.rooms.get(filter)?.occupants.size ?? 0) > 0;
  }

  // ------------------------------------------------------------------------------------------
  // Broker side

  private async ensureBroker(filter: string): Promise<void> {
    const existing = this.broker.get(filter);
    if (existing) return existing.ready;
    if (this.broker.size >= this.config.limits.maxTopics) {
      throw new StanzaError('resource-constraint', { text: 'the gateway follows too many topics' });
    }
    const id = this.nextSubscriptionId++;
    const sub: BrokerSubscription = { id, ready: this.brokerSubscribe(filter, id) };
    this.broker.set(filter, sub);
    this.filterById.set(id, filter);
    try {
      await sub.ready;
    } catch (err) {
      this.broker.delete(filter);
      this.filterById.delete(id);
      throw err;
    }
  }

  private async brokerSubscribe(filter: string, id: number): Promise<void> {
    if (!this.mqtt.connected)
      throw new StanzaError('service-unavailable', { type: 'wait', text: 'the MQTT broker is unreachable' });
    const granted = await this.mqtt.subscribeAsync(filter, {
      qos: 1,
      properties: { subscriptionIdentifier: id },
    });
    if (granted.some((g) => g.qos > 2)) {
      throw new StanzaError('forbidden', { text: 'the MQTT broker refused this subscription' });
    }
  }

  private async releaseBroker(filter: string): Promise<void> {
    if (this.needed(filter)) return;
    const sub = this.broker.get(filter);
    if (!sub) return;
    this.broker.delete(filter);
    this.filterById.delete(sub.id);
    this.rooms.delete(filter);
    if (this.mqtt.connected) {
      await this.mqtt
        .unsubscribeAsync(filter)
        .catch((err: unknown) => this.log('warn', 'cannot unsubscribe', { filter, err: String(err) }));
    }
  }

  private fromBroker(topic: string, payload: Buffer, packet: Packet): void {
    if (this.stopped || packet.cmd !== 'publish') return;
    if (!this.policy.topicAllowed(topic)) return;
    if (payload.byteLength > this.config.limits.maxPayloadBytes) {
      this.log('debug', 'payload too large to forward', { topic, bytes: payload.byteLength });
      return;
    }
    const content = payloadBody(payload, this.config.binaryPayloads);
    if (!content) {
      this.log('debug', 'binary payload skipped', { topic, bytes: payload.byteLength });
      return;
    }
    const props = packet.properties;
    const ids = props?.subscriptionIdentifier;
    const filters = (Array.isArray(ids) ? ids : ids === undefined ? [] : [ids])
      .map((id) => this.filterById.get(id))
      .filter((f): f is string => f !== undefined);
    const echo = this.findEcho(props?.correlationData);
    const info = xml('mqtt', { xmlns: NS_MQTT, topic, retain: packet.retain ? 'true' : undefined });
    for (const filter of new Set(filters)) {
      const body = isWildcard(filter) ? `${topic}: ${content.body}` : content.body;
      const puppet = this.component.puppets.get(topicToLocal(filter));
      for (const user of this.followers.get(filter) ?? []) {
        try {
          puppet?.say(user, body, { children: [info] });
        } catch (err) {
          this.log('warn', 'cannot send a stanza', { err: String(err), to: user });
        }
      }
      const room = this.rooms.get(filter);
      if (room && room.occupants.size > 0) {
        const mine = echo?.filter === filter ? echo : undefined;
        // Used once: a copy replayed by another MQTT client does not speak for the sender again.
        if (mine) this.echoes.delete(mine.key);
        const sender = this.occupantAddress(filter, mine ? mine.nick : topic);
        for (const full of room.occupants.keys()) {
          this.out(
            xml(
              'message',
              { from: sender, to: full, type: 'groupchat', id: mine?.id },
              xml('body', null, content.body),
              info,
            ),
          );
        }
      }
    }
  }

  private findEcho(correlation: Buffer | undefined): (PendingEcho & { key: string }) | undefined {
    if (!correlation) return undefined;
    const key = correlation.toString('hex');
    const echo = this.echoes.get(key);
    if (!echo || echo.expires < Date.now()) return undefined;
    return { ...echo, key };
  }

  private rememberEcho(echo: PendingEcho): Buffer {
    const now = Date.now();
    for (const [k, e] of this.echoes) {
      if (e.expires < now || this.echoes.size >= MAX_PENDING_ECHOES) this.echoes.delete(k);
      else break;
    }
    const key = randomBytes(12);
    this.echoes.set(key.toString('hex'), echo);
    return key;
  }

  private async publish(topic: string, body: string, options: IClientPublishOptions): Promise<void> {
    if (!this.mqtt.connected) {
      throw new StanzaError('service-unavailable', { type: 'wait', text: 'the MQTT broker is unreachable' });
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(new StanzaError('remote-server-timeout', { text: 'the MQTT broker did not acknowledge' })),
        this.publishTimeoutMs,
      );
    });
    try {
      await Promise.race([this.mqtt.publishAsync(topic, body, options), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  // ------------------------------------------------------------------------------------------
  // XMPP side: addresses

  private address(filter: string): string {
    return `${topicToLocal(filter)}@${this.domain}`;
  }

  private occupantAddress(filter: string, nick: string): string {
    const room = this.address(filter);
    try {
      return jid(topicToLocal(filter), this.domain, nick).toString();
    } catch {
      return room;
    }
  }

  /** Sends a stanza; a full outgoing queue (component offline too long) drops it with a warning. */
  private out(el: Element): void {
    try {
      this.component.send(el);
    } catch (err) {
      this.log('warn', 'cannot send a stanza', { err: String(err), to: el.attr('to') });
    }
  }

  private sendPresence(attrs: Record<string, string | undefined>, ...children: Element[]): void {
    this.out(xml('presence', attrs, ...children));
  }

  private sendError(stanza: Element, err: StanzaError): void {
    this.out(errorReply(stanza, err));
  }

  /** Available presence from every followed topic to its followers (when the component comes online). */
  private announce(): void {
    for (const filter of this.followers.keys())
      this.contactPuppet(filter).setPresence(this.contactPresence(filter));
  }

  private errorPresence(from: string, to: Jid | string, err: StanzaError): void {
    this.out(xml('presence', { from, to: to.toString(), type: 'error' }, err.toElement()));
  }

  // ------------------------------------------------------------------------------------------
  // XMPP side: messages

  private async onMessage({ from, to, element: el }: ComponentMessage): Promise<void> {
    if (to.domain !== this.domain) return;
    const type = el.attr('type') ?? 'normal';
    if (type === 'error') {
      // A groupchat message bounced: the occupant is gone (XEP-0045 §7.2.13 ghosts).
      if (to.local) this.enqueue(() => this.leave(to.local, from, false));
      return;
    }
    const body = el.getChildText('body');
    if (body === undefined) return; // chat states, receipts and the like have nothing to publish
    try {
      if (!to.local)
        throw new StanzaError('service-unavailable', { text: 'send messages to a topic address' });
      if (!this.policy.userAllowed(from))
        throw new StanzaError('forbidden', { text: 'you may not use this gateway' });
      const topic = localToTopic(to.local);
      if (to.resource) {
        throw new StanzaError('feature-not-implemented', { text: 'private messages are not supported' });
      }
      let echo: Buffer | undefined;
      if (type === 'groupchat') {
        const nick = this.rooms.get(topic)?.occupants.get(from.toString());
        if (nick === undefined) throw new StanzaError('not-acceptable', { text: 'join the room first' });
        echo = this.rememberEcho({
          filter: topic,
          nick,
          id: el.attr('id'),
          expires: Date.now() + ECHO_TTL_MS,
        });
      }
      const problem = topicProblem(topic);
      if (problem) throw new StanzaError('bad-request', { text: problem });
      const refusal = this.policy.topicRefusal(topic);
      if (refusal) throw new StanzaError('forbidden', { text: refusal });
      if (Buffer.byteLength(body, 'utf8') > this.config.limits.maxPayloadBytes) {
        throw new StanzaError('policy-violation', {
          text: `messages are limited to ${this.config.limits.maxPayloadBytes} bytes`,
        });
      }
      if (!this.rate.take(from.toBareString())) {
        throw new StanzaError('policy-violation', {
          type: 'wait',
          text: 'too many messages: try again later',
        });
      }
      await this.publish(topic, body, { qos: 1, properties: echo ? { correlationData: echo } : {} });
    } catch (err) {
      const error =
        err instanceof StanzaError
          ? err
          : new StanzaError('internal-server-error', { text: 'publishing failed' });
      if (!(err instanceof StanzaError)) this.log('warn', 'publish failed', { err: String(err) });
      this.sendError(el, error);
    }
  }

  // ------------------------------------------------------------------------------------------
  // XMPP side: presence

  private enqueue(task: () => Promise<void>): void {
    if (this.queued >= MAX_QUEUED_PRESENCES) {
      this.log('warn', 'presence queue full: presence dropped');
      return;
    }
    this.queued++;
    this.presenceQueue = this.presenceQueue
      .then(task)
      .catch((err: unknown) => this.log('error', 'presence handling failed', { err: String(err) }))
      .finally(() => this.queued--);
  }

  private async onPresence({ from, to, element: el }: ComponentPresence): Promise<void> {
    if (to.domain !== this.domain) return;
    const type = el.attr('type') ?? 'available';
    if (!to.local) return this.toDomain(el, from, type);
    if (to.resource) {
      if (type === 'available') return this.join(el, from, to);
      if (type === 'unavailable' || type === 'error')
        return this.leave(to.local, from, type === 'unavailable');
      return;
    }
    // Presence to a topic's bare address is handled by the puppets (follow/unfollow below).
  }

  /** The gateway's own address may be added as a contact too, by allowed users. */
  private async toDomain(el: Element, from: Jid, type: string): Promise<void> {
    if (!this.policy.userAllowed(from)) {
      if (type === 'subscribe')
        this.sendError(el, new StanzaError('forbidden', { text: 'you may not use this gateway' }));
      return;
    }
    if (type === 'subscribe')
      this.sendPresence({ from: this.domain, to: from.toBareString(), type: 'subscribed' });
    if (type === 'subscribe' || type === 'probe')
      this.sendPresence({ from: this.domain, to: from.toString() });
  }

  private refusal(user: Jid, filter: string): StanzaError | undefined {
    if (!this.policy.userAllowed(user))
      return new StanzaError('forbidden', { text: 'you may not use this gateway' });
    const refused = this.policy.topicRefusal(filter);
    if (refused) return new StanzaError('forbidden', { text: refused });
    const topics = this.topicsOf(user.toBareString());
    if (!topics.has(filter) && topics.size >= this.config.limits.maxSubscriptionsPerUser) {
      return new StanzaError('policy-violation', {
        text: `you may follow at most ${this.config.limits.maxSubscriptionsPerUser} topics`,
      });
    }
    if (topics.size === 0 && this.userCount() >= this.config.limits.maxUsers) {
      return new StanzaError('resource-constraint', { text: 'the gateway serves too many users' });
    }
    return undefined;
  }

  /**
   * A probe or a subscription request reached a topic that is no puppet yet: a puppet is made for
   * an allowed topic; otherwise the user gets an error (and the SDK denies the request).
   */
  private resolveContact(name: string, from: Jid): PuppetPresence | undefined {
    const filter = localToTopic(name);
    let refused: StanzaError | undefined;
    if (!this.policy.userAllowed(from)) {
      refused = new StanzaError('forbidden', { text: 'you may not use this gateway' });
    } else {
      const why = this.policy.topicRefusal(filter);
      if (why) refused = new StanzaError('forbidden', { text: why });
      else if (this.component.puppets.size >= this.config.limits.maxTopics)
        refused = new StanzaError('resource-constraint', { text: 'the gateway follows too many topics' });
    }
    if (!refused) return this.contactPresence(filter);
    this.errorPresence(this.address(filter), from, refused);
    return undefined;
  }

  private async follow(req: SubscribeRequest): Promise<void> {
    const user = req.from.toBareString();
    const filter = localToTopic(req.puppet.name);
    try {
      const refused = this.refusal(req.from, filter);
      if (refused) throw refused;
      await this.ensureBroker(filter);
    } catch (err) {
      const error = err instanceof StanzaError ? err : new StanzaError('internal-server-error');
      this.errorPresence(this.address(filter), user, error);
      // Also deny the subscription, so the user's roster does not keep it pending (RFC 6121 §3.2).
      req.deny();
      this.dropPuppetIfUnused(filter);
      return;
    }
    this.addContact(user, filter);
    this.store.save();
    req.approve();
    this.log('info', 'contact subscribed', { user, filter });
  }

  private async unfollow(from: Jid, filter: string): Promise<void> {
    const user = from.toBareString();
    if (!this.removeContact(user, filter)) return;
    this.store.save();
    this.dropPuppetIfUnused(filter);
    await this.releaseBroker(filter);
    this.log('info', 'contact unsubscribed', { user, filter });
  }

  private dropPuppetIfUnused(filter: string): void {
    if ((this.followers.get(filter)?.size ?? 0) === 0) this.component.puppets.remove(topicToLocal(filter));
  }

  private occupantPresence(filter: string, nick: string, to: string, type?: string, self = false): Element {
    return xml(
      'presence',
      { from: this.occupantAddress(filter, nick), to, type },
      xml(
        'x',
        { xmlns: NS_MUC_USER },
        xml('item', { affiliation: 'none', role: type === 'unavailable' ? 'none' : 'participant' }),
        self && xml('status', { code: '110' }),
      ),
    );
  }

  private async join(el: Element, from: Jid, to: Jid): Promise<void> {
    const filter = localToTopic(to.local);
    const nick = to.resource;
    const full = from.toString();
    const existing = this.rooms.get(filter);
    const current = existing?.occupants.get(full);
    if (current !== undefined) {
      // Already in: a presence update. Changing nick is not supported.
      if (current !== nick)
        this.sendError(el, new StanzaError('not-acceptable', { text: 'changing nick is not supported' }));
      return;
    }
    try {
      const refused = this.refusal(from, filter);
      if (refused) throw refused;
      if (existing) {
        for (const [other, n] of existing.occupants) {
          if (n === nick && other !== full) throw new StanzaError('conflict', { text: 'this nick is taken' });
        }
        if (existing.occupants.size >= this.config.limits.maxOccupantsPerRoom) {
          throw new StanzaError('service-unavailable', { type: 'wait', text: 'the room is full' });
        }
      }
      await this.ensureBroker(filter);
    } catch (err) {
      this.sendError(el, err instanceof StanzaError ? err : new StanzaError('internal-server-error'));
      return;
    }
    const room = this.room(filter);
    // XEP-0045 §7.2.3: the others' presence first, then the joiner's own (status 110), then the subject.
    for (const [other, n] of room.occupants) {
      this.out(this.occupantPresence(filter, n, full));
      this.out(this.occupantPresence(filter, nick, other));
    }
    room.occupants.set(full, nick);
    this.store.save();
    this.out(this.occupantPresence(filter, nick, full, undefined, true));
    this.out(
      xml(
        'message',
        { from: this.address(filter), to: full, type: 'groupchat', id: randomBytes(6).toString('hex') },
        xml('subject', null, `MQTT topic ${filter}`),
      ),
    );
    this.log('info', 'room joined', { user: full, filter, nick });
  }

  private async leave(local: string, from: Jid, confirm: boolean): Promise<void> {
    const filter = localToTopic(local);
    const room = this.rooms.get(filter);
    const full = from.toString();
    const nick = room?.occupants.get(full);
    if (!room || nick === undefined) return;
    room.occupants.delete(full);
    this.store.save();
    if (confirm) this.out(this.occupantPresence(filter, nick, full, 'unavailable', true));
    for (const other of room.occupants.keys()) {
      this.out(this.occupantPresence(filter, nick, other, 'unavailable'));
    }
    await this.releaseBroker(filter);
    this.log('info', 'room left', { user: full, filter });
  }
}

function tryParse(address: string): Jid | undefined {
  try {
    return parseJid(address);
  } catch {
    return undefined;
  }
}

/**
 * The error reply to a stanza (RFC 6120 §8.3.1): same kind and id, addresses swapped, the
 * original children kept (messages and presences), then the error.
 */
function errorReply(stanza: Element, error: StanzaError): Element {
  const reply = xml(stanza.name, {
    type: 'error',
    id: stanza.attr('id'),
    from: stanza.attr('to'),
    to: stanza.attr('from'),
  });
  for (const c of stanza.children) if (typeof c !== 'string' && c.name !== 'error') reply.append(c.clone());
  return reply.append(error.toElement());
}

function bareOf(full: string): string {
  const slash = full.indexOf('/');
  return slash < 0 ? full : full.slice(0, slash);
}
