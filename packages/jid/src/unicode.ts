// Small Unicode helpers shared by the part preparers. No Node APIs: this runs in browsers too.

/** Number of octets `s` takes in UTF-8 (a lone surrogate counts as 3, as WTF-8 would encode it). */
export function utf8Length(s: string): number {
  let n = 0;
  const len = s.length;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < len && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/** Maximum size of each JID part in octets of UTF-8 (RFC 7622 §3.2, §3.3, §3.4). */
export const MAX_PART_OCTETS = 1023;

/**
 * True when every code unit of `s` is in 0x21..0x7E (printable ASCII without space).
 * Strings passing this need neither width mapping nor Unicode normalisation.
 */
export function isVisibleAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

// Fullwidth and halfwidth forms (decomposition types <wide> and <narrow>) live in U+FF01..U+FFEE,
// plus U+3000 IDEOGRAPHIC SPACE (<wide> U+0020). Their NFKC form is exactly their width decomposition.
const WIDTH_FORMS = /[\u3000\uff01-\uffee]/g;

/** PRECIS width mapping rule (RFC 8264 §9.4, UAX #11): fullwidth/halfwidth → decomposition. */
export function mapWidth(s: string): string {
  WIDTH_FORMS.lastIndex = 0;
  if (!WIDTH_FORMS.test(s)) return s;
  return s.replace(WIDTH_FORMS, (c) => c.normalize('NFKC'));
}

/** Text for a code point in an error message: `'x' (U+0078)`, or just `U+0007` when not printable. */
export function describeCodePoint(cp: number): string {
  const hex = `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
  const ch = String.fromCodePoint(cp);
  if (/[\p{C}\p{Z}\p{Default_Ignorable_Code_Point}\p{M}]/u.test(ch)) return hex;
  return `'${ch}' (${hex})`;
}

/** Like describeCodePoint, but a visible ASCII character is shown bare: `'@'`. */
export function describeAscii(c: number): string {
  return c > 0x20 && c < 0x7f ? `'${String.fromCharCode(c)}'` : describeCodePoint(c);
}
