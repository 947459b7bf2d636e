// Domainpart preparation and enforcement: RFC 7622 §3.2. IDNA2008 is approximated (see README):
// labels are lowercased, width-mapped and NFC-normalised, ASCII is restricted to letters, digits,
// hyphen and underscore, non-ASCII code points follow the PRECIS IdentifierClass rules (close to
// IDNA2008's PVALID set), and A-labels ("xn--") are kept as they are (not converted to U-labels).
import { enforceBidiRule } from './bidi.js';
import { JidError } from './jid-error.js';
import { enforceClass } from './precis.js';
import { describeAscii, MAX_PART_OCTETS, mapWidth, utf8Length } from './unicode.js';

const MAX_LABEL_OCTETS = 63;

/** ASCII allowed in a label: a-z 0-9 '-' '_' (uppercase is lowercased first). Underscore: APPROX, lenient. */
function isLabelAscii(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f;
}

/** Prepares and enforces a domainpart; returns its normalised form or throws a JidError. */
export function prepareDomainpart(raw: string): string {
  const len = raw.length;
  if (len === 0) throw new JidError('domain', 'empty', 'is empty');
  if (raw.charCodeAt(0) === 0x5b /* [ */) return prepareIpv6Literal(raw);
  let ascii = true;
  let upper = false;
  for (let i = 0; i < len; i++) {
    const c = raw.charCodeAt(i);
    if (c > 0x7e) {
      ascii = false;
      break;
    }
    if (c >= 0x41 && c <= 0x5a) upper = true;
    else if (c !== 0x2e && !isLabelAscii(c)) throw forbidden(c);
  }
  let s = ascii ? (upper ? raw.toLowerCase() : raw) : normaliseUnicode(raw);
  if (s.charCodeAt(s.length - 1) === 0x2e) s = s.slice(0, -1); // RFC 7622 §3.2: strip one trailing dot
  if (s.length === 0) throw new JidError('domain', 'empty', 'is empty once its trailing dot is removed');
  if (ascii) {
    if (s.length > MAX_PART_OCTETS) throw tooLong(s.length);
    checkAsciiLabels(s);
  } else {
    const octets = utf8Length(s);
    if (octets > MAX_PART_OCTETS) throw tooLong(octets);
    checkUnicodeLabels(s);
  }
  return s;
}

function normaliseUnicode(raw: string): string {
  let s = mapWidth(raw).toLowerCase().normalize('NFC');
  for (let i = 0; i < 3; i++) {
    const again = s.toLowerCase().normalize('NFC');
    if (again === s) break;
    s = again;
  }
  return s;
}

function checkAsciiLabels(s: string): void {
  let start = 0;
  let numeric = true; // current label is all digits so far
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 0x2e;
    if (c === 0x2e) {
      const n = i - start;
      if (n === 0) throw emptyLabel();
      if (n > MAX_LABEL_OCTETS) throw labelTooLong(s.slice(start, i), n);
      if (i === s.length && numeric) checkIpv4(s);
      start = i + 1;
      numeric = true;
    } else if (c < 0x30 || c > 0x39) numeric = false;
  }
}

function checkUnicodeLabels(s: string): void {
  const labels = s.split('.');
  for (const label of labels) {
    if (label.length === 0) throw emptyLabel();
    for (let i = 0; i < label.length; i++) {
      const c = label.charCodeAt(i);
      if (c < 0x80 && !isLabelAscii(c)) throw forbidden(c);
    }
    const octets = utf8Length(label);
    if (octets > MAX_LABEL_OCTETS) throw labelTooLong(label, octets);
    const cps = enforceClass(label, 'identifier', 'domain');
    enforceBidiRule(cps, 'domain'); // APPROX: per label; RFC 5893 rules 5-6 for LTR labels are not applied
  }
  if (/^[0-9]+$/.test(labels[labels.length - 1]!)) checkIpv4(s);
}

/** A domain whose last label is all digits must be a dotted-quad IPv4 address (RFC 7622 §3.2). */
function checkIpv4(s: string): void {
  const octets = s.split('.');
  const ok = octets.length === 4 && octets.every((o) => /^(0|[1-9][0-9]{0,2})$/.test(o) && Number(o) <= 255);
  if (!ok)
    throw new JidError(
      'domain',
      'invalid-ip-literal',
      `'${s}' is neither a valid IPv4 address nor a domain name`,
    );
}

function prepareIpv6Literal(raw: string): string {
  const inner = raw.charCodeAt(raw.length - 1) === 0x5d /* ] */ ? raw.slice(1, -1) : null;
  if (inner === null || !isIpv6(inner)) {
    throw new JidError(
      'domain',
      'invalid-ip-literal',
      `'${raw.length > 64 ? raw.slice(0, 64) + '…' : raw}' is not a valid bracketed IPv6 address`,
    );
  }
  return `[${inner.toLowerCase()}]`; // APPROX: not canonicalised per RFC 5952, only lowercased
}

const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;
const DOTTED_QUAD =
  /^(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$/;

/** RFC 4291 §2.2 text form (hex groups, one optional "::", optional trailing dotted quad); no zone id. */
export function isIpv6(s: string): boolean {
  if (s.length < 2 || s.length > 45) return false;
  const gap = s.indexOf('::');
  if (gap !== -1 && s.indexOf('::', gap + 1) !== -1) return false;
  const head = gap === -1 ? s : s.slice(0, gap);
  const tail = gap === -1 ? '' : s.slice(gap + 2);
  const groups = [...(head === '' ? [] : head.split(':')), ...(tail === '' ? [] : tail.split(':'))];
  let count = 0;
  for (let i = 0; i < groups.length; i++) {
    const g = groups[i]!;
    const isLast = i === groups.length - 1 && (gap === -1 || tail !== '');
    if (isLast && g.includes('.')) {
      if (!DOTTED_QUAD.test(g)) return false;
      count += 2;
    } else if (HEX_GROUP.test(g)) count += 1;
    else return false;
  }
  return gap === -1 ? count === 8 : count <= 7;
}

function forbidden(c: number): JidError {
  if (c <= 0x20 || c === 0x7f) {
    return new JidError(
      'domain',
      'disallowed-character',
      `contains ${c === 0x20 ? 'a space' : 'a control character'} (${describeAscii(c)})`,
    );
  }
  return new JidError('domain', 'forbidden-character', `contains forbidden character ${describeAscii(c)}`);
}

function emptyLabel(): JidError {
  return new JidError('domain', 'empty-label', 'contains an empty label');
}

function labelTooLong(label: string, octets: number): JidError {
  return new JidError(
    'domain',
    'label-too-long',
    `label '${label.slice(0, 20)}…' is ${octets} octets long, more than the ${MAX_LABEL_OCTETS} allowed`,
  );
}

function tooLong(octets: number): JidError {
  return new JidError(
    'domain',
    'too-long',
    `is ${octets} octets long, more than the ${MAX_PART_OCTETS} allowed`,
  );
}
