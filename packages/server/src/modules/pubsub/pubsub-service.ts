import { randomUUID } from 'node:crypto';
import { xml, parseElement, type Element } from '@natter/xml';
import { tryParseJid, type Jid } from '@natter/jid';
import { NS, StanzaError, buildForm, parseForm, formType, parseBoolean } from '@natter/protocol';
import { pubsubError } from './pubsub-errors.js';
import {
  FORM,
  applyConfigForm,
  configForm,
  readConfigFields,
  sameValue,
  type ConfigKey,
  type NodeConfig,
} from './node-config.js';
import type { Affiliation, PubsubStore, StoredItem, StoredNode, StoredSubscription } from './pubsub-store.js';
import type { RosterApi } from './roster-types.js';

/** Limits shared by the pubsub service and PEP (module options). */
export interface PubsubLimits {
  maxPayloadBytes: number;
  maxNodesPerOwner: number;
  maxItemsPerNode: number;
}

/** What the engine needs from its module. */
export interface EngineDeps {
  store: PubsubStore;
  limits: PubsubLimits;
  send(stanza: Element): void;
  roster(): RosterApi | undefined;
}

/**
 * How one service differs: the pubsub service on its domain, or an account's PEP service
 * (XEP-0163), which the pep module describes with these hooks.
 */
export interface ServiceProfile {
  /** The node defaults (XEP-0163 §5 for PEP). */
  defaults(node: string): NodeConfig;
  /** Creating nodes is allowed for `from` (bare JID). */
  mayCreate(from: Jid): boolean;
  /** `from` owns every node of the service (the PEP account itself). */
  isServiceOwner(from: Jid): boolean;
  /** Only service owners publish, whatever the publish model (PEP: "one publisher per node"). */
  ownerPublishesOnly: boolean;
  /** Publishing to a missing node creates it (XEP-0060 §7.1.4 auto-create). */
  autoCreate: boolean;
  /** Entities whose roster governs the presence/roster access models of a node. */
  rosterOwners(node: StoredNode, owners: string[]): Jid[];
  /** Extra notification recipients (full JIDs), e.g. PEP's presence-based delivery. */
  implicitRecipients?(node: StoredNode): Promise<Jid[]>;
  /** Called after a node's configuration was set (`created`: a new node). */
  configured?(node: StoredNode, service: PubsubService, created: boolean): Promise<void>;
}

type AccessResult = { ok: true; affiliation: Affiliation } | { ok: false; error: StanzaError };

const OWNER_AFFILIATIONS = new Set<Affiliation>([
  'owner',
  'publisher',
  'publish-only',
  'member',
  'none',
  'outcast',
]);

/**
 * The node engine of XEP-0060 for one service address: create/configure/delete/purge nodes,
 * publish/retract/retrieve items, subscriptions, affiliations, access models and notifications,
 * all backed by storage. Stateless apart from the store: PEP builds one per account on demand.
 */
export class PubsubService {
  constructor(
    readonly deps: EngineDeps,
    /** The service's address: `pubsub.example.com`, or an account's bare JID for PEP. */
    readonly address: Jid,
    readonly profile: ServiceProfile,
  ) {}

  get key(): string {
    return this.address.toString();
  }

  private get store(): PubsubStore {
    return this.deps.store;
  }

  get maxItems(): number {
    return this.deps.limits.maxItemsPerNode;
  }

  // --- entry points ---------------------------------------------------------------------------

  /** Handles `<pubsub xmlns='…pubsub'/>` or `<pubsub xmlns='…pubsub#owner'/>`; returns the result payload. */
  async handle(from: Jid, type: 'get' | 'set', payload: Element): Promise<Element | undefined> {
    const children = payload.elements();
    const first = children[0];
    if (!first) throw new StanzaError('bad-request', { text: 'empty pubsub element' });
    if (payload.xmlns === NS.pubsubOwner) {
      switch (`${type} ${first.name}`) {
        case 'get configure':
          return this.getConfigure(from, first);
        case 'set configure':
          return this.setConfigure(from, first);
        case 'get default':
          return xml(
            'pubsub',
            { xmlns: NS.pubsubOwner },
            xml('default', null, configForm(this.profile.defaults(''), this.maxItems)),
          );
        case 'set delete':
          return this.deleteNode(from, first);
        case 'set purge':
          return this.purgeNode(from, first);
        case 'get subscriptions':
          return this.ownerSubscriptions(from, first);
        case 'set subscriptions':
          return this.setOwnerSubscriptions(from, first);
        case 'get affiliations':
          return this.ownerAffiliations(from, first);
        case 'set affiliations':
          return this.setOwnerAffiliations(from, first);
        default:
          throw new StanzaError('feature-not-implemented', {
            text: `unsupported owner request ${first.name}`,
          });
      }
    }
    switch (`${type} ${first.name}`) {
      case 'set create':
        return this.create(from, first, payload.getChild('configure', NS.pubsub));
      case 'set publish':
        return this.publish(from, first, payload.getChild('publish-options', NS.pubsub));
      case 'set retract':
        return this.retract(from, first);
      case 'set subscribe':
        return this.subscribe(from, first, payload.getChild('options', NS.pubsub));
      case 'set unsubscribe':
        return this.unsubscribe(from, first);
      case 'get options':
        return this.getOptions(from, first);
      case 'set options':
        return this.setOptions(from, first);
      case 'get default':
        return xml('pubsub', { xmlns: NS.pubsub }, xml('default', null, subscribeOptionsForm({})));
      case 'get items':
        return this.retrieve(from, first);
      case 'get subscriptions':
        return this.userSubscriptions(from, first);
      case 'get affiliations':
        return this.userAffiliations(from, first);
      default:
        throw new StanzaError('feature-not-implemented', { text: `unsupported request ${first.name}` });
    }
  }

