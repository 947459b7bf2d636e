import { randomUUID } from 'node:crypto';
import { xml, type Element } from '@natter/xml';
import { tryParseJid, type Jid } from '@natter/jid';
import { NS, StanzaError, parseForm } from '@natter/protocol';
import { applyConfigForm, configForm } from '../node-config.js';
import type { Affiliation } from '../pubsub-store.js';
import type { PubsubService } from '../pubsub-service.js';
import { nodeIdOf, type CommandTable } from './command.js';
import { decide } from './subscribe.js';

/**
 * The `pubsub#owner` namespace (XEP-0060 §8): node configuration and defaults, deletion, purge,
 * and the owner's view of subscriptions and affiliations.
 */

const OWNER_AFFILIATIONS = new Set<Affiliation>([
  'owner',
  'publisher',
  'publish-only',
  'member',
  'none',
  'outcast',
]);

async function getConfigure(svc: PubsubService, from: Jid, el: Element): Promise<Element> {
  const node = await svc.node(nodeIdOf(el));
  await svc.requireOwner(node, from);
  return xml(
    'pubsub',
    { xmlns: NS.pubsubOwner },
    xml('configure', { node: node.node }, configForm(node.config, svc.maxItems)),
  );
}

/** XEP-0060 §8.2.4: submit (or cancel) the configuration form. */
async function setConfigure(svc: PubsubService, from: Jid, el: Element): Promise<undefined> {
  const node = await svc.node(nodeIdOf(el));
  await svc.requireOwner(node, from);
  const x = el.getChild('x', NS.dataForms);
  if (!x) throw new StanzaError('bad-request', { text: 'a configuration form is required' });
  const form = parseForm(x);
  if (form.type === 'cancel') return undefined;
  if (form.type !== 'submit')
    throw new StanzaError('bad-request', { text: 'the form must be of type submit' });
  const config = applyConfigForm(node.config, x, svc.maxItems);
  const updated = await svc.reconfigure(node, config);
  if (config.notify_config && config.deliver_notifications) {
    await svc.broadcast(
      updated,
      xml(
        'configuration',
        { node: node.node },
        config.deliver_payloads && configForm(config, svc.maxItems, 'result'),
      ),
    );
  }
  return undefined;
}

/** XEP-0060 §8.4: delete a node, notifying subscribers (with the redirect URI if given). */
async function deleteNode(svc: PubsubService, from: Jid, el: Element): Promise<undefined> {
  const node = await svc.node(nodeIdOf(el));
  await svc.requireOwner(node, from);
  const redirect = el.getChild('redirect', NS.pubsubOwner)?.attrs.uri;
  const recipients =
    node.config.notify_delete && node.config.deliver_notifications ? await svc.recipients(node) : [];
  await svc.store.deleteNode(svc.key, node.node);
  svc.sendEvent(
    node,
    recipients,
    xml('delete', { node: node.node }, redirect !== undefined && xml('redirect', { uri: redirect })),
  );
  return undefined;
}

/** XEP-0060 §8.5: purge every item, notifying subscribers. */
async function purgeNode(svc: PubsubService, from: Jid, el: Element): Promise<undefined> {
  const node = await svc.node(nodeIdOf(el));
  await svc.requireOwner(node, from);
  await svc.store.purge(svc.key, node.node);
  if (node.config.notify_retract && node.config.deliver_notifications)
    await svc.broadcast(node, xml('purge', { node: node.node }));
  return undefined;
}

/** XEP-0060 §8.8.1: an owner lists the node's subscriptions. */
async function ownerSubscriptions(svc: PubsubService, from: Jid, el: Element): Promise<Element> {
  const node = await svc.node(nodeIdOf(el));
  await svc.requireOwner(node, from);
  const subs = await svc.store.subscriptions(svc.key, node.node);
  return xml(
    'pubsub',
    { xmlns: NS.pubsubOwner },
    xml(
      'subscriptions',
      { node: node.node },
      subs.map((s) => xml('subscription', { jid: s.jid, subscription: s.state, subid: s.subid })),
    ),
  );
}

