import { z } from 'zod';
import { xml } from '@natter/xml';
import { NS, StanzaError } from '@natter/protocol';
import { defineModule, type Session } from '../../core/module-api.js';
import { LastStore, lastMigrations, type LastActivity } from './last-store.js';
import { mayReceivePresence } from './roster-subscription.js';

/**
 * Last Activity (XEP-0012): a query to an account's bare JID answers the seconds since its last
 * logout with the status of its last unavailable presence (0 while a resource is available),
 * only to the account itself and to contacts subscribed to its presence (RFC 6121 subscription
 * from/both, read from the roster module at request time; without the roster module, only the
 * account itself may ask). A query to the server answers its uptime. Logouts are persisted.
 */
export default defineModule({
  name: 'last',
  description: "Answers last activity queries (XEP-0012): users' last logout, server uptime",
  specs: ['XEP-0012'],
  enabledByDefault: true,
  options: z
    .object({
      /** How often recorded logouts are written to storage (they are also written at stop). */
      flushMs: z.number().int().min(10).default(1000),
    })
    .strict()
    .prefault({}),
  migrations: lastMigrations,
  setup(ctx) {
    const store = new LastStore(ctx.db);
    const { flushMs } = ctx.options;
    const started = Date.now();
    /** Status text of each session's last unavailable presence. */
    const statuses = new WeakMap<Session, string>();

    ctx.iq('host', 'get', NS.last, 'query', () =>
      xml('query', { xmlns: NS.last, seconds: Math.floor((Date.now() - started) / 1000) }),
    );

    ctx.iq('account', 'get', NS.last, 'query', async (req) => {
      const owner = req.to;
      if (!req.from.bare.equals(owner)) {
        const allowed = await mayReceivePresence(ctx, owner, req.from);
        if (allowed !== true) {
          throw new StanzaError('forbidden', { text: 'you are not subscribed to this user’s presence' });
        }
      }
      if (ctx.sessions.available(owner).length > 0) return xml('query', { xmlns: NS.last, seconds: 0 });
      const last = unsaved.get(owner.toBareString()) ?? (await store.get(owner.toBareString()));
      if (!last) throw new StanzaError('item-not-found', { text: 'no recorded activity' });
      const seconds = Math.max(0, Math.floor((Date.now() - last.at) / 1000));
      return xml('query', { xmlns: NS.last, seconds }, last.status || undefined);
    });

    // The status text of an unavailable broadcast (no per-stanza cost beyond a name check).
    ctx.hook('stanza/out', (ev) => {
      const { stanza } = ev;
      if (
        stanza.name === 'presence' &&
        stanza.attrs.type === 'unavailable' &&
        stanza.attrs.to === undefined &&
        ev.origin
      ) {
        statuses.set(ev.origin, stanza.getChildText('status') ?? '');
      }
      return false;
    });

    // Logouts are written in batches (a server stopping with many sessions does not wait for one
    // write per session); queries read the batch not yet written first.
    const unsaved = new Map<string, LastActivity>();
    let flushing: Promise<void> | undefined;
    const flush = (): Promise<void> => {
      flushing ??= (async () => {
        const batch = [...unsaved];
        if (batch.length === 0) return;
        try {
          await store.setMany(batch);
          for (const [owner, last] of batch) if (unsaved.get(owner) === last) unsaved.delete(owner);
        } catch (err) {
          ctx.log.error({ err, count: batch.length }, 'could not save last activity');
        }
      })().finally(() => {
        flushing = undefined;
      });
      return flushing;
    };
    ctx.every(flushMs, flush);
    ctx.onStop(async () => {
      await flushing;
      await flush();
    });

    const record = (session: Session) => {
      if (session.jid.domain !== ctx.domain) return;
      if (ctx.sessions.available(session.bare).some((s) => s !== session)) return; // still online elsewhere
      unsaved.set(session.bare.toBareString(), { at: Date.now(), status: statuses.get(session) ?? '' });
    };
    ctx.hook('session/unavailable', ({ session }) => record(session));
    ctx.hook('session/closed', ({ session }) => record(session));

    ctx.hook('user/deleted', async ({ jid }) => {
      unsaved.delete(jid.toBareString());
      await store.remove(jid.toBareString());
    });
  },
});
