/**
 * What the pubsub module offers other modules (rule 5: peers meet here, never in each other's
 * files). PEP (XEP-0163) reuses the node engine through `ctx.use<PubsubApi>('pubsub')`, with the
 * service profile, node defaults and feature lists below.
 */
import type { EngineDeps, PubsubService, ServiceProfile } from './pubsub-service.js';
import type { PubsubOptions } from './pubsub.js';

/** What the pubsub module provides (`ctx.provide('pubsub', …)`): PEP reuses the node engine. */
export interface PubsubApi {
  deps: EngineDeps;
  options: PubsubOptions;
  /** An engine for a service address with its own profile. */
  service(address: string, profile: ServiceProfile): PubsubService;
}

export type { PubsubOptions } from './pubsub.js';
export type { EngineDeps, PubsubLimits, PubsubService, ServiceProfile } from './pubsub-service.js';
export type { Affiliation, StoredItem, StoredNode, StoredSubscription } from './pubsub-store.js';
export { defaultConfig, type NodeConfig } from './node-config.js';
export { PEP_FEATURES, PUBSUB_FEATURES } from './features.js';
export { sharesPresence } from './roster-types.js';
