import { xml, type Element } from '@natter/xml';
import { tryParseJid, type Jid } from '@natter/jid';
import { NS, StanzaError } from '@natter/protocol';
import { Emitter } from '../core/emitter.js';
import type { PluginDefinition } from '../core/plugin.js';
import { memoryRosterStorage, type RosterItem, type RosterStorage } from './roster-storage.js';

/** What one resource of a contact last said about itself (RFC 6121 §4). */
export interface PresenceInfo {
  /** Full JID. */
  jid: string;
  available: boolean;
  show?: 'away' | 'chat' | 'dnd' | 'xa';
  status?: string;
  priority: number;
  element: Element;
}

export interface RosterEvents {
  /** The roster read from storage at start-up (before any network). */
  loaded: { items: RosterItem[]; version?: string };
  /** A fetch finished; `changed` is false when the server said our version is current. */
  synced: { items: RosterItem[]; version?: string; changed: boolean };
  /** A roster push (RFC 6121 §2.1.6): an item was added, changed or removed. */
  push: { item: RosterItem; removed: boolean; version?: string; element: Element };
  /** Someone asks to see our presence (RFC 6121 §3.1.2); answer with accept() or decline(). */
  request: { from: string; status?: string; element: Element };
  /** A contact approved our request. */
  subscribed: { from: string; element: Element };
  /** A contact cancelled our subscription or declined our request. */
  unsubscribed: { from: string; element: Element };
  /** A contact unsubscribed from our presence. */
  unsubscribe: { from: string; element: Element };
  /** A contact's resource became available, changed, or went away. */
  presence: PresenceInfo;
}

export interface RosterOptions {
  /** Where the roster persists (default: in memory). */
  storage?: RosterStorage;
  /** Fetch the roster when the client goes online (default true). */
  autoFetch?: boolean;
  /** Use roster versioning when the server offers it (default true). */
  versioning?: boolean;
}

export interface RosterApi extends Emitter<RosterEvents> {
  /** Resolves once the stored roster is loaded (the roster is usable offline from then on). */
  readonly ready: Promise<void>;
  /** Current items, sorted by JID. */
  items(): RosterItem[];
  get(jid: string | Jid): RosterItem | undefined;
  readonly version: string | undefined;
  /** Fetches the roster (only the changes when versioning is possible). */
  fetch(): Promise<RosterItem[]>;
  /** Adds or updates an item (RFC 6121 §2.3). */
  set(item: { jid: string | Jid; name?: string; groups?: string[] }): Promise<void>;
  /** Removes an item, which also cancels subscriptions both ways (RFC 6121 §2.5). */
  remove(jid: string | Jid): Promise<void>;
  /** Asks to see a contact's presence (RFC 6121 §3.1.1). */
  subscribe(jid: string | Jid, status?: string): Promise<void>;
  /** Stops seeing a contact's presence (RFC 6121 §3.3). */
  unsubscribe(jid: string | Jid): Promise<void>;
  /** Approves a request, or pre-approves (RFC 6121 §3.1.5, §3.4); `subscribeBack` also asks for theirs. */
  accept(jid: string | Jid, opts?: { subscribeBack?: boolean }): Promise<void>;
  /** Declines a request or revokes a contact's subscription (RFC 6121 §3.2). */
  decline(jid: string | Jid): Promise<void>;
  /** Known presences of a contact's resources (bare JID), available ones first by priority. */
  presences(jid: string | Jid): PresenceInfo[];
}

function bareOf(jid: string | Jid): string {
  const j = typeof jid === 'string' ? tryParseJid(jid) : jid;
  if (!j) throw new StanzaError('jid-malformed', { text: `invalid JID ${String(jid)}` });
  return j.bare.toString();
}

export function parseRosterItem(el: Element): RosterItem & { remove: boolean } {
  const sub = el.attr('subscription');
  return {
    jid: bareOf(el.attr('jid') ?? ''),
    name: el.attr('name') || undefined,
    subscription: sub === 'to' || sub === 'from' || sub === 'both' ? sub : 'none',
    ask: el.attr('ask') === 'subscribe' ? 'subscribe' : undefined,
    approved: el.attr('approved') === 'true' || undefined,
    groups: el.getChildren('group', NS.roster).map((g) => g.text()),
    remove: sub === 'remove',
  };
}

