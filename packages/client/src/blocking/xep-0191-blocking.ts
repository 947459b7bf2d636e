import { xml, type Element } from '@natter/xml';
import { parseJid, tryParseJid } from '@natter/jid';
import { NS, StanzaError } from '@natter/protocol';
import { Emitter } from '../core/emitter.js';
import type { PluginDefinition } from '../core/plugin.js';

export interface BlockingEvents {
  /** JIDs were blocked, by this client or (a push, XEP-0191 §3.3) by another one of the account. */
  blocked: { jids: string[] };
  /** JIDs were unblocked; `all` when the whole list was cleared (§3.5). */
  unblocked: { jids: string[]; all: boolean };
  /** The cached list changed (after a fetch, a push or a request of ours). */
  changed: { jids: string[] };
}

export interface BlockingApi extends Emitter<BlockingEvents> {
  /** The blocklist as last fetched and kept up to date by pushes; undefined before `list()`. */
  readonly cached: string[] | undefined;
  /**
   * Fetches the blocklist (§3.2). The server then pushes changes made by other clients of the
   * account to this session, which keep `cached` in sync; a new session fetches it again.
   */
  list(): Promise<string[]>;
  /** Blocks JIDs (§3.3): bare JIDs, full JIDs or domains. */
  block(jids: readonly string[]): Promise<void>;
  /** Unblocks JIDs (§3.4). */
  unblock(jids: readonly string[]): Promise<void>;
  /** Unblocks everyone (§3.5). */
  unblockAll(): Promise<void>;
  /** True when a JID is on the cached list (exact match of the normalized JID). */
  isBlocked(jid: string): boolean;
}

function normalize(j: string): string {
  return tryParseJid(j)?.toString() ?? j;
}

function items(jids: readonly string[]): Element[] {
  return jids.map((j) => xml('item', { jid: parseJid(j).toString() }));
}

function jidsOf(el: Element): string[] {
  return el
    .getChildren('item')
    .map((i) => i.attr('jid'))
    .filter((j): j is string => !!j)
    .map(normalize);
}

/** XEP-0191 Blocking Command (XMPPBlocking's equivalent). */
export function blocking(): PluginDefinition<BlockingApi> {
  return {
    name: 'blocking',
    setup(ctx) {
      const { client } = ctx;
      let cache: string[] | undefined;
      const apply = (kind: 'block' | 'unblock', jids: string[]) => {
        if (kind === 'block') {
          if (cache) cache = [...new Set([...cache, ...jids])];
          api.emit('blocked', { jids });
        } else {
          const all = jids.length === 0;
          if (cache) cache = all ? [] : cache.filter((j) => !jids.includes(j));
          api.emit('unblocked', { jids, all });
        }
        if (cache) api.emit('changed', { jids: [...cache] });
      };
      const api = new (class extends Emitter<BlockingEvents> implements BlockingApi {
        get cached() {
          return cache && [...cache];
        }
        async list() {
          const res = await client.request('get', undefined, xml('blocklist', { xmlns: NS.blocking }));
          cache = res ? jidsOf(res) : [];
          api.emit('changed', { jids: [...cache] });
          return [...cache];
        }
        async block(jids: readonly string[]) {
          if (jids.length === 0) throw new TypeError('block(): give at least one JID');
          await client.request('set', undefined, xml('block', { xmlns: NS.blocking }, items(jids)));
        }
        async unblock(jids: readonly string[]) {
          if (jids.length === 0) throw new TypeError('unblock(): give at least one JID (or use unblockAll)');
          await client.request('set', undefined, xml('unblock', { xmlns: NS.blocking }, items(jids)));
        }
        async unblockAll() {
          await client.request('set', undefined, xml('unblock', { xmlns: NS.blocking }));
        }
        isBlocked(jid: string) {
          return cache?.includes(normalize(jid)) ?? false;
        }
      })(ctx.reportError);

      // §3.3-3.5: the server pushes every change (ours too) to the sessions that fetched the list.
      // Pushes come from our account (no `from`, or our bare JID); anything else is refused.
      const push = (kind: 'block' | 'unblock') => (iq: Element) => {
        const from = iq.attr('from');
        if (from !== undefined && normalize(from) !== client.account.toString()) {
          throw new StanzaError('service-unavailable');
        }
        apply(kind, jidsOf(iq.getChild(kind, NS.blocking)!));
      };
      client.handleIq('set', 'block', NS.blocking, push('block'));
      client.handleIq('set', 'unblock', NS.blocking, push('unblock'));

      client.on('online', ({ resumed }) => {
        // A new session has missed pushes and is not subscribed to them: fetch again.
        if (!resumed && cache) api.list().catch((err: unknown) => ctx.reportError(err as Error));
      });
      return api;
    },
  };
}
