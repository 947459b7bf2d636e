import { z } from 'zod';
import { parseElement } from '@natter/xml';
import { tryParseJid, type Jid } from '@natter/jid';
import { NS, delayElement } from '@natter/protocol';
import { defineModule, type Session } from '../../core/module-api.js';
import { OfflineStore, offlineMigrations } from './offline-store.js';
import { shouldStore } from './xep-0160-policy.js';
import type { BlockingApi } from '../blocking/api.js';

/** What the module offers other modules and admin tooling: `ctx.use<OfflineApi>('offline')`. */
export interface OfflineApi {
  /** Messages waiting for an account (bare JID). */
  count(owner: Jid | string): Promise<number>;
}

/**
 * Offline messages (XEP-0160) with delayed-delivery stamps (XEP-0203): chat and normal messages
 * for an account with no available resource are stored as XML text, then delivered in order on
 * the account's next initial presence, each with `<delay from='domain' stamp='…'/>`, and deleted
 * once handed to the session. A full inbox answers the sender `service-unavailable`.
 */
export default defineModule({
  name: 'offline',
  description: 'Stores messages for offline users and delivers them at their next login',
  specs: ['XEP-0160', 'XEP-0203', 'XEP-0334'],
  enabledByDefault: true,
  options: z
    .object({
      /** Stored messages per account; beyond it the sender gets service-unavailable. */
      quota: z.number().int().min(1).default(1000),
    })
    .strict()
    .prefault({}),
  migrations: offlineMigrations,
  setup(ctx) {
    const store = new OfflineStore(ctx.db);
    const { quota } = ctx.options;
    /** Per-account delivery in progress: a second resource coming online waits for the first. */
    const delivering = new Map<string, Promise<void>>();

    ctx.feature('host', NS.msgoffline);

    /**
     * Writes for one account, one after the other in the order they were asked for: with a pool of
     * database connections (PostgreSQL) concurrent inserts could otherwise commit out of order,
     * and two could both pass the quota check.
     */
    const writes = new Map<string, Promise<unknown>>();
    const inOrder = <T>(owner: string, fn: () => Promise<T>): Promise<T> => {
      const next = (writes.get(owner) ?? Promise.resolve()).then(fn, fn);
      const tail = next.catch(() => undefined);
      writes.set(owner, tail);
      void tail.then(() => {
        if (writes.get(owner) === tail) writes.delete(owner);
      });
      return next;
    };

    ctx.hook('message/offline', async (ev) => {
      if (!shouldStore(ev.stanza)) return false; // the core answers service-unavailable (error, headline…) or drops
      const owner = ev.to.toBareString();
      const stanza = ev.stanza.toString();
      const stored = await inOrder(owner, async () => {
        if ((await store.count(owner)) >= quota) return false;
        await store.add(owner, stanza, Date.now());
        return true;
      });
      if (!stored) ctx.bounce(ev, 'service-unavailable', 'the recipient’s offline message storage is full');
      return true;
    });

    const roomBytes = ctx.config.limits.maxSendBufferBytes / 4;
    const deliver = async (session: Session): Promise<void> => {
      const owner = session.bare.toBareString();
      const rows = await store.list(owner);
      if (rows.length === 0) return;
      const handed: number[] = [];
      const blocking = ctx.use<BlockingApi>('blocking');
      for (const row of rows) {
        if (session.closed || !session.available) break;
        let stanza;
        try {
          stanza = parseElement(row.stanza);
        } catch (err) {
          ctx.log.warn({ err, owner, id: row.id }, 'dropping an unreadable offline message');
          handed.push(row.id);
          continue;
        }
        // XEP-0191 §3.3: nothing from a contact blocked since the message was stored.
        const sender = tryParseJid(stanza.attrs.from ?? '');
        if (blocking && sender && (await blocking.isBlocked(owner, sender))) {
          handed.push(row.id);
          continue;
        }
        stanza.append(delayElement(new Date(row.storedAt), ctx.domain, 'Offline Storage'));
        ctx.deliver(session, stanza);
        handed.push(row.id);
        // A large backlog is sent as the client reads it, not all at once: written in one go it
        // would trip the slow-reader cutoff (limits.maxSendBufferBytes) of a client that reads fine.
        if (session.stream.transport.bufferedBytes > roomBytes) {
          if (handed.length > 0) await store.remove(owner, handed.splice(0));
          if (!(await session.stream.sendRoom(roomBytes / 2))) break;
        }
      }
      if (handed.length > 0) await store.remove(owner, handed);
    };

    ctx.hook('session/available', async ({ session }) => {
      if (session.jid.domain !== ctx.domain || session.priority < 0) return;
      const owner = session.bare.toBareString();
      const previous = delivering.get(owner);
      const run = (previous ?? Promise.resolve()).then(() => deliver(session));
      const tracked = run
        .catch((err: unknown) => ctx.log.error({ err, owner }, 'offline delivery failed'))
        .finally(() => {
          if (delivering.get(owner) === tracked) delivering.delete(owner);
        });
      delivering.set(owner, tracked);
      await tracked;
    });

    ctx.hook('user/deleted', async ({ jid }) => {
      await store.removeAll(jid.toBareString());
    });

    ctx.provide<OfflineApi>('offline', {
      count: (owner) => store.count(typeof owner === 'string' ? owner : owner.toBareString()),
    });
  },
});
