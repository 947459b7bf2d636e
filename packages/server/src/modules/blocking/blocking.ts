import { z } from 'zod';
import { xml, type Element } from '@natter/xml';
import { parseJid, type Jid } from '@natter/jid';
import { NS, StanzaError, errorReply } from '@natter/protocol';
import { defineModule, type RouteEvent, type MaybePromise } from '../../core/module-api.js';
import { BlocklistStore, blockingMigrations } from './blocklist-store.js';
import { blocklistMatches } from './xep-0191-matching.js';
import { mayReceivePresence } from '../last/api.js';
import type { BlockingApi } from './api.js';

export type { BlockingApi } from './api.js';

/** Above the modules that archive or copy messages (MAM, carbons, offline), which run at 0 to 200. */
const PRIORITY = 500;

function ownerKey(owner: Jid | string): string {
  return typeof owner === 'string' ? owner : owner.toBareString();
}

/**
 * Blocking Command (XEP-0191): blocklist retrieval, block and unblock with pushes to the
 * resources that asked for the list, and enforcement in both directions on every path a stanza
 * takes: inbound messages and IQs from a blocked JID are refused with service-unavailable,
 * inbound presence is dropped, in the filter stage (`stanza/in`) that stanzas from every origin
 * meet (clients, components, remote servers, services); outbound stanzas to a blocked JID get not-acceptable with
 * `<blocked xmlns='urn:xmpp:blocking:errors'/>`, and presence broadcasts to blocked contacts are
 * dropped. Blocking sends the contact unavailable presence; unblocking sends current presence.
 */
