import type { Element } from '@natter/xml';
import type { Jid } from '@natter/jid';

/**
 * What PEP offers the disco module, which owns disco#items/#info on accounts: the nodes of an
 * account the requester may see (XEP-0163 §6.2), or a node's items; a node's identity and
 * meta-data. Both throw StanzaError('item-not-found') for unknown or hidden nodes.
 */
export interface PepApi {
  discoItems(account: Jid, requester: Jid, node?: string): Promise<Element>;
  discoInfo(account: Jid, requester: Jid, node: string): Promise<Element>;
}
