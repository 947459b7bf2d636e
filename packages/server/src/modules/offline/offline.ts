import { z } from 'zod';
import { parseElement } from '@natter/xml';
import { tryParseJid, type Jid } from '@natter/jid';
import { NS, delayElement } from '@natter/protocol';
import { defineModule, isLocal, type Session, type SessionRecord } from '../../core/module-api.js';
import { OfflineStore, offlineMigrations } from './offline-store.js';
import { shouldStore } from './xep-0160-policy.js';
import type { BlockingApi } from '../blocking/api.js';

/**
 * Stored messages taken out of storage at a time for delivery: what this process failing between
 * taking them and writing them to the client could lose, and what a second resource coming online
 * on another node at the same moment may get of the backlog instead of the first.
 */
const CLAIM_BATCH = 100;

/** In a cluster, how long after an account comes online its offline storage is claimed once more. */
const LATE_CLAIM_MS = 2000;

/** What the module offers other modules and admin tooling: `ctx.use<OfflineApi>('offline')`. */
export interface OfflineApi {
  /** Messages waiting for an account (bare JID). */
  count(owner: Jid | string): Promise<number>;
}

/**
 * Offline messages (XEP-0160) with delayed-delivery stamps (XEP-0203): chat and normal messages
 * for an account with no available resource are stored as XML text, then delivered in order on
 * the account's next initial presence, each with `<delay from='domain' stamp='…'/>`, taken out of
 * storage as they are handed to the session (put back when the session ends first). A full inbox
 * answers the sender `service-unavailable`.
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
    /**
     * Per-account delivery in progress on this node: a second resource coming online here waits
     * for the first (and then finds nothing left). Across nodes the claim in storage decides.
     */
    const delivering = new Map<string, Promise<void>>();
    /** Accounts whose running delivery must claim once more before it ends (a write finished meanwhile). */
    const recheck = new Set<string>();

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
      let stored: boolean;
      try {
        stored = await inOrder(owner, async () => {
          if ((await store.count(owner)) >= quota) return false;
          await store.add(owner, stanza, Date.now());
          return true;
        });
      } catch (err) {
        // Storage failed (a broken connection, a full disk): the sender is told, so that the
        // message is not lost silently; it may send again.
        ctx.log.error({ err, to: owner }, 'an offline message could not be stored');
        ctx.bounce(ev, 'internal-server-error', 'the message could not be stored for the offline recipient');
        return true;
      }
      if (!stored) ctx.bounce(ev, 'service-unavailable', 'the recipient’s offline message storage is full');
      // The account may have come online while the row was being written, after its delivery
      // claimed what was there: hand the message over now rather than at its next login.
      else if (onlineRecipient(owner)) handOverOnce(owner);
      return true;
    });

    /** The account's available resource of highest non-negative priority, anywhere in the cluster. */
    const onlineRecipient = (owner: string) => {
      let best: SessionRecord | undefined;
      for (const r of ctx.sessions.available(owner))
        if (r.priority >= 0 && (!best || r.priority > best.priority)) best = r;
      return best;
    };

    /** `handOver`, unless a delivery for the account runs on this node (it will take the rows). */
    const handOverOnce = (owner: string): void => {
      if (delivering.has(owner)) {
        // It may have claimed already: it looks again before it ends.
        recheck.add(owner);
        return;
      }
      const run: Promise<void> = handOver(owner).finally(() => {
        if (delivering.get(owner) === run) delivering.delete(owner);
      });
      delivering.set(owner, run);
    };

    /**
     * Takes what is stored for an account that is online and delivers it to its session there:
     * a session of this node as at its login (paced, blocked contacts left out); one of another
     * node through the cluster.
     */
    const handOver = async (owner: string): Promise<void> => {
      const first = onlineRecipient(owner);
      if (first && isLocal(first)) return deliver(first);
      try {
        for (;;) {
          const to = onlineRecipient(owner);
          if (!to) return;
          const rows = await store.claim(owner, CLAIM_BATCH);
          for (const row of rows) {
            let stanza;
            try {
              stanza = parseElement(row.stanza);
            } catch {
              continue;
            }
            stanza.append(delayElement(new Date(row.storedAt), ctx.domain, 'Offline Storage'));
            ctx.deliver(to, stanza);
          }
          if (rows.length < CLAIM_BATCH && !recheck.delete(owner)) return;
        }
      } catch (err) {
        ctx.log.error(
          { err, owner },
          'offline messages for an account that came online could not be handed over',
        );
      }
    };

    const roomBytes = ctx.config.limits.maxSendBufferBytes / 4;
    const deliver = async (session: Session): Promise<void> => {
      const owner = session.bare.toBareString();
      const blocking = ctx.use<BlockingApi>('blocking');
      while (!session.closed && session.available) {
        // Taking rows deletes them (one statement): a resource of the account coming online on
        // another node at the same time takes other rows, never these (docs/decisions/0009).
        const rows = await store.claim(owner, CLAIM_BATCH);
        if (rows.length === 0) return;
        /** Rows before it are handed over (or dropped); the others go back to storage. */
        let next = 0;
        let open = true;
        try {
          while (next < rows.length && !session.closed && session.available) {
            const row = rows[next]!;
            let stanza;
            try {
              stanza = parseElement(row.stanza);
            } catch (err) {
              ctx.log.warn({ err, owner, id: row.id }, 'dropping an unreadable offline message');
              next++;
              continue;
            }
            // XEP-0191 §3.3: nothing from a contact blocked since the message was stored.
            const sender = tryParseJid(stanza.attrs.from ?? '');
            if (blocking && sender && (await blocking.isBlocked(owner, sender))) {
              next++;
              continue;
            }
            stanza.append(delayElement(new Date(row.storedAt), ctx.domain, 'Offline Storage'));
            ctx.deliver(session, stanza);
            next++;
            // A large backlog is sent as the client reads it, not all at once: written in one go it
            // would trip the slow-reader cutoff (limits.maxSendBufferBytes) of a client that reads fine.
            // So is a backlog the client has not yet acknowledged (XEP-0198 bounds what it may owe).
            if (
              (session.stream.transport.bufferedBytes > roomBytes || session.stream.pipeline.busy) &&
              !(await session.stream.sendRoom(roomBytes / 2))
            ) {
              open = false; // the stream is closing
              break;
            }
          }
        } finally {
          // Taken but not handed over (the session ended or went unavailable, or a check failed):
          // back to storage for the next initial presence, nothing is lost.
          if (next < rows.length)
            await store
              .restore(owner, rows.slice(next))
              .catch((err: unknown) =>
                ctx.log.error(
                  { err, owner, lost: rows.length - next },
                  'could not put back offline messages taken for delivery',
                ),
              );
        }
        if (!open || next < rows.length) return;
        if (rows.length < CLAIM_BATCH) {
          // Messages this node is still writing for the account (they arrived just before it came
          // online) are claimed once written, as are those written while this batch went out.
          const pending = writes.get(owner);
          if (pending) await pending;
          else if (!recheck.delete(owner)) return;
        }
      }
    };

    ctx.hook('session/available', ({ session }) => {
      if (session.jid.domain !== ctx.domain || session.priority < 0) return;
      const owner = session.bare.toBareString();
      const previous = delivering.get(owner);
      const run = (previous ?? Promise.resolve()).then(() => deliver(session));
      const tracked = run
        .catch((err: unknown) => ctx.log.error({ err, owner }, 'offline delivery failed'))
        .finally(() => {
          if (delivering.get(owner) === tracked) delivering.delete(owner);
          // In a cluster another node may store a message for the account until it learns that
          // the account is online (the record travels while this claims): one more claim later.
          if (ctx.cluster.nodeId === 'local') return;
          const timer = setTimeout(() => {
            if (!session.closed && session.available) handOverOnce(owner);
          }, LATE_CLAIM_MS);
          timer.unref();
        });
      delivering.set(owner, tracked);
      // Not awaited: the backlog goes out at the pace of the client's acknowledgements, which
      // this session's next elements carry; waiting here would hold them back.
    });

    // Deliveries in flight put back what they took before storage closes.
    ctx.onStop(async () => {
      await Promise.all(delivering.values());
    });

    ctx.hook('user/deleted', async ({ jid }) => {
      await store.removeAll(jid.toBareString());
    });

    ctx.provide<OfflineApi>('offline', {
      count: (owner) => store.count(typeof owner === 'string' ? owner : owner.toBareString()),
    });
  },
});
