import { z } from 'zod';
import { Element, parseElement, xml } from '@natter/xml';
import { NS, StanzaError, parseForm, formType } from '@natter/protocol';
import { tryParseJid } from '@natter/jid';
import { defineModule } from '../../core/module-api.js';
import { PushStore, pushMigrations, type PushRegistration } from './push-store.js';

export const NS_PUSH = 'urn:xmpp:push:0';
export const PUSH_SUMMARY = 'urn:xmpp:push:summary';
export const PUBLISH_OPTIONS = 'http://jabber.org/protocol/pubsub#publish-options';

/** App server errors after which the registration is dropped (XEP-0357 §8: the node is gone or refused). */
const FATAL = new Set(['item-not-found', 'forbidden', 'not-authorized', 'registration-required']);

/** Whether a message is worth waking a device for: a body, or an encrypted payload. */
function pushWorthy(stanza: Element): boolean {
  if (stanza.name !== 'message') return false;
  const type = stanza.attrs.type ?? 'normal';
  if (type === 'error' || type === 'headline') return false;
  if (stanza.getChild('body') !== undefined) return true;
  return (
    stanza.getChild('encrypted', 'eu.siacs.conversations.axolotl') !== undefined ||
    stanza.getChild('encrypted', 'urn:xmpp:omemo:2') !== undefined ||
    stanza.getChild('openpgp', 'urn:xmpp:openpgp:0') !== undefined
  );
}

/** What the account missed since it was last online. */
interface Summary {
  count: number;
  sender: string;
  body: string | undefined;
}

/** Delivery state of one registration (in memory). */
interface Slot {
  lastSent: number;
  timer: NodeJS.Timeout | undefined;
  inFlight: boolean;
  /** A notification is due once the one in flight or the rate limit allows. */
  due: boolean;
}

/**
 * Push Notifications (XEP-0357), the user's server side: clients register app servers
 * (`<enable/>`), and messages the account would miss — stored offline, or queued for a hibernated
 * stream-management session — trigger a `urn:xmpp:push:summary` publish to the app server, with the
 * client's publish-options (its secret). Bodies are left out unless `includeBody` is set.
 */
