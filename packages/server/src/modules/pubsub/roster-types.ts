import type { Jid } from '@natter/jid';
import type { RosterApi } from '../roster/api.js';

export type { RosterApi };

/** Has `contact` a subscription to `owner`'s presence (RFC 6121: from or both in owner's roster)? */
export async function sharesPresence(
  roster: RosterApi | undefined,
  owner: Jid,
  contact: Jid,
): Promise<boolean> {
  if (!roster) return false;
  const item = await roster.get(owner.bare, contact.bare);
  return item !== undefined && (item.subscription === 'from' || item.subscription === 'both');
}
