import type { Element } from '@natter/xml';
import { StanzaError } from '@natter/protocol';

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
