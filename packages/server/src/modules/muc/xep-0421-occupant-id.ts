import { createHmac } from 'node:crypto';
import { xml, type Element } from '@natter/xml';
import type { Jid } from '@natter/jid';

/**
 * Anonymous unique occupant identifiers (XEP-0421): every presence and message an occupant sends
 * through a room carries `<occupant-id/>`, the same for one user (bare JID) in one room whatever
 * its nickname or session, different in every other room, and revealing nothing about the user:
 * an HMAC-SHA-256 of room and bare JID under the service's secret (stored, so the id survives a
 * restart and is the same on every node of a cluster). Clients use it to tell who wrote what
 * (e.g. whose message a XEP-0424 retraction may remove).
 */
export const NS_OCCUPANT_ID = 'urn:xmpp:occupant-id:0';

export function occupantId(secret: string, room: Jid, real: Jid): string {
  return createHmac('sha256', secret)
    .update(`${room.toBareString()}\0${real.toBareString()}`)
    .digest('base64url');
}

export function occupantIdElement(id: string): Element {
  return xml('occupant-id', { xmlns: NS_OCCUPANT_ID, id });
}

/** An `<occupant-id/>` a client put in its stanza: only the room may add one (§4). */
export function isOccupantIdElement(c: Element | string): boolean {
  return typeof c !== 'string' && c.name === 'occupant-id' && c.xmlns === NS_OCCUPANT_ID;
}

/** The id in a stanza the room relayed (history, archive), if any. */
export function occupantIdOf(stanza: Element): string | undefined {
  return stanza.getChild('occupant-id', NS_OCCUPANT_ID)?.attrs.id;
}
