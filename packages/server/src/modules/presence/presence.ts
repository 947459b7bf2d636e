import { z } from 'zod';
import { Element, xml } from '@natter/xml';
import type { Jid } from '@natter/jid';
import { NS, StanzaError } from '@natter/protocol';
import { defineModule, type RouteEvent, type Session } from '../../core/module-api.js';
import type { RosterApi } from '../roster/api.js';
import {
  SUBSCRIPTION_TYPES,
  inboundRule,
  outboundRule,
  type Outcome,
  type SubscriptionType,
} from './subscription-rules.js';
import { ComponentPresence } from './component-presence.js';

const NS_PRE_APPROVAL = 'urn:xmpp:features:pre-approval';

/** What the presence module remembers of a session. */
interface SessionPresence {
  /** Sent initial presence and has not gone unavailable (RFC 6121 §4.2). */
  available: boolean;
  /**
   * Entities that received directed presence from this session (RFC 6121 §4.6); made by the first
   * one, since most sessions send none and idle sessions are counted in KiB.
   */
  directed: Set<string> | undefined;
}

/** A copy of a presence with other addresses; children are shared, not deep-copied (nobody mutates them downstream). */
function readdress(p: Element, from: string, to: string): Element {
  return new Element('presence', p.xmlns || NS.client, { ...p.attrs, from, to }, p.children.slice());
}

/**
 * Presence (RFC 6121 §3–§4): the subscription state machine of Appendix A on both sides for
 * local users, pre-approval (§3.4), initial presence with probes, broadcasts to subscribers,
 * directed presence, and unavailable when a session ends. Every presence to another account
 * goes through the router, so blocking and CSI see it.
 */
