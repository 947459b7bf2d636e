import type { Jid } from '@natter/jid';
import type { ModuleContext } from '../../core/module-api.js';
import type { RosterApi } from '../roster/api.js';

/**
 * RFC 6121 §4: may `contact` see `owner`'s presence (the owner's roster item for the contact has
 * subscription from or both)? Read through the roster module at call time; `undefined` when the
 * roster module is not enabled on this host (callers decide what that means).
 */
export function mayReceivePresence<T>(
  ctx: ModuleContext<T>,
  owner: Jid,
  contact: Jid,
): boolean | Promise<boolean> | undefined {
  const roster = ctx.use<RosterApi>('roster');
  if (!roster) return undefined;
  return roster.isSubscriber(owner.bare, contact.bare);
}
