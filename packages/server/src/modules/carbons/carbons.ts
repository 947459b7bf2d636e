import { z } from 'zod';
import { Element, xml } from '@natter/xml';
import { NS, StanzaError } from '@natter/protocol';
import type { Jid } from '@natter/jid';
import { defineModule, type SessionRecord, type RouteEvent } from '../../core/module-api.js';
import { isEligible, type CarbonDirection } from './eligibility.js';
import type { CarbonsApi } from './api.js';

/**
 * What another module (MAM) may offer carbons: the id under which the sender's own archive stored
 * an outgoing message, so sent copies carry it (XEP-0313 §2.4: "SHOULD include the element as a
 * child of the forwarded message when using XEP-0280").
 */
export interface OutgoingArchiveIds {
  outgoingStanzaId(stanza: Element): { by: string; id: string } | undefined;
}

/** A shallow copy of a message safe to nest in `<forwarded/>`: explicit jabber:client namespace. */
function forwardable(message: Element): Element {
  const copy = new Element(
    message.name,
    message.xmlns === '' ? NS.client : message.xmlns,
    { ...message.attrs },
    [...message.children],
  );
  copy.inheritsNs = false;
  return copy;
}

function wrap(kind: CarbonDirection, account: Jid, target: SessionRecord, original: Element): Element {
  const forwarded = new Element('forwarded', NS.forward);
  forwarded.inheritsNs = false;
  forwarded.children.push(original);
  const carbon = new Element(kind, NS.carbons);
  carbon.inheritsNs = false;
  carbon.children.push(forwarded);
  return xml(
    'message',
    { xmlns: NS.client, from: account.toBareString(), to: target.jid.toString(), type: original.attrs.type },
    carbon,
  );
}

/**
 * Message Carbons (XEP-0280 v1.0): resources that enabled carbons receive a copy of every
 * eligible message their account sends from another resource (`<sent/>`) or receives on another
 * resource (`<received/>`).
 */
export default defineModule({
  name: 'carbons',
  description: 'Message Carbons: keeps every client of an account in both sides of its conversations',
  specs: ['XEP-0280', 'XEP-0297', 'XEP-0334'],
  enabledByDefault: true,
  options: z
    .object({
      /**
       * Remove `<private xmlns='urn:xmpp:carbons:2'/>` from messages before delivering them to a
       * local recipient. XEP-0280 up to 0.13 asked receiving servers to do so (SHOULD); 1.0 dropped
       * the requirement, so the element is kept by default.
       */
      stripPrivate: z.boolean().default(false),
    })
    .strict()
    .prefault({}),
  setup(ctx) {
    /** Carbons enabled (§4): a flag on the session's record, which every node sees. */
    const ENABLED = 'carbons:enabled';
    /** Delivered messages and the sessions that got a `<received/>` copy of them. */
    const copies = new WeakMap<Element, readonly SessionRecord[]>();
    ctx.provide<CarbonsApi>('carbons', { copiedTo: (message) => copies.get(message) ?? [] });

    // §3: the feature is announced by the user's server.
    ctx.feature('host', NS.carbons);

    const toggle = (on: boolean) => (req: { from: Jid; to: Jid; origin: SessionRecord | undefined }) => {
      // §4.1/§5.1: only a client of this server may enable or disable its own carbons.
      if (!req.origin || !req.from.bare.equals(req.to)) throw new StanzaError('not-allowed');
      ctx.sessions.setFlag(req.origin, ENABLED, on);
    };
    // XEP-0386 §2.3 (Bind2 inline): `<enable/>` in `<bind/>` enables carbons on the new session.
    ctx.bind2Feature({
      var: NS.carbons,
      bound: ({ session, element }) => {
        if (element.name === 'enable') ctx.sessions.setFlag(session, ENABLED, true);
        return undefined;
      },
    });
    ctx.iq('account', 'set', NS.carbons, 'enable', toggle(true), { feature: false });
    ctx.iq('account', 'set', NS.carbons, 'disable', toggle(false), { feature: false });

    /** Carbons-enabled available resources of `account`, other than the excluded ones. */
    const targets = (account: Jid, exclude: (s: SessionRecord) => boolean): SessionRecord[] => {
      const out: SessionRecord[] = [];
      for (const s of ctx.sessions.ofAccount(account)) {
        if (s.has(ENABLED) && s.available && !s.closed && !exclude(s)) out.push(s);
      }
      return out;
    };

    // §8 Sending Messages: copies to the sender's other carbons-enabled resources (not consumed).
    ctx.hook(
      'stanza/out',
      (ev: RouteEvent) => {
        const { stanza, origin } = ev;
        // A privileged component (XEP-0356) sending in the user's name has no origin session:
        // every carbons-enabled resource gets the copy (how gateways reflect messages the user
        // sent from the legacy network).
        if (stanza.name !== 'message' || (!origin && !ev.onBehalfOf)) return;
        // A message to the account itself reaches its resources as a received message (below).
        if (ev.to.local === ev.from.local && ev.to.domain === ev.from.domain) return;
        const list = targets(ev.from, (s) => s === origin);
        if (list.length === 0 || !isEligible(stanza, 'sent')) return;
        const original = forwardable(stanza);
        const archived = ctx.use<OutgoingArchiveIds>('mam')?.outgoingStanzaId(stanza);
        if (archived)
          original.children.push(xml('stanza-id', { xmlns: NS.sid, by: archived.by, id: archived.id }));
        for (const s of list) ctx.deliver(s, wrap('sent', ev.from, s, original));
      },
      50,
    );

    // §7 Receiving Messages: copies to the carbons-enabled resources that did not get the original.
    ctx.hook('message/delivered', (ev) => {
      if (ev.resent) return; // the carbons went out when it was first delivered
      const exclude = (s: SessionRecord) => s === ev.origin || ev.sessions.includes(s);
      const list = targets(ev.to, exclude);
      if (list.length === 0 || !isEligible(ev.stanza, 'received')) return;
      const original = forwardable(ev.stanza);
      copies.set(ev.stanza, list);
      for (const s of list) ctx.deliver(s, wrap('received', ev.to.bare, s, original));
    });

    if (ctx.options.stripPrivate) {
      const strip = (ev: RouteEvent): void => {
        const { stanza } = ev;
        const i = stanza.children.findIndex(
          (c) => typeof c !== 'string' && c.name === 'private' && c.xmlns === NS.carbons,
        );
        if (i < 0) return;
        const copy = forwardable(stanza);
        copy.children.splice(i, 1);
        ev.stanza = copy; // a copy: the original may be shared with other recipients
      };
      ctx.hook('message/bare', strip, 200);
      ctx.hook('message/full', strip, 200);
    }
  },
});
