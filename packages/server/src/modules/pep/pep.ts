import { z } from 'zod';
import { xml } from '@natter/xml';
import type { Jid } from '@natter/jid';
import { NS, StanzaError } from '@natter/protocol';
import { defineModule, type SessionRecord } from '../../core/module-api.js';
import {
  defaultConfig,
  PEP_FEATURES,
  PUBSUB_FEATURES,
  sharesPresence,
  type PubsubApi,
  type PubsubService,
  type ServiceProfile,
  type StoredNode,
} from '../pubsub/api.js';
import type { RosterApi } from '../roster/api.js';
import type { PepApi } from './api.js';
import { CapsCache, capsVer, readCaps, type CapsInfo } from './xep-0115-caps.js';

/** XEP-0084 node names. */
export const AVATAR_DATA = 'urn:xmpp:avatar:data';
export const AVATAR_METADATA = 'urn:xmpp:avatar:metadata';

export type { PepApi } from './api.js';

/** What PEP knows about a connected resource (XEP-0115 caps and what it was already sent). */
interface ResourceState {
  caps: CapsInfo | undefined;
  /** Features of the client (undefined until known). */
  features: ReadonlySet<string> | undefined;
  /** `owner\nnode` pairs whose last item this resource got since it became available. */
  sent: Set<string>;
  /** Bumped at each presence, so a late disco answer does not overwrite newer caps. */
  generation: number;
  /** Last items were looked up since the resource became available. */
  primed: boolean;
}

/**
 * Personal Eventing Protocol (XEP-0163): every account's bare JID is a pubsub service run by the
 * pubsub module's engine, with presence-based, caps-filtered (XEP-0115 `+notify`) delivery to
 * the account's contacts and own resources, and the last item sent to newly available resources.
 * Common uses: avatars (XEP-0084), nickname (XEP-0172), bookmarks (XEP-0402, private per XEP-0223).
 */
