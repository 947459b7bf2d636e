import { randomUUID } from 'node:crypto';
import { xml, type Element } from '@natter/xml';
import { tryParseJid, type Jid } from '@natter/jid';
import { NS, StanzaError, parseForm, formType, parseBoolean } from '@natter/protocol';
import { pubsubError } from '../pubsub-errors.js';
import { FORM, readConfigFields, sameValue, type ConfigKey, type NodeConfig } from '../node-config.js';
import type { StoredItem, StoredNode } from '../pubsub-store.js';
import type { PubsubService } from '../pubsub-service.js';
import { checkId, nodeIdOf, type CommandTable } from './command.js';

/** Publishing and retracting items (XEP-0060 §7.1, §7.2). */

/** XEP-0060 §7.1.5: every publish-options field must match the node's configuration. */
function checkPreconditions(node: StoredNode, options: Partial<NodeConfig>, unknown: string[]): void {
  if (unknown.length > 0) {
    throw pubsubError('conflict', 'precondition-not-met', {
      text: `unsupported publish option ${unknown.join(', ')}`,
    });
  }
  for (const key of Object.keys(options) as ConfigKey[]) {
    if (!sameValue(options[key]!, node.config[key])) {
      throw pubsubError('conflict', 'precondition-not-met', {
        text: `pubsub#${key} does not match the node configuration`,
      });
    }
  }
}

function readPublishOptions(
  svc: PubsubService,
  el: Element | undefined,
): { values: Partial<NodeConfig>; unknown: string[] } | undefined {
  const x = el?.getChild('x', NS.dataForms);
  if (!x) return undefined;
  const form = parseForm(x);
  const ft = formType(form);
  if (ft !== FORM.publishOptions)
    throw pubsubError('bad-request', 'invalid-options', {
      text: 'FORM_TYPE must be pubsub#publish-options',
    });
  try {
    return readConfigFields(x, svc.maxItems);
  } catch (err) {
    // A value the service cannot hold can never match: the precondition fails.
    if (err instanceof StanzaError) throw pubsubError('conflict', 'precondition-not-met', { text: err.text });
    throw err;
  }
}

/** XEP-0060 §7.1: publish one item (id generated when absent), then notify. */
async function publish(
  svc: PubsubService,
  from: Jid,
  el: Element,
  optionsEl: Element | undefined,
): Promise<Element> {
  const id = nodeIdOf(el);
  const items = el.getChildren('item', NS.pubsub);
  if (items.length > 1)
    throw pubsubError('bad-request', 'invalid-payload', { text: 'publish one item at a time' });
  const item = items[0];
  const payloads = item?.elements() ?? [];
  if (payloads.length > 1)
    throw pubsubError('bad-request', 'invalid-payload', { text: 'an item has exactly one payload' });
  const payload = payloads[0];
  if (payload) {
    const size = Buffer.byteLength(payload.toString());
    if (size > svc.deps.limits.maxPayloadBytes) {
      throw pubsubError('not-acceptable', 'payload-too-big', {
        text: `payloads are limited to ${svc.deps.limits.maxPayloadBytes} bytes`,
      });
    }
  }
  const options = readPublishOptions(svc, optionsEl);
  await svc.profile.beforePublish?.(id, payload, from);
  let node = await svc.store.getNode(svc.key, id);
  if (!node) {
    if (!svc.profile.autoCreate) throw new StanzaError('item-not-found', { text: `no node ${id}` });
    if (!svc.profile.mayCreate(from.bare))
      throw new StanzaError('forbidden', { text: 'only the account owner publishes here' });
    if (options && options.unknown.length > 0)
      checkPreconditions(
        { owner: svc.key, node: id, config: svc.profile.defaults(id), creator: '', createdAt: 0 },
        {},
        options.unknown,
      );
    try {
      node = await svc.createNode(from, id, { ...svc.profile.defaults(id), ...(options?.values ?? {}) });
    } catch (err) {
      if (!(err instanceof StanzaError && err.condition === 'conflict')) throw err;
      node = await svc.node(id); // created concurrently: publish to it as to an existing node
      if (options) checkPreconditions(node, options.values, options.unknown);
    }
  } else {
    await mayPublish(svc, node, from);
    if (options) checkPreconditions(node, options.values, options.unknown);
  }
  const cfg = node.config;
  if (!payload && cfg.deliver_payloads && cfg.persist_items)
    throw pubsubError('bad-request', 'payload-required');
  const itemId = item?.attrs.id || randomUUID();
  checkId(itemId, 'item');
  const stored: StoredItem = {
    id: itemId,
    publisher: from.toString(),
    payload: payload?.toString() ?? '',
    updatedAt: Date.now(),
  };
  await svc.store.putItem(
    svc.key,
    node.node,
    stored,
    cfg.persist_items ? cfg.max_items : Math.min(1, cfg.max_items),
  );
  if (cfg.deliver_notifications) await svc.broadcast(node, svc.itemsEvent(node, [stored], payload));
  await svc.profile.published?.(node, stored, payload, from);
  return xml(
    'pubsub',
    { xmlns: NS.pubsub },
    xml('publish', { node: node.node }, xml('item', { id: itemId })),
  );
}

