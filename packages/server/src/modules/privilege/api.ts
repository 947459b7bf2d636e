import type { Jid } from '@natter/jid';

/**
 * What the privilege module (XEP-0356) offers its peers (`ctx.use<PrivilegeApi>('privilege')`):
 * the roster module asks it whether a component may read or change a user's roster, and which
 * components want roster pushes.
 */
export interface PrivilegeApi {
  /** Whether `entity` (an address on a component's domain) may send roster IQs of `type` for users of this host. */
  mayRoster(entity: Jid, type: 'get' | 'set'): boolean;
  /** Connected components that receive this host's roster pushes (XEP-0356 §4.4). */
  rosterPushTargets(): readonly string[];
}