export default defineModule({
  name: 'push',
  description: 'Push notifications (XEP-0357): tells app servers about messages users miss',
  specs: ['XEP-0357'],
  enabledByDefault: true,
  options: z
    .object({
      /** App server registrations per account; the oldest is dropped beyond it. */
      maxRegistrations: z.number().int().min(1).default(10),
      /** Include the last message's body in notifications (off: privacy). */
      includeBody: z.boolean().default(false),
      /** At most one notification per registration in this window; counts coalesce meanwhile. */
      minIntervalMs: z.number().int().min(0).default(5000),
      /** How long an app server has to answer a publish. */
      timeoutMs: z.number().int().min(10).default(10_000),
      /** Extra attempts after a `wait`-type error. */
      retries: z.number().int().min(0).default(2),
      /** Delay before the first retry (doubled each time). */
      retryDelayMs: z.number().int().min(1).default(1000),
    })
    .strict()
    .prefault({}),
  migrations: pushMigrations,
  setup(ctx) {
    const store = new PushStore(ctx.db);
    const opts = ctx.options;
    const summaries = new Map<string, Summary>();
    const slots = new Map<string, Slot>();
    const keyOf = (owner: string, jid: string, node: string) => `${owner}\u0000${jid}\u0000${node}`;
    let stopped = false;

    const clearSlots = (owner: string, jid?: string, node?: string) => {
      const prefix = jid === undefined ? `${owner}\u0000` : `${owner}\u0000${jid}\u0000`;
      for (const [k, slot] of slots) {
        if (!k.startsWith(prefix)) continue;
        if (node !== undefined && k !== keyOf(owner, jid!, node)) continue;
        clearTimeout(slot.timer);
        slots.delete(k);
      }
    };

    ctx.feature('account', NS_PUSH);

    const own = (req: { from: { bare: { equals(j: unknown): boolean } }; to: unknown; origin: unknown }) => {
      // §5/§6: only the account itself, from one of its sessions.
      if (!req.origin || !req.from.bare.equals(req.to))
        throw new StanzaError('forbidden', {
          text: 'only the account itself may manage its push registrations',
        });
    };

    ctx.iq(
      'account',
      'set',
      NS_PUSH,
      'enable',
      async (req) => {
        own(req);
        const jid = tryParseJid(req.payload.attrs.jid ?? '');
        const node = req.payload.attrs.node ?? '';
        if (!jid || node === '' || node.length > 1023 || jid.toString().length > 1023)
          throw new StanzaError('bad-request', { text: 'enable needs a valid jid and a node' });
        let form = '';
        const x = req.payload.getChild('x', NS.dataForms);
        if (x) {
          const parsed = parseForm(x);
          if (parsed.type !== 'submit' || formType(parsed) !== PUBLISH_OPTIONS)
            throw new StanzaError('bad-request', { text: 'publish-options must be a submitted form' });
          form = x.toString();
          if (form.length > 16_384)
            throw new StanzaError('not-acceptable', { text: 'publish-options too large' });
        }
        const owner = req.to.toBareString();
        const dropped = await store.put(
          { owner, jid: jid.toString(), node, form, createdAt: Date.now() },
          opts.maxRegistrations,
        );
        for (const d of dropped) clearSlots(owner, d.jid, d.node);
      },
      { feature: false },
    );

    ctx.iq(
      'account',
      'set',
      NS_PUSH,
      'disable',
      async (req) => {
        own(req);
        const jid = tryParseJid(req.payload.attrs.jid ?? '');
        if (!jid) throw new StanzaError('bad-request', { text: 'disable needs a jid' });
        const node = req.payload.attrs.node || undefined;
        const owner = req.to.toBareString();
        await store.remove(owner, jid.toString(), node);
        clearSlots(owner, jid.toString(), node);
      },
      { feature: false },
    );

    const notification = (reg: PushRegistration, s: Summary): Element => {
      const fields = [
        xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', null, PUSH_SUMMARY)),
        xml('field', { var: 'message-count' }, xml('value', null, String(s.count))),
        xml('field', { var: 'last-message-sender' }, xml('value', null, s.sender)),
      ];
      if (opts.includeBody && s.body !== undefined)
        fields.push(xml('field', { var: 'last-message-body' }, xml('value', null, s.body)));
      let publishOptions: Element | undefined;
      if (reg.form !== '') {
        try {
          publishOptions = xml('publish-options', null, parseElement(reg.form));
        } catch (err) {
          ctx.log.warn({ err, owner: reg.owner }, 'unreadable stored publish-options');
        }
      }
      return xml(
        'iq',
        { type: 'set', from: reg.owner, to: reg.jid },
        xml(
          'pubsub',
          { xmlns: NS.pubsub },
          xml(
            'publish',
            { node: reg.node },
            xml(
              'item',
              null,
              xml(
                'notification',
                { xmlns: NS_PUSH },
                xml('x', { xmlns: NS.dataForms, type: 'submit' }, fields),
              ),
            ),
          ),
          publishOptions,
        ),
      );
    };

    const sleep = (ms: number) =>
      new Promise<void>((r) => {
        const t = setTimeout(r, ms);
        t.unref();
      });

    /** Publishes once (with bounded retries on `wait` errors); drops the registration on a fatal error. */
    const publish = async (reg: PushRegistration): Promise<void> => {
      for (let attempt = 0; ; attempt++) {
        const s = summaries.get(reg.owner);
        if (!s || stopped) return;
        try {
          await ctx.sendIq(notification(reg, s), opts.timeoutMs);
          return;
        } catch (err) {
          if (err instanceof StanzaError) {
            if (FATAL.has(err.condition)) {
              ctx.log.info(
                { owner: reg.owner, jid: reg.jid, node: reg.node, condition: err.condition },
                'app server refused a push notification: disabling the registration',
              );
              clearSlots(reg.owner, reg.jid, reg.node);
              await store.remove(reg.owner, reg.jid, reg.node);
              return;
            }
            if (err.type === 'wait' && attempt < opts.retries) {
              await sleep(opts.retryDelayMs * 2 ** attempt);
              continue;
            }
          }
          ctx.log.warn({ err, owner: reg.owner, jid: reg.jid, node: reg.node }, 'push notification failed');
          return;
        }
      }
    };

    /** Sends now or, within the rate limit, once the window ends (the count coalesces meanwhile). */
    const schedule = (reg: PushRegistration): void => {
      const k = keyOf(reg.owner, reg.jid, reg.node);
      let slot = slots.get(k);
      if (!slot) {
        slot = { lastSent: 0, timer: undefined, inFlight: false, due: false };
        slots.set(k, slot);
      }
      slot.due = true;
      if (slot.inFlight || slot.timer) return;
      const wait = slot.lastSent + opts.minIntervalMs - Date.now();
      const s = slot;
      const fire = () => {
        s.timer = undefined;
        if (slots.get(k) !== s || !s.due || stopped) return;
        s.due = false;
        s.inFlight = true;
        s.lastSent = Date.now();
        void publish(reg)
          .catch((err: unknown) => ctx.log.error({ err, owner: reg.owner }, 'push notification failed'))
          .finally(() => {
            s.inFlight = false;
            if (s.due && slots.get(k) === s) schedule(reg);
          });
      };
      if (wait <= 0) fire();
      else {
        s.timer = setTimeout(fire, wait);
        s.timer.unref();
      }
    };

    /** A message the account will miss: count it and notify every registration (never awaited by delivery). */
    const missed = async (owner: string, stanza: Element): Promise<void> => {
      const regs = await store.list(owner);
      if (regs.length === 0) return;
      const s = summaries.get(owner) ?? { count: 0, sender: '', body: undefined };
      s.count += 1;
      s.sender = stanza.attrs.from ?? '';
      s.body = stanza.getChildText('body') ?? undefined;
      summaries.set(owner, s);
      for (const reg of regs) schedule(reg);
    };
    const trigger = (owner: string, stanza: Element) => {
      if (stopped || !pushWorthy(stanza)) return;
      void missed(owner, stanza).catch((err: unknown) =>
        ctx.log.error({ err, owner }, 'could not prepare a push notification'),
      );
    };

    // (1) No available session: the message goes to offline storage (runs before it, consumes nothing).
    ctx.hook(
      'message/offline',
      (ev) => {
        if (ev.to.domain === ctx.domain) trigger(ev.to.toBareString(), ev.stanza);
        return false;
      },
      100,
    );

    // (2) Queued for a hibernated stream-management session (XEP-0198): its device is asleep.
    ctx.hook('session/held', ({ session, stanza }) => {
      if (session.jid.domain === ctx.domain) trigger(session.bare.toBareString(), stanza);
    });

    // Back online: the count starts again.
    ctx.hook('session/available', ({ session }) => {
      summaries.delete(session.bare.toBareString());
    });

    ctx.hook('user/deleted', async ({ jid }) => {
      const owner = jid.toBareString();
      summaries.delete(owner);
      clearSlots(owner);
      await store.removeAll(owner);
    });

    ctx.onStop(() => {
      stopped = true;
      for (const slot of slots.values()) clearTimeout(slot.timer);
      slots.clear();
    });
  },
});
