import type { Element } from '@natter/xml';
import type { Jid } from '@natter/jid';
import type { Identity } from '../../core/module-api.js';

/**
 * What the disco module offers its peers: XEP-0128 service discovery extensions of the server's
 * own disco#info (the answer to a query to the bare domain). A module that publishes one declares
 * `dependencies: ['disco']` so that the API is there when it is set up.
 */
export interface DiscoApi {
  /**
   * Adds `form` to the server's disco#info: an `<x xmlns='jabber:x:data' type='result'/>` whose
   * hidden `FORM_TYPE` field names it (XEP-0128 §2, XEP-0068). One form per FORM_TYPE: a second
   * one with the same FORM_TYPE, or a form without one, throws. Each answer carries a copy, in
   * FORM_TYPE order. Returns the function that removes it again.
   */
  addHostExtension(form: Element): () => void;
  /**
   * Answers disco#info and disco#items queries to nodes of the server's own JID (XEP-0030 §3.2,
   * §4.2), e.g. XEP-0050's command list and commands. The first provider that knows the node
   * answers; a node nobody knows gets item-not-found. Returns the function that removes it again.
   */
  addHostNodes(provider: HostNodeProvider): () => void;
}

/** What a module serves under nodes of the server's JID (`DiscoApi.addHostNodes`). */
export interface HostNodeProvider {
  /** The node's identities and features for `requester`; undefined when the node is not this provider's. */
  info?(
    node: string,
    requester: Jid,
  ):
    | { identities: Identity[]; features: string[] }
    | undefined
    | Promise<{ identities: Identity[]; features: string[] } | undefined>;
  /** The node's items for `requester`; undefined when the node is not this provider's. */
  items?(node: string, requester: Jid): HostNodeItem[] | undefined | Promise<HostNodeItem[] | undefined>;
}

export interface HostNodeItem {
  jid: string;
  node?: string;
  name?: string;
}
