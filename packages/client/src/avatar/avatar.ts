import { xml, type Element } from '@natter/xml';
import { tryParseJid, type Jid } from '@natter/jid';
import { NS, fromBase64, toBase64 } from '@natter/protocol';
import { emitterWith, type Emitter } from '../core/emitter.js';
import type { PluginDefinition } from '../core/plugin.js';
import { pubsubRequests } from '../pubsub/xep-0060-pubsub.js';
import { buildVCard, parseVCard } from '../vcard/xep-0054-vcard.js';

export const NS_AVATAR_DATA = 'urn:xmpp:avatar:data';
export const NS_AVATAR_METADATA = 'urn:xmpp:avatar:metadata';

/** XEP-0084 §4.2 metadata of one image. */
export interface AvatarInfo {
  /** SHA-1 of the image bytes, hex (also the XEP-0153 photo hash). */
  id: string;
  bytes: number;
  type: string;
  width?: number;
  height?: number;
  url?: string;
}

export interface AvatarEvents {
  /**
   * A contact's avatar changed: `hash` is the new SHA-1 (empty string when the avatar was removed),
   * `source` tells whether it came from a XEP-0153 presence hash or a XEP-0084 PEP notification.
   */
  change: { jid: string; hash: string; source: 'vcard-update' | 'pep'; info?: AvatarInfo; element: Element };
}

export interface AvatarOptions {
  /** Also keep the vCard PHOTO and the XEP-0153 presence hash in step when publishing (default true). */
  vcard?: boolean;
  /** PEP access model for published avatars (default "open", XEP-0084 §6.1 suggests open or presence). */
  accessModel?: 'open' | 'presence' | 'roster' | 'whitelist';
}

export interface AvatarApi extends Emitter<AvatarEvents> {
  /** Known avatar hash of a contact (bare JID): '' for none, undefined when unknown. */
  hashOf(jid: string | Jid): string | undefined;
  /** Our own avatar hash as advertised in presence (XEP-0153 §4.1). */
  readonly ownHash: string | undefined;
  /** Publishes our avatar: XEP-0084 data then metadata via PEP, and (by default) the vCard photo. Resolves with the hash. */
  publish(data: Uint8Array, type: string, dims?: { width?: number; height?: number }): Promise<string>;
  /** Removes our avatar (empty metadata; empty vCard photo). */
  remove(): Promise<void>;
  /** The metadata a contact published (XEP-0084 §4.2), if any. */
  metadata(jid: string | Jid): Promise<AvatarInfo[]>;
  /** Image bytes by hash: from PEP data (XEP-0084 §4.1), or from the vCard (XEP-0153) as fallback. */
  fetchData(jid: string | Jid, id: string): Promise<Uint8Array | undefined>;
}

export async function sha1Hex(data: Uint8Array): Promise<string> {
  const d = new Uint8Array(await globalThis.crypto.subtle.digest('SHA-1', new Uint8Array(data)));
  let s = '';
  for (const b of d) s += b.toString(16).padStart(2, '0');
  return s;
}

function parseInfo(el: Element): AvatarInfo {
  const num = (n: string) => (el.attr(n) === undefined ? undefined : Number(el.attr(n)));
  return {
    id: el.attr('id') ?? '',
    bytes: num('bytes') ?? 0,
    type: el.attr('type') ?? '',
    width: num('width'),
    height: num('height'),
    url: el.attr('url'),
  };
}

