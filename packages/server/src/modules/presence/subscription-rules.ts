import type { Element } from '@natter/xml';
import type { StateChange, Subscription, SubscriptionState } from '../roster/api.js';

export type SubscriptionType = 'subscribe' | 'subscribed' | 'unsubscribe' | 'unsubscribed';

export const SUBSCRIPTION_TYPES: ReadonlySet<string> = new Set<SubscriptionType>([
  'subscribe',
  'subscribed',
  'unsubscribe',
  'unsubscribed',
]);

/** What the server does with one subscription stanza, per RFC 6121 Appendix A. */
export interface Outcome {
  change?: StateChange;
  /** Outbound: route the stanza to the contact. Inbound: deliver it to the user's available resources. */
  forward: boolean;
  /** Inbound subscribe answered by the server on the user's behalf (already subscribed or pre-approved). */
  autoReply?: boolean;
  /** The contact just gained access to the user's presence: send it the current presence of each resource. */
  sendPresence?: boolean;
  /** The contact just lost access: send it unavailable from each of the user's available resources. */
  sendUnavailable?: boolean;
}

const hasFrom = (s: Subscription) => s === 'from' || s === 'both';
const hasTo = (s: Subscription) => s === 'to' || s === 'both';

/**
 * RFC 6121 A.2: the user's server handling a subscription stanza the user sends to a contact.
 * `state` is the user's view of the contact.
 */
export function outboundRule(
  type: SubscriptionType,
  state: SubscriptionState,
  preApproval: boolean,
): Outcome {
  const { item, pendingIn } = state;
  const sub = item?.subscription ?? 'none';
  switch (type) {
    case 'subscribe':
      // A.2.1: None → None + Pending Out, From → From + Pending Out; routed in every state
      if (!item) return { forward: true, change: { item: { subscription: 'none', ask: 'subscribe' } } };
      if (!hasTo(sub) && !item.ask) return { forward: true, change: { item: { ask: 'subscribe' } } };
      return { forward: true };
    case 'unsubscribe':
      // A.2.2: To → None, Both → From, Pending Out cancelled; routed in every state
      if (item && (hasTo(sub) || item.ask)) {
        return {
          forward: true,
          change: {
            item: { subscription: sub === 'both' ? 'from' : sub === 'to' ? 'none' : sub, ask: undefined },
          },
        };
      }
      return { forward: true };
    case 'subscribed':
      // A.2.3: approves a pending request (None + Pending In → From, To + Pending In → Both)
      if (pendingIn) {
        return {
          forward: true,
          sendPresence: true,
          change: {
            item: { subscription: sub === 'to' || sub === 'both' ? 'both' : 'from', approved: false },
            pendingIn: false,
          },
        };
      }
      if (hasFrom(sub)) return { forward: false };
      // §3.4: no request pending: a pre-approval (not routed)
      if (preApproval && !item?.approved) return { forward: false, change: { item: { approved: true } } };
      return { forward: false };
    case 'unsubscribed':
      // A.2.4: declines a pending request, or cancels the contact's subscription
      if (pendingIn) return { forward: true, change: { pendingIn: false } };
      if (hasFrom(sub))
        return {
          forward: true,
          sendUnavailable: true,
          change: { item: { subscription: sub === 'both' ? 'to' : 'none' } },
        };
      // §3.4: cancels a pre-approval (not routed)
      if (item?.approved) return { forward: false, change: { item: { approved: false } } };
      return { forward: false };
  }
}

/**
 * RFC 6121 A.3: the contact's server handling a subscription stanza addressed to a local user.
 * `state` is the local user's view of the sender; `stanza` is what to store for a new request.
 */
export function inboundRule(type: SubscriptionType, state: SubscriptionState, stanza: Element): Outcome {
  const { item, pendingIn } = state;
  const sub = item?.subscription ?? 'none';
  switch (type) {
    case 'subscribe':
      // A.3.1: already a subscriber: the server answers for the user (§3.1.3)
      if (hasFrom(sub)) return { forward: false, autoReply: true };
      // §3.4: pre-approved: approved on the user's behalf
      if (item?.approved) {
        return {
          forward: false,
          autoReply: true,
          sendPresence: true,
          change: { item: { subscription: sub === 'to' ? 'both' : 'from', approved: false } },
        };
      }
      if (pendingIn) return { forward: false };
      return { forward: true, change: { pendingIn: stanza } };
    case 'subscribed':
      // A.3.2: only an outstanding request of ours is answered
      if (item?.ask)
        return {
          forward: true,
          change: { item: { subscription: sub === 'from' ? 'both' : 'to', ask: undefined } },
        };
      return { forward: false };
    case 'unsubscribe':
      // A.3.3: withdraws a pending request, or ends the sender's subscription to the user
      if (pendingIn) return { forward: true, change: { pendingIn: false } };
      if (hasFrom(sub))
        return {
          forward: true,
          sendUnavailable: true,
          change: { item: { subscription: sub === 'both' ? 'to' : 'none' } },
        };
      return { forward: false };
    case 'unsubscribed':
      // A.3.4: refuses our request or cancels our subscription
      if (item && (hasTo(sub) || item.ask)) {
        return {
          forward: true,
          change: {
            item: { subscription: sub === 'both' ? 'from' : sub === 'to' ? 'none' : sub, ask: undefined },
          },
        };
      }
      return { forward: false };
  }
}
