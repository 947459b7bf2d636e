import { SaslFailure } from './sasl-failure.js';
import { saslprep } from './saslprep.js';

/** Hash functions for SCRAM-SHA-1 (RFC 5802) and SCRAM-SHA-256 (RFC 7677). */
export type ScramHash = 'SHA-1' | 'SHA-256';

/** What a server stores per user and hash (RFC 5802 §3): never the password itself. */
export interface ScramCredentials {
  salt: Uint8Array;
  iterations: number;
  storedKey: Uint8Array;
  serverKey: Uint8Array;
}

export const DEFAULT_ITERATIONS = 4096;
export const DEFAULT_SALT_LENGTH = 16;

// Made on first use: a runtime without TextEncoder (React Native before 0.74) can still load the
// code and be told what is missing.
let encoder: TextEncoder | undefined;

function subtle(): SubtleCrypto {
  const s = globalThis.crypto?.subtle;
  if (!s) throw new Error('WebCrypto (crypto.subtle) is not available in this environment');
  return s;
}

/** Copies into a fresh ArrayBuffer-backed array, the type WebCrypto accepts. */
function own(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(bytes);
}

export function utf8(text: string): Uint8Array<ArrayBuffer> {
  return (encoder ??= new TextEncoder()).encode(text);
}

export function randomBytes(length: number): Uint8Array<ArrayBuffer> {
  return globalThis.crypto.getRandomValues(new Uint8Array(length));
}

export function hashLength(hash: ScramHash): number {
  return hash === 'SHA-1' ? 20 : 32;
}

export async function digest(hash: ScramHash, data: Uint8Array): Promise<Uint8Array<ArrayBuffer>> {
  return new Uint8Array(await subtle().digest(hash, own(data)));
}

export async function hmac(
  hash: ScramHash,
  key: Uint8Array,
  data: Uint8Array,
): Promise<Uint8Array<ArrayBuffer>> {
  const k = await subtle().importKey('raw', own(key), { name: 'HMAC', hash }, false, ['sign']);
  return new Uint8Array(await subtle().sign('HMAC', k, own(data)));
}

/** Hi() of RFC 5802 §2.2, which is PBKDF2 with HMAC as PRF and dkLen = hash output length. */
export async function hi(
  hash: ScramHash,
  password: Uint8Array,
  salt: Uint8Array,
  iterations: number,
): Promise<Uint8Array<ArrayBuffer>> {
  if (!Number.isSafeInteger(iterations) || iterations < 1)
    throw new RangeError(`invalid iteration count ${iterations}`);
  const k = await subtle().importKey('raw', own(password), 'PBKDF2', false, ['deriveBits']);
  const bits = await subtle().deriveBits(
    { name: 'PBKDF2', hash, salt: own(salt), iterations },
    k,
    hashLength(hash) * 8,
  );
  return new Uint8Array(bits);
}

export function xor(a: Uint8Array, b: Uint8Array): Uint8Array<ArrayBuffer> {
  if (a.length !== b.length) throw new RangeError('xor of arrays of different lengths');
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

/** Comparison whose duration depends only on the lengths, not on where the arrays differ. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

/** SaltedPassword -> (ClientKey, StoredKey, ServerKey) of RFC 5802 §3. */
export async function keysFromSaltedPassword(
  hash: ScramHash,
  salted: Uint8Array,
): Promise<{
  clientKey: Uint8Array<ArrayBuffer>;
  storedKey: Uint8Array<ArrayBuffer>;
  serverKey: Uint8Array<ArrayBuffer>;
}> {
  const [clientKey, serverKey] = await Promise.all([
    hmac(hash, salted, utf8('Client Key')),
    hmac(hash, salted, utf8('Server Key')),
  ]);
  return { clientKey, storedKey: await digest(hash, clientKey), serverKey };
}

/** Derivation shared by deriveScramCredentials and the PLAIN verifier; `preparedPassword` is already SASLprep'ed. */
export async function deriveFromPrepared(
  hash: ScramHash,
  preparedPassword: string,
  salt: Uint8Array,
  iterations: number,
): Promise<ScramCredentials> {
  const salted = await hi(hash, utf8(preparedPassword), salt, iterations);
  const { storedKey, serverKey } = await keysFromSaltedPassword(hash, salted);
  return { salt: new Uint8Array(salt), iterations, storedKey, serverKey };
}

/**
 * Computes the credentials a server stores for a password (RFC 5802 §3). The password is prepared
 * with SASLprep as a stored string (unassigned code points refused). Defaults: 4096 iterations
 * (RFC 7677 §4 minimum) and a 16-byte random salt.
 */
export async function deriveScramCredentials(
  hash: ScramHash,
  password: string,
  opts: { salt?: Uint8Array; iterations?: number } = {},
): Promise<ScramCredentials> {
  if (hash !== 'SHA-1' && hash !== 'SHA-256')
    throw new SaslFailure('invalid-mechanism', `unsupported hash ${String(hash)}`);
  const iterations = opts.iterations ?? DEFAULT_ITERATIONS;
  const salt = opts.salt ?? randomBytes(DEFAULT_SALT_LENGTH);
  if (salt.length === 0) throw new RangeError('salt must not be empty');
  return deriveFromPrepared(hash, saslprep(password, { allowUnassigned: false }), salt, iterations);
}
