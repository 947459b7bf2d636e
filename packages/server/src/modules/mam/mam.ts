import { z } from 'zod';
import { Element, xml, parseElement } from '@natter/xml';
import type { Jid } from '@natter/jid';
import { NS, StanzaError, delayElement } from '@natter/protocol';
import {
  defineModule,
  type RouteEvent,
  type RouteOutcome,
  type MaybePromise,
} from '../../core/module-api.js';
import { ArchiveStore, type Direction, type EntryRow, type MessageRow } from './archive-store.js';
import { StrangerLimit } from './strangers.js';
import { PrefsStore, decide, parsePrefs, prefsElement, type Prefs } from './prefs.js';
import { finElement, queryForm, runQuery } from './query.js';
import { mamMigrations } from './migrations.js';
import { worthKeeping, type ArchivedMessage, type MamApi } from './api.js';

export type { MamApi } from './api.js';

const EXTENDED = `${NS.mam}#extended`;
/** The archive buffers of every host in this process (flushed together before an acknowledgement). */
const liveStores = new Set<ArchiveStore>();
const DAY_MS = 86_400_000;

/** The part of the roster module's API that `default='roster'` needs (no roster module: nobody is in a roster). */
interface RosterLookup {
  get(owner: Jid, contact: Jid): Promise<unknown>;
}

/** A one-to-one message worth keeping: of type chat or normal, with content worth keeping. */
function archivable(stanza: Element): boolean {
  const type = stanza.attrs.type;
  return (type === undefined || type === 'chat' || type === 'normal') && worthKeeping(stanza);
}

/** XEP-0359 §3.3: stanza-ids claiming to come from `by` that `by` did not add. */
function isForged(c: Element | string, by: string): boolean {
  return typeof c !== 'string' && c.name === 'stanza-id' && c.xmlns === NS.sid && c.attrs.by === by;
}

/** A shallow copy (children shared, never mutated) that can be changed without touching the original. */
function shallowCopy(stanza: Element, children: (Element | string)[]): Element {
  const copy = new Element(
    stanza.name,
    stanza.xmlns === '' ? NS.client : stanza.xmlns,
    { ...stanza.attrs },
    children,
  );
  copy.inheritsNs = false;
  return copy;
}

/**
 * Message Archive Management (XEP-0313, urn:xmpp:mam:2) for one-to-one messages: every eligible
 * message is stored in the sender's and the recipient's archives (as the recipient's server adds
 * a XEP-0359 `<stanza-id/>`), queried by the owner with data-form filters and RSM paging, with
 * per-account preferences (XEP-0441) and bounded retention.
 */
