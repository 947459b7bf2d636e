import type { Jid } from '@natter/jid';
import type { Element } from '@natter/xml';

/** RFC 6121 §2.1.2.5: the subscription attribute of a roster item. */
export type Subscription = 'none' | 'to' | 'from' | 'both';

/** A roster item as clients see it (RFC 6121 §2.1.2). */
export interface RosterItem {
  jid: string;
  name?: string;
  subscription: Subscription;
  /** Pending outbound subscription request ("Pending Out"). */
  ask?: 'subscribe';
  /** Pre-approved inbound subscription (RFC 6121 §3.4). */
  approved?: boolean;
  groups: string[];
}

/** The full subscription state of a (owner, contact) pair: the item plus "Pending In" (RFC 6121 Appendix A). */
export interface SubscriptionState {
  item: RosterItem | undefined;
  /** The contact's subscription request waiting for the owner's answer, if any. */
  pendingIn: Element | undefined;
}

/** What a state transition changes; absent fields stay as they are. */
export interface StateChange {
  /** Fields of the item to set (the item is created when missing), or 'remove' to delete it. */
  item?: Partial<Omit<RosterItem, 'jid'>> | 'remove';
  /** A stanza to store as the pending inbound request, or false to drop the stored one. */
  pendingIn?: Element | false;
}

/** A stored inbound subscription request (RFC 6121 §3.1.3), re-delivered at each initial presence. */
export interface PendingRequest {
  from: Jid;
  stanza: Element;
}

export interface RosterApi {
  get(owner: Jid, contact: Jid): Promise<RosterItem | undefined>;
  list(owner: Jid): Promise<RosterItem[]>;
  /** Contacts who receive the owner's presence (subscription from/both). */
  subscribers(owner: Jid): Promise<Jid[]>;
  /** Contacts whose presence the owner receives (subscription to/both): probed at initial presence. */
  subscriptions(owner: Jid): Promise<Jid[]>;
  /** Whether `contact` may see the owner's presence (from/both); synchronous when the roster is cached. */
  isSubscriber(owner: Jid, contact: Jid): boolean | Promise<boolean>;
  /** Used by presence: create/update an item and push it to interested resources. */
  update(owner: Jid, contact: Jid, change: Partial<RosterItem>): Promise<RosterItem>;
  /** Deletes an item (and any pending request from the contact) and pushes the removal. */
  remove(owner: Jid, contact: Jid): Promise<void>;
  /**
   * Atomic read-modify-write of a pair's subscription state (the presence state machine): `fn`
   * sees the current state and returns `{ change, … }`; the change is stored, the roster version
   * bumped and the item pushed when the visible item changed. Resolves with `fn`'s result.
   * Rejects with StanzaError('not-acceptable') when creating an item would exceed the roster limit.
   */
  transition<T extends { change?: StateChange }>(
    owner: Jid,
    contact: Jid,
    fn: (state: SubscriptionState) => T,
  ): Promise<T>;
  /** Inbound subscription requests waiting for the owner's answer. */
  pending(owner: Jid): Promise<PendingRequest[]>;
}
