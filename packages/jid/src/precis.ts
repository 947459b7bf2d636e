// PRECIS string classes (RFC 8264 §9) evaluated per code point with JavaScript's Unicode property
// escapes (so the Unicode version is the one of the running engine), plus the contextual rules of
// RFC 5892 Appendix A that PRECIS reuses. Approximations are marked "APPROX".
import { JidError, type JidPart } from './jid-error.js';
import { describeCodePoint } from './unicode.js';

/** Which PRECIS string class a part must conform to. */
export type StringClass = 'identifier' | 'freeform';

// RFC 5892 §2.6 exceptions (F), reused by RFC 8264 §9.1.
const EXCEPTION_PVALID = new Set([0x00df, 0x03c2, 0x06fd, 0x06fe, 0x0f0b, 0x3007]);
const EXCEPTION_DISALLOWED = new Set([
  0x0640, 0x07fa, 0x302e, 0x302f, 0x3031, 0x3032, 0x3033, 0x3034, 0x3035, 0x303b,
]);
const CONTEXTO = new Set([0x00b7, 0x0375, 0x05f3, 0x05f4, 0x30fb]);

const UNASSIGNED = /\p{Cn}/u;
const IGNORABLE = /[\p{Default_Ignorable_Code_Point}\p{Noncharacter_Code_Point}]/u;
const CONTROL = /\p{Cc}/u;
const LETTER_DIGIT = /[\p{Ll}\p{Lu}\p{Lo}\p{Nd}\p{Lm}\p{Mn}\p{Mc}]/u;
const OTHER_LETTER_DIGIT = /[\p{Lt}\p{Nl}\p{No}\p{Me}]/u;
const SPACE = /\p{Zs}/u;
const SYMBOL = /\p{S}/u;
const PUNCTUATION = /\p{P}/u;
const GREEK = /\p{Script=Greek}/u;
const HEBREW = /\p{Script=Hebrew}/u;
const KANA_HAN = /[\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Han}]/u;

// APPROX: code points with Canonical_Combining_Class = Virama (9), for the CONTEXTJ rules. JavaScript
// exposes no combining classes; this lists the viramas of the major Brahmic scripts.
const VIRAMAS = new Set([
  0x094d, 0x09cd, 0x0a4d, 0x0acd, 0x0b4d, 0x0bcd, 0x0c4d, 0x0ccd, 0x0d3b, 0x0d3c, 0x0d4d, 0x0dca, 0x0e3a,
  0x0eba, 0x0f84, 0x1039, 0x103a, 0x1714, 0x1715, 0x1734, 0x17d2, 0x1a60, 0x1b44, 0x1baa, 0x1bab, 0x1bf2,
  0x1bf3, 0x2d7f, 0xa806, 0xa82c, 0xa8c4, 0xa953, 0xa9c0, 0xaaf6, 0xabed, 0x10a3f, 0x11046, 0x1107f, 0x110b9,
  0x11133, 0x11134, 0x111c0, 0x11235, 0x112ea, 0x1134d, 0x11442, 0x114c2, 0x115bf, 0x1163f, 0x116b6, 0x1172b,
  0x11839, 0x119e0, 0x11a34, 0x11a47, 0x11a99, 0x11c3f, 0x11d44, 0x11d45, 0x11d97,
]);

function isOldHangulJamo(cp: number): boolean {
  // Hangul_Syllable_Type L, V or T (RFC 5892 §2.9); NFC has already composed modern syllables.
  return (cp >= 0x1100 && cp <= 0x11ff) || (cp >= 0xa960 && cp <= 0xa97f) || (cp >= 0xd7b0 && cp <= 0xd7ff);
}

function hasCompat(ch: string): boolean {
  return ch.normalize('NFKC') !== ch;
}

type Verdict = 'valid' | 'contextj' | 'contexto' | string; // any other string: the reason it is disallowed

