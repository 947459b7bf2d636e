/** Which part of a JID an error is about; 'jid' when it concerns the whole address. */
export type JidPart = 'local' | 'domain' | 'resource' | 'jid';

/**
 * Machine-readable reason a JID was rejected.
 * - `invalid-input`: not a string.
 * - `empty`: a part is present but empty (`@example.com`, `a@example.com/`, `juliet@`).
 * - `too-long`: a part exceeds 1023 octets of UTF-8 (RFC 7622 §3.2, §3.3, §3.4).
 * - `forbidden-character`: one of the characters RFC 7622 §3.3.1 forbids in a localpart
 *   (`" & ' / : < > @`), or an ASCII character outside letter-digit-hyphen(-underscore) in a domain label.
 * - `disallowed-character`: a code point the PRECIS string class (or IDNA2008 approximation) disallows:
 *   controls, spaces, symbols, punctuation, compatibility characters, unassigned code points, etc.
 * - `context-rule`: a CONTEXTJ/CONTEXTO code point (RFC 5892 Appendix A) not in its required context.
 * - `bidi-rule`: a string with right-to-left characters that breaks the Bidi Rule (RFC 5893).
 * - `empty-label` / `label-too-long`: a domain label is empty or longer than 63 octets.
 * - `invalid-ip-literal`: a bracketed IPv6 literal or an all-numeric IPv4-looking domain is malformed.
 * - `escape`: a string cannot be escaped per XEP-0106 (leading or trailing space).
 */
export type JidErrorCode =
  | 'invalid-input'
  | 'empty'
  | 'too-long'
  | 'forbidden-character'
  | 'disallowed-character'
  | 'context-rule'
  | 'bidi-rule'
  | 'empty-label'
  | 'label-too-long'
  | 'invalid-ip-literal'
  | 'escape';

const PART_NAMES: Record<JidPart, string> = {
  local: 'localpart',
  domain: 'domainpart',
  resource: 'resourcepart',
  jid: 'JID',
};

/** Thrown when a JID or one of its parts is invalid. The message names the part and the problem. */
export class JidError extends Error {
  readonly code: JidErrorCode;
  readonly part: JidPart;

  /** @param problem the problem, phrased to follow the part's name (e.g. "contains forbidden character '@'"). */
  constructor(part: JidPart, code: JidErrorCode, problem: string) {
    super(`${PART_NAMES[part]} ${problem}`);
    this.code = code;
    this.part = part;
  }
}
JidError.prototype.name = 'JidError';
