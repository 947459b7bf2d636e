import { createHash } from 'node:crypto';
import { z } from 'zod';
import { xml, type Element } from '@natter/xml';
import type { Jid } from '@natter/jid';
import { NS, StanzaError, buildForm, fieldValue, parseForm } from '@natter/protocol';
import { defineModule } from '../../core/module-api.js';
import type { PepApi } from '../pep/api.js';
import type { VcardApi } from '../vcard/api.js';
import { sniffImage, type ImageInfo } from './image.js';

/** XEP-0398 §2: the feature an account advertises when the server converts its avatars. */
export const NS_CONVERSION = 'urn:xmpp:pep-vcard-conversion:0';
/** XEP-0084 node names (and namespaces of their payloads). */
const DATA = 'urn:xmpp:avatar:data';
const METADATA = 'urn:xmpp:avatar:metadata';
const PUBLISH_OPTIONS = 'http://jabber.org/protocol/pubsub#publish-options';

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** The bytes of base64 text (whitespace ignored), or undefined when it is not base64. */
export function decodeBase64(text: string): Buffer | undefined {
  const b64 = text.replace(/\s+/g, '');
  if (b64.length % 4 !== 0 || !BASE64.test(b64)) return undefined;
  return Buffer.from(b64, 'base64');
}

const sha1 = (bytes: Buffer) => createHash('sha1').update(bytes).digest('hex');

const invalidPayload = (text: string) =>
  new StanzaError('bad-request', { text, appCondition: xml('invalid-payload', { xmlns: NS.pubsubErrors }) });

/**
 * User Avatar to vCard-Based Avatars Conversion (XEP-0398), in both directions, between the pep
 * module's XEP-0084 nodes and the vcard module's vCard PHOTO, each met through its declared API:
 *
 * - an avatar published to `urn:xmpp:avatar:metadata` (§3.1) becomes the vCard's PHOTO (TYPE and
 *   BINVAL from the data item the first `<info/>` without a URL points to, its SHA-1 checked), so
 *   the XEP-0153 hash in the owner's next presence changes; an empty `<metadata/>` (XEP-0084 §4.5)
 *   removes the PHOTO. Only when the avatar nodes are `open` unless `fromPep: 'always'`: the vCard
 *   is world-readable (§6), and an avatar shown to contacts only stays so;
 * - a vCard set with a PHOTO (§3.2) is published to the data node, then the metadata node (id =
 *   SHA-1, `type` read from the bytes, `bytes`, `width`/`height` for PNG, JPEG and GIF), and
 *   contacts are notified; nodes that do not exist yet are created `open` (the vCard is public);
 *   existing ones keep their access model. Removing the PHOTO disables the avatar it was.
 *
 * Only PNG, JPEG, GIF and WebP are converted. A vCard whose photo is of another kind, or too large
 * for a PEP item, is stored as the client sent it and not converted (vCard-only clients still see
 * it; the XEP-0084 avatar stays as it was): refusing the vCard would break clients that never
 * heard of PEP. Sizes are the vcard module's `maxBytes` and pubsub's `maxPayloadBytes`. A conversion never triggers the
 * reverse one (the vcard API's writes are not watched; PEP publications made while converting an
 * account are ignored), and an avatar already in place is not written again.
 */
