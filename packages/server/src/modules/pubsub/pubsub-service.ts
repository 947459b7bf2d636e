import { randomUUID } from 'node:crypto';
import { xml, parseElement, type Element } from '@natter/xml';
import { tryParseJid, type Jid } from '@natter/jid';
import { NS, StanzaError, buildForm, parseForm, formType, parseBoolean } from '@natter/protocol';
import { pubsubError } from './pubsub-errors.js';
import { FORM, type NodeConfig } from './node-config.js';
import type { Affiliation, PubsubStore, StoredItem, StoredNode } from './pubsub-store.js';
import type { RosterApi } from './roster-types.js';
import type { CommandTable, PubsubCommand } from './commands/command.js';
import { createCommands } from './commands/create.js';
import { publishCommands } from './commands/publish.js';
import { itemCommands } from './commands/items.js';
import { decide, subscribeCommands } from './commands/subscribe.js';
import { ownerCommands } from './commands/owner.js';

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
  /**
   * Called before an item is published to node `node` (which may not exist yet): a thrown
   * StanzaError refuses the publish, and nothing is stored.
   */
  beforePublish?(node: string, payload: Element | undefined, from: Jid): Promise<void>;
  /** Called after an item was stored and its notifications sent, before the publisher's result. */
  published?(node: StoredNode, item: StoredItem, payload: Element | undefined, from: Jid): Promise<void>;
}

const table = (...parts: CommandTable[]) =>
  new Map<string, PubsubCommand>(parts.flatMap((p) => Object.entries(p)));

/** Requests in the pubsub namespace, by `"<iq type> <element name>"` (commands/*.ts). */
const USER_COMMANDS = table(createCommands, publishCommands, itemCommands, subscribeCommands);
/** Requests in the pubsub#owner namespace (XEP-0060 §8). */
const OWNER_COMMANDS = table(ownerCommands);

type AccessResult = { ok: true; affiliation: Affiliation } | { ok: false; error: StanzaError };

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

  get store(): PubsubStore {
    return this.deps.store;
  }

  get maxItems(): number {
    return this.deps.limits.maxItemsPerNode;
  }

  // --- entry points ---------------------------------------------------------------------------

  /** Handles `<pubsub xmlns='…pubsub'/>` or `<pubsub xmlns='…pubsub#owner'/>`; returns the result payload. */
  async handle(from: Jid, type: 'get' | 'set', payload: Element): Promise<Element | undefined> {
    const first = payload.elements()[0];
    if (!first) throw new StanzaError('bad-request', { text: 'empty pubsub element' });
    const owner = payload.xmlns === NS.pubsubOwner;
    const command = (owner ? OWNER_COMMANDS : USER_COMMANDS).get(`${type} ${first.name}`);
    if (!command) {
      throw new StanzaError('feature-not-implemented', {
        text: `unsupported ${owner ? 'owner request' : 'request'} ${first.name}`,
      });
    }
    return command(this, from, first, payload);
  }

  // --- helpers --------------------------------------------------------------------------------

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

  /** Throws `forbidden` unless `from` owns the node. */
  async requireOwner(node: StoredNode, from: Jid): Promise<void> {
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

  // --- publishing -----------------------------------------------------------------------------

  /** `<items node><item id>payload</item></items>` for an event (payload omitted per config). */
  itemsEvent(node: StoredNode, items: StoredItem[], parsed?: Element): Element {
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

  // --- subscriptions --------------------------------------------------------------------------

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
    await decide(this, node, sub, parseBoolean(get('pubsub#allow')) === true ? 'subscribed' : 'none');
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
