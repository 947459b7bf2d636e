import { xml, type Element } from '@natter/xml';
import { tryParseJid, type Jid } from '@natter/jid';
import { NS, StanzaError, buildForm, parseDateTime, type FormField } from '@natter/protocol';
import { Emitter } from '../core/emitter.js';
import { randomId } from '../core/ids.js';
import type { PluginDefinition } from '../core/plugin.js';
import { readMessage, stanzaIdBy, type MessageView } from '../message/message-view.js';
import { onChatMessage } from '../carbons/chat-messages.js';
import { memoryMessageStore, type MessageStore, type StoredMessage } from './message-store.js';

export interface MamOptions {
  /** Where `catchUp` keeps messages (default: in memory). */
  store?: MessageStore;
  /** Page size of `catchUp` and of `pages` when no `max` is given (default 50; servers may clamp it). */
  pageSize?: number;
  /**
   * Messages `catchUp` fetches from an archive it never synced: the latest this many (default
   * `pageSize`). Older history stays on the server, to be paged with `query`/`pages`.
   */
  initialSync?: number;
  /**
   * How far before its sync point a catch-up reads again, ms (default 10,000). A server of several
   * processes (a cluster) can make a message visible after a later one of another process, so a
   * catch-up that reads only after its last UID could skip it; the messages read again are not
   * stored twice. 0 reads after the sync point's UID (falling back to its time when the archive no
   * longer knows it).
   */
  overlap?: number;
  /** Run `catchUp()` on the account's archive after each new session (not after a resumption). Default false. */
  autoCatchUp?: boolean;
  /** Timeout of each query, ms (default: the client's `iqTimeout`). */
  timeout?: number;
  /**
   * Store the messages the account's archive keeps as they arrive (default true): live messages
   * and, with the `carbons` module, the copies of what the account's other devices sent and
   * received, each with the archive's UID (its XEP-0359 `<stanza-id/>` by the account), so that
   * the store holds the whole history and a later catch-up adds each once. Messages without such
   * an id (not archived: chat states, or a server without XEP-0359) are not stored.
   */
  storeLive?: boolean;
}

/** A query of an archive (XEP-0313 §4): form filters and XEP-0059 paging. */
export interface MamQuery {
  /** The archive: a room's bare JID (XEP-0313 §5); the account's own archive when absent. */
  to?: string | Jid;
  /** Only messages with this JID (bare: any of its resources). */
  with?: string | Jid;
  /** Only messages at or after this time. */
  start?: Date;
  /** Only messages at or before this time. */
  end?: Date;
  /** Only messages after this archive UID (`urn:xmpp:mam:2#extended`; Prosody 0.12 has it, Natter too). */
  afterId?: string;
  /** Only messages before this archive UID (`urn:xmpp:mam:2#extended`). */
  beforeId?: string;
  /** RSM `<max/>`: the page size (servers clamp it). */
  max?: number;
  /** RSM `<after/>`: the page after this UID. */
  after?: string;
  /** RSM `<before/>`: the page before this UID; `''` asks for the last page. */
  before?: string;
  /** Timeout of this query, ms. */
  timeout?: number;
}

/** One archived message (XEP-0313 §4.2). */
export interface MamResult {
  /** The archive's UID for the message (what `after`/`before` take). */
  id: string;
  /** When the archive received it (XEP-0203 stamp of the result). */
  timestamp: Date;
  /** The archive's bare JID: the account's own, or the room's. */
  archive: string;
  message: MessageView;
}

/** One page of results (XEP-0313 §4.3, XEP-0059). */
export interface MamPage {
  results: MamResult[];
  /** The server says this page reaches the end of the results in the paging direction. */
  complete: boolean;
  /** UID of the first and last result of the page (RSM). */
  first?: string;
  last?: string;
  /** Results matching the query in all, when the server tells. */
  count?: number;
}

/** What `catchUp` did for one archive. */
export interface CatchUpResult {
  archive: string;
  /** Results received. */
  fetched: number;
  /** Results new to the store. */
  added: number;
  /** Pages queried. */
  pages: number;
  /** The stored sync point was unknown to the archive: a time-based query was used instead. */
  fellBack: boolean;
}

