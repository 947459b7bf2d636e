import { xml } from '@natter/xml';
import { NS } from '@natter/protocol';
import type { RouteEvent } from '../../core/module-api.js';

/** Most (component address, local recipient) pairs remembered per component. */
const MAX_PAIRS_PER_COMPONENT = 100_000;

/**
 * Available presence that users of this host received from addresses of external components
 * (XEP-0114), so that when a component's stream ends the server can tell each recipient that
 * those addresses went unavailable, in the component's name (RFC 6121 §4.5.2 has the user's server
 * do so for the user's own sessions; a gateway that vanishes cannot say it itself).
 */
export class ComponentPresence {
  /** component domain → sender full JID → recipients (as addressed: bare or full). */
  private readonly seen = new Map<string, Map<string, Set<string>>>();
  private readonly sizes = new Map<string, number>();

  constructor(private readonly isComponent: (domain: string) => boolean) {}

  /** Records (or forgets, on unavailable) a presence delivered to a user of this host. */
  observe(ev: RouteEvent): void {
    const domain = ev.from.domain;
    if (!this.isComponent(domain)) return;
    const type = ev.stanza.attrs.type;
    if (type !== undefined && type !== 'unavailable') return;
    const from = ev.from.toString();
    const to = ev.to.toString();
    let senders = this.seen.get(domain);
    if (type === 'unavailable') {
      const set = senders?.get(from);
      if (!set) return;
      const before = set.size;
      if (ev.to.resource === '') {
        // unavailable to the bare JID ends what every resource was told
        for (const r of set) if (r === to || r.startsWith(`${to}/`)) set.delete(r);
      } else set.delete(to);
      this.sizes.set(domain, (this.sizes.get(domain) ?? 0) - (before - set.size));
      if (set.size === 0) senders!.delete(from);
      return;
    }
    if ((this.sizes.get(domain) ?? 0) >= MAX_PAIRS_PER_COMPONENT) return;
    if (!senders) this.seen.set(domain, (senders = new Map()));
    let set = senders.get(from);
    if (!set) senders.set(from, (set = new Set()));
    if (!set.has(to)) {
      set.add(to);
      this.sizes.set(domain, (this.sizes.get(domain) ?? 0) + 1);
    }
  }

  /** The unavailable presences to send because `domain`'s component went away; forgets them. */
  disconnected(domain: string): ReturnType<typeof xml>[] {
    const senders = this.seen.get(domain);
    this.seen.delete(domain);
    this.sizes.delete(domain);
    if (!senders) return [];
    const out = [];
    for (const [from, recipients] of senders)
      for (const to of recipients)
        out.push(xml('presence', { xmlns: NS.client, type: 'unavailable', from, to }));
    return out;
  }
}
