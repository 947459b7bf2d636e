import { xml, type Element } from '@natter/xml';
import { tryParseJid, type Jid } from '@natter/jid';
import { NS, StanzaError, buildForm } from '@natter/protocol';
import { emitterWith, type Emitter } from '../core/emitter.js';
import type { PluginDefinition } from '../core/plugin.js';

export const NS_BOOKMARKS = 'urn:xmpp:bookmarks:1';
const PUBLISH_OPTIONS = 'http://jabber.org/protocol/pubsub#publish-options';

/** A room bookmark (XEP-0402 §3): the item id is the room's bare JID. */
export interface Bookmark {
  /** The room's bare JID. */
  jid: string;
  name?: string;
  /** Join the room when the client connects (default false). */
  autojoin: boolean;
  nick?: string;
  password?: string;
  /** Children of `<extensions/>`, kept as they are (other clients' data). */
  extensions?: Element[];
}

/** What `add` takes: `autojoin` may be left out (false). */
export type BookmarkInput = Omit<Bookmark, 'autojoin'> & { autojoin?: boolean };

export type BookmarksErrorCode = 'publish-options-rejected' | 'publish-options-unsupported' | 'invalid-jid';

/**
 * Raised by `add` when the server refuses the publish options XEP-0402 requires (§5: persistent,
 * private with `access_model` whitelist): `precondition-not-met` means the node already exists
 * with another configuration (typically created by an older client with `presence` access). The
 * bookmark was not stored; reconfigure the node (pubsub owner `configure` on our account,
 * node `urn:xmpp:bookmarks:1`) or ask the server operator. `cause` is the server's StanzaError.
 */
