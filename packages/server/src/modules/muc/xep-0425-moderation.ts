import { xml, type Element } from '@natter/xml';
import { StanzaError } from '@natter/protocol';
import type { IqRequest } from '../../core/module-api.js';
import { occupantIdElement } from './xep-0421-occupant-id.js';
import { stamp } from './xep-0313-room-archive.js';
import {
  findRoomMessage,
  isTombstone,
  NS_FASTEN,
  NS_RETRACT,
  NS_RETRACT_0,
  retire,
  stampNow,
  tombstone,
} from './xep-0424-retraction.js';
import type { Room } from './room.js';
import type { MucService } from './service.js';

/**
 * Moderated message retraction (XEP-0425): a moderator asks the room to retract someone's message
 * (by the stanza-id the room gave it); the room tells every occupant, from its own bare JID (the
 * only sender clients believe), puts a tombstone in its archive and drops the message from the
 * history newcomers get. Version 0.3 (`urn:xmpp:message-moderate:1`, a `<moderate/>` IQ) and the
 * earlier Message Fastening form (`urn:xmpp:message-moderate:0` in `<apply-to/>`) are both
 * accepted; every announcement carries both forms, so clients of either generation follow it.
 */
export const NS_MODERATE = 'urn:xmpp:message-moderate:1';
export const NS_MODERATE_0 = 'urn:xmpp:message-moderate:0';

/** The moderation asked for by `<moderate/>` (v1) or `<apply-to/>` (v0): the stanza-id and the reason. */
function request(svc: MucService, payload: Element): { id: string; reason?: string } {
  let id: string | undefined;
  let moderate: Element | undefined;
  let retract: Element | undefined;
  if (payload.name === 'moderate' && payload.xmlns === NS_MODERATE) {
    id = payload.attrs.id;
    moderate = payload;
    retract = payload.getChild('retract', NS_RETRACT);
  } else if (payload.name === 'apply-to' && payload.xmlns === NS_FASTEN) {
    id = payload.attrs.id;
    moderate = payload.getChild('moderate', NS_MODERATE_0);
    retract = moderate?.getChild('retract', NS_RETRACT_0);
  }
  if (!moderate) throw new StanzaError('bad-request', { text: 'expected <moderate/>' });
  if (id === undefined || id === '' || id.length > 128)
    throw new StanzaError('bad-request', { text: 'the message to moderate is named by its stanza-id' });
  if (!retract)
    throw new StanzaError('feature-not-implemented', { text: 'retraction is the only moderation action' });
  const reason = moderate.getChildText('reason');
  if (reason !== undefined && reason.length > svc.options.maxBodyChars)
    throw new StanzaError('not-acceptable', { text: 'the reason is too long' });
  return { id, reason };
}

export async function moderate(svc: MucService, room: Room, req: IqRequest): Promise<void> {
  const moderator = room.byReal.get(req.from.toString());
  if (!moderator || moderator.role !== 'moderator')
    throw new StanzaError('forbidden', { text: "only moderators may retract other occupants' messages" });
  const { id, reason } = request(svc, req.payload);
  const found = await findRoomMessage(svc, room, id);
  if (!found) throw new StanzaError('item-not-found', { text: `no message ${id} in this room` });
  if (isTombstone(found.stanza)) return; // already retracted: nothing more to tell anyone
  const by = moderator.jid.toString();
  const modId = occupantIdElement(moderator.occupantId);
  const why = () => (reason !== undefined && reason !== '' ? xml('reason', null, reason) : undefined);
  const base = xml(
    'message',
    { type: 'groupchat', from: room.jid.toString(), id: `moderation-${id}` },
    xml('retract', { xmlns: NS_RETRACT, id }, xml('moderated', { xmlns: NS_MODERATE, by }, modId), why()),
    xml(
      'apply-to',
      { xmlns: NS_FASTEN, id },
      xml('moderated', { xmlns: NS_MODERATE_0, by }, xml('retract', { xmlns: NS_RETRACT_0 }), why()),
    ),
  );
  // The announcement is archived too (a client catching up through the archive learns of it), and
  // goes out once the tombstone is in place (whoever hears of it finds the tombstone).
  const sid = stamp(svc, room, room.jid, base);
  base.children.push(sid);
  const at = stampNow();
  await retire(
    svc,
    room,
    id,
    found,
    tombstone(found.stanza, [
      xml(
        'retracted',
        { xmlns: NS_RETRACT, stamp: at, id: sid.attrs.id },
        xml('moderated', { xmlns: NS_MODERATE, by }, occupantIdElement(moderator.occupantId)),
        why(),
      ),
      xml(
        'moderated',
        { xmlns: NS_MODERATE_0, by },
        xml('retracted', { xmlns: NS_RETRACT_0, stamp: at }),
        why(),
      ),
    ]),
  );
  for (const o of room.occupants.values()) svc.sendToOccupant(base, room.jid, o);
  svc.ctx.log.info({ room: room.jid.toString(), id, moderator: moderator.nick }, 'MUC message moderated');
}
