import { z } from 'zod';
import { xml, type Element } from '@natter/xml';
import { parseJid, type Jid } from '@natter/jid';
import { NS, StanzaError } from '@natter/protocol';
import { defineModule, type IqRequest, type SessionRecord } from '../../core/module-api.js';
import type { PrivilegeApi } from '../privilege/api.js';
import type { PendingRequest, RosterApi, RosterItem, StateChange, SubscriptionState } from './api.js';
import { RosterStore, rosterMigrations, type RosterData, type StoredItem } from './roster-store.js';

export type { RosterApi, RosterItem } from './api.js';

let pushCounter = 0;

/** Most items in one roster set from a privileged component (XEP-0356). */
const MAX_PRIVILEGED_ITEMS = 100;

/** `<item/>` of a roster result or push (RFC 6121 §2.1.2). */
export function itemElement(i: RosterItem): Element {
  return xml(
    'item',
    {
      jid: i.jid,
      name: i.name,
      subscription: i.subscription,
      ask: i.ask,
      approved: i.approved ? 'true' : undefined,
    },
    i.groups.map((g) => xml('group', null, g)),
  );
}

function verString(data: RosterData, version = data.version): string {
  return `${data.epoch}-${version}`;
}

/**
 * Rosters (RFC 6121 §2) with versioning (RFC 6121 §2.6, XEP-0237): get, set, remove, pushes to
 * interested resources, and the RosterApi other modules build on (presence, PEP, MUC).
 */
