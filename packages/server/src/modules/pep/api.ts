import type { Element } from '@natter/xml';
import type { Jid } from '@natter/jid';
import { defaultConfig, type NodeConfig } from '../pubsub/api.js';

/** XEP-0163 §5: a PEP node's defaults (presence access, last item on subscription and presence). */
export function pepNodeDefaults(maxItems: number): NodeConfig {
  return defaultConfig({
    access_model: 'presence',
    max_items: maxItems,
    send_last_published_item: 'on_sub_and_presence',
  });
}

/**
 * What PEP offers the disco module, which owns disco#items/#info on accounts: the nodes of an
 * account the requester may see (XEP-0163 §6.2), or a node's items; a node's identity and
 * meta-data. Both throw StanzaError('item-not-found') for unknown or hidden nodes. And what it
 * offers modules acting for an account on its own nodes (`ownRequest`).
 */
export interface PepApi {
  discoItems(account: Jid, requester: Jid, node?: string): Promise<Element>;
  discoInfo(account: Jid, requester: Jid, node: string): Promise<Element>;
  /**
   * Runs a `<pubsub/>` request (`…pubsub` or `…pubsub#owner`) on the PEP service of `from`'s own
   * account, as if `from` (the account or one of its resources) had sent it: the same checks,
   * storage and notifications to the account's resources and contacts. Resolves with the result
   * payload; throws StanzaError. For modules offering another view of an account's nodes (the
   * private module: XEP-0048 bookmarks in private storage ↔ XEP-0402).
   */
  ownRequest(from: Jid, type: 'get' | 'set', pubsub: Element): Promise<Element | undefined>;
  /**
   * Watches publications to node `node` of every account (the avatar-conversion module, XEP-0398):
   * `validate` runs before an item is stored and may refuse it (throw a StanzaError: the publisher
   * gets it); `published` runs after it is stored and notified, before the publisher's result (its
   * failures are logged, never reported). Publications made through `ownRequest` are watched too.
   * Returns the function that stops watching.
   */
  watch(node: string, watcher: PepWatcher): () => void;
  /** Largest item payload accepted (serialised bytes): pubsub's `maxPayloadBytes`. */
  readonly maxPayloadBytes: number;
}

export interface PepWatcher {
  validate?(account: Jid, payload: Element | undefined, publisher: Jid): void | Promise<void>;
  published?(
    account: Jid,
    item: { id: string; payload: Element | undefined },
    publisher: Jid,
  ): void | Promise<void>;
}