  // --- helpers --------------------------------------------------------------------------------

  private nodeId(el: Element): string {
    const node = el.attrs.node;
    if (node === undefined || node === '') throw pubsubError('bad-request', 'nodeid-required');
    checkId(node, 'node');
    return node;
  }

  async node(id: string): Promise<StoredNode> {
    const n = await this.store.getNode(this.key, id);
    if (!n) throw new StanzaError('item-not-found', { text: `no node ${id}` });
    return n;
  }

  /** The requester's affiliation with a node (the PEP account owns all its nodes). */
  async affiliation(node: StoredNode, who: Jid): Promise<Affiliation> {
    if (this.profile.isServiceOwner(who.bare)) return 'owner';
    return this.store.affiliation(this.key, node.node, who.toBareString());
  }

  async owners(node: StoredNode): Promise<string[]> {
    const affs = await this.store.affiliations(this.key, node.node);
    return affs.filter((a) => a.affiliation === 'owner').map((a) => a.jid);
  }

  private async requireOwner(node: StoredNode, from: Jid): Promise<void> {
    if ((await this.affiliation(node, from)) !== 'owner')
      throw new StanzaError('forbidden', { text: 'only an owner of the node may do this' });
  }

  /**
   * XEP-0060 §6.1.3 / §6.5.9 access checks: may `who` subscribe to / retrieve items of `node`?
   * `purpose` 'retrieve' additionally needs an approved subscription on authorize nodes.
   */
  async access(
    node: StoredNode,
    who: Jid,
    purpose: 'subscribe' | 'retrieve' | 'notify',
  ): Promise<AccessResult> {
    const affiliation = await this.affiliation(node, who);
    if (affiliation === 'outcast')
      return { ok: false, error: new StanzaError('forbidden', { text: 'you are banned from this node' }) };
    if (affiliation !== 'none') return { ok: true, affiliation };
    const cfg = node.config;
    switch (cfg.access_model) {
      case 'open':
        return { ok: true, affiliation };
      case 'presence': {
        const roster = this.deps.roster();
        for (const owner of this.profile.rosterOwners(node, await this.owners(node))) {
          const item = await roster?.get(owner, who.bare);
          if (item && (item.subscription === 'from' || item.subscription === 'both'))
            return { ok: true, affiliation };
        }
        return { ok: false, error: pubsubError('not-authorized', 'presence-subscription-required') };
      }
      case 'roster': {
        const roster = this.deps.roster();
        for (const owner of this.profile.rosterOwners(node, await this.owners(node))) {
          const item = await roster?.get(owner, who.bare);
          if (item && item.groups.some((g) => cfg.roster_groups_allowed.includes(g)))
            return { ok: true, affiliation };
        }
        return { ok: false, error: pubsubError('not-authorized', 'not-in-roster-group') };
      }
      case 'whitelist':
        return { ok: false, error: pubsubError('not-allowed', 'closed-node') };
      case 'authorize': {
        if (purpose === 'subscribe') return { ok: true, affiliation };
        const sub = await this.store.subscription(this.key, node.node, who.toBareString());
        const full = sub ?? (await this.store.subscription(this.key, node.node, who.toString()));
        if (full?.state === 'subscribed') return { ok: true, affiliation };
        return { ok: false, error: pubsubError('not-authorized', 'not-subscribed') };
      }
    }
  }

  private async checkNodeLimit(from: Jid): Promise<void> {
    const n = await this.store.countNodesBy(this.key, from.toBareString());
    if (n >= this.deps.limits.maxNodesPerOwner) {
      throw new StanzaError('policy-violation', {
        type: 'cancel',
        text: `too many nodes: at most ${this.deps.limits.maxNodesPerOwner} per user`,
      });
    }
  }

  /** Creates a node with `config`; the creator becomes its owner. */
  async createNode(from: Jid, id: string, config: NodeConfig): Promise<StoredNode> {
    await this.checkNodeLimit(from);
    const creator = from.toBareString();
    try {
      await this.store.createNode(this.key, id, config, creator);
    } catch (err) {
      // A concurrent request created it first (primary key violation).
      if (await this.store.getNode(this.key, id))
        throw new StanzaError('conflict', { text: `node ${id} already exists` });
      throw err;
    }
    if (!this.profile.isServiceOwner(from.bare))
      await this.store.setAffiliation(this.key, id, creator, 'owner');
    const node: StoredNode = { owner: this.key, node: id, config, creator, createdAt: Date.now() };
    await this.profile.configured?.(node, this, true);
    return node;
  }

