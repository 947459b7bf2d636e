import { z } from 'zod';
import { xml, parseElement, type Element } from '@natter/xml';
import { StanzaError } from '@natter/protocol';
import { defineModule, type IqRequest } from '../../core/module-api.js';
import type { PepApi } from '../pep/api.js';
import { PrivateStore, privateMigrations, type PrivateEntry } from './private-store.js';
import {
  COMPAT_FEATURE,
  NS_LEGACY_BOOKMARKS,
  PepBookmarks,
  pepToLegacy,
  splitLegacy,
} from './xep-0048-bookmarks.js';

export const NS_PRIVATE = 'jabber:iq:private';

/**
 * XEP-0049 §2.3: namespaces reserved in Jabber (`jabber:…`, `http://jabber.org/…`, `vcard-temp`)
 * are refused with not-acceptable. This also covers a fragment without a namespace of its own
 * (it inherits `jabber:iq:private`) and the stanza namespaces `jabber:client`/`jabber:server`.
 */
function reserved(xmlns: string): boolean {
  return (
    xmlns === '' ||
    xmlns.startsWith('jabber:') ||
    xmlns.startsWith('http://jabber.org/') ||
    xmlns === 'vcard-temp'
  );
}

/** Stored fragments are written one after another; read them back inside a wrapper. */
function parseStored(text: string): Element[] {
  return parseElement(`<stored xmlns='${NS_PRIVATE}'>${text}</stored>`).elements();
}

const serialise = (elements: Element[]) => elements.map((e) => e.toString()).join('');

/**
 * Private XML Storage (XEP-0049): an account stores any XML fragment under the namespace of its
 * root element and reads it back; nobody else may read or write it. Per-fragment and
 * per-account size limits and a bound on the namespaces one account may use.
 *
 * With the pep module, XEP-0048 bookmarks (`storage:bookmarks`) live in the account's XEP-0402
 * node instead (XEP-0402 "Compatibility", feature `#compat`): a legacy client's set becomes
 * publishes and retractions of single rooms (notified to the account's XEP-0402 clients;
 * unchanged rooms are not republished), and its get renders the node's items as XEP-0048
 * conferences, so both kinds of clients see one list. XEP-0048 `<url/>` bookmarks, which
 * XEP-0402 dropped, stay in private storage and are returned beside the conferences.
 */
