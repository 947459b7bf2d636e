import { SaslFailure } from './sasl-failure.js';

// Standard base64 (RFC 4648 §4) with padding, as required by RFC 6120 §6.4.2 and RFC 5802.
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const REVERSE = new Int16Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) REVERSE[ALPHABET.charCodeAt(i)] = i;

export function toBase64(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + ALPHABET[(n >> 6) & 63]! + ALPHABET[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + '==';
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + ALPHABET[(n >> 6) & 63]! + '=';
  }
  return out;
}

/**
 * Strict decoding: the length must be a multiple of 4, only the alphabet above is allowed (no
 * whitespace, no URL-safe letters), at most two '=' and only at the end, and the unused bits
 * before the padding must be zero (so every byte string has exactly one accepted encoding).
 * Throws SaslFailure('incorrect-encoding') (RFC 6120 §6.5.2) on anything else.
 */
export function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  const bad = (why: string): never => {
    throw new SaslFailure('incorrect-encoding', `invalid base64: ${why}`);
  };
  if (text.length % 4 !== 0) bad('length is not a multiple of 4');
  let pad = 0;
  if (text.endsWith('==')) pad = 2;
  else if (text.endsWith('=')) pad = 1;
  const out = new Uint8Array((text.length / 4) * 3 - pad);
  const sextet = (pos: number): number => {
    const c = text.charCodeAt(pos);
    const v = c < 128 ? REVERSE[c]! : -1;
    if (v < 0) bad(`unexpected character at offset ${pos}`);
    return v;
  };
  let o = 0;
  const full = text.length - (pad > 0 ? 4 : 0);
  for (let i = 0; i < full; i += 4) {
    const n = (sextet(i) << 18) | (sextet(i + 1) << 12) | (sextet(i + 2) << 6) | sextet(i + 3);
    out[o++] = n >> 16;
    out[o++] = (n >> 8) & 255;
    out[o++] = n & 255;
  }
  if (pad === 2) {
    const a = sextet(full);
    const b = sextet(full + 1);
    if ((b & 15) !== 0) bad('non-zero padding bits');
    out[o++] = (a << 2) | (b >> 4);
  } else if (pad === 1) {
    const a = sextet(full);
    const b = sextet(full + 1);
    const c = sextet(full + 2);
    if ((c & 3) !== 0) bad('non-zero padding bits');
    out[o++] = (a << 2) | (b >> 4);
    out[o++] = ((b & 15) << 4) | (c >> 2);
  }
  return out;
}
