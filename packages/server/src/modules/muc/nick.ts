import { enforceClass, JidError } from '@natter/jid';
import { StanzaError } from '@natter/protocol';

/**
 * Room nicknames under the PRECIS Nickname profile (RFC 8266): a nickname is enforced once, when
 * an occupant takes it (the form the room shows), and two nicknames are the same nickname when
 * their comparison keys are equal, so `BobNick`, `bobnick` and `ＢｏｂＮｉｃｋ` are one nickname
 * and nobody can enter under a look-alike of someone else's.
 */

/** Non-ASCII spaces (\p{Zs} but U+0020), mapped to U+0020 (RFC 8266 §2.1, additional mapping rule). */
const NON_ASCII_SPACE = /[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]/g;

/** RFC 8266 §2.1 additional mapping: spaces to U+0020, leading and trailing removed, runs collapsed. */
function mapSpaces(s: string): string {
  return s.replace(NON_ASCII_SPACE, ' ').trim().replace(/ {2,}/g, ' ');
}

/**
 * RFC 8266 §2.3 enforcement: additional mapping, NFKC, then the FreeformClass and a non-empty
 * result. Case is kept. Throws `not-acceptable` for a nickname the profile refuses.
 */
export function enforceNick(raw: string, maxLength: number): string {
  const nick = mapSpaces(raw).normalize('NFKC');
  if (nick === '') throw new StanzaError('not-acceptable', { text: 'this nickname is not acceptable' });
  try {
    enforceClass(nick, 'freeform', 'resource');
  } catch (err) {
    if (!(err instanceof JidError)) throw err;
    throw new StanzaError('not-acceptable', { text: `this nickname is not acceptable: ${err.message}` });
  }
  if (nick.length > maxLength)
    throw new StanzaError('not-acceptable', { text: `a nickname has at most ${maxLength} characters` });
  return nick;
}

/**
 * RFC 8266 §2.4 comparison key: additional mapping, case mapping (toLowerCase), NFKC, repeated
 * until stable (RFC 8264 §7: one pass is not idempotent for every string). Never throws.
 */
export function nickKey(nick: string): string {
  let s = nick;
  for (let i = 0; i < 3; i++) {
    const next = mapSpaces(s).toLowerCase().normalize('NFKC');
    if (next === s) break;
    s = next;
  }
  return s;
}
