import { xml, type Element } from '@natter/xml';
import { NS, StanzaError } from '@natter/protocol';
import type { IqRequest } from '../../core/module-api.js';
import { photoHash, UNKNOWN_HASH } from '../vcard/api.js';
import type { Room } from './room.js';
import type { MucService } from './service.js';

/**
 * Room avatars (XEP-0486): a room has a vcard-temp (XEP-0054) of its own, which its owners set and
 * anyone but outcasts reads. Its photo's hash is in the room's disco#info
 * (`muc#roominfo_avatarhash`), and occupants hear of a new one through a presence from the room's
 * bare JID carrying `vcard-temp:x:update` (XEP-0153), as newcomers do when they enter. Stored with
 * persistent rooms.
 */

/** SHA-1 (hex) of the decoded PHOTO/BINVAL, '' without one (or with only a link); bad-request when not base64. */
export function roomPhotoHash(vcard: Element): string {
  const hash = photoHash(vcard);
  return hash === UNKNOWN_HASH ? '' : hash;
}

export function getRoomVcard(room: Room, req: IqRequest): Element {
  if (room.affiliationOf(req.from) === 'outcast')
    throw new StanzaError('forbidden', { text: 'you are banned from this room' });
  return room.vcard ?? xml('vCard', { xmlns: NS.vcard });
}

export function setRoomVcard(svc: MucService, room: Room, req: IqRequest): void {
  if (room.affiliationOf(req.from) !== 'owner')
    throw new StanzaError('forbidden', { text: "only owners may change the room's vCard" });
  const vcard = req.payload;
  const size = Buffer.byteLength(vcard.toString());
  if (size > svc.options.maxRoomVcardBytes)
    throw new StanzaError('not-acceptable', {
      text: `the vCard is ${size} bytes; rooms accept up to ${svc.options.maxRoomVcardBytes}`,
    });
  const hash = roomPhotoHash(vcard);
  room.vcard = vcard.elements().length > 0 ? vcard.clone() : undefined;
  const changed = hash !== room.avatarHash;
  room.avatarHash = hash;
  if (room.config.persistent) svc.persist(room);
  if (!changed) return;
  const base = avatarPresence(room);
  for (const o of room.occupants.values()) svc.sendToOccupant(base, room.jid, o);
}

/** The room's presence announcing its avatar (an empty photo: none any more). */
export function avatarPresence(room: Room): Element {
  return xml(
    'presence',
    { from: room.jid.toString() },
    xml('x', { xmlns: NS.vcardUpdate }, xml('photo', null, room.avatarHash)),
  );
}