export default defineModule({
  name: 'avatar-conversion',
  description:
    'Converts between XEP-0084 avatars (PEP) and the vCard PHOTO of XEP-0153, both ways, for clients that know only one',
  specs: ['XEP-0398'],
  enabledByDefault: true,
  options: z
    .object({
      /**
       * PEP → vCard: 'open' converts only avatars whose data node's access model is `open`
       * (XEP-0398 §6: the vCard has no access control); 'always' converts every avatar.
       */
      fromPep: z.enum(['open', 'always']).default('open'),
      /** vCard → PEP: publish a vCard photo as the XEP-0084 avatar. */
      fromVcard: z.boolean().default(true),
    })
    .strict()
    .prefault({}),
  setup(ctx) {
    const vcardApi = ctx.use<VcardApi>('vcard');
    const pepApi = ctx.use<PepApi>('pep');
    // Listed after vcard and pep (modules/index.ts), so their APIs are here when they are on. Without
    // one of them there is nothing to convert: a configuration turning vcard or pep off need not
    // know about this module.
    if (!vcardApi || !pepApi) {
      ctx.log.info('vcard or pep is disabled: no avatar conversion (XEP-0398)');
      return;
    }
    const vcard: VcardApi = vcardApi;
    const pep: PepApi = pepApi;
    ctx.feature('account', NS_CONVERSION);
    /** Accounts whose conversion is under way: what it publishes or stores is not converted back. */
    const busy = new Set<string>();
    const guarded = async (owner: Jid, fn: () => Promise<void>) => {
      const key = owner.toBareString();
      if (busy.has(key)) return;
      busy.add(key);
      try {
        await fn();
      } finally {
        busy.delete(key);
      }
    };

    const pubsub = (...children: Element[]) => xml('pubsub', { xmlns: NS.pubsub }, children);
    /** The account's last metadata item's payload; undefined without node or item. */
    const currentMetadata = async (owner: Jid): Promise<Element | undefined> => {
      try {
        const res = await pep.ownRequest(
          owner,
          'get',
          pubsub(xml('items', { node: METADATA, max_items: '1' })),
        );
        return res?.getChild('items', NS.pubsub)?.getChild('item', NS.pubsub)?.getChild('metadata', METADATA);
      } catch (err) {
        if (err instanceof StanzaError && err.condition === 'item-not-found') return undefined;
        throw err;
      }
    };
    /** A node's access model; undefined when the node does not exist. */
    const accessModel = async (owner: Jid, node: string): Promise<string | undefined> => {
      try {
        const res = await pep.ownRequest(
          owner,
          'get',
          xml('pubsub', { xmlns: NS.pubsubOwner }, xml('configure', { node })),
        );
        const form = res?.getChild('configure', NS.pubsubOwner)?.getChild('x', NS.dataForms);
        return form ? fieldValue(parseForm(form), 'pubsub#access_model') : undefined;
      } catch (err) {
        if (err instanceof StanzaError && err.condition === 'item-not-found') return undefined;
        throw err;
      }
    };

    // --- PEP → vCard (XEP-0398 §3.1) -------------------------------------------------------------

    ctx.onStop(
      pep.watch(DATA, {
        // XEP-0084 §4.1: a data item is the image, base64-encoded. Anything else cannot be shown.
        validate(_account, payload) {
          if (!payload?.is('data', DATA))
            throw invalidPayload(`an avatar data item is <data xmlns='${DATA}'/>`);
          const bytes = decodeBase64(payload.text());
          if (!bytes || bytes.length === 0) throw invalidPayload('the avatar data is not base64');
        },
      }),
    );

    const photoOf = (card: Element | undefined) => card?.getChild('PHOTO', NS.vcard);
    const withPhoto = (card: Element | undefined, photo: Element | undefined): Element => {
      const out = card ? card.clone() : xml('vCard', { xmlns: NS.vcard });
      out.removeChildren('PHOTO', NS.vcard);
      if (photo) out.append(photo);
      return out;
    };

    /** The avatar id of an account's metadata item (the first `<info/>` without a URL). */
    const avatarIdOf = (metadata: Element | undefined) =>
      metadata
        ?.getChildren('info', METADATA)
        .find((i) => i.attrs.url === undefined)
        ?.attrs.id?.toLowerCase();
    /** The avatar id before a metadata publication under way, by account. */
    const avatarBefore = new Map<string, string | undefined>();

    async function pepToVcard(
      owner: Jid,
      metadata: Element | undefined,
      previous: string | undefined,
    ): Promise<void> {
      if (!metadata?.is('metadata', METADATA)) return;
      const infos = metadata.getChildren('info', METADATA);
      const card = await vcard.get(owner);
      if (infos.length === 0) {
        // XEP-0084 §4.5: the avatar was disabled, and the vCard's photo goes with it if it was that
        // avatar (a photo of the vCard's own is left alone).
        if (photoOf(card) && previous && (await vcard.photoHash(owner)) === previous)
          await vcard.set(owner, withPhoto(card, undefined));
        return;
      }
      // §3.1: the info element that does not point to an external URL.
      const info = infos.find((i) => i.attrs.url === undefined);
      const id = info?.attrs.id?.toLowerCase();
      if (!info || !id) return;
      if (ctx.options.fromPep === 'open' && (await accessModel(owner, DATA)) !== 'open') {
        ctx.log.debug(
          { owner: owner.toString() },
          'avatar not converted to the vCard: its nodes are not open',
        );
        return;
      }
      if ((await vcard.photoHash(owner)) === id) return; // already there
      let data: Element | undefined;
      try {
        const res = await pep.ownRequest(
          owner,
          'get',
          pubsub(xml('items', { node: DATA }, xml('item', { id }))),
        );
        data = res?.getChild('items', NS.pubsub)?.getChild('item', NS.pubsub)?.getChild('data', DATA);
      } catch (err) {
        if (!(err instanceof StanzaError && err.condition === 'item-not-found')) throw err;
      }
      const bytes = data && decodeBase64(data.text());
      const image = bytes && sniffImage(bytes);
      // §3.1: the image's SHA-1 must be its id.
      if (!bytes || !image || sha1(bytes) !== id) {
        ctx.log.info(
          { owner: owner.toString(), id },
          'avatar not converted to the vCard: missing, mismatching or not an image',
        );
        return;
      }
      const photo = xml(
        'PHOTO',
        { xmlns: NS.vcard },
        xml('TYPE', null, image.type),
        xml('BINVAL', null, bytes.toString('base64')),
      );
      try {
        await vcard.set(owner, withPhoto(card, photo));
      } catch (err) {
        if (!(err instanceof StanzaError)) throw err;
        ctx.log.info({ owner: owner.toString(), err: err.message }, 'avatar not converted to the vCard');
      }
    }

    ctx.onStop(
      pep.watch(METADATA, {
        async validate(account) {
          if (busy.has(account.toBareString())) return;
          avatarBefore.set(account.toBareString(), avatarIdOf(await currentMetadata(account)));
        },
        published(account, item) {
          const key = account.toBareString();
          const previous = avatarBefore.get(key);
          avatarBefore.delete(key);
          return guarded(account, () => pepToVcard(account, item.payload, previous));
        },
      }),
    );

    // --- vCard → PEP (XEP-0398 §3.2) -------------------------------------------------------------

    if (!ctx.options.fromVcard) return;

    /** A vCard's photo as an avatar: undefined without one (or with only an EXTVAL link). */
    const avatarOf = (card: Element): { bytes: Buffer; image: ImageInfo } | undefined => {
      const binval = photoOf(card)?.getChild('BINVAL', NS.vcard);
      if (!binval || binval.text().trim() === '') return undefined;
      const bytes = decodeBase64(binval.text());
      if (!bytes) throw new StanzaError('bad-request', { text: 'PHOTO/BINVAL is not base64' });
      const image = sniffImage(bytes);
      // Not an image an avatar may be (IMAGE_TYPES), or too large for a PEP item: not converted.
      if (!image || Buffer.byteLength(dataItem(bytes).toString()) > pep.maxPayloadBytes) return undefined;
      return { bytes, image };
    };
    const dataItem = (bytes: Buffer) => xml('data', { xmlns: DATA }, bytes.toString('base64'));
    /** The previous photo hash of owners whose vCard set is under way. */
    const previous = new Map<string, string | undefined>();

    const publish = async (owner: Jid, node: string, id: string, payload: Element, open: boolean) => {
      const request = pubsub(xml('publish', { node }, xml('item', { id }, payload)));
      if (open) {
        const form = buildForm({
          type: 'submit',
          formType: PUBLISH_OPTIONS,
          fields: [{ var: 'pubsub#access_model', values: ['open'] }],
        });
        request.append(xml('publish-options', null, form));
      }
      await pep.ownRequest(owner, 'set', request);
    };

    async function vcardToPep(
      owner: Jid,
      card: Element,
      hash: string,
      photoBefore: string | undefined,
    ): Promise<void> {
      const avatar = avatarOf(card);
      const current = await currentMetadata(owner);
      const currentId = current?.getChildren('info', METADATA).find((i) => i.attrs.url === undefined)
        ?.attrs.id;
      if (!avatar) {
        // The photo that was the avatar was removed: so is the avatar (XEP-0084 §4.5).
        if (hash === '' && photoBefore && currentId === photoBefore)
          await publish(owner, METADATA, 'current', xml('metadata', { xmlns: METADATA }), false);
        return;
      }
      const id = sha1(avatar.bytes);
      if (currentId === id) return; // already the avatar
      const open = (await accessModel(owner, METADATA)) === undefined;
      await publish(
        owner,
        DATA,
        id,
        dataItem(avatar.bytes),
        open && (await accessModel(owner, DATA)) === undefined,
      );
      const { type, width, height } = avatar.image;
      const info = xml('info', {
        bytes: String(avatar.bytes.length),
        id,
        type,
        width: width === undefined ? undefined : String(width),
        height: height === undefined ? undefined : String(height),
      });
      await publish(owner, METADATA, id, xml('metadata', { xmlns: METADATA }, info), open);
    }

    ctx.onStop(
      vcard.watch({
        async validate(owner, card) {
          avatarOf(card); // bad-request for a photo that is not base64, before anything is stored
          previous.set(owner.toBareString(), await vcard.photoHash(owner));
        },
        changed(owner, card, hash) {
          const key = owner.toBareString();
          const photoBefore = previous.get(key);
          previous.delete(key);
          return guarded(owner, () => vcardToPep(owner, card, hash, photoBefore));
        },
      }),
    );
  },
});