/** XEP-0153 vCard-based avatars and XEP-0084 PEP avatars, with change events (XMPPvCardAvatarModule's equivalent). */
export function avatar(options: AvatarOptions = {}): PluginDefinition<AvatarApi> {
  return {
    name: 'avatar',
    setup(ctx) {
      const { client } = ctx;
      ctx.addFeature(`${NS_AVATAR_METADATA}+notify`);
      // Latest hash per contact, and per source (so each source reports its own changes once).
      const hashes = new Map<string, string>();
      const bySource = { 'vcard-update': new Map<string, string>(), pep: new Map<string, string>() };
      let ownHash: string | undefined;
      const bare = (jid: string | Jid) => tryParseJid(String(jid))?.bare.toString() ?? String(jid);
      const publishOptions = { 'pubsub#access_model': options.accessModel ?? 'open' };

      const api: AvatarApi = emitterWith<AvatarApi>(
        {
          hashOf: (jid: string | Jid) => hashes.get(bare(jid)),
          get ownHash() {
            return ownHash;
          },
          async publish(data: Uint8Array, type: string, dims: { width?: number; height?: number } = {}) {
            const id = await sha1Hex(data);
            await pubsubRequests.publish(
              client,
              undefined,
              NS_AVATAR_DATA,
              xml('data', { xmlns: NS_AVATAR_DATA }, toBase64(data)),
              { id, publishOptions },
            );
            await pubsubRequests.publish(
              client,
              undefined,
              NS_AVATAR_METADATA,
              xml(
                'metadata',
                { xmlns: NS_AVATAR_METADATA },
                xml('info', { id, bytes: data.length, type, width: dims.width, height: dims.height }),
              ),
              { id, publishOptions },
            );
            if (options.vcard ?? true) await setVCardPhoto({ type, data });
            ownHash = id;
            if (client.status === 'online') await client.sendPresence();
            return id;
          },
          async remove() {
            await pubsubRequests.publish(
              client,
              undefined,
              NS_AVATAR_METADATA,
              xml('metadata', { xmlns: NS_AVATAR_METADATA }),
              { publishOptions },
            );
            if (options.vcard ?? true) await setVCardPhoto(undefined);
            ownHash = '';
            if (client.status === 'online') await client.sendPresence();
          },
          async metadata(jid: string | Jid) {
            const items = await pubsubRequests.items(client, bare(jid), NS_AVATAR_METADATA, { max: 1 });
            return (items[0]?.payload?.getChildren('info', NS_AVATAR_METADATA) ?? []).map(parseInfo);
          },
          async fetchData(jid: string | Jid, id: string) {
            try {
              const items = await pubsubRequests.items(client, bare(jid), NS_AVATAR_DATA, { ids: [id] });
              const text = items.find((i) => i.id === id)?.payload?.text();
              if (text) return fromBase64(text.replace(/\s+/g, ''));
            } catch {
              /* fall back to the vCard */
            }
            const el = await client.request(
              'get',
              bare(jid) === client.account.toString() ? undefined : bare(jid),
              xml('vCard', { xmlns: NS.vcard }),
            );
            const photo = el && parseVCard(el).photo;
            if (photo && (await sha1Hex(photo.data)) === id) return photo.data;
            return undefined;
          },
        },
        ctx.reportError,
      );

      async function setVCardPhoto(photo: { type: string; data: Uint8Array } | undefined): Promise<void> {
        let current: Element | undefined;
        try {
          current = await client.request('get', undefined, xml('vCard', { xmlns: NS.vcard }));
        } catch {
          current = undefined;
        }
        const fields = current ? parseVCard(current) : { emails: [] };
        await client.iq(xml('iq', { type: 'set' }, buildVCard({ ...fields, photo })));
      }

      // XEP-0153 §4.1: advertise our photo hash in every available presence (an empty <x/> until we know it).
      ctx.outgoing((el) => {
        if (el.name !== 'presence' || el.attr('type') !== undefined || el.getChild('x', NS.vcardUpdate))
          return;
        if (el.getChild('x', NS.muc)) return;
        el.append(xml('x', { xmlns: NS.vcardUpdate }, ownHash !== undefined && xml('photo', null, ownHash)));
      });
      client.on('online', ({ resumed }) => {
        if (resumed || ownHash !== undefined || !(options.vcard ?? true)) return;
        client
          .request('get', undefined, xml('vCard', { xmlns: NS.vcard }))
          .then(async (el) => {
            const photo = el && parseVCard(el).photo;
            ownHash = photo ? await sha1Hex(photo.data) : '';
          })
          .catch(() => (ownHash = ''));
      });

      client.on('presence', (p) => {
        const x = p.getChild('x', NS.vcardUpdate);
        if (!x || p.attr('type') !== undefined) return;
        const photo = x.getChild('photo', NS.vcardUpdate);
        if (!photo) return; // XEP-0153 §4.3: not ready to advertise: nothing to learn
        const from = p.attr('from');
        if (!from || p.getChild('x', NS.mucUser)) return;
        const jid = bare(from);
        const hash = photo.text().trim().toLowerCase();
        if (bySource['vcard-update'].get(jid) === hash) return;
        bySource['vcard-update'].set(jid, hash);
        hashes.set(jid, hash);
        api.emit('change', { jid, hash, source: 'vcard-update', element: p });
      });

      client.on('message', (m) => {
        const items = m.getChild('event', NS.pubsubEvent)?.getChild('items', NS.pubsubEvent);
        if (items?.attr('node') !== NS_AVATAR_METADATA) return;
        const jid = bare(m.attr('from') ?? client.account.toString());
        const meta = items.getChild('item', NS.pubsubEvent)?.getChild('metadata', NS_AVATAR_METADATA);
        if (!meta) return;
        const infos = meta.getChildren('info', NS_AVATAR_METADATA).map(parseInfo);
        const hash = infos[0]?.id ?? '';
        if (bySource.pep.get(jid) === hash) return;
        bySource.pep.set(jid, hash);
        hashes.set(jid, hash);
        api.emit(
          'change',
          infos[0]
            ? { jid, hash, source: 'pep', info: infos[0], element: m }
            : { jid, hash, source: 'pep', element: m },
        );
      });
      return api;
    },
  };
}
