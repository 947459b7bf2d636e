import { z } from 'zod';
import { xml } from '@natter/xml';
import { tryParseJid, type Jid } from '@natter/jid';
import { NS, StanzaError } from '@natter/protocol';
import { defineModule, type SessionRecord } from '../../core/module-api.js';
import {
  PEP_FEATURES,
  PUBSUB_FEATURES,
  sharesPresence,
  type PubsubApi,
  type PubsubService,
  type ServiceProfile,
  type StoredNode,
} from '../pubsub/api.js';
import type { RosterApi } from '../roster/api.js';
import { pepNodeDefaults, type PepApi, type PepWatcher } from './api.js';
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
  /**
   * `owner\nnode` pairs whose last item this resource got since it became available; made by the
   * first one (idle sessions are counted in KiB).
   */
  sent: Set<string> | undefined;
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
          (st = { caps: undefined, features: undefined, sent: undefined, generation: 0, primed: false }),
        );
      return st;
    };
    /**
     * Sessions other nodes hold (docs/decisions/0009): their features as read from the caps of the
     * replicated presence. A record is replaced at each change of the session, which forgets them.
     */
    const remote = new WeakMap<SessionRecord, Promise<ReadonlySet<string> | undefined>>();
    /** The caps of another node's record, read once (its presence is kept as text and parsed on read). */
    const remoteCaps = new WeakMap<SessionRecord, ReturnType<typeof readCaps> | undefined>();

    /** A session's features: what its presence made known here, or, for another node's, its caps. */
    function featuresOf(
      s: SessionRecord,
    ): ReadonlySet<string> | undefined | Promise<ReadonlySet<string> | undefined> {
      const st = resources.get(s);
      if (st || s.node === ctx.cluster.nodeId) return st?.features;
      let info = remoteCaps.get(s);
      if (info === undefined && !remoteCaps.has(s)) {
        const presence = s.presence;
        remoteCaps.set(s, (info = presence ? readCaps(presence) : undefined));
      }
      if (!info) return undefined;
      const cached = caps.get(info);
      if (cached) return cached;
      // Unknown here: the client is asked, through the node that holds it (once per record).
      let p = remote.get(s);
      if (!p) remote.set(s, (p = resolveFeatures(s, info)));
      return p;
    }

    /**
     * XEP-0163 §4.2: the available resources of `sessions` that want a node's notifications (they
     * advertise `node+notify`). Synchronous unless a session of another node has caps unknown here.
     */
    function wanting(
      sessions: readonly SessionRecord[],
      node: string,
    ): SessionRecord[] | Promise<SessionRecord[]> {
      const out: SessionRecord[] = [];
      let asked: Promise<SessionRecord | undefined>[] | undefined;
      const notify = `${node}+notify`;
      for (const s of sessions) {
        if (!s.available || s.priority < 0) continue;
        const features = featuresOf(s);
        if (features instanceof Promise)
          (asked ??= []).push(features.then((f) => (f?.has(notify) ? s : undefined)));
        else if (features?.has(notify)) out.push(s);
      }
      if (!asked) return out;
      return Promise.all(asked).then((more) => [...out, ...more.filter((s) => s !== undefined)]);
    }

    /** Modules watching publications, by node (api.ts `watch`). */
    const watchers = new Map<string, PepWatcher[]>();
    const profile = (account: Jid): ServiceProfile => ({
      // XEP-0163 §5: presence access, notifications with payloads, last item on sub and presence.
      defaults: () => pepNodeDefaults(maxItems),
      mayCreate: (from) => from.equals(account),
      isServiceOwner: (from) => from.equals(account),
      ownerPublishesOnly: true,
      autoCreate: true,
      rosterOwners: () => [account],
      implicitRecipients: (node) => implicitRecipients(account, node),
      configured: (node, service, created) => avatarFollows(node, service, created),
      beforePublish: async (node, payload, from) => {
        for (const w of [...(watchers.get(node) ?? [])]) await w.validate?.(account, payload, from);
      },
      published: async (node, item, payload, from) => {
        for (const w of [...(watchers.get(node.node) ?? [])]) {
          try {
            await w.published?.(account, { id: item.id, payload }, from);
          } catch (err) {
            ctx.log.error({ err, account: account.toString(), node: node.node }, 'a PEP watcher failed');
          }
        }
      },
    });
    const serviceOf = (account: Jid): PubsubService => api.service(account.toBareString(), profile(account));

    /** XEP-0163 §4.3.2: the owner's and contacts' resources that want this node and may see it. */
    async function implicitRecipients(account: Jid, node: StoredNode): Promise<Jid[]> {
      const out: Jid[] = [];
      // A resource that gets a live event needs no "last item" for that node any more: its node
      // is told so for the resources other nodes hold (before the event, which follows on the bus).
      const key = `${account.toBareString()}\n${node.node}`;
      let elsewhere: [string, string][] | undefined;
      const take = (s: SessionRecord) => {
        const st = resources.get(s);
        if (st) (st.sent ??= new Set()).add(key);
        else if (s.node !== ctx.cluster.nodeId) (elsewhere ??= []).push([s.jid.toString(), s.id]);
        out.push(s.jid);
      };
      const r = roster();
      // Every contact's sessions are looked at before any answer is awaited, so that clients of
      // other nodes with caps unknown here are asked at once, not one after the other.
      const own = wanting(ctx.sessions.available(account), node.node);
      const contacts = r
        ? (await r.subscribers(account))
            .filter((contact) => !contact.bare.equals(account))
            .map((contact) => [contact, wanting(ctx.sessions.available(contact), node.node)] as const)
        : [];
      for (const s of Array.isArray(own) ? own : await own) take(s);
      if (contacts.length > 0) {
        const service = serviceOf(account);
        for (const [contact, found] of contacts) {
          const sessions = Array.isArray(found) ? found : await found;
          if (sessions.length === 0) continue;
          if (!(await service.access(node, contact, 'notify')).ok) continue;
          for (const s of sessions) take(s);
        }
      }
      if (elsewhere) ctx.cluster.broadcast('sent', { key, sessions: elsewhere });
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
          if (st.sent?.has(key) === true) continue;
          const node = await store.getNode(owner.toBareString(), name);
          if (
            !node ||
            node.config.send_last_published_item !== 'on_sub_and_presence' ||
            !node.config.deliver_notifications
          )
            continue;
          if (!isSelf && !(await service.access(node, session.jid, 'notify')).ok) continue;
          const ev = await service.lastItemEvent(node);
          if (!ev || !session.available || st.sent?.has(key) === true) continue;
          (st.sent ??= new Set()).add(key);
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
            if (info.hash !== undefined && capsVer(query, info.hash) === info.ver) {
              caps.set(info, features);
              // Verified caps never change meaning: the other nodes need not ask any client again.
              ctx.cluster.broadcast('caps', { hash: info.hash, ver: info.ver, features: [...features] });
            } else if (info.hash !== undefined)
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

    /**
     * After an owner approves a contact (presence subscribed), the contact's resources get last
     * items: those of this node here, those of other nodes by theirs (`relay`), which hold what
     * each resource was already sent.
     */
    function afterApproval(owner: Jid, contact: Jid, relay = true): void {
      if (relay) ctx.cluster.broadcast('approved', { owner: owner.toString(), contact: contact.toString() });
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

    // What other nodes tell this one about the resources it holds, and verified caps they learnt.
    ctx.onStop(
      ctx.cluster.on('sent', (data) => {
        const { key, sessions } = (data ?? {}) as { key?: unknown; sessions?: unknown };
        if (typeof key !== 'string' || !Array.isArray(sessions)) return;
        for (const entry of sessions as unknown[]) {
          if (!Array.isArray(entry) || typeof entry[0] !== 'string') continue;
          const s = ctx.sessions.get(entry[0]);
          const st = s && s.id === entry[1] ? resources.get(s) : undefined;
          if (st) (st.sent ??= new Set()).add(key);
        }
      }),
    );
    ctx.onStop(
      ctx.cluster.on('approved', (data) => {
        const { owner, contact } = (data ?? {}) as { owner?: unknown; contact?: unknown };
        const o = typeof owner === 'string' ? tryParseJid(owner) : undefined;
        const c = typeof contact === 'string' ? tryParseJid(contact) : undefined;
        if (o && c) afterApproval(o, c, false);
      }),
    );
    ctx.onStop(
      ctx.cluster.on('caps', (data) => {
        const { hash, ver, features } = (data ?? {}) as { hash?: unknown; ver?: unknown; features?: unknown };
        if (typeof hash !== 'string' || typeof ver !== 'string' || !Array.isArray(features)) return;
        const info: CapsInfo = { node: '', ver, hash };
        if (!caps.get(info))
          caps.set(info, new Set(features.filter((f): f is string => typeof f === 'string')));
      }),
    );

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
        st.sent = undefined;
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
      watch(node, watcher) {
        let list = watchers.get(node);
        if (!list) watchers.set(node, (list = []));
        list.push(watcher);
        return () => {
          const i = list.indexOf(watcher);
          if (i >= 0) list.splice(i, 1);
        };
      },
      maxPayloadBytes: api.options.maxPayloadBytes,
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