export default defineModule({
  name: 'pep',
  description:
    'Personal Eventing Protocol: a pubsub service on every account, with presence and caps based notifications',
  specs: ['XEP-0163', 'XEP-0115 (filtered notifications)', 'XEP-0084', 'XEP-0172', 'XEP-0223', 'XEP-0402'],
  enabledByDefault: true,
  dependencies: ['pubsub', 'roster'],
  options: z
    .object({
      /** Verified caps hashes remembered (least recently used evicted). */
      capsCacheSize: z.number().int().min(1).default(1000),
      /** How long a client has to answer the server's disco#info query about its caps. */
      discoTimeoutMs: z.number().int().min(100).default(10_000),
      /** pubsub#max_items of new PEP nodes. */
      defaultMaxItems: z.number().int().min(1).default(1),
    })
    .strict()
    .prefault({}),
  setup(ctx) {
    const api = ctx.use<PubsubApi>('pubsub');
    if (!api) throw new Error('pep needs the pubsub module');
    const { store } = api.deps;
    const roster = () => ctx.use<RosterApi>('roster');
    const caps = new CapsCache(ctx.options.capsCacheSize);
    const resources = new WeakMap<SessionRecord, ResourceState>();
    const pendingDisco = new Map<string, Promise<ReadonlySet<string> | undefined>>();
    const maxItems = Math.min(ctx.options.defaultMaxItems, api.options.maxItemsPerNode);

    const stateOf = (s: SessionRecord): ResourceState => {
      let st = resources.get(s);
      if (!st)
        resources.set(
          s,
          (st = { caps: undefined, features: undefined, sent: new Set(), generation: 0, primed: false }),
        );
      return st;
    };
    /** XEP-0163 §4.2: a resource wants a node's notifications when it advertises `node+notify`. */
    const wants = (s: SessionRecord, node: string) =>
      s.available && s.priority >= 0 && resources.get(s)?.features?.has(`${node}+notify`) === true;

    const profile = (account: Jid): ServiceProfile => ({
      // XEP-0163 §5: presence access, notifications with payloads, last item on sub and presence.
      defaults: () =>
        defaultConfig({
          access_model: 'presence',
          max_items: maxItems,
          send_last_published_item: 'on_sub_and_presence',
        }),
      mayCreate: (from) => from.equals(account),
      isServiceOwner: (from) => from.equals(account),
      ownerPublishesOnly: true,
      autoCreate: true,
      rosterOwners: () => [account],
      implicitRecipients: (node) => implicitRecipients(account, node),
      configured: (node, service, created) => avatarFollows(node, service, created),
    });
    const serviceOf = (account: Jid): PubsubService => api.service(account.toBareString(), profile(account));

    /** XEP-0163 §4.3.2: the owner's and contacts' resources that want this node and may see it. */
    async function implicitRecipients(account: Jid, node: StoredNode): Promise<Jid[]> {
      const out: Jid[] = [];
      // A resource that gets a live event needs no "last item" for that node any more.
      const key = `${account.toBareString()}\n${node.node}`;
      const take = (s: SessionRecord) => {
        resources.get(s)?.sent.add(key);
        out.push(s.jid);
      };
      for (const s of ctx.sessions.available(account)) if (wants(s, node.node)) take(s);
      const r = roster();
      if (!r) return out;
      const service = serviceOf(account);
      for (const contact of await r.subscribers(account)) {
        const sessions = ctx.sessions.available(contact).filter((s) => wants(s, node.node));
        if (sessions.length === 0 || contact.bare.equals(account)) continue;
        if (!(await service.access(node, contact, 'notify')).ok) continue;
        for (const s of sessions) take(s);
      }
      return out;
    }

    /** XEP-0084 §4.2: the data node's access model follows the metadata node's. */
    async function avatarFollows(node: StoredNode, service: PubsubService, created: boolean): Promise<void> {
      if (node.node === AVATAR_METADATA) {
        const data = await store.getNode(node.owner, AVATAR_DATA);
        if (
          data &&
          (data.config.access_model !== node.config.access_model ||
            data.config.roster_groups_allowed.join('\n') !== node.config.roster_groups_allowed.join('\n'))
        ) {
          await service.reconfigure(data, {
            ...data.config,
            access_model: node.config.access_model,
            roster_groups_allowed: node.config.roster_groups_allowed,
          });
        }
      } else if (node.node === AVATAR_DATA && created) {
        const meta = await store.getNode(node.owner, AVATAR_METADATA);
        if (meta && meta.config.access_model !== node.config.access_model) {
          await service.reconfigure(node, {
            ...node.config,
            access_model: meta.config.access_model,
            roster_groups_allowed: meta.config.roster_groups_allowed,
          });
        }
      }
    }

    /**
     * XEP-0163 §4.3.3-§4.3.4: send a resource the last item of every node it newly wants, from
     * its own account and from the accounts whose presence it receives (all, or only `owners`).
     */
    async function sendLastItems(session: SessionRecord, owners?: Jid[]): Promise<void> {
      const st = resources.get(session);
      if (!st?.features || !session.available) return;
      const nodes = [...st.features].filter((f) => f.endsWith('+notify')).map((f) => f.slice(0, -7));
      if (nodes.length === 0) return;
      let candidates = owners;
      if (!candidates) {
        const r = roster();
        candidates = [session.bare, ...(r ? await r.subscriptions(session.bare) : [])];
      }
      for (const owner of candidates) {
        if (owner.domain !== ctx.domain) continue;
        const isSelf = owner.equals(session.bare);
        if (!isSelf && !(await sharesPresence(roster(), owner, session.bare))) continue;
        const service = serviceOf(owner);
        for (const name of nodes) {
          const key = `${owner.toBareString()}\n${name}`;
          if (st.sent.has(key)) continue;
          const node = await store.getNode(owner.toBareString(), name);
          if (
            !node ||
            node.config.send_last_published_item !== 'on_sub_and_presence' ||
            !node.config.deliver_notifications
          )
            continue;
          if (!isSelf && !(await service.access(node, session.jid, 'notify')).ok) continue;
          const ev = await service.lastItemEvent(node);
          if (!ev || !session.available || st.sent.has(key)) continue;
          st.sent.add(key);
          service.sendEvent(node, [session.jid], ev, true);
        }
      }
    }

    /** The client's features for these caps: cached, or asked with disco#info and verified. */
    function resolveFeatures(
      session: SessionRecord,
      info: CapsInfo,
    ): Promise<ReadonlySet<string> | undefined> {
      const cached = caps.get(info);
      if (cached) return Promise.resolve(cached);
      const key =
        info.hash === undefined ? `${session.jid.toString()} ${info.ver}` : `${info.hash} ${info.ver}`;
      let p = pendingDisco.get(key);
      if (!p) {
        const request = xml(
          'iq',
          { type: 'get', from: ctx.domain, to: session.jid.toString() },
          xml('query', { xmlns: NS.discoInfo, node: `${info.node}#${info.ver}` }),
        );
        p = ctx
          .sendIq(request, ctx.options.discoTimeoutMs)
          .then((res) => {
            const query = res.getChild('query', NS.discoInfo);
            if (!query) return undefined;
            const features = new Set(
              query.getChildren('feature', NS.discoInfo).map((f) => f.attrs.var ?? ''),
            );
            if (info.hash !== undefined && capsVer(query, info.hash) === info.ver) caps.set(info, features);
            else if (info.hash !== undefined)
              ctx.log.debug(
                { jid: session.jid.toString(), ver: info.ver },
                'caps hash does not verify: not cached',
              );
            return features as ReadonlySet<string>;
          })
          .catch((err: unknown) => {
            ctx.log.debug({ err, jid: session.jid.toString() }, 'caps disco#info query failed');
            return undefined;
          })
          .finally(() => pendingDisco.delete(key));
        pendingDisco.set(key, p);
      }
      return p;
    }

    /** A resource's broadcast presence: (re)read its caps, then send last items it newly wants. */
    async function onPresence(session: SessionRecord): Promise<void> {
      const presence = session.presence;
      if (!presence) return;
      const st = stateOf(session);
      const generation = ++st.generation;
      const info = readCaps(presence);
      if (!info) {
        st.caps = undefined;
        st.features = undefined;
        return;
      }
      let changed = false;
      if (!st.caps || st.caps.ver !== info.ver || st.caps.node !== info.node || !st.features) {
        const features = await resolveFeatures(session, info);
        if (generation !== st.generation) return;
        st.caps = info;
        st.features = features;
        changed = true;
      }
      // Initial presence or new interests: last items (a mere status change costs nothing).
      if (changed || !st.primed) {
        st.primed = true;
        await sendLastItems(session);
      }
    }

    /** After an owner approves a contact (presence subscribed), the contact's resources get last items. */
    function afterApproval(owner: Jid, contact: Jid): void {
      for (const delay of [50, 400, 1500]) {
        setTimeout(() => {
          for (const s of ctx.sessions.available(contact)) {
            sendLastItems(s, [owner]).catch((err: unknown) =>
              ctx.log.error({ err }, 'PEP last item delivery failed'),
            );
          }
        }, delay).unref();
      }
    }

    ctx.hook(
      'stanza/out',
      (ev) => {
        const { stanza, origin } = ev;
        if (stanza.name !== 'presence' || !origin) return false;
        const type = stanza.attrs.type;
        if (stanza.attrs.to === undefined && type === undefined) {
          onPresence(origin).catch((err: unknown) => ctx.log.error({ err }, 'PEP presence handling failed'));
        } else if (type === 'subscribed' && ev.to.domain === ctx.domain && ev.to.local !== '') {
          afterApproval(ev.from.bare, ev.to.bare);
        }
        return false;
      },
      10,
    );
    ctx.hook('session/unavailable', ({ session }) => {
      const st = resources.get(session);
      if (st) {
        st.sent.clear();
        st.generation++;
        st.primed = false;
      }
    });
    ctx.hook('user/deleted', async ({ jid }) => {
      await store.deleteOwner(jid.toBareString());
    });

    // For the disco module: XEP-0163 §6.2 node listing and node info of an account; for modules
    // with another view of an account's own nodes (private: XEP-0048 ↔ XEP-0402), its own requests.
    ctx.provide<PepApi>('pep', {
      discoItems: (account, requester, node) => serviceOf(account.bare).items(node, requester),
      discoInfo: (account, requester, node) => serviceOf(account.bare).nodeInfo(node, requester),
      ownRequest: (from, type, pubsub) => serviceOf(from.bare).handle(from, type, pubsub),
    });

    // XEP-0163 §6.1: every account is a virtual pubsub service.
    ctx.identity('account', { category: 'pubsub', type: 'pep' });
    ctx.feature('account', ...PUBSUB_FEATURES, ...PEP_FEATURES);
    for (const xmlns of [NS.pubsub, NS.pubsubOwner]) {
      for (const type of ['get', 'set'] as const) {
        ctx.iq('account', type, xmlns, 'pubsub', async (req) => {
          if (!(await ctx.accountExists(req))) throw new StanzaError('service-unavailable');
          return serviceOf(req.to.bare).handle(req.from, type, req.payload);
        });
      }
    }
  },
});
