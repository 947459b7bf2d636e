import type { Element } from '@natter/xml';
import type { Jid } from '@natter/jid';
import { StanzaError } from '@natter/protocol';
import { pubsubError } from '../pubsub-errors.js';
import type { PubsubService } from '../pubsub-service.js';

/**
 * One pubsub request: `el` is the `<pubsub/>` element's first child (`<publish/>`, `<configure/>`
 * …), `pubsub` the whole `<pubsub/>` (for siblings such as `<publish-options/>`). Returns the
 * result payload, or undefined for an empty result; throws a StanzaError for an error reply.
 */
export type PubsubCommand = (
  svc: PubsubService,
  from: Jid,
  el: Element,
  pubsub: Element,
) => Promise<Element | undefined>;

/** Commands of one namespace, keyed by `"<iq type> <element name>"` (e.g. `"set publish"`). */
export type CommandTable = Readonly<Record<string, PubsubCommand>>;

/** Node and item ids are stored in varchar(1023) columns. */
export function checkId(id: string, what: 'node' | 'item'): void {
  if (id.length > 1023)
    throw new StanzaError('not-acceptable', { text: `${what} ids are limited to 1023 characters` });
}

/** The `node` attribute a request must carry (XEP-0060 `nodeid-required`). */
export function nodeIdOf(el: Element): string {
  const node = el.attrs.node;
  if (node === undefined || node === '') throw pubsubError('bad-request', 'nodeid-required');
  checkId(node, 'node');
  return node;
}
