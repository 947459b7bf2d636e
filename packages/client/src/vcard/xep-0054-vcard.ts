import { Element, parseElement, xml } from '@natter/xml';
import { tryParseJid, type Jid } from '@natter/jid';
import { NS, StanzaError, fromBase64, toBase64 } from '@natter/protocol';
import { emitterWith, type Emitter } from '../core/emitter.js';
import type { PluginDefinition } from '../core/plugin.js';
import { memoryVCardStorage, type VCardStorage } from './vcard-storage.js';

/** The common vCard-temp fields; `element` keeps everything else. */
export interface VCard {
  fullName?: string;
  nickname?: string;
  given?: string;
  family?: string;
  emails: string[];
  url?: string;
  description?: string;
  photo?: { type: string; data: Uint8Array };
  /** The `<vCard/>` element as received (or as built). */
  element: Element;
}

export type VCardFields = Omit<VCard, 'element'>;

export function parseVCard(el: Element): VCard {
  const t = (name: string) => el.getChildText(name, NS.vcard) || undefined;
  const n = el.getChild('N', NS.vcard);
  const photo = el.getChild('PHOTO', NS.vcard);
  const binval = photo?.getChildText('BINVAL', NS.vcard)?.replace(/\s+/g, '');
  let data: Uint8Array | undefined;
  if (binval) {
    try {
      data = fromBase64(binval);
    } catch {
      data = undefined;
    }
  }
  return {
    fullName: t('FN'),
    nickname: t('NICKNAME'),
    given: n?.getChildText('GIVEN', NS.vcard) || undefined,
    family: n?.getChildText('FAMILY', NS.vcard) || undefined,
    emails: el
      .getChildren('EMAIL', NS.vcard)
      .map((e) => e.getChildText('USERID', NS.vcard) ?? '')
      .filter((s) => s !== ''),
    url: t('URL'),
    description: t('DESC'),
    photo: data && { type: photo?.getChildText('TYPE', NS.vcard) ?? 'image/png', data },
    element: el,
  };
}

export function buildVCard(v: Partial<VCardFields>): Element {
  return xml(
    'vCard',
    { xmlns: NS.vcard },
    v.fullName !== undefined && xml('FN', null, v.fullName),
    (v.given !== undefined || v.family !== undefined) &&
      xml(
        'N',
        null,
        v.family !== undefined && xml('FAMILY', null, v.family),
        v.given !== undefined && xml('GIVEN', null, v.given),
      ),
    v.nickname !== undefined && xml('NICKNAME', null, v.nickname),
    (v.emails ?? []).map((e) => xml('EMAIL', null, xml('INTERNET'), xml('USERID', null, e))),
    v.url !== undefined && xml('URL', null, v.url),
    v.description !== undefined && xml('DESC', null, v.description),
    v.photo &&
      xml('PHOTO', null, xml('TYPE', null, v.photo.type), xml('BINVAL', null, toBase64(v.photo.data))),
  );
}

export interface VCardEvents {
  /** A vCard arrived from the network (also after a background fetch started by `vCardFor`). */
  vcard: { jid: string; vcard: VCard };
  /** Our own vCard was updated. */
  updated: { vcard: VCard };
}

export interface VCardOptions {
  storage?: VCardStorage;
}

export interface VCardApi extends Emitter<VCardEvents> {
  /**
   * The stored vCard of `jid` (bare; our own when omitted) without waiting for the network; with
   * `shouldFetch`, a missing one is fetched in the background and announced by a `vcard` event.
   */
  vCardFor(jid: string | Jid | undefined, opts?: { shouldFetch?: boolean }): Promise<VCard | undefined>;
  /** Fetches a vCard (XEP-0054 §3.1/§3.2); from storage unless `ignoreStorage`. Resolves with undefined when there is none. */
  fetch(jid?: string | Jid, opts?: { ignoreStorage?: boolean }): Promise<VCard | undefined>;
  /** Replaces our own vCard (XEP-0054 §3.2). */
  update(vcard: Partial<VCardFields> | Element): Promise<void>;
}

/** XEP-0054 vcard-temp with a cache in storage (XMPPvCardTempModule's equivalent). */
export function vcard(options: VCardOptions = {}): PluginDefinition<VCardApi> {
  const storage = options.storage ?? memoryVCardStorage();
  return {
    name: 'vcard',
    setup(ctx) {
      const { client } = ctx;
      ctx.addFeature(NS.vcard);
      const account = () => client.account.toString();
      const bare = (jid: string | Jid | undefined) =>
        jid === undefined ? account() : (tryParseJid(String(jid))?.bare.toString() ?? String(jid));
      const inflight = new Map<string, Promise<VCard | undefined>>();
      const api: VCardApi = emitterWith<VCardApi>(
        {
          async vCardFor(jid: string | Jid | undefined, opts: { shouldFetch?: boolean } = {}) {
            const j = bare(jid);
            const stored = await storage.get(account(), j);
            if (stored) return parseVCard(parseElement(stored.xml));
            if (opts.shouldFetch)
              api
                .fetch(j, { ignoreStorage: true })
                .catch((err: unknown) => client.emit('error', err as Error));
            return undefined;
          },
          async fetch(jid?: string | Jid, opts: { ignoreStorage?: boolean } = {}) {
            const j = bare(jid);
            if (!opts.ignoreStorage) {
              const stored = await storage.get(account(), j);
              if (stored) return parseVCard(parseElement(stored.xml));
            }
            let p = inflight.get(j);
            if (!p) {
              p = (async () => {
                let el: Element | undefined;
                try {
                  el = await client.request(
                    'get',
                    j === account() ? undefined : j,
                    xml('vCard', { xmlns: NS.vcard }),
                  );
                } catch (err) {
                  if (err instanceof StanzaError && err.condition === 'item-not-found') return undefined;
                  throw err;
                }
                if (!el || !el.is('vCard', NS.vcard)) return undefined;
                await storage.set(account(), j, { xml: el.toString(), fetchedAt: Date.now() });
                const v = parseVCard(el);
                api.emit('vcard', { jid: j, vcard: v });
                return v;
              })().finally(() => inflight.delete(j));
              inflight.set(j, p);
            }
            return p;
          },
          async update(v: Partial<VCardFields> | Element) {
            const el = v instanceof Element ? v : buildVCard(v);
            await client.iq(xml('iq', { type: 'set' }, el));
            await storage.set(account(), account(), { xml: el.toString(), fetchedAt: Date.now() });
            const parsed = parseVCard(el);
            api.emit('updated', { vcard: parsed });
          },
        },
        ctx.reportError,
      );
      return api;
    },
  };
}
