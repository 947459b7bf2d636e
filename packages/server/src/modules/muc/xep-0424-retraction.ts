import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import type { HistoryEntry } from './history.js';
import { NS_OCCUPANT_ID } from './xep-0421-occupant-id.js';
import { roomArchive } from './xep-0313-room-archive.js';
import type { Room } from './room.js';
import type { MucService } from './service.js';

/**
 * Message retraction in rooms (XEP-0424), and what moderation (XEP-0425) shares with it: finding a
 * message of the room by the stanza-id the room gave it, and putting a tombstone in its place in
 * the archive (XEP-0313) and out of the history sent to newcomers. Both the current namespaces
 * (`urn:xmpp:message-retract:1`) and the earlier ones built on Message Fastening
 * (`urn:xmpp:message-retract:0` in `<apply-to xmlns='urn:xmpp:fasten:0'/>`, still sent by
 * slixmpp and older clients) are understood.
 */
export const NS_RETRACT = 'urn:xmpp:message-retract:1';
export const NS_RETRACT_0 = 'urn:xmpp:message-retract:0';
export const NS_FASTEN = 'urn:xmpp:fasten:0';
const ORIGIN_ID = 'origin-id';

/** A retraction found in a message: the stanza-id it names, the namespace version, and whether it claims to be a moderation. */
export interface Retraction {
  id: string;
  version: 0 | 1;
  moderated: boolean;
}

export function retractionIn(stanza: Element): Retraction | undefined {
  for (const c of stanza.children) {
    if (typeof c === 'string') continue;
    if (c.name === 'retract' && c.xmlns === NS_RETRACT && c.attrs.id !== undefined)
      return { id: c.attrs.id, version: 1, moderated: c.getChild('moderated') !== undefined };
    if (c.name === 'apply-to' && c.xmlns === NS_FASTEN && c.attrs.id !== undefined) {
      const moderated = c.getChild('moderated') !== undefined || c.getChild('moderate') !== undefined;
      if (moderated || c.getChild('retract', NS_RETRACT_0)) return { id: c.attrs.id, version: 0, moderated };
    }
  }
  return undefined;
}

/** The id the room gave a relayed message. */
export function roomStanzaId(room: Room, stanza: Element): string | undefined {
  const by = room.jid.toString();
  for (const c of stanza.children)
    if (typeof c !== 'string' && c.name === 'stanza-id' && c.xmlns === NS.sid && c.attrs.by === by)
      return c.attrs.id;
  return undefined;
}

/** Whether a stanza is already a tombstone. */
export function isTombstone(stanza: Element): boolean {
  return stanza.children.some(
    (c) =>
      typeof c !== 'string' &&
      (c.name === 'retracted' || c.name === 'moderated') &&
      (c.xmlns === NS_RETRACT ||
        c.xmlns === NS_RETRACT_0 ||
        c.xmlns.startsWith('urn:xmpp:message-moderate:')),
  );
}

/** A message of the room: as archived (when the room keeps an archive) and as kept in the history. */
export interface Found {
  stanza: Element;
  archived: boolean;
  entry?: HistoryEntry;
}

export async function findRoomMessage(svc: MucService, room: Room, id: string): Promise<Found | undefined> {
  const entry = room.history.find((e) => roomStanzaId(room, e.stanza) === id);
  const archive = roomArchive(svc, room);
  const archived = archive ? await archive.get(room.jid.toString(), id) : undefined;
  if (archived) return { stanza: archived.stanza, archived: true, entry };
  if (entry) return { stanza: entry.stanza, archived: false, entry };
  return undefined;
}

/**
 * The tombstone of a retracted message: its attributes, who wrote it (occupant id) and its ids,
 * nothing of what it said, and the marks saying when and by whom it was retracted.
 */
export function tombstone(original: Element, marks: Element[]): Element {
  const kept = original.children.filter(
    (c) =>
      typeof c !== 'string' &&
      ((c.name === 'occupant-id' && c.xmlns === NS_OCCUPANT_ID) ||
        (c.name === ORIGIN_ID && c.xmlns === NS.sid) ||
        (c.name === 'stanza-id' && c.xmlns === NS.sid)),
  );
  const el = xml('message', { ...original.attrs });
  el.children.push(...kept, ...marks);
  return el;
}

/** Puts the tombstone in the archive and takes the message out of the history (memory and storage). */
export async function retire(
  svc: MucService,
  room: Room,
  id: string,
  found: Found,
  tomb: Element,
): Promise<void> {
  if (found.entry && room.history.remove(found.entry)) svc.forgetHistory(room, found.entry);
  if (found.archived) await roomArchive(svc, room)?.replace(room.jid.toString(), id, tomb);
}

export function stampNow(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}
