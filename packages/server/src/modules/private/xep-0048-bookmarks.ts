import { xml, type Element } from '@natter/xml';
import { tryParseJid, type Jid } from '@natter/jid';
import { NS, StanzaError, buildForm, parseBoolean, type FormField } from '@natter/protocol';
import type { PepApi } from '../pep/api.js';

/** XEP-0048 bookmarks, as legacy clients keep them in private storage. */
export const NS_LEGACY_BOOKMARKS = 'storage:bookmarks';
/** XEP-0402 bookmarks: one PEP item per room, in the node of this name. */
export const NS_BOOKMARKS = 'urn:xmpp:bookmarks:1';
/** XEP-0402 "Compatibility": the server unifies XEP-0049 (XEP-0048) and XEP-0402 bookmarks. */
export const COMPAT_FEATURE = `${NS_BOOKMARKS}#compat`;

const PUBLISH_OPTIONS = 'http://jabber.org/protocol/pubsub#publish-options';
const NODE_CONFIG = 'http://jabber.org/protocol/pubsub#node_config';

/** XEP-0402 §3 / XEP-0223 §3: the node configuration bookmarks are published with (owner only). */
const PRIVATE_NODE: FormField[] = [
  { var: 'pubsub#persist_items', values: ['true'] },
  { var: 'pubsub#max_items', values: ['max'] },
  { var: 'pubsub#send_last_published_item', values: ['never'] },
  { var: 'pubsub#access_model', values: ['whitelist'] },
];

/** What a bookmark says, in a form where equal bookmarks compare equal whatever their syntax. */
interface Bookmark {
  name: string | undefined;
  autojoin: boolean;
  nick: string | undefined;
  password: string | undefined;
  /** Children of the XEP-0402 `<extensions/>` element (XEP-0048: unknown conference children). */
  extensions: Element[];
}

const nonEmpty = (s: string | undefined) => (s === undefined || s === '' ? undefined : s);

function fromPep(conference: Element): Bookmark {
  return {
    name: conference.attrs.name,
    autojoin: parseBoolean(conference.attrs.autojoin ?? '') === true,
    nick: nonEmpty(conference.getChildText('nick', NS_BOOKMARKS)),
    password: nonEmpty(conference.getChildText('password', NS_BOOKMARKS)),
    extensions: conference.getChild('extensions', NS_BOOKMARKS)?.elements() ?? [],
  };
}

function fromLegacy(conference: Element): Bookmark {
  const extensions = conference
    .elements()
    .filter((c) => !(c.xmlns === NS_LEGACY_BOOKMARKS && (c.name === 'nick' || c.name === 'password')));
  return {
    name: conference.attrs.name,
    autojoin: parseBoolean(conference.attrs.autojoin ?? '') === true,
    nick: nonEmpty(conference.getChildText('nick', NS_LEGACY_BOOKMARKS)),
    password: nonEmpty(conference.getChildText('password', NS_LEGACY_BOOKMARKS)),
    extensions: extensions.map((e) => e.clone()),
  };
}

const sameBookmark = (a: Bookmark, b: Bookmark) =>
  a.name === b.name &&
  a.autojoin === b.autojoin &&
  a.nick === b.nick &&
  a.password === b.password &&
  a.extensions.map(String).join('') === b.extensions.map(String).join('');

function toPep(b: Bookmark): Element {
  return xml(
    'conference',
    { xmlns: NS_BOOKMARKS, name: b.name, autojoin: b.autojoin ? 'true' : undefined },
    b.nick !== undefined && xml('nick', null, b.nick),
    b.password !== undefined && xml('password', null, b.password),
    b.extensions.length > 0 &&
      xml(
        'extensions',
        null,
        b.extensions.map((e) => e.clone()),
      ),
  );
}

/**
 * A XEP-0402 item as a XEP-0048 `<conference/>` (XEP-0402 "Compatibility": the item id becomes
 * the jid attribute). The `<extensions/>` children follow nick and password, so a legacy client
 * that keeps unknown elements gives them back.
 */
export function pepToLegacy(id: string, conference: Element): Element {
  const b = fromPep(conference);
  return xml(
    'conference',
    { xmlns: NS_LEGACY_BOOKMARKS, jid: id, name: b.name, autojoin: b.autojoin ? 'true' : 'false' },
    b.nick !== undefined && xml('nick', null, b.nick),
    b.password !== undefined && xml('password', null, b.password),
    b.extensions.map((e) => e.clone()),
  );
}

/** A XEP-0048 list split: conferences by room JID (the last of duplicates wins), and the rest. */
export interface LegacyList {
  conferences: Map<string, Element>;
  /** `<storage/>` elements without those conferences (URLs and anything else), other elements. */
  rest: Element[];
}

/**
 * Splits `storage:bookmarks` elements. `strict` (a client's set): a conference without a valid
 * jid is a bad request; otherwise (stored data) it stays in `rest`.
 */