/** XEP-0060 §8.8.2: an owner changes subscriptions (subscribed, none, pending approval). */
async function setOwnerSubscriptions(svc: PubsubService, from: Jid, el: Element): Promise<undefined> {
  const node = await svc.node(nodeIdOf(el));
  await svc.requireOwner(node, from);
  for (const s of el.getChildren('subscription', NS.pubsubOwner)) {
    const jid = tryParseJid(s.attrs.jid ?? '');
    const state = s.attrs.subscription;
    if (!jid || (state !== 'subscribed' && state !== 'none' && state !== 'pending'))
      throw new StanzaError('bad-request', { text: 'bad subscription entry' });
    const existing = await svc.store.subscription(svc.key, node.node, jid.toString());
    if (state === 'none') {
      if (existing) await decide(svc, node, existing, 'none');
    } else if (existing?.state === 'pending' && state === 'subscribed') {
      await decide(svc, node, existing, 'subscribed');
    } else {
      await svc.store.putSubscription(svc.key, {
        node: node.node,
        jid: jid.toString(),
        subid: existing?.subid ?? randomUUID(),
        state,
        options: existing?.options ?? {},
      });
    }
  }
  return undefined;
}

/** XEP-0060 §8.9.1. */
async function ownerAffiliations(svc: PubsubService, from: Jid, el: Element): Promise<Element> {
  const node = await svc.node(nodeIdOf(el));
  await svc.requireOwner(node, from);
  const affs: { jid: string; affiliation: string }[] = await svc.store.affiliations(svc.key, node.node);
  // A PEP account owns its nodes without a stored row: list it first.
  if (svc.profile.isServiceOwner(svc.address)) affs.unshift({ jid: svc.key, affiliation: 'owner' });
  return xml(
    'pubsub',
    { xmlns: NS.pubsubOwner },
    xml(
      'affiliations',
      { node: node.node },
      affs.map((a) => xml('affiliation', { jid: a.jid, affiliation: a.affiliation })),
    ),
  );
}

/** XEP-0060 §8.9.2: an owner changes affiliations (whitelist members, publishers, outcasts). */
async function setOwnerAffiliations(svc: PubsubService, from: Jid, el: Element): Promise<undefined> {
  const node = await svc.node(nodeIdOf(el));
  await svc.requireOwner(node, from);
  const changes: { jid: string; affiliation: Affiliation }[] = [];
  for (const a of el.getChildren('affiliation', NS.pubsubOwner)) {
    const jid = tryParseJid(a.attrs.jid ?? '');
    const aff = a.attrs.affiliation as Affiliation | undefined;
    if (!jid || aff === undefined || !OWNER_AFFILIATIONS.has(aff))
      throw new StanzaError('bad-request', { text: 'bad affiliation entry' });
    if (svc.profile.isServiceOwner(jid.bare))
      throw new StanzaError('not-acceptable', { text: 'the account owner always owns its nodes' });
    changes.push({ jid: jid.toBareString(), affiliation: aff });
  }
  if (!svc.profile.isServiceOwner(svc.address)) {
    const owners = new Set(await svc.owners(node));
    for (const c of changes) {
      if (c.affiliation === 'owner') owners.add(c.jid);
      else owners.delete(c.jid);
    }
    if (owners.size === 0)
      throw new StanzaError('not-acceptable', { text: 'a node keeps at least one owner' });
  }
  for (const c of changes) {
    await svc.store.setAffiliation(svc.key, node.node, c.jid, c.affiliation);
    if (c.affiliation === 'outcast') {
      for (const s of await svc.store.subscriptions(svc.key, node.node)) {
        if (tryParseJid(s.jid)?.toBareString() === c.jid)
          await svc.store.deleteSubscription(svc.key, node.node, s.jid);
      }
    }
  }
  return undefined;
}

export const ownerCommands: CommandTable = {
  'get configure': (svc, from, el) => getConfigure(svc, from, el),
  'set configure': (svc, from, el) => setConfigure(svc, from, el),
  'get default': async (svc) =>
    xml(
      'pubsub',
      { xmlns: NS.pubsubOwner },
      xml('default', null, configForm(svc.profile.defaults(''), svc.maxItems)),
    ),
  'set delete': (svc, from, el) => deleteNode(svc, from, el),
  'set purge': (svc, from, el) => purgeNode(svc, from, el),
  'get subscriptions': (svc, from, el) => ownerSubscriptions(svc, from, el),
  'set subscriptions': (svc, from, el) => setOwnerSubscriptions(svc, from, el),
  'get affiliations': (svc, from, el) => ownerAffiliations(svc, from, el),
  'set affiliations': (svc, from, el) => setOwnerAffiliations(svc, from, el),
};
