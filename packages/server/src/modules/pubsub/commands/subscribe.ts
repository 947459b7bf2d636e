import { randomUUID } from 'node:crypto';
import { xml, type Element } from '@natter/xml';
import { tryParseJid, type Jid } from '@natter/jid';
import { NS, StanzaError, buildForm, parseForm, formType, parseBoolean } from '@natter/protocol';
import { pubsubError } from '../pubsub-errors.js';
import { FORM } from '../node-config.js';
import type { Affiliation, StoredNode, StoredSubscription } from '../pubsub-store.js';
import type { PubsubService } from '../pubsub-service.js';
import { nodeIdOf, type CommandTable } from './command.js';

/**
 * Subscriptions seen by the subscriber (XEP-0060 §6.1-§6.4), the requester's subscriptions and
 * affiliations (§5.6, §5.7), and owner approval of pending subscriptions (§8.6).
 */

/** XEP-0060 §6.1: subscribe `jid` (the requester's bare or full JID). */
async function subscribe(
  svc: PubsubService,
  from: Jid,
  el: Element,
  optionsEl: Element | undefined,
): Promise<Element> {
  const node = await svc.node(nodeIdOf(el));
  const jid = tryParseJid(el.attrs.jid ?? '');
  if (!jid || !jid.bare.equals(from.bare)) throw pubsubError('bad-request', 'invalid-jid');
  const access = await svc.access(node, from, 'subscribe');
  if (!access.ok) throw access.error;
  const key = jid.toString();
  let sub = await svc.store.subscription(svc.key, node.node, key);
  const x = optionsEl?.getChild('x', NS.dataForms);
  const options = x ? readSubscribeOptions(x, sub?.options ?? {}) : (sub?.options ?? {});
  if (!sub || sub.state !== 'subscribed' || x) {
    const state =
      sub?.state === 'subscribed' || node.config.access_model !== 'authorize' || access.affiliation !== 'none'
        ? 'subscribed'
        : 'pending';
    sub = { node: node.node, jid: key, subid: sub?.subid ?? randomUUID(), state, options };
    await svc.store.putSubscription(svc.key, sub);
    if (state === 'pending') await askOwners(svc, node, jid);
  }
  if (sub.state === 'subscribed' && node.config.send_last_published_item !== 'never') {
    const [last] = await svc.store.items(svc.key, node.node, 1);
    if (last && node.config.deliver_notifications)
      svc.sendEvent(node, [jid], svc.itemsEvent(node, [last]), true);
  }
  return xml('pubsub', { xmlns: NS.pubsub }, subscriptionEl(sub));
}

/** XEP-0060 §6.1.3.1 / §8.6: authorization request to the node owners. */
async function askOwners(svc: PubsubService, node: StoredNode, jid: Jid): Promise<void> {
  const owners = svc.profile.isServiceOwner(svc.address) ? [svc.key] : await svc.owners(node);
  for (const owner of owners) {
    svc.deps.send(
      xml(
        'message',
        { from: svc.key, to: owner, id: randomUUID() },
        buildForm({
          type: 'form',
          title: 'PubSub subscriber request',
          formType: FORM.subscribeAuthorization,
          fields: [
            { var: 'pubsub#node', type: 'text-single', label: 'Node ID', values: [node.node] },
            {
              var: 'pubsub#subscriber_jid',
              type: 'jid-single',
              label: 'Subscriber Address',
              values: [jid.toString()],
            },
            {
              var: 'pubsub#allow',
              type: 'boolean',
              label: 'Allow this JID to subscribe to this pubsub node?',
              values: ['0'],
            },
          ],
        }),
      ),
    );
  }
}

/** Approves or denies a pending subscription and tells the subscriber (XEP-0060 §8.6.2). */
export async function decide(
  svc: PubsubService,
  node: StoredNode,
  sub: StoredSubscription,
  state: 'subscribed' | 'none',
): Promise<void> {
  if (state === 'none') await svc.store.deleteSubscription(svc.key, node.node, sub.jid);
  else await svc.store.putSubscription(svc.key, { ...sub, state });
  svc.deps.send(
    xml(
      'message',
      { from: svc.key, to: sub.jid, id: randomUUID() },
      xml(
        'event',
        { xmlns: NS.pubsubEvent },
        xml('subscription', {
          node: node.node,
          jid: sub.jid,
          subscription: state,
          subid: state === 'none' ? undefined : sub.subid,
        }),
      ),
    ),
  );
}

async function findSubscription(
  svc: PubsubService,
  node: StoredNode,
  from: Jid,
  el: Element,
): Promise<StoredSubscription> {
  const jid = tryParseJid(el.attrs.jid ?? '');
  if (!jid) throw pubsubError('bad-request', 'jid-required');
  if (!jid.bare.equals(from.bare) && (await svc.affiliation(node, from)) !== 'owner')
    throw new StanzaError('forbidden');
  const sub = await svc.store.subscription(svc.key, node.node, jid.toString());
  if (!sub) throw pubsubError('unexpected-request', 'not-subscribed', { type: 'cancel' });
  const subid = el.attrs.subid;
  if (subid !== undefined && subid !== sub.subid) throw pubsubError('not-acceptable', 'invalid-subid');
  return sub;
}

