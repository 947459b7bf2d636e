import type { Jid } from '@natter/jid';

/**
 * What the blocking module (XEP-0191) offers other modules: `ctx.use<BlockingApi>('blocking')`,
 * undefined when blocking is disabled on the host.
 */
export interface BlockingApi {
  /** Does `owner` (a local account) block `other`? Synchronous unless the list must be loaded. */
  isBlocked(owner: Jid | string, other: Jid): boolean | Promise<boolean>;
  /** The owner's blocklist. */
  list(owner: Jid | string): Promise<string[]>;
}
