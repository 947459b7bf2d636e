import { Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import type { ModuleContext, RouteEvent, SessionRecord } from '../../core/module-api.js';

/** Most contacts' presences remembered for roster-presence components (oldest forgotten first). */
const MAX_REMEMBERED = 50_000;

function readdress(p: Element, from: string, to: string): Element {
  return new Element('presence', p.xmlns || NS.client, { ...p.attrs, from, to }, p.children.slice());
}

function domainOf(jid: string): string {
  const slash = jid.indexOf('/');
  const bare = slash < 0 ? jid : jid.slice(0, slash);
  return bare.slice(bare.indexOf('@') + 1);
}

/** What makes two presences of one address the same news (XEP-0356 §8: send only once). */
function signature(p: Element): string {
  if (p.attrs.type === 'unavailable') return 'unavailable';
  const text = (name: string) => p.getChild(name)?.text() ?? '';
  return `available|${text('show')}|${text('status')}|${text('priority')}`;
}

/**
 * XEP-0356 §7 (presence permission): components with `managed_entity` get the available and
 * unavailable presences of this host's users, as directed presence from the user's full JID;
 * components with `roster` also get those of the users' contacts. Each address's presence is
 * sent once per change (§8), and a component that connects gets the current ones (§8).
 */
export class PresenceRelay {
  /** Last presence seen per full JID (users of this host and, for roster presence, their contacts). */
  private readonly last = new Map<string, Element>();
  /** Per component: what it was last sent, per full JID. */
  private readonly sent = new Map<string, Map<string, string>>();

  constructor(
    private readonly ctx: ModuleContext<unknown>,
    /** Connected components with presence permission, and whether they get contacts' presences. */
    private readonly targets: () => { domain: string; roster: boolean }[],
  ) {}

  /** A user's own broadcast presence (no 'to'): available or unavailable. */
  fromUser(session: SessionRecord, stanza: Element): void {
    const type = stanza.attrs.type;
    if (type !== undefined && type !== 'unavailable') return;
    this.relay(session.jid.toString(), stanza, false);
  }

  /** A session ended without unavailable presence. */
  sessionClosed(session: SessionRecord): void {
    const from = session.jid.toString();
    if (this.last.get(from)?.attrs.type === 'unavailable' || !this.last.has(from)) return;
    const p = new Element('presence', NS.client, { type: 'unavailable', from });
    this.relay(from, p, false);
  }

  /** Presence a user of this host receives from someone else (roster presence). */
  toUser(ev: RouteEvent): void {
    const type = ev.stanza.attrs.type;
    if (type !== undefined && type !== 'unavailable') return;
    if (ev.from.local === '' && ev.from.resource === '') return;
    this.relay(ev.from.toString(), ev.stanza, true);
  }

  /** An unavailable presence of an address whose available presence was relayed before. */
  toUserIfRelayed(ev: RouteEvent): void {
    const from = ev.from.toString();
    const last = this.last.get(from);
    if (last && last.attrs.type !== 'unavailable') this.toUser(ev);
  }

  /** §8: a component that connects gets the presences it would have had. */
  connected(domain: string, roster: boolean): void {
    const seen = new Map<string, string>();
    this.sent.set(domain, seen);
    for (const [from, p] of this.last) {
      if (p.attrs.type === 'unavailable') continue;
      if (!roster && !this.isUser(from)) continue;
      seen.set(from, signature(p));
      void this.ctx.send(readdress(p, from, domain));
    }
  }

  disconnected(domain: string): void {
    this.sent.delete(domain);
  }

  private isUser(from: string): boolean {
    return from.includes('@') && domainOf(from) === this.ctx.domain;
  }

  private relay(from: string, stanza: Element, contact: boolean): void {
    this.last.delete(from);
    this.last.set(from, stanza);
    if (this.last.size > MAX_REMEMBERED) this.last.delete(this.last.keys().next().value!);
    const sig = signature(stanza);
    for (const t of this.targets()) {
      if (contact && !t.roster && !this.isUser(from)) continue;
      if (domainOf(from) === t.domain) continue; // its own addresses
      let seen = this.sent.get(t.domain);
      if (!seen) this.sent.set(t.domain, (seen = new Map()));
      if (seen.get(from) === sig) continue;
      seen.delete(from);
      seen.set(from, sig);
      if (seen.size > MAX_REMEMBERED) seen.delete(seen.keys().next().value!);
      void this.ctx.send(readdress(stanza, from, t.domain));
    }
  }
}