export class BookmarksError extends Error {
  override readonly name = 'BookmarksError';
  constructor(
    readonly code: BookmarksErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface BookmarksEvents {
  /** A bookmark was added or changed, by us or another resource (PEP notification, XEP-0402 §4.2). */
  update: { bookmark: Bookmark; element: Element };
  /** A bookmark was removed (retract notification, XEP-0402 §4.3). */
  remove: { jid: string; element: Element };
  /**
   * Rooms to join automatically: after each new session (with `autojoin: true`), and when a
   * notification sets `autojoin` on a bookmark. Emitted whether or not the muc plugin joined them;
   * `joined` lists the rooms the muc plugin joined, `failed` those it could not join.
   */
  autojoin: { rooms: Bookmark[]; joined: string[]; failed: { jid: string; error: Error }[] };
}

export interface BookmarksOptions {
  /**
   * Join the bookmarks marked autojoin after each new session (not after a resumed one), and
   * when a notification marks one. With the `muc` plugin active on the same client the rooms are
   * joined through it (nick: the bookmark's, else the account's local part); the `autojoin` event
   * is emitted either way. Default false.
   */
  autojoin?: boolean;
  /** ms to wait for each room when joining automatically (default 15 s). */
  joinTimeout?: number;
}

export interface BookmarksApi extends Emitter<BookmarksEvents> {
  /** All bookmarks (XEP-0402 §4.1); an empty list when there is no bookmarks node yet. */
  list(): Promise<Bookmark[]>;
  /** Adds or replaces the bookmark of `bookmark.jid` (XEP-0402 §4.2), with the required publish options. */
  add(bookmark: BookmarkInput): Promise<void>;
  /** Removes a bookmark (XEP-0402 §4.3); removing one that does not exist is not an error. */
  remove(jid: string | Jid): Promise<void>;
  /** Joins the autojoin bookmarks now (as after a new session); resolves with the `autojoin` event's data. */
  joinAutojoin(): Promise<BookmarksEvents['autojoin']>;
}

/** The part of the muc plugin's API the autojoin uses (found through the client's plugin registry). */
interface MucJoiner {
  join(room: string, nick: string, opts?: { password?: string; timeout?: number }): Promise<unknown>;
  rooms?(): string[];
}

/** Reads `<conference xmlns='urn:xmpp:bookmarks:1'/>` of an item whose id is the room JID. */
export function parseBookmark(id: string, conference: Element): Bookmark {
  const autojoin = conference.attr('autojoin');
  const b: Bookmark = { jid: id, autojoin: autojoin === 'true' || autojoin === '1' };
  const name = conference.attr('name');
  if (name !== undefined) b.name = name;
  const nick = conference.getChildText('nick', NS_BOOKMARKS);
  if (nick !== undefined) b.nick = nick;
  const password = conference.getChildText('password', NS_BOOKMARKS);
  if (password !== undefined) b.password = password;
  const ext = conference.getChild('extensions', NS_BOOKMARKS);
  if (ext) b.extensions = ext.elements();
  return b;
}

/** Builds the `<conference/>` payload (XEP-0402 §3). */
export function buildBookmark(b: BookmarkInput): Element {
  return xml(
    'conference',
    { xmlns: NS_BOOKMARKS, name: b.name, autojoin: b.autojoin ? 'true' : undefined },
    b.nick !== undefined && xml('nick', null, b.nick),
    b.password !== undefined && xml('password', null, b.password),
    b.extensions && b.extensions.length > 0 && xml('extensions', null, b.extensions),
  );
}

function roomJid(jid: string | Jid): string {
  const j = tryParseJid(String(jid));
  if (!j || j.local === '' || j.resource !== '')
    throw new BookmarksError('invalid-jid', `a bookmark needs a room's bare JID, got "${String(jid)}"`);
  return j.toString();
}

/**
 * XEP-0402 PEP native bookmarks (the successor of XEP-0048 bookmarks): list, add, remove, live
 * updates from the other resources (`urn:xmpp:bookmarks:1+notify` is advertised), and autojoin.
 */
export function bookmarks(options: BookmarksOptions = {}): PluginDefinition<BookmarksApi> {
  return {
    name: 'bookmarks',
    setup(ctx) {
      const { client } = ctx;
      ctx.addFeature(`${NS_BOOKMARKS}+notify`);
      const pubsub = (type: 'get' | 'set', ...payload: Element[]) =>
        client.request(type, undefined, xml('pubsub', { xmlns: NS.pubsub }, payload));

      const autojoinRooms = async (rooms: Bookmark[]): Promise<BookmarksEvents['autojoin']> => {
        const joined: string[] = [];
        const failed: { jid: string; error: Error }[] = [];
        const muc = ctx.plugin<MucJoiner>('muc');
        if (muc) {
          const already = new Set(muc.rooms?.() ?? []);
          await Promise.all(
            rooms
              .filter((r) => !already.has(r.jid))
              .map(async (r) => {
                try {
                  await muc.join(r.jid, r.nick ?? client.account.local, {
                    password: r.password,
                    timeout: options.joinTimeout ?? 15000,
                  });
                  joined.push(r.jid);
                } catch (err) {
                  failed.push({ jid: r.jid, error: err instanceof Error ? err : new Error(String(err)) });
                }
              }),
          );
        }
        const ev = { rooms, joined, failed };
        api.emit('autojoin', ev);
        return ev;
      };

      const api: BookmarksApi = emitterWith<BookmarksApi>(
        {
          async list() {
            let res: Element | undefined;
            try {
              res = await pubsub('get', xml('items', { node: NS_BOOKMARKS }));
            } catch (err) {
              // No node yet: nobody has stored a bookmark on this account.
              if (err instanceof StanzaError && err.condition === 'item-not-found') return [];
              throw err;
            }
            const items = res?.getChild('items', NS.pubsub)?.getChildren('item', NS.pubsub) ?? [];
            const out: Bookmark[] = [];
            for (const it of items) {
              const conf = it.getChild('conference', NS_BOOKMARKS);
              const id = it.attr('id');
              if (conf && id) out.push(parseBookmark(id, conf));
            }
            return out;
          },
          async add(bookmark: BookmarkInput) {
            const id = roomJid(bookmark.jid);
            try {
              await pubsub(
                'set',
                xml(
                  'publish',
                  { node: NS_BOOKMARKS },
                  xml('item', { id }, buildBookmark({ ...bookmark, jid: id })),
                ),
                bookmarksPublishOptions(),
              );
            } catch (err) {
              throw publishError(err);
            }
          },
          async remove(jid: string | Jid) {
            const id = roomJid(jid);
            try {
              await pubsub(
                'set',
                xml('retract', { node: NS_BOOKMARKS, notify: 'true' }, xml('item', { id })),
              );
            } catch (err) {
              if (err instanceof StanzaError && err.condition === 'item-not-found') return;
              throw err;
            }
          },
          async joinAutojoin() {
            return autojoinRooms((await api.list()).filter((b) => b.autojoin));
          },
        },
        ctx.reportError,
      );

      client.on('message', (m) => {
        const event = m.getChild('event', NS.pubsubEvent);
        if (!event) return;
        // Only our own PEP service may tell us about our bookmarks (XEP-0163 §4.3: from our bare JID).
        const from = m.attr('from');
        if (from !== undefined && tryParseJid(from)?.toString() !== client.account.toString()) return;
        const items = event.getChild('items', NS.pubsubEvent);
        if (!items || items.attr('node') !== NS_BOOKMARKS) return;
        const toJoin: Bookmark[] = [];
        for (const it of items.getChildren('item', NS.pubsubEvent)) {
          const conf = it.getChild('conference', NS_BOOKMARKS);
          const id = it.attr('id');
          if (!conf || !id) continue;
          const bookmark = parseBookmark(id, conf);
          api.emit('update', { bookmark, element: m });
          if (bookmark.autojoin) toJoin.push(bookmark);
        }
        for (const r of items.getChildren('retract', NS.pubsubEvent)) {
          const id = r.attr('id');
          if (id) api.emit('remove', { jid: id, element: m });
        }
        if (options.autojoin && toJoin.length > 0) void autojoinRooms(toJoin).catch(ctx.reportError);
      });

      if (options.autojoin)
        client.on('online', ({ resumed }) => {
          if (resumed) return;
          api
            .joinAutojoin()
            .catch((err: unknown) => ctx.reportError(err instanceof Error ? err : new Error(String(err))));
        });

      return api;
    },
  };
}

/**
 * XEP-0060 §7.1.5: publish options the node does not match come back as `conflict` with
 * `<precondition-not-met/>`; a service without publish-options answers `feature-not-implemented`
 * with `<unsupported feature='publish-options'/>`. Both mean the bookmark was not stored.
 */
function publishError(err: unknown): unknown {
  if (!(err instanceof StanzaError)) return err;
  const app = err.appCondition;
  if (app?.name === 'precondition-not-met')
    return new BookmarksError(
      'publish-options-rejected',
      'the server refused the publish options XEP-0402 requires (precondition-not-met): the bookmarks ' +
        'node exists with another configuration (e.g. access_model presence); the bookmark was not stored',
      { cause: err },
    );
  if (app?.name === 'unsupported' && app.attr('feature') === 'publish-options')
    return new BookmarksError(
      'publish-options-unsupported',
      'the server does not support publish-options, which XEP-0402 requires to keep bookmarks private; ' +
        'the bookmark was not stored',
      { cause: err },
    );
  return err;
}

/** The publish options XEP-0402 §5 requires of the bookmarks node. */
export function bookmarksPublishOptions(): Element {
  return xml(
    'publish-options',
    null,
    buildForm({
      type: 'submit',
      formType: PUBLISH_OPTIONS,
      fields: [
        { var: 'pubsub#persist_items', values: ['true'] },
        { var: 'pubsub#max_items', values: ['max'] },
        { var: 'pubsub#send_last_published_item', values: ['never'] },
        { var: 'pubsub#access_model', values: ['whitelist'] },
      ],
    }),
  );
}
