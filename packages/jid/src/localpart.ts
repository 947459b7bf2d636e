// Localpart preparation and enforcement: RFC 7622 §3.3 (PRECIS UsernameCaseMapped, RFC 8265 §3.3).
import { enforceBidiRule } from './bidi.js';
import { JidError } from './jid-error.js';
import { enforceClass } from './precis.js';
import { describeAscii, MAX_PART_OCTETS, mapWidth, utf8Length } from './unicode.js';

/** True for the characters RFC 7622 §3.3.1 forbids in a localpart: " & ' / : < > @ */
function isForbiddenAscii(c: number): boolean {
  return (
    c === 0x22 ||
    c === 0x26 ||
    c === 0x27 ||
    c === 0x2f ||
    c === 0x3a ||
    c === 0x3c ||
    c === 0x3e ||
    c === 0x40
  );
}

/**
 * Prepares and enforces a localpart; returns its normalised form or throws a JidError.
 * Printable-ASCII input takes a fast path with no Unicode normalisation.
 */
export function prepareLocalpart(raw: string): string {
  const len = raw.length;
  if (len === 0) throw new JidError('local', 'empty', 'is empty');
  let ascii = true;
  let upper = false;
  for (let i = 0; i < len; i++) {
    const c = raw.charCodeAt(i);
    if (c > 0x7e) {
      ascii = false;
      break;
    }
    if (c <= 0x20 || c === 0x7f) throw forbidden(c);
    if (isForbiddenAscii(c)) throw forbidden(c);
    if (c >= 0x41 && c <= 0x5a) upper = true;
  }
  if (ascii) {
    if (len > MAX_PART_OCTETS) throw tooLong(len);
    return upper ? raw.toLowerCase() : raw;
  }
  return prepareUnicode(raw);
}

function prepareUnicode(raw: string): string {
  // RFC 8265 §3.3.2 order: width mapping, (no additional mapping), case mapping, NFC, directionality.
  let s = mapWidth(raw).toLowerCase().normalize('NFC');
  // Case mapping after NFC is not always a fixed point (RFC 8264 §7); iterate so that preparing an
  // already prepared localpart is the identity.
  for (let i = 0; i < 3; i++) {
    const again = s.toLowerCase().normalize('NFC');
    if (again === s) break;
    s = again;
  }
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80 && (c <= 0x20 || c === 0x7f || isForbiddenAscii(c))) throw forbidden(c);
  }
  const cps = enforceClass(s, 'identifier', 'local');
  enforceBidiRule(cps, 'local');
  const octets = utf8Length(s);
  if (octets > MAX_PART_OCTETS) throw tooLong(octets);
  return s;
}

function forbidden(c: number): JidError {
  if (isForbiddenAscii(c))
    return new JidError('local', 'forbidden-character', `contains forbidden character ${describeAscii(c)}`);
  const what = c === 0x20 ? 'a space' : 'a control character';
  return new JidError('local', 'disallowed-character', `contains ${what} (${describeAscii(c)})`);
}

function tooLong(octets: number): JidError {
  return new JidError(
    'local',
    'too-long',
    `is ${octets} octets long, more than the ${MAX_PART_OCTETS} allowed`,
  );
}
