// XEP-0106 JID Escaping of localparts (for display and gateways; never applied to domain/resource).
import { JidError } from './jid-error.js';

const ESCAPES: Record<string, string> = {
  ' ': '\\20',
  '"': '\\22',
  '&': '\\26',
  "'": '\\27',
  '/': '\\2f',
  ':': '\\3a',
  '<': '\\3c',
  '>': '\\3e',
  '@': '\\40',
  '\\': '\\5c',
};
const UNESCAPES: Record<string, string> = Object.fromEntries(
  Object.entries(ESCAPES).map(([c, e]) => [e.slice(1), c]),
);

// A backslash is escaped only when it starts one of the ten escape sequences (XEP-0106 §4.1 rule 7).
const TO_ESCAPE = /[ "&'/:<>@]|\\(?=20|22|26|27|2f|3a|3c|3e|40|5c)/g;
const TO_UNESCAPE = /\\(20|22|26|27|2f|3a|3c|3e|40|5c)/g;

/**
 * Escapes the characters a localpart cannot contain (space " & ' / : < > @, and a backslash that
 * would otherwise read as an escape). Throws a JidError for a leading or trailing space, which
 * XEP-0106 forbids escaping. The result still has to pass parseJid/jid (e.g. for other disallowed code points).
 */
export function escapeLocal(s: string): string {
  if (s.startsWith(' ') || s.endsWith(' ')) {
    throw new JidError('local', 'escape', 'cannot begin or end with a space when escaped (XEP-0106 §4.1)');
  }
  return s.replace(TO_ESCAPE, (c) => ESCAPES[c]!);
}

/** Reverses escapeLocal: only the ten XEP-0106 sequences (lowercase hex) are unescaped. */
export function unescapeLocal(s: string): string {
  if (!s.includes('\\')) return s;
  return s.replace(TO_UNESCAPE, (_m, hex: string) => UNESCAPES[hex]!);
}