export default defineModule({
  name: 'blocking',
  description: 'Lets users block and unblock JIDs (XEP-0191) and enforces their blocklists',
  specs: ['XEP-0191'],
  enabledByDefault: true,
  options: z
    .object({
      /** Blocklists kept in memory (accounts that block nobody take no room). */
      cacheSize: z.number().int().min(1).default(10_000),
      /** Items per blocklist. */
      maxItems: z.number().int().min(1).default(1000),
    })
    .strict()
    .prefault({}),
  // Read at each block request (the cache size is not: it sizes the cache at start).
  reloadable: ['maxItems'],
  migrations: blockingMigrations,
  async setup(ctx) {
    // One store per server process, shared by its virtual hosts (a check may cross hosts).
    const store = await ctx.processScoped('blocking:store', () =>
      BlocklistStore.open(ctx.db, ctx.options.cacheSize),
    );
    // docs/decisions/0009: every node caches blocklists; a change here makes the others read
    // again, before the change is answered. (The store is shared by the hosts of this process; each
    // host's module hears its own accounts' changes.)
    const changed = (owner: string) => ctx.cluster.broadcast('invalidate', owner);
    ctx.onStop(
      ctx.cluster.on('invalidate', (owner) => {
        if (typeof owner === 'string') store.invalidate(owner);
      }),
    );
    ctx.onStop(
      ctx.cluster.onResync(() => {
        store
          .invalidateAll()
          .catch((err: unknown) => ctx.log.error({ err }, 'could not reload the blocklists'));
      }),
    );
    /** Sessions that retrieved the blocklist get the pushes (XEP-0191 §3.3): a flag on their record. */
    const INTERESTED = 'blocking:interested';
    /** Presence this module sends on the user's behalf after a block: let through. */
    const own = new WeakSet<Element>();

    const blocks = (owner: string, other: Jid): boolean | Promise<boolean> => {
      const list = store.get(owner);
      return list instanceof Promise
        ? list.then((l) => blocklistMatches(l, other))
        : blocklistMatches(list, other);
    };
    const isLocalAccount = (j: Jid) => j.local !== '' && ctx.router.hosts.has(j.domain);

    ctx.provide<BlockingApi>('blocking', {
      isBlocked: (owner, other) => blocks(ownerKey(owner), other),
      list: (owner) => store.list(ownerKey(owner)),
    });

    // --- protocol -------------------------------------------------------------------------------

    const ownerOnly = (from: Jid, to: Jid) => {
      if (!from.bare.equals(to)) throw new StanzaError('forbidden', { text: 'only your own blocklist' });
    };
    const items = (payload: Element): string[] => {
      const out: string[] = [];
      for (const item of payload.getChildren('item', NS.blocking)) {
        const raw = item.attrs.jid;
        if (raw === undefined) throw new StanzaError('bad-request', { text: 'an item needs a jid' });
        try {
          out.push(parseJid(raw).toString());
        } catch (err) {
          throw new StanzaError('jid-malformed', { text: `${raw}: ${(err as Error).message}` });
        }
      }
      return out;
    };
    const push = (owner: Jid, payload: Element) => {
      for (const s of ctx.sessions.ofAccount(owner)) {
        if (!s.has(INTERESTED)) continue;
        ctx.deliver(
          s,
          xml(
            'iq',
            {
              xmlns: NS.client,
              type: 'set',
              id: `block-${Math.random().toString(36).slice(2, 10)}`,
              from: owner.toString(),
              to: s.jid.toString(),
            },
            payload.clone(),
          ),
        );
      }
    };
    /** §3.3/§3.4: presence to a (un)blocked contact from each available resource, if the contact may see it. */
    const presenceTo = async (owner: Jid, jids: string[], type: 'unavailable' | 'current') => {
      const resources = ctx.sessions.available(owner);
      if (resources.length === 0) return;
      for (const raw of jids) {
        const contact = parseJid(raw);
        if (contact.local === '') continue; // a domain is not a contact
        if ((await mayReceivePresence(ctx, owner, contact)) === false) continue; // without a roster module: always
        for (const s of resources) {
          let p: Element;
          if (type === 'unavailable')
            p = xml('presence', { xmlns: NS.client, type: 'unavailable', from: s.jid.toString(), to: raw });
          else {
            const current = s.presence;
            if (!current) continue;
            p = current.clone();
            p.attrs.from = s.jid.toString();
            p.attrs.to = raw;
          }
          own.add(p);
          await ctx.send(p);
        }
      }
    };

    ctx.iq('account', 'get', NS.blocking, 'blocklist', async (req) => {
      ownerOnly(req.from, req.to);
      if (req.origin) ctx.sessions.setFlag(req.origin, INTERESTED, true);
      const list = await store.list(req.to.toBareString());
      return xml(
        'blocklist',
        { xmlns: NS.blocking },
        list.map((jid) => xml('item', { jid })),
      );
    });

    ctx.iq(
      'account',
      'set',
      NS.blocking,
      'block',
      async (req) => {
        ownerOnly(req.from, req.to);
        const jids = items(req.payload);
        if (jids.length === 0) throw new StanzaError('bad-request', { text: 'block at least one item' });
        const owner = req.to.toBareString();
        if ((await store.list(owner)).length + jids.length > ctx.options.maxItems) {
          throw new StanzaError('resource-constraint', {
            text: `a blocklist holds at most ${ctx.options.maxItems} items`,
          });
        }
        const added = await store.block(owner, jids);
        if (added.length === 0) return;
        changed(owner);
        push(
          req.to,
          xml(
            'block',
            { xmlns: NS.blocking },
            added.map((jid) => xml('item', { jid })),
          ),
        );
        await presenceTo(req.to, added, 'unavailable');
      },
      { feature: false },
    );

    ctx.iq(
      'account',
      'set',
      NS.blocking,
      'unblock',
      async (req) => {
        ownerOnly(req.from, req.to);
        const jids = items(req.payload);
        const all = jids.length === 0;
        const removed = await store.unblock(req.to.toBareString(), all ? undefined : jids);
        if (removed.length === 0) return;
        changed(req.to.toBareString());
        push(
          req.to,
          xml('unblock', { xmlns: NS.blocking }, all ? [] : removed.map((jid) => xml('item', { jid }))),
        );
        await presenceTo(req.to, removed, 'current');
      },
      { feature: false },
    );

    // The feature is the server's (XEP-0191 §3.1 asks the server), and accounts answer it too.
    ctx.feature('host', NS.blocking);

    // --- enforcement ----------------------------------------------------------------------------

    /** Returns the not-acceptable/blocked error to the local sender, straight to its session. */
    const refuseOutbound = (ev: RouteEvent): true => {
      const type = ev.stanza.attrs.type;
      if (type === 'error' || (ev.stanza.name === 'iq' && type === 'result')) return true;
      const reply = errorReply(
        ev.stanza,
        new StanzaError('not-acceptable', {
          text: 'you have blocked this contact',
          appCondition: xml('blocked', { xmlns: NS.blockingErrors }),
        }),
      );
      reply.attrs.from = ev.to.toString();
      reply.attrs.to = ev.from.toString();
      if (ev.origin) ctx.deliver(ev.origin, reply);
      return true;
    };

    /** §3.3: what a blocked sender's stanza to the user gets. */
    const refuseInbound = (ev: RouteEvent): true => {
      const { stanza } = ev;
      const type = stanza.attrs.type;
      if (stanza.name === 'message' || (stanza.name === 'iq' && (type === 'get' || type === 'set'))) {
        ctx.bounce(ev, 'service-unavailable');
      }
      return true; // presence and IQ responses: silently dropped
    };

    ctx.hook(
      'stanza/out',
      (ev) => {
        if (ev.stanza.attrs.to === undefined) return false;
        const { from, to } = ev;
        if (to.local === '' && to.resource === '' && to.domain === ctx.domain) return false; // the user's own server
        if (from.local === to.local && from.domain === to.domain) return false; // own account
        const outbound = blocks(from.toBareString(), to);
        if (outbound === true) return refuseOutbound(ev);
        if (outbound === false) return false;
        return outbound.then((b) => (b ? refuseOutbound(ev) : false));
      },
      PRIORITY,
    );

    /**
     * Presence goes nowhere the sender blocked (§3.3), even when the server sends it in the user's
     * name (broadcasts, probes) rather than the user's client; this module's own unavailable
     * presence after a block is let through.
     */
    const senderBlocks = (ev: RouteEvent): MaybePromise<boolean> =>
      own.has(ev.stanza) || !isLocalAccount(ev.from) ? false : blocks(ev.from.toBareString(), ev.to);

    /**
     * The filter stage, for every origin (client, component, remote server, service, the server):
     * an account of this host refuses what a JID on its blocklist sends it, to its bare JID (the
     * IQs the server answers for it included) or to any resource. Also met, on the sender's host,
     * by presence the server sends in a local account's name to an address on no local host.
     */
    ctx.hook(
      'stanza/in',
      (ev) => {
        const { from, to } = ev;
        if (from.local === to.local && from.domain === to.domain) return false; // own account
        const presence = ev.stanza.name === 'presence';
        if (to.local === '' || to.domain !== ctx.domain) return presence ? senderBlocks(ev) : false;
        const b = blocks(to.toBareString(), from);
        if (b === false) return presence ? senderBlocks(ev) : false; // the common case: synchronous
        if (b === true) return refuseInbound(ev);
        return b.then((x) => (x ? refuseInbound(ev) : presence ? senderBlocks(ev) : false));
      },
      PRIORITY,
    );

    ctx.hook('user/deleted', async ({ jid }) => {
      await store.removeAccount(jid.toBareString());
      changed(jid.toBareString());
    });
  },
});