  /** Changes a node's configuration (applies max_items at once) and tells the profile. */
  async reconfigure(node: StoredNode, config: NodeConfig): Promise<StoredNode> {
    await this.store.saveConfig(this.key, node.node, config);
    const effectiveMax = config.persist_items ? config.max_items : Math.min(1, config.max_items);
    if (effectiveMax < node.config.max_items || !config.persist_items)
      await this.store.trim(this.key, node.node, effectiveMax);
    const updated = { ...node, config };
    await this.profile.configured?.(updated, this, false);
    return updated;
  }

  // --- node management ------------------------------------------------------------------------

  /** XEP-0060 §8.1: create a node, optionally configured, or an instant node (§8.1.2). */
  private async create(from: Jid, createEl: Element, configureEl: Element | undefined): Promise<Element> {
    if (!this.profile.mayCreate(from.bare))
      throw new StanzaError('forbidden', { text: 'you may not create nodes here' });
    const id = createEl.attrs.node || randomUUID();
    checkId(id, 'node');
    if (await this.store.getNode(this.key, id))
      throw new StanzaError('conflict', { text: `node ${id} already exists` });
    let config = this.profile.defaults(id);
    const x = configureEl?.getChild('x', NS.dataForms);
    if (x) {
      const form = parseForm(x);
      if (form.type === 'submit') config = applyConfigForm(config, x, this.maxItems);
    }
    await this.createNode(from, id, config);
    return xml('pubsub', { xmlns: NS.pubsub }, xml('create', { node: id }));
  }

  private async getConfigure(from: Jid, el: Element): Promise<Element> {
    const node = await this.node(this.nodeId(el));
    await this.requireOwner(node, from);
    return xml(
      'pubsub',
      { xmlns: NS.pubsubOwner },
      xml('configure', { node: node.node }, configForm(node.config, this.maxItems)),
    );
  }

  /** XEP-0060 §8.2.4: submit (or cancel) the configuration form. */
  private async setConfigure(from: Jid, el: Element): Promise<undefined> {
    const node = await this.node(this.nodeId(el));
    await this.requireOwner(node, from);
    const x = el.getChild('x', NS.dataForms);
    if (!x) throw new StanzaError('bad-request', { text: 'a configuration form is required' });
    const form = parseForm(x);
    if (form.type === 'cancel') return undefined;
    if (form.type !== 'submit')
      throw new StanzaError('bad-request', { text: 'the form must be of type submit' });
    const config = applyConfigForm(node.config, x, this.maxItems);
    const updated = await this.reconfigure(node, config);
    if (config.notify_config && config.deliver_notifications) {
      await this.broadcast(
        updated,
        xml(
          'configuration',
          { node: node.node },
          config.deliver_payloads && configForm(config, this.maxItems, 'result'),
        ),
      );
    }
    return undefined;
  }

  /** XEP-0060 §8.4: delete a node, notifying subscribers (with the redirect URI if given). */
  private async deleteNode(from: Jid, el: Element): Promise<undefined> {
    const node = await this.node(this.nodeId(el));
    await this.requireOwner(node, from);
    const redirect = el.getChild('redirect', NS.pubsubOwner)?.attrs.uri;
    const recipients =
      node.config.notify_delete && node.config.deliver_notifications ? await this.recipients(node) : [];
    await this.store.deleteNode(this.key, node.node);
    this.sendEvent(
      node,
      recipients,
      xml('delete', { node: node.node }, redirect !== undefined && xml('redirect', { uri: redirect })),
    );
    return undefined;
  }

  /** XEP-0060 §8.5: purge every item, notifying subscribers. */
  private async purgeNode(from: Jid, el: Element): Promise<undefined> {
    const node = await this.node(this.nodeId(el));
    await this.requireOwner(node, from);
    await this.store.purge(this.key, node.node);
    if (node.config.notify_retract && node.config.deliver_notifications)
      await this.broadcast(node, xml('purge', { node: node.node }));
    return undefined;
  }

  // --- publishing -----------------------------------------------------------------------------

  /** XEP-0060 §7.1.5: every publish-options field must match the node's configuration. */
  private checkPreconditions(node: StoredNode, options: Partial<NodeConfig>, unknown: string[]): void {
    if (unknown.length > 0) {
      throw pubsubError('conflict', 'precondition-not-met', {
        text: `unsupported publish option ${unknown.join(', ')}`,
      });
    }
    for (const key of Object.keys(options) as ConfigKey[]) {
      if (!sameValue(options[key]!, node.config[key])) {
        throw pubsubError('conflict', 'precondition-not-met', {
          text: `pubsub#${key} does not match the node configuration`,
        });
      }
    }
  }

  private readPublishOptions(
    el: Element | undefined,
  ): { values: Partial<NodeConfig>; unknown: string[] } | undefined {
    const x = el?.getChild('x', NS.dataForms);
    if (!x) return undefined;
    const form = parseForm(x);
    const ft = formType(form);
    if (ft !== FORM.publishOptions)
      throw pubsubError('bad-request', 'invalid-options', {
        text: 'FORM_TYPE must be pubsub#publish-options',
      });
    try {
      return readConfigFields(x, this.maxItems);
    } catch (err) {
      // A value the service cannot hold can never match: the precondition fails.
      if (err instanceof StanzaError)
        throw pubsubError('conflict', 'precondition-not-met', { text: err.text });
      throw err;
    }
  }

