import { SaslFailure } from './sasl-failure.js';

/*
 * SASLprep (RFC 4013), the stringprep (RFC 3454) profile for user names and passwords.
 * Own implementation; what it does and where it approximates:
 *
 *  1. Map (RFC 4013 §2.1): RFC 3454 table C.1.2 (non-ASCII spaces) -> U+0020, table B.1
 *     ("commonly mapped to nothing") -> removed. Both tables are small and copied exactly.
 *  2. Normalize (§2.2): Unicode NFKC via String.prototype.normalize. Note: the engine's Unicode
 *     version is used, not Unicode 3.2 as stringprep specifies; the results differ only for
 *     characters assigned after 3.2, for which the RFC 3454 answer was "unassigned" anyway.
 *  3. Prohibit (§2.3): tables C.1.2, C.2.1, C.2.2, C.3, C.4, C.5 (lone surrogates), C.6, C.7,
 *     C.8, C.9 — all copied exactly as ranges below.
 *  4. Bidi (§2.4, RFC 3454 §6): table D.1 (RandALCat) is copied exactly; table D.2 (LCat, several
 *     hundred ranges) is approximated as "letters (\p{L}), spacing marks (\p{Mc}) and letter
 *     numbers (\p{Nl}) that are not RandALCat", which is what D.2 consists of for practically all
 *     scripts in use.
 *  5. Unassigned code points (§2.5): for "stored strings" (allowUnassigned: false) code points
 *     that are unassigned in the engine's Unicode version (\p{Cn}) are refused; RFC 3454 table
 *     A.1 (unassigned in Unicode 3.2) is not reproduced. Queries (the default) allow them.
 */

type Ranges = readonly (readonly [number, number])[];

function inRanges(cp: number, ranges: Ranges): boolean {
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const r = ranges[mid]!;
    if (cp < r[0]) hi = mid - 1;
    else if (cp > r[1]) lo = mid + 1;
    else return true;
  }
  return false;
}