export default defineModule({
  name: 'private',
  description:
    'Private XML storage (XEP-0049); XEP-0048 bookmarks stored there are kept as XEP-0402 PEP bookmarks',
  specs: ['XEP-0049', 'XEP-0048 (private storage, unified with XEP-0402 bookmarks)'],
  enabledByDefault: true,
  options: z
    .object({
      /** Bytes one account may keep in private storage, all namespaces together. */
      maxBytesPerAccount: z
        .number()
        .int()
        .min(1024)
        .default(1024 * 1024),
      /** Largest fragment (everything stored under one namespace), in bytes. */
      maxBytesPerItem: z
        .number()
        .int()
        .min(256)
        .default(64 * 1024),
      /** Namespaces one account may store fragments under. */
      maxNamespacesPerAccount: z.number().int().min(1).default(100),
      /** XEP-0048 bookmarks kept as XEP-0402 bookmarks when the pep module runs. */
      bookmarksCompat: z.boolean().default(true),
    })
    .strict()
    .prefault({}),
  migrations: privateMigrations,
  setup(ctx) {
    const store = new PrivateStore(ctx.db);
    const { maxBytesPerAccount, maxBytesPerItem, maxNamespacesPerAccount } = ctx.options;
    // pep comes before this module in modules/index.ts, so it is set up and has provided its API.
    const pep = ctx.options.bookmarksCompat ? ctx.use<PepApi>('pep') : undefined;
    const bookmarks = pep && new PepBookmarks(pep);

    /** One request of an account at a time: a set's read-compare-write is not interleaved. */
    const queues = new Map<string, Promise<void>>();
    const serially = <T>(owner: string, fn: () => Promise<T>): Promise<T> => {
      const run = (queues.get(owner) ?? Promise.resolve()).then(fn);
      const tail = run.then(
        () => {},
        () => {},
      );
      queues.set(owner, tail);
      void tail.then(() => {
        if (queues.get(owner) === tail) queues.delete(owner);
      });
      return run;
    };

    /** XEP-0049 §2.3 / §3: only the account itself, and only with namespaced fragments. */
    const check = (req: IqRequest): Element[] => {
      if (!req.from.bare.equals(req.to.bare))
        throw new StanzaError('forbidden', { text: 'private storage belongs to its account only' });
      const fragments = req.payload.elements();
      for (const f of fragments) {
        if (reserved(f.xmlns))
          throw new StanzaError('not-acceptable', {
            text: f.xmlns === '' ? 'a fragment needs a namespace of its own' : `${f.xmlns} is reserved`,
          });
        if (f.xmlns.length > 1023)
          throw new StanzaError('not-acceptable', { text: 'namespaces are limited to 1023 characters' });
      }
      return fragments;
    };

    /** The stored fragments of a namespace, bookmarks merged from PEP; undefined when none. */
    async function read(req: IqRequest, xmlns: string): Promise<Element[] | undefined> {
      const owner = req.to.toBareString();
      const text = await store.get(owner, xmlns);
      let stored: Element[] | undefined;
      try {
        stored = text === undefined ? undefined : parseStored(text);
      } catch (err) {
        ctx.log.error({ err, owner, xmlns }, 'stored private XML is unreadable');
      }
      if (xmlns !== NS_LEGACY_BOOKMARKS || !bookmarks) return stored;
      // Conferences stored while the conversion was off move to PEP once.
      const legacy = stored && splitLegacy(stored, false);
      if (legacy && legacy.conferences.size > 0) {
        await bookmarks.addMissing(req.from, legacy.conferences);
        stored = legacy.rest;
        await store.put(owner, [{ namespace: xmlns, xml: serialise(stored) }]);
      }
      const conferences = [...(await bookmarks.read(req.from))].map(([id, c]) => pepToLegacy(id, c));
      const [first, ...others] = stored ?? [];
      // XEP-0402 conferences first, in one <storage/> with what was kept of the XEP-0048 list.
      const storage =
        first?.name === 'storage' ? first.clone() : xml('storage', { xmlns: NS_LEGACY_BOOKMARKS });
      storage.children = [...conferences, ...storage.children];
      return [storage, ...(first?.name === 'storage' ? others : (stored ?? []))];
    }

    ctx.iq('account', 'get', NS_PRIVATE, 'query', async (req) => {
      const fragments = check(req);
      // XEP-0049 §3 "Bad Format": a get names the namespace it wants.
      if (fragments.length === 0)
        throw new StanzaError('bad-request', { text: 'name the namespace to retrieve' });
      const out: Element[] = [];
      for (const f of fragments) {
        const found = await serially(req.to.toBareString(), () => read(req, f.xmlns));
        // Nothing stored: the empty element asked for.
        out.push(...(found ?? [xml(f.name, { xmlns: f.xmlns })]));
      }
      return xml('query', { xmlns: NS_PRIVATE }, out);
    });

    ctx.iq('account', 'set', NS_PRIVATE, 'query', async (req) => {
      const fragments = check(req);
      // XEP-0049 §2.3: at least one fragment.
      if (fragments.length === 0) throw new StanzaError('not-acceptable', { text: 'nothing to store' });
      const byNs = new Map<string, Element[]>();
      for (const f of fragments) byNs.set(f.xmlns, [...(byNs.get(f.xmlns) ?? []), f]);
      const entries: PrivateEntry[] = [];
      for (const [namespace, elements] of byNs) {
        const text = serialise(elements);
        if (Buffer.byteLength(text, 'utf8') > maxBytesPerItem)
          throw new StanzaError('not-acceptable', {
            text: `fragments are limited to ${maxBytesPerItem} bytes per namespace`,
          });
        entries.push({ namespace, xml: text });
      }
      const owner = req.to.toBareString();
      await serially(owner, async () => {
        // Bookmarks: conferences go to PEP, the rest (URLs) stays here.
        const legacy = bookmarks && byNs.get(NS_LEGACY_BOOKMARKS);
        const split = legacy && splitLegacy(legacy);
        if (split) {
          const entry = entries.find((e) => e.namespace === NS_LEGACY_BOOKMARKS)!;
          entry.xml = serialise(split.rest);
        }
        const usage = await store.usage(owner);
        let total = 0;
        for (const [ns, bytes] of usage) if (!byNs.has(ns)) total += bytes;
        for (const e of entries) total += Buffer.byteLength(e.xml, 'utf8');
        if (total > maxBytesPerAccount)
          throw new StanzaError('policy-violation', {
            text: `private storage is limited to ${maxBytesPerAccount} bytes per account`,
          });
        const namespaces = new Set([...usage.keys(), ...byNs.keys()]).size;
        if (namespaces > maxNamespacesPerAccount)
          throw new StanzaError('policy-violation', {
            text: `private storage is limited to ${maxNamespacesPerAccount} namespaces per account`,
          });
        if (split) await bookmarks.replace(req.from, split.conferences);
        await store.put(owner, entries);
      });
    });

    if (bookmarks) ctx.feature('account', COMPAT_FEATURE);

    ctx.hook('user/deleted', async ({ jid }) => {
      await store.removeOwner(jid.toBareString());
    });
  },
});