  /** XEP-0060 §7.1: publish one item (id generated when absent), then notify. */
  private async publish(from: Jid, el: Element, optionsEl: Element | undefined): Promise<Element> {
    const id = this.nodeId(el);
    const items = el.getChildren('item', NS.pubsub);
    if (items.length > 1)
      throw pubsubError('bad-request', 'invalid-payload', { text: 'publish one item at a time' });
    const item = items[0];
    const payloads = item?.elements() ?? [];
    if (payloads.length > 1)
      throw pubsubError('bad-request', 'invalid-payload', { text: 'an item has exactly one payload' });
    const payload = payloads[0];
    if (payload) {
      const size = Buffer.byteLength(payload.toString());
      if (size > this.deps.limits.maxPayloadBytes) {
        throw pubsubError('not-acceptable', 'payload-too-big', {
          text: `payloads are limited to ${this.deps.limits.maxPayloadBytes} bytes`,
        });
      }
    }
    const options = this.readPublishOptions(optionsEl);
    let node = await this.store.getNode(this.key, id);
    if (!node) {
      if (!this.profile.autoCreate) throw new StanzaError('item-not-found', { text: `no node ${id}` });
      if (!this.profile.mayCreate(from.bare))
        throw new StanzaError('forbidden', { text: 'only the account owner publishes here' });
      if (options && options.unknown.length > 0)
        this.checkPreconditions(
          { owner: this.key, node: id, config: this.profile.defaults(id), creator: '', createdAt: 0 },
          {},
          options.unknown,
        );
      try {
        node = await this.createNode(from, id, { ...this.profile.defaults(id), ...(options?.values ?? {}) });
      } catch (err) {
        if (!(err instanceof StanzaError && err.condition === 'conflict')) throw err;
        node = await this.node(id); // created concurrently: publish to it as to an existing node
        if (options) this.checkPreconditions(node, options.values, options.unknown);
      }
    } else {
      await this.mayPublish(node, from);
      if (options) this.checkPreconditions(node, options.values, options.unknown);
    }
    const cfg = node.config;
    if (!payload && cfg.deliver_payloads && cfg.persist_items)
      throw pubsubError('bad-request', 'payload-required');
    const itemId = item?.attrs.id || randomUUID();
    checkId(itemId, 'item');
    const stored: StoredItem = {
      id: itemId,
      publisher: from.toString(),
      payload: payload?.toString() ?? '',
      updatedAt: Date.now(),
    };
    await this.store.putItem(
      this.key,
      node.node,
      stored,
      cfg.persist_items ? cfg.max_items : Math.min(1, cfg.max_items),
    );
    if (cfg.deliver_notifications) await this.broadcast(node, this.itemsEvent(node, [stored], payload));
    return xml(
      'pubsub',
      { xmlns: NS.pubsub },
      xml('publish', { node: node.node }, xml('item', { id: itemId })),
    );
  }

  private async mayPublish(node: StoredNode, from: Jid): Promise<void> {
    const aff = await this.affiliation(node, from);
    if (aff === 'owner' || aff === 'publisher' || aff === 'publish-only') return;
    if (this.profile.ownerPublishesOnly)
      throw new StanzaError('forbidden', { text: 'only the owner publishes to this node' });
    if (aff === 'outcast') throw new StanzaError('forbidden');
    if (node.config.publish_model === 'open') return;
    if (node.config.publish_model === 'subscribers') {
      const subs = await this.store.subscriptionsOf(
        this.key,
        [from.toBareString(), from.toString()],
        node.node,
      );
      if (subs.some((s) => s.state === 'subscribed')) return;
    }
    throw new StanzaError('forbidden', { text: 'you may not publish to this node' });
  }

  /** `<items node><item id>payload</item></items>` for an event (payload omitted per config). */
  private itemsEvent(node: StoredNode, items: StoredItem[], parsed?: Element): Element {
    return xml(
      'items',
      { node: node.node },
      items.map((it) =>
        xml(
          'item',
          { id: it.id },
          node.config.deliver_payloads && it.payload !== '' && (parsed ?? parseElement(it.payload)),
        ),
      ),
    );
  }

  /** XEP-0060 §7.2: retract an item (owner, publisher, or the item's own publisher). */
  private async retract(from: Jid, el: Element): Promise<undefined> {
    const node = await this.node(this.nodeId(el));
    const ids = el.getChildren('item', NS.pubsub).map((i) => i.attrs.id ?? '');
    if (ids.length === 0 || ids.some((i) => i === '')) throw pubsubError('bad-request', 'item-required');
    if (ids.length > this.maxItems)
      throw new StanzaError('policy-violation', { text: `at most ${this.maxItems} items per request` });
    const existing = await this.store.itemsById(this.key, node.node, ids);
    if (existing.length < ids.length) throw new StanzaError('item-not-found');
    const aff = await this.affiliation(node, from);
    if (aff !== 'owner' && aff !== 'publisher') {
      if (
        this.profile.ownerPublishesOnly ||
        existing.some((it) => tryParseJid(it.publisher)?.bare.equals(from.bare) !== true)
      ) {
        throw new StanzaError('forbidden', { text: 'you may not retract these items' });
      }
    }
    for (const id of ids) await this.store.deleteItem(this.key, node.node, id);
    const notify = parseBoolean(el.attrs.notify) ?? node.config.notify_retract;
    if (notify && node.config.deliver_notifications) {
      await this.broadcast(
        node,
        xml(
          'items',
          { node: node.node },
          ids.map((id) => xml('retract', { id })),
        ),
      );
    }
    return undefined;
  }