/** Derived property of one code point in a string class (RFC 8264 §8, in its order). */
function classify(cp: number, ch: string, cls: StringClass): Verdict {
  if (EXCEPTION_PVALID.has(cp)) return 'valid';
  if (EXCEPTION_DISALLOWED.has(cp)) return 'disallowed by RFC 5892 exceptions';
  if (CONTEXTO.has(cp) || (cp >= 0x0660 && cp <= 0x0669) || (cp >= 0x06f0 && cp <= 0x06f9)) return 'contexto';
  if (UNASSIGNED.test(ch)) return 'unassigned';
  if (cp >= 0x21 && cp <= 0x7e) return 'valid';
  if (cp === 0x200c || cp === 0x200d) return 'contextj';
  if (isOldHangulJamo(cp)) return 'old Hangul jamo';
  if (IGNORABLE.test(ch)) return 'default-ignorable or noncharacter';
  if (CONTROL.test(ch)) return 'control character';
  const free = cls === 'freeform';
  if (hasCompat(ch)) return free ? 'valid' : 'compatibility character';
  if (LETTER_DIGIT.test(ch)) return 'valid';
  if (OTHER_LETTER_DIGIT.test(ch)) return free ? 'valid' : 'titlecase letter, letter number or other number';
  if (SPACE.test(ch)) return free ? 'valid' : 'space';
  if (SYMBOL.test(ch)) return free ? 'valid' : 'symbol';
  if (PUNCTUATION.test(ch)) return free ? 'valid' : 'punctuation';
  return cp >= 0xd800 && cp <= 0xdfff ? 'lone surrogate' : 'format, private-use or separator character';
}

function contextOk(cps: readonly number[], i: number, verdict: 'contextj' | 'contexto', s: string): boolean {
  const cp = cps[i]!;
  const before = cps[i - 1];
  const after = cps[i + 1];
  if (verdict === 'contextj') {
    // RFC 5892 A.1/A.2: ZWNJ/ZWJ after a virama. APPROX: the ZWNJ joining-type alternative is not implemented.
    return before !== undefined && VIRAMAS.has(before);
  }
  switch (cp) {
    case 0x00b7: // A.3 MIDDLE DOT: between two 'l'
      return before === 0x6c && after === 0x6c;
    case 0x0375: // A.4 GREEK KERAIA: followed by Greek
      return after !== undefined && GREEK.test(String.fromCodePoint(after));
    case 0x05f3: // A.5/A.6 HEBREW GERESH / GERSHAYIM: preceded by Hebrew
    case 0x05f4:
      return before !== undefined && HEBREW.test(String.fromCodePoint(before));
    case 0x30fb: // A.7 KATAKANA MIDDLE DOT: some Hiragana, Katakana or Han in the string
      return cps.some((c) => c !== 0x30fb && KANA_HAN.test(String.fromCodePoint(c)));
    default:
      // A.8/A.9 Arabic-Indic digits: not mixed with extended Arabic-Indic digits (and vice versa)
      if (cp <= 0x0669) return !/[\u06f0-\u06f9]/.test(s);
      return !/[\u0660-\u0669]/.test(s);
  }
}

/**
 * Throws a JidError unless every code point of `s` (already mapped and normalised) is allowed in the
 * string class, including contextual rules. Returns the code points (used by the Bidi check).
 */
export function enforceClass(s: string, cls: StringClass, part: JidPart): number[] {
  const cps: number[] = [];
  for (const ch of s) cps.push(ch.codePointAt(0)!);
  for (let i = 0; i < cps.length; i++) {
    const cp = cps[i]!;
    const verdict = classify(cp, String.fromCodePoint(cp), cls);
    if (verdict === 'valid') continue;
    if (verdict === 'contextj' || verdict === 'contexto') {
      if (contextOk(cps, i, verdict, s)) continue;
      throw new JidError(
        part,
        'context-rule',
        `contains ${describeCodePoint(cp)} outside its permitted context (RFC 5892 Appendix A)`,
      );
    }
    throw new JidError(
      part,
      'disallowed-character',
      `contains disallowed character ${describeCodePoint(cp)} (${verdict})`,
    );
  }
  return cps;
}
