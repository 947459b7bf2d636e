import { xml, parseElement, type Element } from '@natter/xml';
import { tryParseJid, type Jid } from '@natter/jid';
import { NS, StanzaError } from '@natter/protocol';
import type { StoredItem } from '../pubsub-store.js';
import type { PubsubService } from '../pubsub-service.js';
import { nodeIdOf, type CommandTable } from './command.js';

/** Retrieving items (XEP-0060 §6.5). */

/** XEP-0060 §6.5: all items, some by id, or the newest `max_items`. */
async function retrieve(svc: PubsubService, from: Jid, el: Element): Promise<Element> {
  const node = await svc.node(nodeIdOf(el));
  const access = await svc.access(node, from, 'retrieve');
  if (!access.ok) throw access.error;
  const wanted = el
    .getChildren('item', NS.pubsub)
    .map((i) => i.attrs.id)
    .filter((i): i is string => i !== undefined && i !== '');
  let items: StoredItem[];
  if (wanted.length > svc.maxItems)
    throw new StanzaError('policy-violation', { text: `at most ${svc.maxItems} items per request` });
  if (wanted.length > 0) {
    items = await svc.store.itemsById(svc.key, node.node, wanted);
  } else {
    const maxAttr = el.attrs.max_items;
    let limit: number | undefined;
    if (maxAttr !== undefined) {
      if (!/^\d+$/.test(maxAttr))
        throw new StanzaError('bad-request', { text: 'max_items must be a non-negative integer' });
      limit = Math.min(Number(maxAttr), svc.maxItems);
    }
    items = await svc.store.items(svc.key, node.node, limit);
  }
  items.reverse(); // oldest first
  return xml(
    'pubsub',
    { xmlns: NS.pubsub },
    xml(
      'items',
      { node: node.node },
      items.map((it) =>
        xml(
          'item',
          {
            id: it.id,
            publisher: svc.profile.ownerPublishesOnly ? undefined : tryParseJid(it.publisher)?.toBareString(),
          },
          it.payload !== '' && parseElement(it.payload),
        ),
      ),
    ),
  );
}

export const itemCommands: CommandTable = {
  'get items': (svc, from, el) => retrieve(svc, from, el),
};