async function mayPublish(svc: PubsubService, node: StoredNode, from: Jid): Promise<void> {
  const aff = await svc.affiliation(node, from);
  if (aff === 'owner' || aff === 'publisher' || aff === 'publish-only') return;
  if (svc.profile.ownerPublishesOnly)
    throw new StanzaError('forbidden', { text: 'only the owner publishes to this node' });
  if (aff === 'outcast') throw new StanzaError('forbidden');
  if (node.config.publish_model === 'open') return;
  if (node.config.publish_model === 'subscribers') {
    const subs = await svc.store.subscriptionsOf(svc.key, [from.toBareString(), from.toString()], node.node);
    if (subs.some((s) => s.state === 'subscribed')) return;
  }
  throw new StanzaError('forbidden', { text: 'you may not publish to this node' });
}

/** XEP-0060 §7.2: retract an item (owner, publisher, or the item's own publisher). */
async function retract(svc: PubsubService, from: Jid, el: Element): Promise<undefined> {
  const node = await svc.node(nodeIdOf(el));
  const ids = el.getChildren('item', NS.pubsub).map((i) => i.attrs.id ?? '');
  if (ids.length === 0 || ids.some((i) => i === '')) throw pubsubError('bad-request', 'item-required');
  if (ids.length > svc.maxItems)
    throw new StanzaError('policy-violation', { text: `at most ${svc.maxItems} items per request` });
  const existing = await svc.store.itemsById(svc.key, node.node, ids);
  if (existing.length < ids.length) throw new StanzaError('item-not-found');
  const aff = await svc.affiliation(node, from);
  if (aff !== 'owner' && aff !== 'publisher') {
    if (
      svc.profile.ownerPublishesOnly ||
      existing.some((it) => tryParseJid(it.publisher)?.bare.equals(from.bare) !== true)
    ) {
      throw new StanzaError('forbidden', { text: 'you may not retract these items' });
    }
  }
  for (const id of ids) await svc.store.deleteItem(svc.key, node.node, id);
  const notify = parseBoolean(el.attrs.notify) ?? node.config.notify_retract;
  if (notify && node.config.deliver_notifications) {
    await svc.broadcast(
      node,
      xml(
        'items',
        { node: node.node },
        ids.map((id) => xml('retract', { id })),
      ),
    );
  }
  return undefined;
}

export const publishCommands: CommandTable = {
  'set publish': (svc, from, el, pubsub) =>
    publish(svc, from, el, pubsub.getChild('publish-options', NS.pubsub)),
  'set retract': (svc, from, el) => retract(svc, from, el),
};