export default defineModule({
  name: 'mam',
  description: 'Message Archive Management: server-side history of one-to-one conversations',
  specs: ['XEP-0313', 'XEP-0441', 'XEP-0059', 'XEP-0297', 'XEP-0359', 'XEP-0334'],
  enabledByDefault: true,
  options: z
    .object({
      /** Archiving for accounts that never set preferences. */
      defaultArchive: z.enum(['always', 'roster', 'never']).default('always'),
      /** Messages older than this are deleted (0 keeps them forever). */
      retentionDays: z.number().min(0).default(365),
      /** Largest page a query returns; larger RSM `<max/>` values are clamped. */
      maxPageSize: z.number().int().min(1).max(10_000).default(100),
      /** How often expired messages are purged. */
      purgeIntervalMs: z.number().int().min(1000).default(3_600_000),
      /** Delay before queued messages are written. */
      flushIntervalMs: z.number().int().min(0).max(10_000).default(100),
      /** Queued messages that trigger an immediate write. */
      batchSize: z.number().int().min(1).max(10_000).default(1000),
      /** Messages kept per archive: past it, the oldest are deleted (a ring buffer). */
      maxMessages: z.number().int().min(1).default(100_000),
      /** Bytes of stanzas kept per archive: past it, the oldest are deleted. */
      maxBytes: z
        .number()
        .int()
        .min(1)
        .default(100 * 1024 * 1024),
      /**
       * Messages from senders not in the owner's roster: archived (true), never (false), or up to
       * `strangerMessagesPerMinute` per archive ('rate-limited').
       */
      archiveStrangers: z.union([z.boolean(), z.literal('rate-limited')]).default('rate-limited'),
      strangerMessagesPerMinute: z.number().int().min(1).default(30),
    })
    .strict()
    .prefault({}),
  migrations: mamMigrations,
  async setup(ctx) {
    const opts = ctx.options;
    if (ctx.storage.engine === 'sqlite' && ctx.storage.path === ':memory:')
      throw new Error(
        "modules.mam: the message archive is written by a thread of its own, which cannot share an in-memory SQLite database (storage.path ':memory:'); use a database file or disable mam",
      );
    const store = new ArchiveStore(ctx.db, ctx.storage, ctx.log, {
      flushMs: opts.flushIntervalMs,
      batchSize: opts.batchSize,
      maxPending: 100_000,
      maxMessages: opts.maxMessages,
      maxBytes: opts.maxBytes,
    });
    const strangers = new StrangerLimit(opts.strangerMessagesPerMinute);
    ctx.every(60_000, () => strangers.sweep());
    await store.init();
    const prefs = new PrefsStore(ctx.db, opts.defaultArchive);
    // docs/decisions/0009: every node caches preferences; a change here makes the others read again.
    prefs.onChange = (owner) => ctx.cluster.broadcast('invalidate', owner);
    ctx.onStop(
      ctx.cluster.on('invalidate', (owner) => {
        if (typeof owner === 'string') prefs.invalidate(owner);
      }),
    );
    ctx.onStop(ctx.cluster.onResync(() => prefs.invalidateAll()));
    const outgoing = new WeakMap<Element, { by: string; id: string }>();

    const inRoster = (owner: Jid, contact: Jid): MaybePromise<boolean> => {
      const roster = ctx.use<RosterLookup>('roster');
      if (!roster) return false;
      return roster.get(owner, contact.bare).then(
        (item) => item !== undefined,
        (err: unknown) => {
          ctx.log.warn({ err }, 'roster lookup failed: not archiving');
          return false;
        },
      );
    };

    /** Whether `owner`'s preferences let a message with `remote` be archived. */
    const wanted = (owner: Jid, remote: Jid): MaybePromise<boolean> => {
      const bare = remote.toBareString();
      const full = remote.toString();
      const p = prefs.get(owner.toBareString());
      const roster = () => inRoster(owner, remote);
      return p instanceof Promise
        ? p.then((v) => decide(v, bare, full, roster))
        : decide(p, bare, full, roster);
    };

    /**
     * What waits for the end of routing, by message: the message (stored once) and the archives
     * that list it. A message returned to its sender as an error (no such user, offline storage
     * full, blocked…) is archived on neither side.
     */
    const awaiting = new WeakMap<RouteOutcome, { message: MessageRow; entries: EntryRow[] }>();

    /**
     * Reserves a position and UID for the message in `owner`'s archive; written once routing
     * succeeds. The sender's and the recipient's archives share the message's row, position and UID.
     */
    const record = (
      ev: RouteEvent,
      owner: Jid,
      remote: Jid,
      direction: Direction,
      stanza: Element,
      /** The stanza differs from what the sender's archive recorded (forged stanza-ids removed). */
      rewritten = false,
    ): string | undefined => {
      const outcome = (ev.outcome ??= { bounced: false });
      let pending = awaiting.get(outcome);
      if (pending && rewritten) {
        const text = stanza.toString();
        pending.message.stanza = text;
        pending.message.bytes = Buffer.byteLength(text);
        for (const e of pending.entries) e.bytes = pending.message.bytes;
      }
      if (!pending) {
        const text = stanza.toString();
        const bytes = Buffer.byteLength(text);
        if (bytes > opts.maxBytes) return undefined; // would push everything else out of the archive
        const at = store.next();
        pending = { message: { seq: at.seq, id: at.id, stanza: text, bytes, refs: 0 }, entries: [] };
        awaiting.set(outcome, pending);
      }
      const { message } = pending;
      pending.entries.push({
        owner: owner.toBareString(),
        seq: message.seq,
        id: message.id,
        with_jid: remote.toBareString(),
        with_full: remote.toString(),
        direction,
        bytes: message.bytes,
      });
      return message.id;
    };

    /**
     * Archives removed (`user/deleted`) while messages for them were still being routed: rows
     * reserved before the removal (a lower `seq`) are dropped, so that whoever registers the name
     * next inherits nothing. Forgotten after a few minutes (routing takes far less).
     */
    const removed = new Map<string, { seq: number; at: number }>();
    ctx.every(60_000, () => {
      const old = Date.now() - 300_000;
      for (const [owner, r] of removed) if (r.at < old) removed.delete(owner);
    });

    ctx.hook('message/routed', (ev) => {
      const pending = awaiting.get(ev.outcome);
      if (!pending) return;
      awaiting.delete(ev.outcome);
      if (ev.outcome.bounced) return;
      const entries =
        removed.size === 0
          ? pending.entries
          : pending.entries.filter((e) => {
              const r = removed.get(e.owner);
              return r === undefined || e.seq > r.seq;
            });
      store.add(pending.message, entries);
    });

    // XEP-0198: what stream management acknowledges is in the archives (one commit for every waiting
    // session). Every host's buffer: the recipient's archive may be another host's.
    liveStores.add(store);
    ctx.hook('session/acknowledging', async () => {
      await Promise.all([...liveStores].map((s) => s.commitSoon()));
    });

    // --- the sender's archive ---------------------------------------------------------------------
    const archiveOutgoing = (ev: RouteEvent, ok: boolean) => {
      if (!ok) return;
      const id = record(ev, ev.from.bare, ev.to, 'out', ev.stanza);
      if (id !== undefined) outgoing.set(ev.stanza, { by: ev.from.toBareString(), id });
    };
    ctx.hook(
      'stanza/out',
      (ev) => {
        // from a client of the account, or from a privileged component in its name (XEP-0356)
        if (ev.stanza.name !== 'message' || (!ev.origin && !ev.onBehalfOf)) return;
        // A message to the account itself is stored once, as it arrives.
        if (ev.to.local === ev.from.local && ev.to.domain === ev.from.domain) return;
        if (!archivable(ev.stanza)) return;
        const ok = wanted(ev.from.bare, ev.to);
        if (ok instanceof Promise) return ok.then((v) => archiveOutgoing(ev, v));
        archiveOutgoing(ev, ok);
      },
      100,
    );

    // --- the recipient's archive (before delivery or offline storage) ---------------------------
    const archiveIncoming = (ev: RouteEvent, owner: string, ok: boolean): void => {
      const forged = ev.stanza.children.some((c) => isForged(c, owner));
      const copy = ok
        ? shallowCopy(
            ev.stanza,
            forged ? ev.stanza.children.filter((c) => !isForged(c, owner)) : [...ev.stanza.children],
          )
        : undefined;
      const id = copy && record(ev, ev.to.bare, ev.from, 'in', copy, forged);
      if (id === undefined) {
        if (forged)
          ev.stanza = shallowCopy(
            ev.stanza,
            ev.stanza.children.filter((c) => !isForged(c, owner)),
          );
        return;
      }
      // XEP-0313 §2.4 / XEP-0359: tell the recipient where the message is stored.
      copy!.children.push(xml('stanza-id', { xmlns: NS.sid, by: owner, id }));
      ev.stanza = copy!; // a copy: the original may be shared with other recipients
    };

    /** The stranger policy: messages from outside the owner's roster are archived within limits. */
    const admitted = (owner: Jid, from: Jid): MaybePromise<boolean> => {
      if (opts.archiveStrangers === true || from.bare.equals(owner)) return true;
      return Promise.resolve(inRoster(owner, from)).then((contact) => {
        if (contact) return true;
        if (opts.archiveStrangers === false) return false;
        return strangers.take(owner.toBareString());
      });
    };
    const decideIncoming = async (ev: RouteEvent, owner: string): Promise<void> => {
      const ok = (await wanted(ev.to.bare, ev.from)) && (await admitted(ev.to.bare, ev.from));
      archiveIncoming(ev, owner, ok);
    };

    const incoming = (ev: RouteEvent): MaybePromise<void> => {
      if (ev.resent) return; // archived when it first arrived; it keeps that stanza-id
      const type = ev.stanza.attrs.type;
      if (type === 'error' || type === 'groupchat' || type === 'headline') return;
      const owner = ev.to.toBareString();
      if (!archivable(ev.stanza)) {
        if (ev.stanza.children.some((c) => isForged(c, owner))) archiveIncoming(ev, owner, false);
        return;
      }
      const online = ctx.sessions.ofAccount(owner).length > 0;
      if (online) {
        if (opts.archiveStrangers === true) {
          const ok = wanted(ev.to.bare, ev.from);
          if (ok instanceof Promise) return ok.then((v) => archiveIncoming(ev, owner, v));
          return archiveIncoming(ev, owner, ok);
        }
        return decideIncoming(ev, owner);
      }
      // Nobody online: the account may not exist (the core bounces those); offline storage follows.
      return ctx.accountExists(ev).then(async (exists) => {
        if (exists) await decideIncoming(ev, owner);
      });
    };
    ctx.hook('message/bare', incoming, 10);
    ctx.hook('message/full', incoming, 10);

    ctx.hook('session/bound', ({ session }) => {
      // Warm the preferences cache so the message path does not wait for them.
      const p = prefs.get(session.bare.toString());
      if (p instanceof Promise)
        p.catch((err: unknown) => ctx.log.warn({ err }, 'could not load archiving preferences'));
    });

    ctx.hook('user/deleted', async ({ jid }) => {
      const owner = jid.toBareString();
      removed.set(owner, { seq: store.next().seq, at: Date.now() });
      await store.deleteOwner(owner);
      await prefs.delete(owner);
    });

    // --- queries (§4) -----------------------------------------------------------------------------
    const ownerOnly = (req: { from: Jid; to: Jid }) => {
      // §7.1: only the owner may read or configure an archive.
      if (!req.from.bare.equals(req.to))
        throw new StanzaError('forbidden', { text: 'only the owner may access this archive' });
    };

    ctx.iq('account', 'get', NS.mam, 'query', (req) => {
      ownerOnly(req);
      return queryForm();
    });

    /** Runs a query on `owner`'s archive: the `<result/>`s go to `emit`, the `<fin/>` is returned. */
    const query = async (owner: string, payload: Element, emit: (r: Element) => void): Promise<Element> => {
      await store.flush();
      const result = await runQuery(store, owner, payload, opts.maxPageSize);
      const queryid = payload.attrs.queryid;
      const rows = result.flip ? [...result.messages].reverse() : result.messages;
      for (const row of rows) {
        let archived: Element;
        try {
          archived = parseElement(row.stanza);
        } catch (err) {
          ctx.log.error({ err, id: row.id }, 'unreadable archived message');
          continue;
        }
        const forwarded = xml(
          'forwarded',
          { xmlns: NS.forward },
          delayElement(new Date(row.timestamp)),
          archived,
        );
        emit(xml('result', { xmlns: NS.mam, queryid, id: row.id }, forwarded));
      }
      return finElement(result);
    };

    const metadata = async (owner: string): Promise<Element> => {
      await store.flush();
      const b = await store.bounds(owner);
      const stamp = (t: number) => new Date(t).toISOString();
      return xml(
        'metadata',
        { xmlns: NS.mam },
        b && xml('start', { id: b.first.id, timestamp: stamp(b.first.timestamp) }),
        b && xml('end', { id: b.last.id, timestamp: stamp(b.last.timestamp) }),
      );
    };

    ctx.iq('account', 'set', NS.mam, 'query', async (req) => {
      ownerOnly(req);
      const owner = req.to.toBareString();
      const session = ctx.sessions.get(req.from);
      const to = req.from.toString();
      return query(owner, req.payload, (result) => {
        if (session) ctx.deliver(session, xml('message', { xmlns: NS.client, from: owner, to }, result));
      });
    });

    ctx.iq('account', 'get', NS.mam, 'metadata', (req) => {
      ownerOnly(req);
      return metadata(req.to.toBareString());
    });

    // --- preferences (XEP-0441) -------------------------------------------------------------------
    ctx.iq('account', 'get', NS.mam, 'prefs', async (req) => {
      ownerOnly(req);
      const p: Prefs = await prefs.get(req.to.toBareString());
      return prefsElement(p);
    });
    ctx.iq('account', 'set', NS.mam, 'prefs', async (req) => {
      ownerOnly(req);
      const p = parsePrefs(req.payload);
      await prefs.set(req.to.toBareString(), p);
      return prefsElement(p);
    });

    ctx.feature('account', EXTENDED, NS.sid);

    // --- retention and shutdown ---------------------------------------------------------------------
    const purgeExpired = async (now = Date.now()): Promise<number> => {
      if (opts.retentionDays <= 0) return 0;
      const removed = await store.purge(now - opts.retentionDays * DAY_MS);
      if (removed > 0) ctx.log.info({ removed }, 'purged expired archived messages');
      return removed;
    };
    let firstPurge: NodeJS.Timeout | undefined;
    if (opts.retentionDays > 0) {
      ctx.every(opts.purgeIntervalMs, async () => void (await purgeExpired()));
      firstPurge = setTimeout(
        () => void purgeExpired().catch((err: unknown) => ctx.log.error({ err }, 'archive purge failed')),
        5000,
      );
      firstPurge.unref();
    }
    // Nothing archived is lost on a clean shutdown: the buffer is written before storage closes.
    ctx.onStop(() => {
      clearTimeout(firstPurge);
      liveStores.delete(store);
      return store.close();
    });

    /** Archives of other entities (a MUC room's): one entry per message, written in the next batch. */
    const archive = (owner: string, from: string, stanza: Element): string | undefined => {
      const text = stanza.toString();
      const bytes = Buffer.byteLength(text);
      if (bytes > opts.maxBytes) return undefined;
      const at = store.next();
      const message: MessageRow = { seq: at.seq, id: at.id, stanza: text, bytes, refs: 0 };
      store.add(message, [
        { owner, seq: at.seq, id: at.id, with_jid: owner, with_full: from, direction: 'in', bytes },
      ]);
      return at.id;
    };

    const get = async (owner: string, id: string): Promise<ArchivedMessage | undefined> => {
      const row = await store.get(owner, id);
      if (!row) return undefined;
      try {
        return { id: row.id, timestamp: row.timestamp, stanza: parseElement(row.stanza) };
      } catch (err) {
        ctx.log.error({ err, id: row.id }, 'unreadable archived message');
        return undefined;
      }
    };

    ctx.provide<MamApi>('mam', {
      outgoingStanzaId: (stanza) => outgoing.get(stanza),
      flush: () => store.flush(),
      purgeExpired,
      archive,
      query,
      queryForm,
      metadata,
      get,
      replace: (owner, id, stanza) => store.replace(owner, id, stanza.toString()),
      deleteArchive: (owner) => store.deleteOwner(owner),
    });
  },
});
