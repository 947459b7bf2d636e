import type { Element } from '@natter/xml';

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
}