  /** XEP-0060 §6.5: all items, some by id, or the newest `max_items`. */
  private async retrieve(from: Jid, el: Element): Promise<Element> {
    const node = await this.node(this.nodeId(el));
    const access = await this.access(node, from, 'retrieve');
    if (!access.ok) throw access.error;
    const wanted = el
      .getChildren('item', NS.pubsub)
      .map((i) => i.attrs.id)
      .filter((i): i is string => i !== undefined && i !== '');
    let items: StoredItem[];
    if (wanted.length > this.maxItems)
      throw new StanzaError('policy-violation', { text: `at most ${this.maxItems} items per request` });
    if (wanted.length > 0) {
      items = await this.store.itemsById(this.key, node.node, wanted);
    } else {
      const maxAttr = el.attrs.max_items;
      let limit: number | undefined;
      if (maxAttr !== undefined) {
        if (!/^\d+$/.test(maxAttr))
          throw new StanzaError('bad-request', { text: 'max_items must be a non-negative integer' });
        limit = Math.min(Number(maxAttr), this.maxItems);
      }
      items = await this.store.items(this.key, node.node, limit);
    }
    items.reverse(); // oldest first
    return xml(
      'pubsub',
      { xmlns: NS.pubsub },
      xml(
        'items',
        { node: node.node },
        items.map((it) =>
          xml(
            'item',
            {
              id: it.id,
              publisher: this.profile.ownerPublishesOnly
                ? undefined
                : tryParseJid(it.publisher)?.toBareString(),
            },
            it.payload !== '' && parseElement(it.payload),
          ),
        ),
      ),
    );
  }

  // --- subscriptions --------------------------------------------------------------------------

  /** XEP-0060 §6.1: subscribe `jid` (the requester's bare or full JID). */
  private async subscribe(from: Jid, el: Element, optionsEl: Element | undefined): Promise<Element> {
    const node = await this.node(this.nodeId(el));
    const jid = tryParseJid(el.attrs.jid ?? '');
    if (!jid || !jid.bare.equals(from.bare)) throw pubsubError('bad-request', 'invalid-jid');
    const access = await this.access(node, from, 'subscribe');
    if (!access.ok) throw access.error;
    const key = jid.toString();
    let sub = await this.store.subscription(this.key, node.node, key);
    const x = optionsEl?.getChild('x', NS.dataForms);
    const options = x ? readSubscribeOptions(x, sub?.options ?? {}) : (sub?.options ?? {});
    if (!sub || sub.state !== 'subscribed' || x) {
      const state =
        sub?.state === 'subscribed' ||
        node.config.access_model !== 'authorize' ||
        access.affiliation !== 'none'
          ? 'subscribed'
          : 'pending';
      sub = { node: node.node, jid: key, subid: sub?.subid ?? randomUUID(), state, options };
      await this.store.putSubscription(this.key, sub);
      if (state === 'pending') await this.askOwners(node, jid);
    }
    if (sub.state === 'subscribed' && node.config.send_last_published_item !== 'never') {
      const [last] = await this.store.items(this.key, node.node, 1);
      if (last && node.config.deliver_notifications)
        this.sendEvent(node, [jid], this.itemsEvent(node, [last]), true);
    }
    return xml('pubsub', { xmlns: NS.pubsub }, subscriptionEl(sub));
  }

  /** XEP-0060 §6.1.3.1 / §8.6: authorization request to the node owners. */
  private async askOwners(node: StoredNode, jid: Jid): Promise<void> {
    const owners = this.profile.isServiceOwner(this.address) ? [this.key] : await this.owners(node);
    for (const owner of owners) {
      this.deps.send(
        xml(
          'message',
          { from: this.key, to: owner, id: randomUUID() },
          buildForm({
            type: 'form',
            title: 'PubSub subscriber request',
            formType: FORM.subscribeAuthorization,
            fields: [
              { var: 'pubsub#node', type: 'text-single', label: 'Node ID', values: [node.node] },
              {
                var: 'pubsub#subscriber_jid',
                type: 'jid-single',
                label: 'Subscriber Address',
                values: [jid.toString()],
              },
              {
                var: 'pubsub#allow',
                type: 'boolean',
                label: 'Allow this JID to subscribe to this pubsub node?',
                values: ['0'],
              },
            ],
          }),
        ),
      );
    }
  }

  /** An owner's answer to an authorization form (XEP-0060 §8.6.2). */
  async authorizationAnswer(from: Jid, x: Element): Promise<void> {
    const form = parseForm(x);
    if (formType(form) !== FORM.subscribeAuthorization || form.type !== 'submit') return;
    const get = (v: string) => form.fields.find((f) => f.var === v)?.values[0];
    const node = await this.store.getNode(this.key, get('pubsub#node') ?? '');
    const jid = tryParseJid(get('pubsub#subscriber_jid') ?? '');
    if (!node || !jid || (await this.affiliation(node, from)) !== 'owner') return;
    const sub = await this.store.subscription(this.key, node.node, jid.toString());
    if (!sub || sub.state !== 'pending') return;
    await this.decide(node, sub, parseBoolean(get('pubsub#allow')) === true ? 'subscribed' : 'none');
  }