/** RFC 6121 roster management, subscriptions and presence, with storage (XMPPRoster's equivalent). */
export function roster(options: RosterOptions = {}): PluginDefinition<RosterApi> {
  const storage = options.storage ?? memoryRosterStorage();
  return {
    name: 'roster',
    setup(ctx) {
      const { client } = ctx;
      const account = client.account.toString();
      const items = new Map<string, RosterItem>();
      const presence = new Map<string, Map<string, PresenceInfo>>();
      let version: string | undefined;
      let serverVersioning = false;

      const api = new (class extends Emitter<RosterEvents> implements RosterApi {
        ready = storage.load(account).then((stored) => {
          if (!stored) return;
          version = stored.version;
          for (const i of stored.items) items.set(i.jid, i);
          this.emit('loaded', { items: this.items(), version });
        });
        get version() {
          return version;
        }
        items(): RosterItem[] {
          return [...items.values()].sort((a, b) => (a.jid < b.jid ? -1 : a.jid > b.jid ? 1 : 0));
        }
        get(jid: string | Jid) {
          return items.get(bareOf(jid));
        }
        async fetch(): Promise<RosterItem[]> {
          await this.ready;
          const ver = serverVersioning && (options.versioning ?? true) ? (version ?? '') : undefined;
          const res = await client.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS.roster, ver })));
          const query = res.getChild('query', NS.roster);
          if (!query) {
            // RFC 6121 §2.6.3: our version is current; changes (if any) arrive as pushes.
            this.emit('synced', { items: this.items(), version, changed: false });
            return this.items();
          }
          items.clear();
          for (const el of query.getChildren('item', NS.roster)) {
            const { remove, ...item } = parseRosterItem(el);
            if (!remove) items.set(item.jid, item);
          }
          version = query.attr('ver');
          await storage.replace(account, { version, items: this.items() });
          this.emit('synced', { items: this.items(), version, changed: true });
          return this.items();
        }
        async set(item: { jid: string | Jid; name?: string; groups?: string[] }) {
          await client.iq(
            xml(
              'iq',
              { type: 'set' },
              xml(
                'query',
                { xmlns: NS.roster },
                xml(
                  'item',
                  { jid: bareOf(item.jid), name: item.name },
                  (item.groups ?? []).map((g) => xml('group', null, g)),
                ),
              ),
            ),
          );
        }
        async remove(jid: string | Jid) {
          await client.iq(
            xml(
              'iq',
              { type: 'set' },
              xml('query', { xmlns: NS.roster }, xml('item', { jid: bareOf(jid), subscription: 'remove' })),
            ),
          );
        }
        async subscribe(jid: string | Jid, status?: string) {
          await client.send(
            xml(
              'presence',
              { to: bareOf(jid), type: 'subscribe' },
              status !== undefined && xml('status', null, status),
            ),
          );
        }
        async unsubscribe(jid: string | Jid) {
          await client.send(xml('presence', { to: bareOf(jid), type: 'unsubscribe' }));
        }
        async accept(jid: string | Jid, opts: { subscribeBack?: boolean } = {}) {
          await client.send(xml('presence', { to: bareOf(jid), type: 'subscribed' }));
          if (opts.subscribeBack) await this.subscribe(jid);
        }
        async decline(jid: string | Jid) {
          await client.send(xml('presence', { to: bareOf(jid), type: 'unsubscribed' }));
        }
        presences(jid: string | Jid): PresenceInfo[] {
          const m = presence.get(bareOf(jid));
          if (!m) return [];
          return [...m.values()].sort(
            (a, b) => Number(b.available) - Number(a.available) || b.priority - a.priority,
          );
        }
      })(ctx.reportError);
      api.ready.catch((err: unknown) => client.emit('error', err as Error));

      ctx.hook('afterBind', ({ features, bound }) => {
        // RFC 6121 §2.6.1: announced in the features after authentication, which a Bind2 login
        // (XEP-0386) does not get: versioning is then assumed (Natter has it); a server without it
        // is expected to ignore `ver` and send the whole roster.
        serverVersioning = bound !== undefined || features.getChild('ver', NS.rosterver) !== undefined;
      });
      client.on('online', ({ resumed }) => {
        if (!resumed && (options.autoFetch ?? true))
          api.fetch().catch((err: unknown) => client.emit('error', err as Error));
      });
      client.on('offline', ({ resumable }) => {
        if (!resumable) presence.clear();
      });

      // RFC 6121 §2.1.6: roster pushes, accepted only from our own account.
      client.handleIq('set', 'query', NS.roster, async (iq) => {
        const from = iq.attr('from');
        if (from !== undefined && tryParseJid(from)?.toString() !== account)
          throw new StanzaError('service-unavailable');
        const query = iq.getChild('query', NS.roster)!;
        const el = query.getChild('item', NS.roster);
        if (!el) throw new StanzaError('bad-request');
        const { remove, ...item } = parseRosterItem(el);
        const ver = query.attr('ver') ?? version;
        if (remove) items.delete(item.jid);
        else items.set(item.jid, item);
        version = ver;
        await storage.apply(account, ver, item, remove);
        api.emit('push', { item, removed: remove, version: ver, element: iq });
        return undefined;
      });

      client.on('presence', (p) => {
        if (p.getChild('x', NS.mucUser)) return;
        const fromStr = p.attr('from');
        const from = fromStr ? tryParseJid(fromStr) : null;
        if (!from) return;
        const bare = from.bare.toString();
        const type = p.attr('type');
        const status = p.getChildText('status');
        switch (type) {
          case 'subscribe':
            api.emit('request', { from: bare, status, element: p });
            return;
          case 'subscribed':
            api.emit('subscribed', { from: bare, element: p });
            return;
          case 'unsubscribed':
            api.emit('unsubscribed', { from: bare, element: p });
            return;
          case 'unsubscribe':
            api.emit('unsubscribe', { from: bare, element: p });
            return;
          case undefined:
          case 'unavailable': {
            const show = p.getChildText('show');
            const info: PresenceInfo = {
              jid: from.toString(),
              available: type === undefined,
              show: show === 'away' || show === 'chat' || show === 'dnd' || show === 'xa' ? show : undefined,
              status,
              priority: Number(p.getChildText('priority') ?? 0) || 0,
              element: p,
            };
            let m = presence.get(bare);
            if (!m) presence.set(bare, (m = new Map()));
            if (info.available) m.set(from.resource, info);
            else m.delete(from.resource);
            api.emit('presence', info);
            return;
          }
          default:
            return;
        }
      });
      return api;
    },
  };
}