/** XEP-0441 archiving preferences. */
export interface MamPreferences {
  default: 'always' | 'never' | 'roster';
  /** JIDs always archived. */
  always: string[];
  /** JIDs never archived. */
  never: string[];
}

export interface MamEvents {
  /** An archived message arrived for a query. */
  result: MamResult;
  /** A message new to the store: from `catchUp`, or live (`storeLive`). */
  stored: StoredMessage;
  /** `catchUp` reached the end of an archive. */
  synced: CatchUpResult;
  /** The stored sync point was not found in the archive (`item-not-found`); a time-based query follows. */
  fallback: { archive: string; id: string; since: Date };
}

export interface MamApi extends Emitter<MamEvents> {
  readonly store: MessageStore;
  /** Runs one query and resolves with its page (rejects with StanzaError, TimeoutError…). */
  query(query?: MamQuery): Promise<MamPage>;
  /**
   * Pages through the results: forward from `after` (or the start), or backward when `before` is
   * given (`''`: from the end); stops after the page the server marks complete.
   */
  pages(query?: MamQuery): AsyncGenerator<MamPage, void, undefined>;
  /**
   * Syncs an archive (default the account's) into the store: from its sync point up to the end,
   * or, never synced, its latest `initialSync` messages. A sync point the archive no longer knows
   * falls back to a query from that point's timestamp. A call while a catch-up of the same archive
   * runs gets one more run after it (shared by every call meanwhile), which sees everything archived
   * before the call.
   */
  catchUp(options?: { archive?: string | Jid }): Promise<CatchUpResult>;
  /** XEP-0441: the account's archiving preferences. */
  getPreferences(): Promise<MamPreferences>;
  /** XEP-0441: replaces the preferences; resolves with those the server applied. */
  setPreferences(prefs: MamPreferences): Promise<MamPreferences>;
}

interface Collector {
  archive: string;
  results: MamResult[];
}

function bareOf(s: string | undefined): string | undefined {
  if (s === undefined) return undefined;
  return tryParseJid(s)?.toBareString() ?? s;
}

function queryElement(q: MamQuery, queryid: string): Element {
  const fields: FormField[] = [];
  const add = (name: string, value: string | undefined) => {
    if (value !== undefined) fields.push({ var: name, values: [value] });
  };
  add('with', q.with === undefined ? undefined : String(q.with));
  add('start', q.start?.toISOString());
  add('end', q.end?.toISOString());
  add('after-id', q.afterId);
  add('before-id', q.beforeId);
  const rsm =
    q.max !== undefined || q.after !== undefined || q.before !== undefined
      ? xml(
          'set',
          { xmlns: NS.rsm },
          q.max !== undefined && xml('max', null, String(q.max)),
          q.after !== undefined && xml('after', null, q.after),
          q.before !== undefined && (q.before === '' ? xml('before') : xml('before', null, q.before)),
        )
      : undefined;
  return xml(
    'query',
    { xmlns: NS.mam, queryid },
    fields.length > 0 && buildForm({ type: 'submit', formType: NS.mam, fields }),
    rsm,
  );
}

function readPrefs(el: Element | undefined): MamPreferences {
  const list = (name: string) =>
    (el?.getChild(name, NS.mam)?.getChildren('jid', NS.mam) ?? []).map((j) => j.text().trim());
  const d = el?.attr('default');
  return {
    default: d === 'always' || d === 'never' || d === 'roster' ? d : 'always',
    always: list('always'),
    never: list('never'),
  };
}

