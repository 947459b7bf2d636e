import { SaslFailure } from './sasl-failure.js';

// Message syntax helpers for RFC 5802 §7.

// Made on first use (see scram-crypto.ts).
let strictDecoder: TextDecoder | undefined;

export function malformed(why: string): never {
  throw new SaslFailure('malformed-request', why);
}

/** SCRAM messages are UTF-8 (RFC 5802 §7); invalid UTF-8 or NUL is a malformed request. */
export function decodeMessage(bytes: Uint8Array): string {
  let text: string;
  try {
    text = (strictDecoder ??= new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })).decode(bytes);
  } catch {
    return malformed('message is not valid UTF-8');
  }
  if (text.includes('\0')) malformed('message contains NUL');
  return text;
}

/** saslname encoding: '=' -> '=3D', ',' -> '=2C' (RFC 5802 §5.1, "n" attribute). */
export function escapeSaslname(name: string): string {
  return name.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

/** Reverses escapeSaslname; any '=' not starting '=2C' or '=3D' is malformed (RFC 5802 §7 saslname). */
export function unescapeSaslname(value: string): string {
  if (value.length === 0) malformed('empty saslname');
  return value.replace(/=(..)?/gs, (_m, code: string | undefined) => {
    if (code === '2C') return ',';
    if (code === '3D') return '=';
    return malformed('invalid "=" escape in saslname');
  });
}

export interface Attribute {
  key: string;
  value: string;
}

/** Splits `a=b,c=d`; every part must be one ASCII letter, '=', and a value (possibly empty). */
export function parseAttributes(text: string): Attribute[] {
  return text.split(',').map((part) => {
    if (!/^[A-Za-z]=/.test(part)) malformed(`invalid attribute "${part.slice(0, 20)}"`);
    return { key: part[0]!, value: part.slice(2) };
  });
}

/** c-nonce / s-nonce: printable ASCII except ',' (RFC 5802 §7 "printable"). */
export function isValidNonce(nonce: string): boolean {
  return /^[\x21-\x2b\x2d-\x7e]+$/.test(nonce);
}