export default defineModule({
  name: 'presence',
  description: 'Presence subscriptions and broadcast',
  specs: ['RFC 6121 §3', 'RFC 6121 §4'],
  enabledByDefault: true,
  dependencies: ['roster'],
  options: z
    .object({
      /** Subscription pre-approval (RFC 6121 §3.4). */
      preApproval: z.boolean().default(true),
    })
    .strict()
    .prefault({}),
  setup(ctx) {
    const roster = ctx.use<RosterApi>('roster');
    if (!roster) throw new Error('the presence module needs the roster module');
    const { preApproval } = ctx.options;
    const states = new WeakMap<Session, SessionPresence>();
    const stateOf = (s: Session): SessionPresence => {
      let st = states.get(s);
      if (!st) {
        st = { available: false, directed: undefined };
        states.set(s, st);
      }
      return st;
    };

    if (preApproval) {
      ctx.streamFeature((stream) =>
        stream.host === ctx.host ? xml('sub', { xmlns: NS_PRE_APPROVAL }) : null,
      );
    }

    const send = (stanza: Element): void | Promise<void> => ctx.send(stanza);

    /** Presence of every available resource of `owner` to `to` (a new subscriber or a probe). */
    const sendCurrentPresence = async (owner: Jid, to: string): Promise<void> => {
      for (const s of ctx.sessions.available(owner)) {
        const p = s.presence;
        if (p) await send(readdress(p, s.jid.toString(), to));
      }
    };
    const sendUnavailableFrom = async (owner: Jid, to: string): Promise<void> => {
      for (const s of ctx.sessions.available(owner)) {
        await send(xml('presence', { xmlns: NS.client, type: 'unavailable', from: s.jid.toString(), to }));
      }
    };

    // --- outbound subscription stanzas (RFC 6121 §3, A.2) ---------------------------------------
    const outbound = async (ev: RouteEvent, type: SubscriptionType): Promise<boolean> => {
      const user = ev.from.bare;
      const contact = ev.to.bare;
      if (contact.equals(user)) {
        ctx.bounce(ev, 'not-allowed', 'a subscription to your own presence is implicit');
        return true;
      }
      let out: Outcome;
      try {
        out = await roster.transition(user, contact, (s) => outboundRule(type, s, preApproval));
      } catch (err) {
        if (err instanceof StanzaError) {
          ctx.bounce(ev, err.condition, err.text);
          return true;
        }
        throw err;
      }
      const to = contact.toString();
      if (out.forward) {
        // §3.1.2: stamped with the user's bare JID, addressed to the contact's bare JID
        const stamped = new Element(
          'presence',
          NS.client,
          { ...ev.stanza.attrs, from: user.toString(), to },
          ev.stanza.children.slice(),
        );
        await send(stamped);
      }
      if (out.sendPresence) await sendCurrentPresence(user, to);
      if (out.sendUnavailable) await sendUnavailableFrom(user, to);
      return true;
    };

    // --- inbound subscription stanzas for a local user (RFC 6121 §3, A.3) -----------------------
    const inbound = async (ev: RouteEvent, type: SubscriptionType): Promise<boolean> => {
      const user = ev.to.bare;
      const sender = ev.from.bare;
      if (sender.equals(user)) return true;
      if (!(await ctx.accountExists({ ...ev, to: user }))) {
        // RFC 6121 §8.5.1: no such user
        if (type === 'subscribe')
          await send(
            xml('presence', {
              xmlns: NS.client,
              type: 'unsubscribed',
              from: user.toString(),
              to: sender.toString(),
            }),
          );
        return true;
      }
      const stanza =
        ev.stanza.attrs.from === sender.toString()
          ? ev.stanza
          : readdress(ev.stanza, sender.toString(), user.toString());
      const out = await roster.transition(user, sender, (s) => inboundRule(type, s, stanza));
      if (out.forward) for (const s of ctx.sessions.available(user)) ctx.deliver(s, stanza);
      const to = sender.toString();
      if (out.autoReply)
        await send(xml('presence', { xmlns: NS.client, type: 'subscribed', from: user.toString(), to }));
      if (out.sendPresence) await sendCurrentPresence(user, to);
      if (out.sendUnavailable) await sendUnavailableFrom(user, to);
      return true;
    };

    // --- probes (RFC 6121 §4.3): answered from the sessions' last presence -----------------------
    const probe = (ev: RouteEvent): boolean | Promise<boolean> => {
      const user = ev.to.bare;
      const prober = ev.from;
      if (prober.bare.equals(user)) return true;
      const answer = (subscribed: boolean): boolean | Promise<boolean> => {
        const to = prober.toString();
        if (subscribed) {
          const sessions = ctx.sessions.available(user);
          if (sessions.length === 0) return true;
          const sent: Promise<void>[] = [];
          for (const s of sessions) {
            const p = s.presence;
            if (!p) continue;
            const r = send(readdress(p, s.jid.toString(), to));
            if (r instanceof Promise) sent.push(r);
          }
          return sent.length ? Promise.all(sent).then(() => true) : true;
        }
        // §4.3.2: not a subscriber (or no such user): presence is not revealed; unsubscribed heals the prober's roster
        const r = send(
          xml('presence', {
            xmlns: NS.client,
            type: 'unsubscribed',
            from: user.toString(),
            to: prober.bare.toString(),
          }),
        );
        return r instanceof Promise ? r.then(() => true) : true;
      };
      const sub = roster.isSubscriber(user, prober.bare);
      return sub instanceof Promise ? sub.then(answer) : answer(sub);
    };

    // --- broadcasts (RFC 6121 §4.2, §4.4, §4.5) ---------------------------------------------------
    const broadcast = (ev: RouteEvent, session: Session): Promise<false> | false => {
      const type = ev.stanza.attrs.type;
      if (type !== undefined && type !== 'unavailable') return false;
      const st = stateOf(session);
      if (type === 'unavailable' && !st.available && (st.directed?.size ?? 0) === 0) return false;
      return fanOut(session, ev.stanza, st, type === undefined).then(() => false as const);
    };

    /** Sends `stanza` (available or unavailable) to the subscribers and directed-presence recipients. */
    const fanOut = async (
      session: Session,
      stanza: Element,
      st: SessionPresence,
      available: boolean,
    ): Promise<void> => {
      const initial = available && !st.available;
      const from = session.jid.toString();
      const wasAvailable = st.available;
      st.available = available;
      const subscribers = available || wasAvailable ? await roster.subscribers(session.bare) : [];
      let covered: Set<string> | undefined;
      const pending: Promise<void>[] = [];
      for (const c of subscribers) {
        const r = send(readdress(stanza, from, c.toString()));
        if (r instanceof Promise) pending.push(r);
      }
      if (st.directed !== undefined && st.directed.size > 0) {
        covered = new Set(subscribers.map((j) => j.toString()));
        for (const d of st.directed) {
          const bare = d.includes('/') ? d.slice(0, d.indexOf('/')) : d;
          if (covered.has(bare)) continue;
          const r = send(readdress(stanza, from, d));
          if (r instanceof Promise) pending.push(r);
        }
        if (!available) st.directed = undefined;
      }
      if (initial) {
        // §4.2.2: probe the contacts whose presence the user receives
        for (const c of await roster.subscriptions(session.bare)) {
          const r = send(xml('presence', { xmlns: NS.client, type: 'probe', from, to: c.toString() }));
          if (r instanceof Promise) pending.push(r);
        }
        // §4.2.2: the new resource learns the presence of the account's other available resources
        for (const other of ctx.sessions.available(session.bare)) {
          const p = other === session ? null : other.presence;
          if (!p) continue;
          const r = send(readdress(p, other.jid.toString(), from));
          if (r instanceof Promise) pending.push(r);
        }
        // §3.1.3: subscription requests that waited for the user
        for (const p of await roster.pending(session.bare)) ctx.deliver(session, p.stanza);
      }
      if (pending.length) await Promise.all(pending);
    };

    ctx.hook('stanza/out', (ev) => {
      const { stanza } = ev;
      if (stanza.name !== 'presence') return false;
      const type = stanza.attrs.type;
      if (type !== undefined && SUBSCRIPTION_TYPES.has(type)) return outbound(ev, type as SubscriptionType);
      if (stanza.attrs.to !== undefined && (type === undefined || type === 'unavailable') && ev.origin) {
        // §4.6: directed presence to another entity is remembered until unavailable
        if (ev.to.local === ev.from.local && ev.to.domain === ev.from.domain) return false;
        const st = stateOf(ev.origin);
        if (type === undefined) (st.directed ??= new Set()).add(ev.to.toString());
        else st.directed?.delete(ev.to.toString());
      }
      return false;
    });

    // A component (XEP-0114) that goes away cannot send unavailable for its addresses: the server
    // does, to every user of this host that had their available presence.
    const componentPresence = new ComponentPresence((domain) => Object.hasOwn(ctx.config.components, domain));
    ctx.hook('component/disconnected', async ({ domain }) => {
      for (const p of componentPresence.disconnected(domain)) await send(p);
    });

    ctx.hook('presence/bare', (ev) => {
      const { stanza } = ev;
      const type = stanza.attrs.type;
      if (ev.origin && stanza.attrs.to === undefined) return broadcast(ev, ev.origin);
      if (type === undefined || type === 'unavailable') componentPresence.observe(ev);
      if (type === undefined || type === 'unavailable' || type === 'error') return false;
      if (type === 'probe') return probe(ev);
      if (SUBSCRIPTION_TYPES.has(type)) return inbound(ev, type as SubscriptionType);
      return false;
    });

    // Probes and subscription stanzas addressed to a full JID are handled as if sent to the bare JID
    // (the server answers probes on the user's behalf; subscriptions are between accounts).
    ctx.hook('presence/full', (ev) => {
      const type = ev.stanza.attrs.type;
      if (type === undefined || type === 'unavailable') componentPresence.observe(ev);
      if (type === 'probe') return probe({ ...ev, to: ev.to.bare });
      if (type !== undefined && SUBSCRIPTION_TYPES.has(type))
        return inbound({ ...ev, to: ev.to.bare }, type as SubscriptionType);
      return false;
    });

    // A node of the cluster died with its sessions (docs/decisions/0009): nobody sent their
    // unavailable presence, so the oldest live node sends it on their behalf, to their subscribers
    // and their account's other resources. Their directed presences died with the node (rooms
    // remove such occupants themselves, on the same event).
    ctx.hook('session/gone', async ({ record, lost }) => {
      if (!lost || !record.available || record.jid.domain !== ctx.domain || !ctx.cluster.isLeader()) return;
      const from = record.jid.toString();
      const unavailable = xml('presence', { xmlns: NS.client, type: 'unavailable', from });
      const pending: (void | Promise<void>)[] = [];
      for (const c of await roster.subscribers(record.bare))
        pending.push(send(readdress(unavailable, from, c.toString())));
      pending.push(send(readdress(unavailable, from, record.bare.toString())));
      await Promise.all(pending);
    });

    // ...and a node found dead that comes back (cut off, not crashed) still has them: the oldest
    // node tells the same people they are there again, with their last presence.
    ctx.hook('session/returned', async ({ record }) => {
      // Read once: another node's record parses its presence at each read.
      const presence = record.presence;
      if (!record.available || !presence || record.jid.domain !== ctx.domain || !ctx.cluster.isLeader())
        return;
      const from = record.jid.toString();
      const pending: (void | Promise<void>)[] = [];
      for (const c of await roster.subscribers(record.bare))
        pending.push(send(readdress(presence, from, c.toString())));
      pending.push(send(readdress(presence, from, record.bare.toString())));
      await Promise.all(pending);
    });

    // §4.5.2 / §4.6.3: a session that ends (cleanly or not) goes unavailable for everyone who saw it
    ctx.hook('session/closed', async ({ session }) => {
      if (session.jid.domain !== ctx.domain) return;
      const st = states.get(session);
      if (!st || (!st.available && (st.directed?.size ?? 0) === 0)) return;
      const wasAvailable = st.available;
      const unavailable = xml('presence', {
        xmlns: NS.client,
        type: 'unavailable',
        from: session.jid.toString(),
      });
      await fanOut(session, unavailable, st, false);
      if (wasAvailable) await send(readdress(unavailable, session.jid.toString(), session.bare.toString()));
      states.delete(session);
    });
  },
});
