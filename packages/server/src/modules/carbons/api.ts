import type { Element } from '@natter/xml';
import type { SessionRecord } from '../../core/module-api.js';

/**
 * What carbons offers other modules (`ctx.use<CarbonsApi>('carbons')`): stream management asks it,
 * when a dropped session ends, which of its unacknowledged messages another resource of the
 * account already saw as a carbon, so that they are not routed to it a second time.
 */
export interface CarbonsApi {
  /** Sessions that got a `<received/>` copy of this delivered message (the element delivered). */
  copiedTo(message: Element): readonly SessionRecord[];
}

/** A carbon copy (`<sent/>` or `<received/>` wrapper, XEP-0280), as written to a client. */
export function isCarbon(message: Element, ns: string): boolean {
  return message.getChild('sent', ns) !== undefined || message.getChild('received', ns) !== undefined;
}