/** XEP-0313 Message Archive Management (urn:xmpp:mam:2), with a store and catch-up. */
export function mam(options: MamOptions = {}): PluginDefinition<MamApi> {
  return {
    name: 'mam',
    setup(ctx) {
      const { client } = ctx;
      const store = options.store ?? memoryMessageStore();
      const pageSize = options.pageSize ?? 50;
      const collecting = new Map<string, Collector>();
      /** Per archive: the catch-up running, and the one asked for meanwhile (runs after it). */
      const running = new Map<string, { run: Promise<CatchUpResult>; next?: Promise<CatchUpResult> }>();

      // Results come as messages before the IQ's reply (§4.2); they are not chat messages, so they
      // stop here (after stream management has counted them).
      ctx.incoming((stanza) => {
        if (stanza.name !== 'message') return;
        const result = stanza.getChild('result', NS.mam);
        const queryid = result?.attr('queryid');
        const c = queryid === undefined ? undefined : collecting.get(queryid);
        if (!result || !c) return;
        // Only the archive queried may answer (an own archive's results come from the bare JID, or no one).
        // The archive's bare JID itself: not an occupant of a room (`room@service/nick`).
        const fromAttr = stanza.attr('from');
        if (fromAttr !== undefined && tryParseJid(fromAttr)?.resource) return;
        const from = bareOf(fromAttr) ?? client.account.toString();
        if (from !== c.archive) return;
        const forwarded = result.getChild('forwarded', NS.forward);
        const inner = forwarded?.getChild('message', NS.client) ?? forwarded?.getChild('message');
        const stamp = parseDateTime(forwarded?.getChild('delay', NS.delay)?.attr('stamp'));
        const id = result.attr('id');
        if (!inner || !id) return false;
        const r: MamResult = {
          id,
          timestamp: stamp ?? new Date(),
          archive: c.archive,
          message: readMessage(inner),
        };
        c.results.push(r);
        api.emit('result', r);
        return false;
      });

      const query = async (q: MamQuery = {}): Promise<MamPage> => {
        const archive = bareOf(q.to === undefined ? undefined : String(q.to)) ?? client.account.toString();
        const queryid = randomId();
        const c: Collector = { archive, results: [] };
        collecting.set(queryid, c);
        try {
          const timeout = q.timeout ?? options.timeout;
          const res = await client.iq(
            xml(
              'iq',
              { type: 'set', to: q.to === undefined ? undefined : archive },
              queryElement(q, queryid),
            ),
            timeout === undefined ? {} : { timeout },
          );
          const fin = res.getChild('fin', NS.mam);
          const set = fin?.getChild('set', NS.rsm);
          const page: MamPage = {
            results: c.results,
            complete: fin?.attr('complete') === 'true' || fin?.attr('complete') === '1',
          };
          const first = set?.getChildText('first', NS.rsm);
          const last = set?.getChildText('last', NS.rsm);
          const count = set?.getChildText('count', NS.rsm);
          if (first !== undefined) page.first = first;
          if (last !== undefined) page.last = last;
          if (count !== undefined && /^\d+$/.test(count)) page.count = Number(count);
          return page;
        } finally {
          collecting.delete(queryid);
        }
      };

      async function* pages(q: MamQuery = {}): AsyncGenerator<MamPage, void, undefined> {
        const backward = q.before !== undefined;
        let next: MamQuery = { ...q, max: q.max ?? pageSize };
        for (;;) {
          const page = await query(next);
          yield page;
          const cursor = backward ? page.first : page.last;
          if (page.complete || page.results.length === 0 || cursor === undefined) return;
          next = backward ? { ...next, before: cursor } : { ...next, after: cursor };
        }
      }

      const toStored = (r: MamResult): StoredMessage => {
        const m = r.message;
        const account = client.account.toString();
        const own = r.archive === account;
        const fromBare = m.fromJid?.toBareString() ?? (m.from === undefined ? account : bareOf(m.from));
        const out = own ? fromBare === account : false;
        const conversation = own ? ((out ? bareOf(m.to) : fromBare) ?? r.archive) : r.archive;
        const s: StoredMessage = {
          conversation,
          archive: r.archive,
          archiveId: r.id,
          timestamp: r.timestamp.getTime(),
          from: m.from ?? client.jid?.toString() ?? account,
          direction: out ? 'out' : 'in',
          xml: m.element.toString(),
        };
        if (m.originId !== undefined) s.originId = m.originId;
        if (m.id !== undefined) s.messageId = m.id;
        if (m.body !== undefined) s.body = m.body;
        return s;
      };

      const sync = async (archive: string, to: string | undefined): Promise<CatchUpResult> => {
        const account = client.account.toString();
        const outcome: CatchUpResult = { archive, fetched: 0, added: 0, pages: 0, fellBack: false };
        const keep = async (page: MamPage) => {
          outcome.pages++;
          for (const r of page.results) {
            outcome.fetched++;
            const s = toStored(r);
            if (await store.add(account, s)) {
              outcome.added++;
              api.emit('stored', s);
            }
          }
          const last = page.results[page.results.length - 1];
          if (last)
            await store.setSyncPoint(account, archive, { id: last.id, timestamp: last.timestamp.getTime() });
        };
        const base: MamQuery = to === undefined ? { max: pageSize } : { to, max: pageSize };
        const point = await store.syncPoint(account, archive);
        if (!point) {
          // Never synced: the latest messages only (the last page, read in order).
          await keep(await query({ ...base, max: options.initialSync ?? pageSize, before: '' }));
        } else {
          const overlap = options.overlap ?? 10_000;
          if (overlap > 0) {
            for await (const page of pages({ ...base, start: new Date(point.timestamp - overlap) }))
              await keep(page);
            api.emit('synced', outcome);
            return outcome;
          }
          try {
            for await (const page of pages({ ...base, after: point.id })) await keep(page);
          } catch (err) {
            if (!(err instanceof StanzaError) || err.condition !== 'item-not-found' || outcome.pages > 0)
              throw err;
            // §4.3: the archive does not know the UID (expired, or the archive was reset).
            const since = new Date(point.timestamp);
            outcome.fellBack = true;
            api.emit('fallback', { archive, id: point.id, since });
            for await (const page of pages({ ...base, start: since })) await keep(page);
          }
        }
        api.emit('synced', outcome);
        return outcome;
      };

      const api = new (class extends Emitter<MamEvents> implements MamApi {
        readonly store = store;
        query(q?: MamQuery) {
          return query(q);
        }
        pages(q?: MamQuery) {
          return pages(q);
        }
        catchUp(opts: { archive?: string | Jid } = {}): Promise<CatchUpResult> {
          const requested = opts.archive === undefined ? undefined : bareOf(String(opts.archive));
          const archive = requested ?? client.account.toString();
          const to = archive === client.account.toString() ? undefined : archive;
          const current = running.get(archive);
          if (current) {
            // A catch-up asked for while one runs must see what was archived until now, which
            // the running one may have missed (it started earlier, or its session was replaced):
            // one more run follows, shared by everyone who asks meanwhile.
            current.next ??= current.run.catch(() => undefined).then(() => this.catchUp(opts));
            return current.next;
          }
          const entry: { run: Promise<CatchUpResult>; next?: Promise<CatchUpResult> } = {
            run: sync(archive, to).finally(() => {
              if (running.get(archive) === entry) running.delete(archive);
            }),
          };
          running.set(archive, entry);
          return entry.run;
        }
        async getPreferences() {
          const res = await client.request('get', undefined, xml('prefs', { xmlns: NS.mam }));
          return readPrefs(res);
        }
        async setPreferences(p: MamPreferences) {
          const jids = (name: string, list: string[]) =>
            xml(
              name,
              null,
              list.map((j) => xml('jid', null, j)),
            );
          const res = await client.request(
            'set',
            undefined,
            xml(
              'prefs',
              { xmlns: NS.mam, default: p.default },
              jids('always', p.always),
              jids('never', p.never),
            ),
          );
          return res ? readPrefs(res) : p;
        }
      })(ctx.reportError);

      if (options.storeLive ?? true) {
        // What the account's server archived (its stanza-id by the account, which servers strip
        // from anyone else, XEP-0359 §3.3), stored as a catch-up would store it.
        onChatMessage(ctx, (m) => {
          if (m.attr('type') === 'groupchat') return;
          const account = client.account.toString();
          const view = readMessage(m);
          const id = stanzaIdBy(view, account);
          if (id === undefined) return;
          const s = toStored({
            id,
            timestamp: view.delay?.stamp ?? new Date(),
            archive: account,
            message: view,
          });
          store.add(account, s).then(
            (added) => {
              if (added) api.emit('stored', s);
            },
            (err: unknown) => ctx.reportError(err as Error),
          );
        });
      }

      if (options.autoCatchUp) {
        client.on('online', ({ resumed }) => {
          if (!resumed) api.catchUp().catch((err: unknown) => ctx.reportError(err as Error));
        });
      }
      return api;
    },
  };
}
