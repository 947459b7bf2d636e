import type { Element } from '@natter/xml';
import { parseJid, type Jid } from '@natter/jid';
import { StanzaError, type StanzaErrorCondition } from '@natter/protocol';
import type { Router } from '../router.js';

const MESSAGE_TYPES = new Set(['chat', 'error', 'groupchat', 'headline', 'normal']);
const PRESENCE_TYPES = new Set([
  'error',
  'probe',
  'subscribe',
  'subscribed',
  'unavailable',
  'unsubscribe',
  'unsubscribed',
]);

/**
 * RFC 6120 §8 / RFC 6121 checks every stream applies to a stanza it accepts, whatever its kind:
 * the error to answer with, or undefined when the stanza may be routed. An unknown message type is
 * made `normal` (RFC 6121 §5.2.2).
 */
export function checkStanza(el: Element): StanzaError | undefined {
  const type = el.attrs.type;
  if (el.name === 'iq') {
    if (type !== 'get' && type !== 'set' && type !== 'result' && type !== 'error')
      return new StanzaError('bad-request', { text: 'IQ type must be get, set, result or error' });
    if (el.attrs.id === undefined) return new StanzaError('bad-request', { text: 'an IQ needs an id' });
    if ((type === 'get' || type === 'set') && el.elements().length !== 1)
      return new StanzaError('bad-request', { text: 'a get or set IQ has exactly one child' });
  } else if (el.name === 'message') {
    if (type !== undefined && !MESSAGE_TYPES.has(type)) delete el.attrs.type;
  } else if (type !== undefined && !PRESENCE_TYPES.has(type)) {
    return new StanzaError('bad-request', { text: `unknown presence type ${type}` });
  }
  return undefined;
}

/**
 * Whether an invalid stanza may be answered with an error: never an error (RFC 6120 §8.3.1), nor
 * an IQ response (§8.2.3), so that two parties cannot bounce errors at each other forever.
 */
export function answerable(el: Element): boolean {
  const type = el.attrs.type;
  return type !== 'error' && !(el.name === 'iq' && type === 'result');
}

/**
 * What a stream to a peer server or component keeps until the kernel took it (see
 * StreamMachine.keepsUntilSent): messages and IQ requests, whose senders are owed an error if the
 * peer never reads them. Errors and the rest are not.
 */
export function bouncedIfUnsent(el: Element): boolean {
  const type = el.attrs.type;
  if (type === 'error') return false;
  return el.name === 'message' || (el.name === 'iq' && (type === 'get' || type === 'set'));
}

/** Sends each stanza a peer never received back to its sender with `condition`. */
export function bounceUnsent(
  router: Router,
  unsent: readonly Element[],
  condition: StanzaErrorCondition,
  text?: string,
): void {
  for (const stanza of unsent) {
    let from: Jid, to: Jid;
    try {
      from = parseJid(stanza.attrs.from ?? '');
      to = parseJid(stanza.attrs.to ?? '');
    } catch {
      continue;
    }
    router.bounce({ stanza, from, to, origin: undefined }, condition, text);
  }
}