export default defineModule({
  name: 'roster',
  description: 'Contact lists with roster pushes and roster versioning',
  specs: ['RFC 6121 §2', 'XEP-0237'],
  enabledByDefault: true,
  options: z
    .object({
      /** Roster versioning (XEP-0237): `<ver/>` stream feature and incremental sync. */
      versioning: z.boolean().default(true),
      /** Most items a roster may hold. */
      maxItems: z.number().int().min(1).default(1000),
      /** Longest item name or group name, in characters. */
      maxNameLength: z.number().int().min(1).default(1023),
      /** Most groups per item. */
      maxGroups: z.number().int().min(1).default(100),
      /** Removals remembered per user so that older roster versions can still sync incrementally. */
      versionLog: z.number().int().min(0).default(200),
      /** Rosters cached in memory. */
      cacheSize: z.number().int().min(0).default(10_000),
    })
    .strict()
    .prefault({}),
  migrations: rosterMigrations,
  setup(ctx) {
    const opts = ctx.options;
    const store = new RosterStore(ctx.db, {
      maxItems: opts.maxItems,
      versionLog: opts.versionLog,
      cacheSize: opts.cacheSize,
      // docs/decisions/0009: every node caches rosters; a change here makes the others read again.
      onChange: (owner) => ctx.cluster.broadcast('invalidate', owner),
    });
    ctx.onStop(
      ctx.cluster.on('invalidate', (owner) => {
        if (typeof owner === 'string') store.invalidate(owner);
      }),
    );
    ctx.onStop(ctx.cluster.onResync(() => store.invalidateAll()));

    /** RFC 6121 §2.1.6: a push of one item to every interested resource (or to `only`). */
    const push = (
      owner: Jid,
      item: RosterItem | { jid: string; subscription: 'remove' },
      ver: string | undefined,
      only?: SessionRecord,
    ): void => {
      const el =
        item.subscription === 'remove'
          ? xml('item', { jid: item.jid, subscription: 'remove' })
          : itemElement(item as RosterItem);
      const query = xml('query', { xmlns: NS.roster, ver: opts.versioning ? ver : undefined }, el);
      const targets = only ? [only] : ctx.interestedSessions(owner.toBareString());
      // XEP-0356 §4.4: components with roster privilege get pushes from the user's bare JID.
      if (!only) {
        for (const component of ctx.use<PrivilegeApi>('privilege')?.rosterPushTargets() ?? []) {
          void ctx.send(
            xml(
              'iq',
              {
                xmlns: NS.client,
                type: 'set',
                id: `push${(++pushCounter).toString(36)}`,
                from: owner.toBareString(),
                to: component,
              },
              query,
            ),
          );
        }
      }
      for (const s of targets) {
        if (s.closed) continue;
        ctx.deliver(
          s,
          xml(
            'iq',
            {
              xmlns: NS.client,
              type: 'set',
              id: `push${(++pushCounter).toString(36)}`,
              to: s.jid.toString(),
            },
            query,
          ),
        );
      }
    };

    const publicItem = (i: StoredItem): RosterItem => {
      const { version: _v, ...rest } = i;
      return { ...rest, groups: [...rest.groups] };
    };

    const transition = <T extends { change?: StateChange }>(
      owner: Jid,
      contact: Jid,
      fn: (s: SubscriptionState) => T,
    ): Promise<T> => {
      const o = owner.toBareString();
      const c = contact.toString();
      return store.withLock(o, async (data) => {
        const out = fn(store.state(data, c));
        if (out.change) {
          const r = await store.apply(data, c, out.change);
          if (r.changed)
            push(owner.bare, r.removed ? { jid: c, subscription: 'remove' } : r.item!, verString(data));
        }
        return out;
      });
    };

    const api: RosterApi = {
      async get(owner, contact) {
        const data = await store.load(owner.toBareString());
        const i = data.items.get(contact.toString());
        return i && publicItem(i);
      },
      async list(owner) {
        const data = await store.load(owner.toBareString());
        return [...data.items.values()].map(publicItem);
      },
      async subscribers(owner) {
        return store.subscribers(await store.load(owner.toBareString()));
      },
      async subscriptions(owner) {
        return store.subscriptions(await store.load(owner.toBareString()));
      },
      isSubscriber(owner, contact) {
        const check = (data: RosterData) => {
          const s = data.items.get(contact.toBareString())?.subscription;
          return s === 'from' || s === 'both';
        };
        const d = store.load(owner.toBareString());
        return d instanceof Promise ? d.then(check) : check(d);
      },
      async update(owner, contact, change) {
        const { jid: _j, ...fields } = change;
        await transition(owner, contact, () => ({ change: { item: fields } }));
        const data = await store.load(owner.toBareString());
        return publicItem(data.items.get(contact.toString())!);
      },
      async remove(owner, contact) {
        await transition(owner, contact, () => ({
          change: { item: 'remove' as const, pendingIn: false as const },
        }));
      },
      transition,
      async pending(owner) {
        const data = await store.load(owner.toBareString());
        const out: PendingRequest[] = [];
        for (const [c, stanza] of data.pending) {
          try {
            out.push({ from: parseJid(c), stanza });
          } catch {
            // skipped
          }
        }
        return out;
      },
    };
    ctx.provide<RosterApi>('roster', api);

    if (opts.versioning) {
      ctx.streamFeature((stream) => (stream.host === ctx.host ? xml('ver', { xmlns: NS.rosterver }) : null));
    }

    // --- roster get (RFC 6121 §2.2, §2.6.3) ------------------------------------------------------
    ctx.iq('account', 'get', NS.roster, 'query', async (req) => {
      await checkAccess(req, 'get');
      const session = req.origin;
      if (session) session.interested = true;
      const data = await store.load(req.to.toBareString());
      const asked = req.payload.attrs.ver;
      // incremental sync needs a session to push the changes to (a privileged component has none)
      if (opts.versioning && asked !== undefined && session) {
        const since = sinceVersion(asked, data);
        if (since !== undefined) {
          if (since === data.version) return undefined; // up to date: empty result, later changes as pushes
          const changes: { version: number; item: RosterItem | { jid: string; subscription: 'remove' } }[] =
            [];
          for (const i of data.items.values())
            if (i.version > since) changes.push({ version: i.version, item: publicItem(i) });
          for (const [jid, v] of data.tombstones)
            if (v > since) changes.push({ version: v, item: { jid, subscription: 'remove' } });
          if (changes.length <= Math.max(1, data.items.size)) {
            changes.sort((a, b) => a.version - b.version);
            // the pushes follow the (empty) result
            setImmediate(() => {
              if (!session) return;
              for (const c of changes) push(req.to, c.item, verString(data, c.version), session);
            });
            return undefined;
          }
        }
      }
      return xml(
        'query',
        { xmlns: NS.roster, ver: opts.versioning && asked !== undefined ? verString(data) : undefined },
        [...data.items.values()].map(itemElement),
      );
    });

    // --- roster set and remove (RFC 6121 §2.3–§2.5) ----------------------------------------------
    ctx.iq('account', 'set', NS.roster, 'query', async (req) => {
      const privileged = await checkAccess(req, 'set');
      const owner = req.to;
      const items = req.payload.getChildren('item', NS.roster);
      if (privileged) {
        // XEP-0356 §4.3: a privileged component manages the roster "in the usual way"; as Prosody
        // and ejabberd do, it may also set several items at once and their subscription state
        // (a gateway mirrors its legacy contacts).
        if (items.length === 0 || items.length > MAX_PRIVILEGED_ITEMS)
          throw new StanzaError('bad-request', {
            text: `a privileged roster set holds 1 to ${MAX_PRIVILEGED_ITEMS} items`,
          });
        const parsed = items.map((el) => parseItem(owner, el, true));
        for (const item of parsed) {
          if (item.subscription === 'remove') {
            const exists = await api.get(owner, item.contact);
            if (exists) await removeItem(owner, item.contact);
            continue;
          }
          const { contact, subscription, name, groups } = item;
          await transition(owner, contact, () => ({
            change: {
              item: subscription === undefined ? { name, groups } : { name, groups, subscription },
            },
          }));
        }
        return undefined;
      }
      if (items.length !== 1)
        throw new StanzaError('bad-request', { text: 'a roster set holds exactly one item' });
      const { contact, subscription, name, groups } = parseItem(owner, items[0]!, false);
      if (subscription === 'remove') {
        await removeItem(owner, contact);
        return undefined;
      }
      await transition(owner, contact, () => ({ change: { item: { name, groups } } }));
      return undefined;
    });

    /**
     * Whether a roster IQ is a privileged component's (XEP-0356 §4.3) rather than the user's own;
     * throws `forbidden` when it is neither, `service-unavailable` when no such account exists.
     */
    const checkAccess = async (req: IqRequest, type: 'get' | 'set'): Promise<boolean> => {
      if (req.from.bare.equals(req.to)) return false;
      if (!ctx.use<PrivilegeApi>('privilege')?.mayRoster(req.from, type))
        throw new StanzaError('forbidden', {
          text: type === 'get' ? 'you may only read your own roster' : 'you may only change your own roster',
        });
      if (!(await ctx.accountExists(req))) throw new StanzaError('service-unavailable');
      return true;
    };

    /** The fields of a roster set's `<item/>` (RFC 6121 §2.3), validated. */
    const parseItem = (
      owner: Jid,
      el: Element,
      privileged: boolean,
    ): {
      contact: Jid;
      subscription: 'remove' | 'none' | 'to' | 'from' | 'both' | undefined;
      name: string | undefined;
      groups: string[];
    } => {
      let contact: Jid;
      try {
        contact = parseJid(el.attrs.jid ?? '');
      } catch (err) {
        throw new StanzaError('jid-malformed', { text: (err as Error).message });
      }
      if (contact.bare.equals(owner))
        throw new StanzaError('not-allowed', { text: 'you cannot add yourself to your roster' });
      const sub = el.attrs.subscription;
      if (sub === 'remove') return { contact, subscription: 'remove', name: undefined, groups: [] };
      if (privileged && (sub === 'none' || sub === 'to' || sub === 'from' || sub === 'both')) {
        // as given by the privileged component
      } else if (sub !== undefined)
        throw new StanzaError('bad-request', {
          text: `a roster set may only carry subscription="remove", not "${sub}"`,
        });
      const name = el.attrs.name;
      if (name !== undefined && [...name].length > opts.maxNameLength) {
        throw new StanzaError('not-acceptable', {
          text: `the name is longer than ${opts.maxNameLength} characters`,
        });
      }
      const groupEls = el.getChildren('group', NS.roster);
      if (groupEls.length > opts.maxGroups)
        throw new StanzaError('not-acceptable', { text: `at most ${opts.maxGroups} groups per item` });
      const groups: string[] = [];
      const seen = new Set<string>();
      for (const g of groupEls) {
        const t = g.text();
        if (t === '') throw new StanzaError('not-acceptable', { text: 'a group name may not be empty' });
        if ([...t].length > opts.maxNameLength)
          throw new StanzaError('not-acceptable', {
            text: `a group name is longer than ${opts.maxNameLength} characters`,
          });
        if (seen.has(t)) throw new StanzaError('bad-request', { text: `duplicate group "${t}"` });
        seen.add(t);
        groups.push(t);
      }
      return { contact, subscription: sub as 'none' | 'to' | 'from' | 'both' | undefined, name, groups };
    };

    /**
     * RFC 6121 §2.5.2: removing an item cancels the subscriptions both ways (unsubscribe,
     * unsubscribed, and unavailable from the user's resources to a contact who saw them).
     */
    const removeItem = async (owner: Jid, contact: Jid): Promise<void> => {
      const before = await transition(owner, contact, (s) => {
        if (!s.item)
          throw new StanzaError('item-not-found', { text: `${contact.toString()} is not in your roster` });
        return { change: { item: 'remove' as const, pendingIn: false as const }, state: s };
      });
      const { item, pendingIn } = before.state;
      const from = owner.toBareString();
      const to = contact.toString();
      if (item!.subscription === 'to' || item!.subscription === 'both' || item!.ask) {
        await ctx.send(xml('presence', { xmlns: NS.client, type: 'unsubscribe', from, to }));
      }
      const hadFrom = item!.subscription === 'from' || item!.subscription === 'both';
      if (hadFrom || pendingIn) {
        await ctx.send(xml('presence', { xmlns: NS.client, type: 'unsubscribed', from, to }));
      }
      if (hadFrom) {
        for (const s of ctx.sessions.available(owner)) {
          await ctx.send(
            xml('presence', { xmlns: NS.client, type: 'unavailable', from: s.jid.toString(), to }),
          );
        }
      }
    };

    // RFC 6121 §2.1.6: a roster push comes from the user's own account (or server) only. Nobody
    // else, a client, a component or a remote server, may send one to a user's resource: checked
    // in the filter stage, which stanzas from every origin meet.
    ctx.hook(
      'stanza/in',
      (ev) => {
        if (ev.stanza.name !== 'iq' || ev.stanza.attrs.type !== 'set') return false;
        const { from, to } = ev;
        if (to.resource === '' || to.local === '' || to.domain !== ctx.domain) return false;
        if (from.bare.equals(to.bare) || (from.local === '' && from.domain === ctx.domain)) return false;
        const q = ev.stanza.firstElement();
        if (!q || q.name !== 'query' || q.xmlns !== NS.roster) return false;
        ctx.bounce(ev, 'forbidden', 'roster pushes come from the server');
        return true;
      },
      100,
    );

    ctx.hook('user/deleted', async ({ jid }) => {
      if (jid.domain !== ctx.domain) return;
      const owner = jid.bare;
      const data = await store.load(owner.toBareString());
      const items = [...data.items.values()];
      const pendingFrom = [...data.pending.keys()];
      await store.deleteUser(owner.toBareString());
      // tell the contacts, as a removal of every item would
      const from = owner.toBareString();
      for (const i of items) {
        if (i.subscription === 'to' || i.subscription === 'both' || i.ask)
          await ctx.send(xml('presence', { xmlns: NS.client, type: 'unsubscribe', from, to: i.jid }));
        if (i.subscription === 'from' || i.subscription === 'both') {
          await ctx.send(xml('presence', { xmlns: NS.client, type: 'unsubscribed', from, to: i.jid }));
          for (const s of ctx.sessions.available(owner)) {
            await ctx.send(
              xml('presence', { xmlns: NS.client, type: 'unavailable', from: s.jid.toString(), to: i.jid }),
            );
          }
        }
      }
      // pending requests are declined (a pending request and a "from" subscription never coexist)
      for (const c of pendingFrom)
        await ctx.send(xml('presence', { xmlns: NS.client, type: 'unsubscribed', from, to: c }));
    });
  },
});

/** The version a client's `ver` denotes, when it is one of ours and every change since is known. */
function sinceVersion(ver: string, data: RosterData): number | undefined {
  const dash = ver.lastIndexOf('-');
  if (dash <= 0) return undefined;
  if (ver.slice(0, dash) !== data.epoch) return undefined;
  const n = Number(ver.slice(dash + 1));
  if (!Number.isInteger(n) || n < data.floor || n > data.version) return undefined;
  return n;
}
