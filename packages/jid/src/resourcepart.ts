// Resourcepart preparation and enforcement: RFC 7622 §3.4 (PRECIS OpaqueString, RFC 8265 §4.2).
import { JidError } from './jid-error.js';
import { enforceClass } from './precis.js';
import { describeAscii, MAX_PART_OCTETS, utf8Length } from './unicode.js';

const NON_ASCII_SPACE = /[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]/g; // \p{Zs} minus U+0020

/**
 * Prepares and enforces a resourcepart; returns its normalised form (case preserved) or throws a
 * JidError. Printable-ASCII input (space included) takes a fast path with no normalisation.
 */
export function prepareResourcepart(raw: string): string {
  const len = raw.length;
  if (len === 0) throw new JidError('resource', 'empty', 'is empty');
  let ascii = true;
  for (let i = 0; i < len; i++) {
    const c = raw.charCodeAt(i);
    if (c > 0x7e) {
      ascii = false;
      break;
    }
    if (c < 0x20 || c === 0x7f) {
      throw new JidError(
        'resource',
        'disallowed-character',
        `contains a control character (${describeAscii(c)})`,
      );
    }
  }
  if (ascii) {
    if (len > MAX_PART_OCTETS) throw tooLong(len);
    return raw;
  }
  // RFC 8265 §4.2.2 order: (no width mapping), additional mapping of non-ASCII spaces to U+0020,
  // (case preserved), NFC, (no directionality rule).
  const s = raw.replace(NON_ASCII_SPACE, ' ').normalize('NFC');
  enforceClass(s, 'freeform', 'resource');
  const octets = utf8Length(s);
  if (octets > MAX_PART_OCTETS) throw tooLong(octets);
  return s;
}

function tooLong(octets: number): JidError {
  return new JidError(
    'resource',
    'too-long',
    `is ${octets} octets long, more than the ${MAX_PART_OCTETS} allowed`,
  );
}
