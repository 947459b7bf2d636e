import { z } from 'zod';
import { xml, parseElement, type Element } from '@natter/xml';
import type { Jid } from '@natter/jid';
import { NS, StanzaError } from '@natter/protocol';
import { defineModule } from '../../core/module-api.js';
import { VcardStore, vcardMigrations } from './vcard-store.js';
import { photoHash, applyPhotoHash, UNKNOWN_HASH } from './xep-0153-avatar.js';
import type { VcardApi, VcardWatcher } from './api.js';

export type { VcardApi, VcardWatcher } from './api.js';

/**
 * vcard-temp (XEP-0054) storage with vCard-based avatars (XEP-0153). Anyone may read an
 * account's vCard; only its owner may set it. The server keeps the avatar hash it computed from
 * the stored PHOTO in the user's outbound available presence (adding, filling or correcting the
 * `vcard-temp:x:update` element). After setting a new photo, sending fresh presence so contacts
 * learn the new hash remains the client's job (XEP-0153 §3.1): the server does not re-broadcast.
 */
export default defineModule({
  name: 'vcard',
  description: 'Stores vCards (XEP-0054) and keeps vCard avatar hashes in presence (XEP-0153)',
  specs: ['XEP-0054', 'XEP-0153'],
  enabledByDefault: true,
  options: z
    .object({
      /** Largest serialised vCard accepted, in bytes. */
      maxBytes: z
        .number()
        .int()
        .min(256)
        .default(64 * 1024),
      /** Add/correct the XEP-0153 update element in users' presence. */
      avatarPresence: z.boolean().default(true),
    })
    .strict()
    .prefault({}),
  migrations: vcardMigrations,
  setup(ctx) {
    const store = new VcardStore(ctx.db);
    const { maxBytes } = ctx.options;
    /**
     * Photo hashes of accounts online on this host, loaded at their first presence and forgotten
     * when their last session ends ('' no photo, null no vCard).
     */
    const hashes = new Map<string, string | null>();
    /** Changes heard from other nodes so far: a hash read before one of them is not kept. */
    let invalidations = 0;
    // docs/decisions/0009: every node keeps the hashes of its users; a vCard stored here makes the
    // others read the hash again, before the vCard set is answered.
    const changed = (owner: string) => ctx.cluster.broadcast('invalidate', owner);
    ctx.onStop(
      ctx.cluster.on('invalidate', (owner) => {
        if (typeof owner !== 'string') return;
        invalidations++;
        hashes.delete(owner);
      }),
    );
    ctx.onStop(
      ctx.cluster.onResync(() => {
        invalidations++;
        hashes.clear();
      }),
    );

    const empty = () => xml('vCard', { xmlns: NS.vcard });

    // XEP-0054 §2: a server that supports vcard-temp says so in its own disco#info.
    ctx.feature('host', NS.vcard);

    ctx.iq('account', 'get', NS.vcard, 'vCard', async (req) => {
      const owner = req.to;
      if (
        !req.from.bare.equals(owner) &&
        ctx.sessions.ofAccount(owner).length === 0 &&
        !(await ctx.accounts.exists(owner.local, owner.domain))
      ) {
        throw new StanzaError('service-unavailable', { text: 'no such account' });
      }
      const stored = await store.get(owner.toBareString());
      if (!stored) return empty();
      try {
        return parseElement(stored.vcard);
      } catch (err) {
        ctx.log.error({ err, owner: owner.toString() }, 'stored vCard is unreadable');
        return empty();
      }
    });

    /** Checks and stores `vcard` as `owner`'s; returns its photo hash. Throws StanzaError. */
    const storeVcard = async (owner: Jid, vcard: Element): Promise<string> => {
      const text = vcard.toString();
      if (Buffer.byteLength(text, 'utf8') > maxBytes) {
        throw new StanzaError('not-acceptable', { text: `the vCard is larger than ${maxBytes} bytes` });
      }
      const hash = photoHash(vcard);
      const key = owner.toBareString();
      const seen = invalidations;
      await store.set(key, text, hash);
      // Another node stored a vCard meanwhile: which one is current is for the row to say.
      if (invalidations !== seen) hashes.delete(key);
      else if (hashes.has(key) || ctx.sessions.ofAccount(key).length > 0) hashes.set(key, hash);
      changed(key);
      return hash;
    };
    const watchers: VcardWatcher[] = [];

    ctx.iq('account', 'set', NS.vcard, 'vCard', async (req) => {
      if (!req.from.bare.equals(req.to))
        throw new StanzaError('forbidden', { text: 'you can only set your own vCard' });
      const vcard = req.payload.clone();
      const owner = req.to.bare;
      for (const w of [...watchers]) await w.validate?.(owner, vcard);
      const hash = await storeVcard(owner, vcard);
      for (const w of [...watchers]) {
        try {
          await w.changed?.(owner, vcard, hash);
        } catch (err) {
          ctx.log.error({ err, owner: owner.toString() }, 'a vCard watcher failed');
        }
      }
    });

    ctx.hook('user/deleted', async ({ jid }) => {
      hashes.delete(jid.toBareString());
      await store.remove(jid.toBareString());
      changed(jid.toBareString());
    });

    ctx.provide<VcardApi>('vcard', {
      async get(owner) {
        const stored = await store.get(owner.toBareString());
        return stored && parseElement(stored.vcard);
      },
      photoHash: (owner) => store.photoHash(owner.toBareString()),
      async set(owner, vcard) {
        await storeVcard(owner.bare, vcard.clone());
      },
      maxBytes,
      watch(watcher) {
        watchers.push(watcher);
        return () => {
          const i = watchers.indexOf(watcher);
          if (i >= 0) watchers.splice(i, 1);
        };
      },
    });

    if (!ctx.options.avatarPresence) return;

    const load = async (owner: string): Promise<string | null> => {
      const seen = invalidations;
      const h = (await store.photoHash(owner)) ?? null;
      // Read before another node's change arrived: good for this presence, not to keep.
      if (invalidations === seen && ctx.sessions.ofAccount(owner).length > 0 && !hashes.has(owner))
        hashes.set(owner, h);
      return h;
    };

    ctx.hook('session/closed', ({ session }) => {
      const owner = session.bare.toBareString();
      if (ctx.sessions.ofAccount(owner).length === 0) hashes.delete(owner);
    });

    const apply = (presence: Element, hash: string | null) => {
      if (hash !== null && hash !== UNKNOWN_HASH) applyPhotoHash(presence, hash);
      return false;
    };
    // XEP-0153: every available presence the user sends (broadcast or directed) carries the hash the server knows.
    ctx.hook(
      'stanza/out',
      (ev) => {
        const { stanza } = ev;
        if (stanza.name !== 'presence' || stanza.attrs.type !== undefined) return false;
        const owner = ev.from.toBareString();
        const known = hashes.get(owner);
        if (known !== undefined) return apply(stanza, known);
        return load(owner).then((h) => apply(stanza, h));
      },
      10,
    );
  },
});
