import { NS } from '@natter/protocol';

/** `http://jabber.org/protocol/pubsub#<name>` (XEP-0060 §10 feature names). */
export const feature = (name: string) => `${NS.pubsub}#${name}`;

/** The XEP-0060 features both the pubsub service and PEP implement. */
export const PUBSUB_FEATURES = [
  'access-authorize',
  'access-open',
  'access-presence',
  'access-roster',
  'access-whitelist',
  'config-node',
  'create-and-configure',
  'create-nodes',
  'delete-items',
  'delete-nodes',
  'instant-nodes',
  'item-ids',
  'manage-affiliations',
  'manage-subscriptions',
  'meta-data',
  'modify-affiliations',
  'outcast-affiliation',
  'member-affiliation',
  'persistent-items',
  'presence-notifications',
  'publish',
  'publish-options',
  'publisher-affiliation',
  'purge-nodes',
  'retract-items',
  'retrieve-affiliations',
  'retrieve-default',
  'retrieve-items',
  'retrieve-subscriptions',
  'subscribe',
  'subscription-options',
].map(feature);

/** What PEP adds (XEP-0163 §6.1). */
export const PEP_FEATURES = ['auto-create', 'auto-subscribe', 'filtered-notifications', 'last-published'].map(
  feature,
);
