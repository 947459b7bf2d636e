import { Element } from '@natter/xml';
import { NS } from '@natter/protocol';

const CHAT_MARKERS = 'urn:xmpp:chat-markers:0';
const RECEIPT_NAMES = new Set(['request', 'received']);

/** Direction of a message relative to the account whose resources would get copies. */
export type CarbonDirection = 'sent' | 'received';

/** XEP-0280 §7 / XEP-0334 §4: the sender asked for this message not to be copied. */
export function isPrivate(message: Element): boolean {
  for (const c of message.children) {
    if (typeof c === 'string') continue;
    if ((c.name === 'private' && c.xmlns === NS.carbons) || (c.name === 'no-copy' && c.xmlns === NS.hints))
      return true;
  }
  return false;
}

/**
 * XEP-0280 §6 (Messages Eligible for Carbons Delivery), applied to a message a local account sends
 * (`sent`) or receives (`received`):
 * - never when it carries `<private/>` or `<no-copy/>`, nor when it already is a carbon copy
 *   (`<sent/>`/`<received/>`), so copies are never copied again;
 * - type `chat`, or type `normal` with a `<body/>`, or any chat/normal message with payloads used
 *   in IM (receipts XEP-0184, chat states XEP-0085, markers XEP-0333, invitations XEP-0249/XEP-0045);
 * - MUC rules: `groupchat` never; a private message *from* a MUC occupant (marked with
 *   `<x xmlns='http://jabber.org/protocol/muc#user'/>` by the room, XEP-0045 §7.5) is not copied
 *   since the room already replicates it to every joined client, unless it is a mediated invitation;
 *   a private message *to* an occupant is copied like any chat message;
 * - `error` and `headline` are not copied (errors would need correlation with the original).
 */
export function isEligible(message: Element, direction: CarbonDirection): boolean {
  const type = message.attrs.type ?? 'normal';
  if (type !== 'chat' && type !== 'normal') return false;
  let body = false;
  let imPayload = false;
  let mucUser: Element | undefined;
  for (const c of message.children) {
    if (typeof c === 'string') continue;
    const ns = c.xmlns;
    if (ns === NS.carbons) {
      if (c.name === 'private' || c.name === 'sent' || c.name === 'received') return false;
    } else if (ns === NS.hints) {
      if (c.name === 'no-copy') return false;
    } else if (c.name === 'body' && (ns === NS.client || ns === '')) {
      body = true;
    } else if (ns === NS.mucUser && c.name === 'x') {
      mucUser = c;
    } else if (
      ns === NS.chatStates ||
      ns === CHAT_MARKERS ||
      (ns === NS.receipts && RECEIPT_NAMES.has(c.name)) ||
      (ns === NS.conference && c.name === 'x')
    ) {
      imPayload = true;
    }
  }
  if (mucUser !== undefined) {
    if (mucUser.getChild('invite', NS.mucUser)) return true; // mediated invitation: copy
    if (direction === 'received') return false; // a private message from an occupant
  }
  if (type === 'chat') return true;
  return body || imPayload;
}
