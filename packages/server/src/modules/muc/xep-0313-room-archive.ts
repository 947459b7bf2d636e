import { randomBytes } from 'node:crypto';
import { xml, type Element } from '@natter/xml';
import type { Jid } from '@natter/jid';
import { NS, StanzaError } from '@natter/protocol';
import type { IqRequest } from '../../core/module-api.js';
import type { MamApi } from '../mam/api.js';
import { isAdminOrOwner } from './affiliations.js';
import type { Room } from './room.js';
import type { MucService } from './service.js';

/**
 * Message Archive Management on rooms (XEP-0313 §5, "MUC archives"): a room whose
 * `muc#roomconfig_enablearchiving` is on keeps its groupchat messages in the archive of the room's
 * bare JID, kept by the `mam` module (same tables, quotas, retention and writer thread as the
 * users' archives). Every relayed message gets a XEP-0359 `<stanza-id by=room/>` (the archive's UID
 * when archived), which retractions (XEP-0424) and moderation (XEP-0425) refer to. Whoever may
 * enter the room may read its archive; results come from the room's bare JID.
 */

const EXTENDED = `${NS.mam}#extended`;

/** Whether the service can archive rooms at all: the `mam` module is on and `modules.muc.archive` is not 'never'. */
export function archiveAvailable(svc: MucService): MamApi | undefined {
  if (svc.options.archive === 'never') return undefined;
  return svc.ctx.use<MamApi>('mam');
}

/** The archive of `room`, when it keeps one. */
export function roomArchive(svc: MucService, room: Room): MamApi | undefined {
  return room.config.archive ? archiveAvailable(svc) : undefined;
}

/** Disco features of a room for its archive. */
export function archiveFeatures(svc: MucService, room: Room): string[] {
  return roomArchive(svc, room) ? [NS.mam, EXTENDED, NS.sid] : [NS.sid];
}

/**
 * Names a message the room relays (archiving it where the room keeps an archive) and returns the
 * `<stanza-id/>` to add to the copies it sends. `base` is archived as it is (without the stanza-id:
 * the archive's result carries the UID).
 */
export function stamp(svc: MucService, room: Room, from: Jid, base: Element): Element {
  const by = room.jid.toString();
  const id =
    roomArchive(svc, room)?.archive(by, from.toString(), base) ?? randomBytes(12).toString('base64url');
  return xml('stanza-id', { xmlns: NS.sid, by, id });
}

/**
 * Who may read a room's archive: whoever may enter it now. Outcasts never; members-only rooms
 * their members; password-protected rooms their occupants (the password is not part of a query).
 */
function mayRead(room: Room, from: Jid): boolean {
  const aff = room.affiliationOf(from);
  if (aff === 'outcast') return false;
  if (room.byReal.has(from.toString()) || isAdminOrOwner(aff) || aff === 'member') return true;
  if (room.config.membersOnly || room.config.password !== '') return false;
  return true;
}

function readable(svc: MucService, room: Room, req: IqRequest): MamApi {
  const mam = archiveAvailable(svc);
  if (!mam) throw new StanzaError('feature-not-implemented', { text: 'this service keeps no room archives' });
  if (!mayRead(room, req.from))
    throw new StanzaError('forbidden', { text: 'only those who may enter the room may read its archive' });
  return mam;
}

/** `<query/>` of type get: the query form (§4.1.5). */
export function archiveForm(svc: MucService, room: Room, req: IqRequest): Element {
  return readable(svc, room, req).queryForm();
}

/** `<metadata/>`: the first and last message of the room's archive. */
export function archiveMetadata(svc: MucService, room: Room, req: IqRequest): Promise<Element> {
  return readable(svc, room, req).metadata(room.jid.toString());
}

/**
 * `<query/>` of type set: the results go to the requester one message at a time, each routed
 * before the next (so they arrive in order and before the `<fin/>` that answers the IQ).
 */
export async function archiveQuery(svc: MucService, room: Room, req: IqRequest): Promise<Element> {
  const mam = readable(svc, room, req);
  const results: Element[] = [];
  const fin = await mam.query(room.jid.toString(), req.payload, (r) => results.push(r));
  for (const r of results) {
    const sent = svc.sendAwaitable(xml('message', { from: room.jid.toString() }, r), room.jid, req.from);
    if (sent) await sent;
  }
  return fin;
}