  /** Approves or denies a pending subscription and tells the subscriber (XEP-0060 §8.6.2). */
  private async decide(
    node: StoredNode,
    sub: StoredSubscription,
    state: 'subscribed' | 'none',
  ): Promise<void> {
    if (state === 'none') await this.store.deleteSubscription(this.key, node.node, sub.jid);
    else await this.store.putSubscription(this.key, { ...sub, state });
    this.deps.send(
      xml(
        'message',
        { from: this.key, to: sub.jid, id: randomUUID() },
        xml(
          'event',
          { xmlns: NS.pubsubEvent },
          xml('subscription', {
            node: node.node,
            jid: sub.jid,
            subscription: state,
            subid: state === 'none' ? undefined : sub.subid,
          }),
        ),
      ),
    );
  }

  private async findSubscription(node: StoredNode, from: Jid, el: Element): Promise<StoredSubscription> {
    const jid = tryParseJid(el.attrs.jid ?? '');
    if (!jid) throw pubsubError('bad-request', 'jid-required');
    if (!jid.bare.equals(from.bare) && (await this.affiliation(node, from)) !== 'owner')
      throw new StanzaError('forbidden');
    const sub = await this.store.subscription(this.key, node.node, jid.toString());
    if (!sub) throw pubsubError('unexpected-request', 'not-subscribed', { type: 'cancel' });
    const subid = el.attrs.subid;
    if (subid !== undefined && subid !== sub.subid) throw pubsubError('not-acceptable', 'invalid-subid');
    return sub;
  }

  /** XEP-0060 §6.2. */
  private async unsubscribe(from: Jid, el: Element): Promise<undefined> {
    const node = await this.node(this.nodeId(el));
    const sub = await this.findSubscription(node, from, el);
    await this.store.deleteSubscription(this.key, node.node, sub.jid);
    return undefined;
  }

  /** XEP-0060 §6.3: the subscription options form. */
  private async getOptions(from: Jid, el: Element): Promise<Element> {
    const node = await this.node(this.nodeId(el));
    const sub = await this.findSubscription(node, from, el);
    return xml(
      'pubsub',
      { xmlns: NS.pubsub },
      xml('options', { node: node.node, jid: sub.jid, subid: sub.subid }, subscribeOptionsForm(sub.options)),
    );
  }

  private async setOptions(from: Jid, el: Element): Promise<undefined> {
    const node = await this.node(this.nodeId(el));
    const sub = await this.findSubscription(node, from, el);
    const x = el.getChild('x', NS.dataForms);
    if (!x) throw pubsubError('bad-request', 'invalid-options');
    await this.store.putSubscription(this.key, { ...sub, options: readSubscribeOptions(x, sub.options) });
    return undefined;
  }

  /** XEP-0060 §5.6: the requester's subscriptions (optionally on one node). */
  private async userSubscriptions(from: Jid, el: Element): Promise<Element> {
    const node = el.attrs.node;
    const subs = await this.store.subscriptionsOf(this.key, [from.toBareString(), from.toString()], node);
    return xml('pubsub', { xmlns: NS.pubsub }, xml('subscriptions', { node }, subs.map(subscriptionEl)));
  }

  /** XEP-0060 §5.7: the requester's affiliations. */
  private async userAffiliations(from: Jid, el: Element): Promise<Element> {
    const nodeAttr = el.attrs.node;
    let affs: { node: string; affiliation: Affiliation }[];
    if (this.profile.isServiceOwner(from.bare)) {
      affs = (await this.store.listNodes(this.key)).map((n) => ({
        node: n.node,
        affiliation: 'owner' as const,
      }));
    } else {
      affs = await this.store.affiliationsOf(this.key, from.toBareString());
    }
    if (nodeAttr !== undefined) affs = affs.filter((a) => a.node === nodeAttr);
    return xml(
      'pubsub',
      { xmlns: NS.pubsub },
      xml(
        'affiliations',
        { node: nodeAttr },
        affs.map((a) => xml('affiliation', { node: a.node, affiliation: a.affiliation })),
      ),
    );
  }

  /** XEP-0060 §8.8.1: an owner lists the node's subscriptions. */
  private async ownerSubscriptions(from: Jid, el: Element): Promise<Element> {
    const node = await this.node(this.nodeId(el));
    await this.requireOwner(node, from);
    const subs = await this.store.subscriptions(this.key, node.node);
    return xml(
      'pubsub',
      { xmlns: NS.pubsubOwner },
      xml(
        'subscriptions',
        { node: node.node },
        subs.map((s) => xml('subscription', { jid: s.jid, subscription: s.state, subid: s.subid })),
      ),
    );
  }

