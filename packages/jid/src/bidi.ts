// APPROX: the Bidi Rule (RFC 5893 §2), required by RFC 8265 for usernames and by IDNA2008 for domain
// labels. JavaScript exposes no Bidi_Class, so classes are derived from scripts and general categories:
// R/AL = letters of right-to-left scripts, AN = Arabic-Indic digits, EN = ASCII and extended
// Arabic-Indic digits, NSM = non-spacing/enclosing marks, L = any other letter, digit or spacing mark.
// Everything else (ASCII punctuation and symbols) is treated as neutral (ON/ES/CS/ET).
import { JidError, type JidPart } from './jid-error.js';

const RTL_LETTER =
  /[\p{Script=Hebrew}\p{Script=Arabic}\p{Script=Syriac}\p{Script=Thaana}\p{Script=Nko}\p{Script=Samaritan}\p{Script=Mandaic}\p{Script=Adlam}\p{Script=Hanifi_Rohingya}\p{Script=Mende_Kikakui}\p{Script=Old_Hungarian}\p{Script=Imperial_Aramaic}\p{Script=Phoenician}\p{Script=Kharoshthi}\p{Script=Avestan}]/u;
const LETTERISH = /[\p{L}\p{Nd}\p{Mc}\p{Nl}\p{No}]/u;
const NSM = /[\p{Mn}\p{Me}]/u;

type BidiClass = 'R' | 'AN' | 'EN' | 'NSM' | 'L' | 'ON';

function bidiClass(cp: number): BidiClass {
  if (cp < 0x80) {
    if (cp >= 0x30 && cp <= 0x39) return 'EN';
    return (cp | 0x20) >= 0x61 && (cp | 0x20) <= 0x7a ? 'L' : 'ON';
  }
  if ((cp >= 0x0660 && cp <= 0x0669) || cp === 0x066b || cp === 0x066c) return 'AN';
  if (cp >= 0x06f0 && cp <= 0x06f9) return 'EN';
  const ch = String.fromCodePoint(cp);
  if (NSM.test(ch)) return 'NSM';
  if (RTL_LETTER.test(ch)) return LETTERISH.test(ch) ? 'R' : 'ON';
  return LETTERISH.test(ch) ? 'L' : 'ON';
}

/** Throws a JidError when a string containing right-to-left characters breaks the Bidi Rule. */
export function enforceBidiRule(cps: readonly number[], part: JidPart): void {
  let hasRtl = false;
  for (const cp of cps) {
    if (cp < 0x0590) continue; // nothing below Hebrew is R, AL or AN
    const c = bidiClass(cp);
    if (c === 'R' || c === 'AN') {
      hasRtl = true;
      break;
    }
  }
  if (!hasRtl) return;
  const classes = cps.map(bidiClass);
  const fail = (why: string): never => {
    throw new JidError(part, 'bidi-rule', `violates the Bidi Rule of RFC 5893: ${why}`);
  };
  if (classes[0] !== 'R') fail('a right-to-left string must start with a right-to-left letter');
  if (classes.includes('L')) fail('a right-to-left string must not contain left-to-right letters');
  let last = classes.length - 1;
  while (last > 0 && classes[last] === 'NSM') last--;
  const end = classes[last];
  if (end !== 'R' && end !== 'EN' && end !== 'AN')
    fail('a right-to-left string must end with a right-to-left letter or a digit');
  if (classes.includes('EN') && classes.includes('AN'))
    fail('European and Arabic-Indic digits must not be mixed');
}