/** XEP-0060 §6.2. */
async function unsubscribe(svc: PubsubService, from: Jid, el: Element): Promise<undefined> {
  const node = await svc.node(nodeIdOf(el));
  const sub = await findSubscription(svc, node, from, el);
  await svc.store.deleteSubscription(svc.key, node.node, sub.jid);
  return undefined;
}

/** XEP-0060 §6.3: the subscription options form. */
async function getOptions(svc: PubsubService, from: Jid, el: Element): Promise<Element> {
  const node = await svc.node(nodeIdOf(el));
  const sub = await findSubscription(svc, node, from, el);
  return xml(
    'pubsub',
    { xmlns: NS.pubsub },
    xml('options', { node: node.node, jid: sub.jid, subid: sub.subid }, subscribeOptionsForm(sub.options)),
  );
}

async function setOptions(svc: PubsubService, from: Jid, el: Element): Promise<undefined> {
  const node = await svc.node(nodeIdOf(el));
  const sub = await findSubscription(svc, node, from, el);
  const x = el.getChild('x', NS.dataForms);
  if (!x) throw pubsubError('bad-request', 'invalid-options');
  await svc.store.putSubscription(svc.key, { ...sub, options: readSubscribeOptions(x, sub.options) });
  return undefined;
}

/** XEP-0060 §5.6: the requester's subscriptions (optionally on one node). */
async function userSubscriptions(svc: PubsubService, from: Jid, el: Element): Promise<Element> {
  const node = el.attrs.node;
  const subs = await svc.store.subscriptionsOf(svc.key, [from.toBareString(), from.toString()], node);
  return xml('pubsub', { xmlns: NS.pubsub }, xml('subscriptions', { node }, subs.map(subscriptionEl)));
}

/** XEP-0060 §5.7: the requester's affiliations. */
async function userAffiliations(svc: PubsubService, from: Jid, el: Element): Promise<Element> {
  const nodeAttr = el.attrs.node;
  let affs: { node: string; affiliation: Affiliation }[];
  if (svc.profile.isServiceOwner(from.bare)) {
    affs = (await svc.store.listNodes(svc.key)).map((n) => ({
      node: n.node,
      affiliation: 'owner' as const,
    }));
  } else {
    affs = await svc.store.affiliationsOf(svc.key, from.toBareString());
  }
  if (nodeAttr !== undefined) affs = affs.filter((a) => a.node === nodeAttr);
  return xml(
    'pubsub',
    { xmlns: NS.pubsub },
    xml(
      'affiliations',
      { node: nodeAttr },
      affs.map((a) => xml('affiliation', { node: a.node, affiliation: a.affiliation })),
    ),
  );
}

function subscriptionEl(s: StoredSubscription): Element {
  return xml('subscription', { node: s.node, jid: s.jid, subid: s.subid, subscription: s.state });
}

/** XEP-0060 §6.3.4 minimal subscription options: pubsub#deliver. */
function subscribeOptionsForm(options: Record<string, string>): Element {
  return buildForm({
    type: 'form',
    formType: FORM.subscribeOptions,
    fields: [
      {
        var: 'pubsub#deliver',
        type: 'boolean',
        label: 'Enable delivery?',
        values: [options['pubsub#deliver'] ?? '1'],
      },
    ],
  });
}

function readSubscribeOptions(x: Element, current: Record<string, string>): Record<string, string> {
  const form = parseForm(x);
  const ft = formType(form);
  if (ft !== undefined && ft !== FORM.subscribeOptions) throw pubsubError('bad-request', 'invalid-options');
  const out = { ...current };
  for (const f of form.fields) {
    if (f.var === undefined || f.var === 'FORM_TYPE') continue;
    if (f.var !== 'pubsub#deliver')
      throw pubsubError('bad-request', 'invalid-options', { text: `unsupported option ${f.var}` });
    const b = parseBoolean(f.values[0]);
    if (b === undefined)
      throw pubsubError('bad-request', 'invalid-options', { text: 'pubsub#deliver is a boolean' });
    out[f.var] = b ? '1' : '0';
  }
  return out;
}

export const subscribeCommands: CommandTable = {
  'set subscribe': (svc, from, el, pubsub) => subscribe(svc, from, el, pubsub.getChild('options', NS.pubsub)),
  'set unsubscribe': (svc, from, el) => unsubscribe(svc, from, el),
  'get options': (svc, from, el) => getOptions(svc, from, el),
  'set options': (svc, from, el) => setOptions(svc, from, el),
  'get default': async () =>
    xml('pubsub', { xmlns: NS.pubsub }, xml('default', null, subscribeOptionsForm({}))),
  'get subscriptions': (svc, from, el) => userSubscriptions(svc, from, el),
  'get affiliations': (svc, from, el) => userAffiliations(svc, from, el),
};