export function splitLegacy(elements: Element[], strict = true): LegacyList {
  const conferences = new Map<string, Element>();
  const rest: Element[] = [];
  for (const el of elements) {
    if (el.name !== 'storage') {
      rest.push(el);
      continue;
    }
    const kept = el.clone();
    kept.children = [];
    for (const child of el.children) {
      if (typeof child !== 'string' && child.name === 'conference' && child.xmlns === NS_LEGACY_BOOKMARKS) {
        const room = tryParseJid(child.attrs.jid ?? '')?.toString();
        if (room !== undefined && room.length <= 1023) {
          conferences.delete(room); // keeps the order of the last occurrence
          conferences.set(room, child);
          continue;
        }
        if (strict)
          throw new StanzaError('bad-request', {
            text: `XEP-0048: conference jid '${child.attrs.jid ?? ''}' is not a valid room JID`,
          });
      }
      kept.children.push(typeof child === 'string' ? child : child.clone());
    }
    rest.push(kept);
  }
  return { conferences, rest };
}

/**
 * The account's XEP-0402 bookmarks through the pep module, acting as the account itself (so
 * every change notifies the account's `+notify` resources, XEP-0163 §4.3.2).
 */
export class PepBookmarks {
  constructor(private readonly pep: PepApi) {}

  /** The items of the bookmarks node: room JID → `<conference/>` (none when the node is absent). */
  async read(from: Jid): Promise<Map<string, Element>> {
    let res: Element | undefined;
    try {
      res = await this.pep.ownRequest(
        from,
        'get',
        xml('pubsub', { xmlns: NS.pubsub }, xml('items', { node: NS_BOOKMARKS })),
      );
    } catch (err) {
      if (err instanceof StanzaError && err.condition === 'item-not-found') return new Map();
      throw err;
    }
    const out = new Map<string, Element>();
    for (const item of res?.getChild('items', NS.pubsub)?.getChildren('item', NS.pubsub) ?? []) {
      const conference = item.getChild('conference', NS_BOOKMARKS);
      if (item.attrs.id && conference) out.set(item.attrs.id, conference);
    }
    return out;
  }

  /**
   * Makes the node hold exactly `wanted` (room JID → XEP-0048 conference): publishes new and
   * changed rooms, retracts the others with a notification; an unchanged room is left alone
   * (XEP-0402 "Compatibility": no notification for it). A legacy conference without unknown children
   * keeps the XEP-0402 item's `<extensions/>` (legacy clients tend to drop what they don't know).
   */
  async replace(from: Jid, wanted: Map<string, Element>): Promise<void> {
    const current = await this.read(from);
    for (const [room, conference] of wanted) {
      const next = fromLegacy(conference);
      const existing = current.get(room);
      if (existing) {
        const now = fromPep(existing);
        if (next.extensions.length === 0) next.extensions = now.extensions;
        if (sameBookmark(now, next)) continue;
      }
      await this.publish(from, room, toPep(next));
    }
    const gone = [...current.keys()].filter((room) => !wanted.has(room));
    if (gone.length > 0) {
      await this.pep.ownRequest(
        from,
        'set',
        xml(
          'pubsub',
          { xmlns: NS.pubsub },
          xml(
            'retract',
            { node: NS_BOOKMARKS, notify: 'true' },
            gone.map((id) => xml('item', { id })),
          ),
        ),
      );
    }
  }

  /** Adds rooms the node does not have yet (XEP-0048 conferences stored before the conversion). */
  async addMissing(from: Jid, conferences: Map<string, Element>): Promise<void> {
    const current = await this.read(from);
    for (const [room, conference] of conferences)
      if (!current.has(room)) await this.publish(from, room, toPep(fromLegacy(conference)));
  }

  /**
   * Publishes one bookmark with the XEP-0402 publish-options. A node configured otherwise (a
   * client created it without them, maybe readable by contacts) is made private first, then the
   * publish is retried once.
   */
  private async publish(from: Jid, room: string, conference: Element): Promise<void> {
    const request = () =>
      this.pep.ownRequest(
        from,
        'set',
        xml(
          'pubsub',
          { xmlns: NS.pubsub },
          xml('publish', { node: NS_BOOKMARKS }, xml('item', { id: room }, conference)),
          xml(
            'publish-options',
            null,
            buildForm({ type: 'submit', formType: PUBLISH_OPTIONS, fields: PRIVATE_NODE }),
          ),
        ),
      );
    try {
      await request();
    } catch (err) {
      if (!(err instanceof StanzaError && err.appCondition?.name === 'precondition-not-met')) throw err;
      await this.pep.ownRequest(
        from,
        'set',
        xml(
          'pubsub',
          { xmlns: NS.pubsubOwner },
          xml(
            'configure',
            { node: NS_BOOKMARKS },
            buildForm({ type: 'submit', formType: NODE_CONFIG, fields: PRIVATE_NODE }),
          ),
        ),
      );
      await request();
    }
  }
}