  /** XEP-0060 §8.8.2: an owner changes subscriptions (subscribed, none, pending approval). */
  private async setOwnerSubscriptions(from: Jid, el: Element): Promise<undefined> {
    const node = await this.node(this.nodeId(el));
    await this.requireOwner(node, from);
    for (const s of el.getChildren('subscription', NS.pubsubOwner)) {
      const jid = tryParseJid(s.attrs.jid ?? '');
      const state = s.attrs.subscription;
      if (!jid || (state !== 'subscribed' && state !== 'none' && state !== 'pending'))
        throw new StanzaError('bad-request', { text: 'bad subscription entry' });
      const existing = await this.store.subscription(this.key, node.node, jid.toString());
      if (state === 'none') {
        if (existing) await this.decide(node, existing, 'none');
      } else if (existing?.state === 'pending' && state === 'subscribed') {
        await this.decide(node, existing, 'subscribed');
      } else {
        await this.store.putSubscription(this.key, {
          node: node.node,
          jid: jid.toString(),
          subid: existing?.subid ?? randomUUID(),
          state,
          options: existing?.options ?? {},
        });
      }
    }
    return undefined;
  }

  /** XEP-0060 §8.9.1. */
  private async ownerAffiliations(from: Jid, el: Element): Promise<Element> {
    const node = await this.node(this.nodeId(el));
    await this.requireOwner(node, from);
    const affs: { jid: string; affiliation: string }[] = await this.store.affiliations(this.key, node.node);
    // A PEP account owns its nodes without a stored row: list it first.
    if (this.profile.isServiceOwner(this.address)) affs.unshift({ jid: this.key, affiliation: 'owner' });
    return xml(
      'pubsub',
      { xmlns: NS.pubsubOwner },
      xml(
        'affiliations',
        { node: node.node },
        affs.map((a) => xml('affiliation', { jid: a.jid, affiliation: a.affiliation })),
      ),
    );
  }

  /** XEP-0060 §8.9.2: an owner changes affiliations (whitelist members, publishers, outcasts). */
  private async setOwnerAffiliations(from: Jid, el: Element): Promise<undefined> {
    const node = await this.node(this.nodeId(el));
    await this.requireOwner(node, from);
    const changes: { jid: string; affiliation: Affiliation }[] = [];
    for (const a of el.getChildren('affiliation', NS.pubsubOwner)) {
      const jid = tryParseJid(a.attrs.jid ?? '');
      const aff = a.attrs.affiliation as Affiliation | undefined;
      if (!jid || aff === undefined || !OWNER_AFFILIATIONS.has(aff))
        throw new StanzaError('bad-request', { text: 'bad affiliation entry' });
      if (this.profile.isServiceOwner(jid.bare))
        throw new StanzaError('not-acceptable', { text: 'the account owner always owns its nodes' });
      changes.push({ jid: jid.toBareString(), affiliation: aff });
    }
    if (!this.profile.isServiceOwner(this.address)) {
      const owners = new Set(await this.owners(node));
      for (const c of changes) {
        if (c.affiliation === 'owner') owners.add(c.jid);
        else owners.delete(c.jid);
      }
      if (owners.size === 0)
        throw new StanzaError('not-acceptable', { text: 'a node keeps at least one owner' });
    }
    for (const c of changes) {
      await this.store.setAffiliation(this.key, node.node, c.jid, c.affiliation);
      if (c.affiliation === 'outcast') {
        for (const s of await this.store.subscriptions(this.key, node.node)) {
          if (tryParseJid(s.jid)?.toBareString() === c.jid)
            await this.store.deleteSubscription(this.key, node.node, s.jid);
        }
      }
    }
    return undefined;
  }

  // --- notifications --------------------------------------------------------------------------

  /** Who gets a node's notifications: subscribers (state subscribed, deliver on) and implicit ones. */
  async recipients(node: StoredNode): Promise<Jid[]> {
    const out: Jid[] = [];
    const implicit = (await this.profile.implicitRecipients?.(node)) ?? [];
    const covered = new Set(implicit.map((j) => j.toBareString()));
    const seen = new Set<string>();
    for (const j of implicit) {
      if (seen.has(j.toString())) continue;
      seen.add(j.toString());
      out.push(j);
    }
    // XEP-0163 §7.1 / XEP-0060 §4.5: roster-based access is re-checked at delivery, so a lost
    // presence subscription or roster group stops notifications at once.
    const recheck = node.config.access_model !== 'open' && node.config.access_model !== 'authorize';
    for (const s of await this.store.subscriptions(this.key, node.node)) {
      if (s.state !== 'subscribed' || parseBoolean(s.options['pubsub#deliver']) === false) continue;
      const jid = tryParseJid(s.jid);
      if (!jid || seen.has(s.jid) || covered.has(jid.toBareString())) continue;
      if (recheck && !(await this.access(node, jid, 'notify')).ok) continue;
      seen.add(s.jid);
      out.push(jid);
    }
    return out;
  }

  async broadcast(node: StoredNode, event: Element): Promise<void> {
    this.sendEvent(node, await this.recipients(node), event);
  }

  /** Sends `<message><event>…</event></message>` from the service to each recipient. */
  sendEvent(node: StoredNode, to: Jid[], event: Element, delayed = false): void {
    for (const jid of to) {
      this.deps.send(
        xml(
          'message',
          { from: this.key, to: jid.toString(), type: node.config.notification_type, id: randomUUID() },
          xml('event', { xmlns: NS.pubsubEvent }, event.clone()),
          delayed && xml('delay', { xmlns: NS.delay, from: this.key, stamp: new Date().toISOString() }),
        ),
      );
    }
  }

