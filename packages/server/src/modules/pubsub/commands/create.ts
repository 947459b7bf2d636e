import { randomUUID } from 'node:crypto';
import { xml, type Element } from '@natter/xml';
import type { Jid } from '@natter/jid';
import { NS, StanzaError, parseForm } from '@natter/protocol';
import { applyConfigForm } from '../node-config.js';
import type { PubsubService } from '../pubsub-service.js';
import { checkId, type CommandTable } from './command.js';

/** `<create/>` in the pubsub namespace (XEP-0060 §8.1). */

/** XEP-0060 §8.1: create a node, optionally configured, or an instant node (§8.1.2). */
async function create(
  svc: PubsubService,
  from: Jid,
  createEl: Element,
  configureEl: Element | undefined,
): Promise<Element> {
  if (!svc.profile.mayCreate(from.bare))
    throw new StanzaError('forbidden', { text: 'you may not create nodes here' });
  const id = createEl.attrs.node || randomUUID();
  checkId(id, 'node');
  if (await svc.store.getNode(svc.key, id))
    throw new StanzaError('conflict', { text: `node ${id} already exists` });
  let config = svc.profile.defaults(id);
  const x = configureEl?.getChild('x', NS.dataForms);
  if (x) {
    const form = parseForm(x);
    if (form.type === 'submit') config = applyConfigForm(config, x, svc.maxItems);
  }
  await svc.createNode(from, id, config);
  return xml('pubsub', { xmlns: NS.pubsub }, xml('create', { node: id }));
}

export const createCommands: CommandTable = {
  'set create': (svc, from, el, pubsub) => create(svc, from, el, pubsub.getChild('configure', NS.pubsub)),
};