// RFC 3454 C.1.2 Non-ASCII space characters
// prettier-ignore
const C12: Ranges = [
  [0x00a0, 0x00a0], [0x1680, 0x1680], [0x2000, 0x200b], [0x202f, 0x202f], [0x205f, 0x205f],
  [0x3000, 0x3000],
];
// RFC 3454 B.1 Commonly mapped to nothing
// prettier-ignore
const B1: Ranges = [
  [0x00ad, 0x00ad], [0x034f, 0x034f], [0x1806, 0x1806], [0x180b, 0x180d], [0x200b, 0x200d],
  [0x2060, 0x2060], [0xfe00, 0xfe0f], [0xfeff, 0xfeff],
];
// Union of the prohibited tables C.1.2, C.2.1, C.2.2, C.3, C.4, C.5, C.6, C.7, C.8, C.9 (sorted, merged)
// prettier-ignore
const PROHIBITED: Ranges = [
  [0x0000, 0x001f], // C.2.1
  [0x007f, 0x009f], // C.2.1, C.2.2
  [0x00a0, 0x00a0], // C.1.2
  [0x0340, 0x0341], // C.8
  [0x06dd, 0x06dd], // C.2.2
  [0x070f, 0x070f], // C.2.2
  [0x1680, 0x1680], // C.1.2
  [0x180e, 0x180e], // C.2.2
  [0x2000, 0x200f], // C.1.2 (2000-200B), C.2.2 (200C-200D), C.8 (200E-200F)
  [0x2028, 0x202f], // C.2.2 (2028-2029), C.8 (202A-202E), C.1.2 (202F)
  [0x205f, 0x2063], // C.1.2 (205F), C.2.2 (2060-2063)
  [0x206a, 0x206f], // C.2.2, C.8
  [0x2ff0, 0x2ffb], // C.7
  [0x3000, 0x3000], // C.1.2
  [0xd800, 0xdfff], // C.5 (only reachable as lone surrogates)
  [0xe000, 0xf8ff], // C.3
  [0xfdd0, 0xfdef], // C.4
  [0xfeff, 0xfeff], // C.2.2
  [0xfff9, 0xffff], // C.2.2 (FFF9-FFFC), C.6 (FFF9-FFFD), C.4 (FFFE-FFFF)
  [0x1d173, 0x1d17a], // C.2.2
  [0x1fffe, 0x1ffff], [0x2fffe, 0x2ffff], [0x3fffe, 0x3ffff], [0x4fffe, 0x4ffff], [0x5fffe, 0x5ffff],
  [0x6fffe, 0x6ffff], [0x7fffe, 0x7ffff], [0x8fffe, 0x8ffff], [0x9fffe, 0x9ffff], [0xafffe, 0xaffff],
  [0xbfffe, 0xbffff], [0xcfffe, 0xcffff], [0xdfffe, 0xdffff], // C.4
  [0xe0001, 0xe0001], [0xe0020, 0xe007f], // C.9
  [0xefffe, 0xeffff], // C.4
  [0xf0000, 0x10ffff], // C.3 (F0000-FFFFD, 100000-10FFFD), C.4 (FFFFE-FFFFF, 10FFFE-10FFFF)
];
// RFC 3454 D.1 Characters with bidirectional property "R" or "AL"
// prettier-ignore
const D1: Ranges = [
  [0x05be, 0x05be], [0x05c0, 0x05c0], [0x05c3, 0x05c3], [0x05d0, 0x05ea], [0x05f0, 0x05f4],
  [0x061b, 0x061b], [0x061f, 0x061f], [0x0621, 0x063a], [0x0640, 0x064a], [0x066d, 0x066f],
  [0x0671, 0x06d5], [0x06dd, 0x06dd], [0x06e5, 0x06e6], [0x06fa, 0x06fe], [0x0700, 0x070d],
  [0x0710, 0x0710], [0x0712, 0x072c], [0x0780, 0x07a5], [0x07b1, 0x07b1], [0x200f, 0x200f],
  [0xfb1d, 0xfb1d], [0xfb1f, 0xfb28], [0xfb2a, 0xfb36], [0xfb38, 0xfb3c], [0xfb3e, 0xfb3e],
  [0xfb40, 0xfb41], [0xfb43, 0xfb44], [0xfb46, 0xfbb1], [0xfbd3, 0xfd3d], [0xfd50, 0xfd8f],
  [0xfd92, 0xfdc7], [0xfdf0, 0xfdfc], [0xfe70, 0xfe74], [0xfe76, 0xfefc],
];
const LCAT_APPROX = /[\p{L}\p{Mc}\p{Nl}]/u;
const UNASSIGNED = /\p{Cn}/u;

export interface SaslprepOptions {
  /** false for "stored strings" (RFC 3454 §7): unassigned code points are refused. Default true (query). */
  allowUnassigned?: boolean;
}

/** Applies SASLprep; throws SaslFailure('malformed-request') for prohibited output or bidi violations. */
export function saslprep(input: string, opts: SaslprepOptions = {}): string {
  const fail = (why: string): never => {
    throw new SaslFailure('malformed-request', `SASLprep: ${why}`);
  };
  // 1. Map
  let mapped = '';
  for (const ch of input) {
    const cp = ch.codePointAt(0)!;
    if (inRanges(cp, C12)) mapped += ' ';
    else if (!inRanges(cp, B1)) mapped += ch;
  }
  // 2. Normalize (lone surrogates survive normalize() unchanged and are caught below)
  const normalized = mapped.normalize('NFKC');
  // 3. Prohibit, 4. Bidi, 5. Unassigned
  let hasRandAL = false;
  let hasL = false;
  const cps: number[] = [];
  for (const ch of normalized) {
    const cp = ch.codePointAt(0)!;
    cps.push(cp);
    if (inRanges(cp, PROHIBITED))
      fail(`prohibited code point U+${cp.toString(16).toUpperCase().padStart(4, '0')}`);
    if (opts.allowUnassigned === false && UNASSIGNED.test(ch)) fail('unassigned code point');
    if (inRanges(cp, D1)) hasRandAL = true;
    else if (LCAT_APPROX.test(ch)) hasL = true;
  }
  if (hasRandAL) {
    if (hasL) fail('mixes right-to-left and left-to-right characters');
    if (!inRanges(cps[0]!, D1) || !inRanges(cps[cps.length - 1]!, D1)) {
      fail('right-to-left string must start and end with a right-to-left character');
    }
  }
  return normalized;
}