  /** The newest item of a node as an items event (XEP-0163 §4.3.4), or undefined. */
  async lastItemEvent(node: StoredNode): Promise<Element | undefined> {
    const [last] = await this.store.items(this.key, node.node, 1);
    return last ? this.itemsEvent(node, [last]) : undefined;
  }

  // --- discovery ------------------------------------------------------------------------------

  /** XEP-0060 §5.4: node meta-data form. */
  async metaData(node: StoredNode): Promise<Element> {
    const owners = this.profile.isServiceOwner(this.address) ? [this.key] : await this.owners(node);
    const subs = await this.store.subscriptions(this.key, node.node);
    return buildForm({
      type: 'result',
      formType: FORM.metaData,
      fields: [
        { var: 'pubsub#title', values: [node.config.title] },
        { var: 'pubsub#description', values: [node.config.description] },
        { var: 'pubsub#type', values: [node.config.type] },
        { var: 'pubsub#creator', type: 'jid-single', values: [node.creator] },
        { var: 'pubsub#creation_date', values: [new Date(node.createdAt).toISOString()] },
        { var: 'pubsub#owner', type: 'jid-multi', values: owners },
        { var: 'pubsub#access_model', values: [node.config.access_model] },
        { var: 'pubsub#publish_model', values: [node.config.publish_model] },
        { var: 'pubsub#max_items', values: [String(node.config.max_items)] },
        {
          var: 'pubsub#num_subscribers',
          values: [String(subs.filter((s) => s.state === 'subscribed').length)],
        },
      ],
    });
  }

  /** disco#info of a node: identity pubsub/leaf and the meta-data form. */
  async nodeInfo(id: string, requester: Jid): Promise<Element> {
    const node = await this.store.getNode(this.key, id);
    if (!node || !(await this.visible(node, requester))) throw new StanzaError('item-not-found');
    return xml(
      'query',
      { xmlns: NS.discoInfo, node: id },
      xml('identity', { category: 'pubsub', type: 'leaf' }),
      xml('feature', { var: NS.pubsub }),
      await this.metaData(node),
    );
  }

  /** disco#items: the nodes (no node given) or the item ids of a node. */
  async items(node: string | undefined, requester: Jid): Promise<Element> {
    if (node === undefined) {
      const nodes: StoredNode[] = [];
      for (const n of await this.store.listNodes(this.key))
        if (await this.visible(n, requester)) nodes.push(n);
      return xml(
        'query',
        { xmlns: NS.discoItems },
        nodes.map((n) => xml('item', { jid: this.key, node: n.node, name: n.config.title || undefined })),
      );
    }
    const n = await this.store.getNode(this.key, node);
    if (!n || !(await this.visible(n, requester))) throw new StanzaError('item-not-found');
    const access = await this.access(n, requester, 'retrieve');
    const items = access.ok ? await this.store.items(this.key, n.node) : [];
    return xml(
      'query',
      { xmlns: NS.discoItems, node },
      items.map((it) => xml('item', { jid: this.key, name: it.id })),
    );
  }

  /** XEP-0163 §6.2: only nodes the requester may access are listed. */
  private async visible(node: StoredNode, requester: Jid): Promise<boolean> {
    const a = await this.access(node, requester, 'subscribe');
    return a.ok;
  }
}

/** Node and item ids are stored in varchar(1023) columns. */
function checkId(id: string, what: 'node' | 'item'): void {
  if (id.length > 1023)
    throw new StanzaError('not-acceptable', { text: `${what} ids are limited to 1023 characters` });
}

function subscriptionEl(s: StoredSubscription): Element {
  return xml('subscription', { node: s.node, jid: s.jid, subid: s.subid, subscription: s.state });
}

/** XEP-0060 §6.3.4 minimal subscription options: pubsub#deliver. */
function subscribeOptionsForm(options: Record<string, string>): Element {
  return buildForm({
    type: 'form',
    formType: FORM.subscribeOptions,
    fields: [
      {
        var: 'pubsub#deliver',
        type: 'boolean',
        label: 'Enable delivery?',
        values: [options['pubsub#deliver'] ?? '1'],
      },
    ],
  });
}

function readSubscribeOptions(x: Element, current: Record<string, string>): Record<string, string> {
  const form = parseForm(x);
  const ft = formType(form);
  if (ft !== undefined && ft !== FORM.subscribeOptions) throw pubsubError('bad-request', 'invalid-options');
  const out = { ...current };
  for (const f of form.fields) {
    if (f.var === undefined || f.var === 'FORM_TYPE') continue;
    if (f.var !== 'pubsub#deliver')
      throw pubsubError('bad-request', 'invalid-options', { text: `unsupported option ${f.var}` });
    const b = parseBoolean(f.values[0]);
    if (b === undefined)
      throw pubsubError('bad-request', 'invalid-options', { text: 'pubsub#deliver is a boolean' });
    out[f.var] = b ? '1' : '0';
  }
  return out;
}
