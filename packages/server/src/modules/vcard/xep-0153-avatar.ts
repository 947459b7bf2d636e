import { createHash } from 'node:crypto';
import { xml, type Element } from '@natter/xml';
import { NS, StanzaError } from '@natter/protocol';

/** Stored when a vCard's photo cannot be hashed (an EXTVAL link): presence is left as the client sent it. */
export const UNKNOWN_HASH = '-';

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * XEP-0153 §3.1: the hash a vCard advertises in presence: SHA-1 (lower-case hex) of the decoded
 * PHOTO/BINVAL, '' when the vCard has no photo, UNKNOWN_HASH when the photo is only a link.
 * Throws bad-request for BINVAL that is not base64 (whitespace is ignored, XEP-0153 §4.5).
 */
export function photoHash(vcard: Element): string {
  const photo = vcard.getChild('PHOTO', NS.vcard);
  if (!photo) return '';
  const binval = photo.getChild('BINVAL', NS.vcard);
  if (!binval) return photo.getChild('EXTVAL', NS.vcard) ? UNKNOWN_HASH : '';
  const b64 = binval.text().replace(/\s+/g, '');
  if (b64 === '') return '';
  if (b64.length % 4 !== 0 || !BASE64.test(b64))
    throw new StanzaError('bad-request', { text: 'PHOTO/BINVAL is not base64' });
  return createHash('sha1').update(Buffer.from(b64, 'base64')).digest('hex');
}

/**
 * Keeps `<x xmlns='vcard-temp:x:update'><photo>hash</photo></x>` in a presence consistent with
 * what the server knows (`hash`: '' for no photo): adds it when the client sent none, fills an
 * empty update element (client not ready, §4.1 rule 2) and replaces a stale or empty photo.
 * Mutates `presence` (the user's own outbound stanza, before routing).
 */
export function applyPhotoHash(presence: Element, hash: string): void {
  let x = presence.getChild('x', NS.vcardUpdate);
  const current = x?.getChild('photo', NS.vcardUpdate);
  if (current && current.text().trim().toLowerCase() === hash) return;
  if (!x) {
    x = xml('x', { xmlns: NS.vcardUpdate });
    presence.append(x);
  }
  x.removeChildren('photo', NS.vcardUpdate);
  x.append(xml('photo', { xmlns: NS.vcardUpdate }, hash || undefined));
}
