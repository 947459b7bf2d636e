import { SaslFailure } from './sasl-failure.js';
import {
  hashLength,
  hmac,
  randomBytes,
  utf8,
  type ScramCredentials,
  type ScramHash,
} from './scram-crypto.js';
import type { CredentialLookup } from './mechanism.js';

// Per-process secret: fake salts are stable for one username (so repeated probes see the same salt,
// like for a real account) but cannot be predicted or linked across server restarts.
let secret: Uint8Array | undefined;

/**
 * Credentials for a user that does not exist: a salt derived with HMAC-SHA-256 over a per-process
 * random secret and the username, and random keys that no proof can match. Taking the same code path
 * as a real account keeps "unknown user" indistinguishable from "wrong password".
 */
export async function fakeCredentials(
  hash: ScramHash,
  username: string,
  iterations: number,
): Promise<ScramCredentials> {
  secret ??= randomBytes(32);
  const mac = await hmac('SHA-256', secret, utf8(`${hash}\0${username}`));
  const n = hashLength(hash);
  return { salt: mac.slice(0, 16), iterations, storedKey: randomBytes(n), serverKey: randomBytes(n) };
}

/**
 * Calls the lookup; SaslFailures pass through, other errors and unusable records become
 * temporary-auth-failure (a storage problem must not look like a wrong password).
 */
export async function safeLookup(
  lookup: CredentialLookup,
  username: string,
  hash: ScramHash,
): Promise<ScramCredentials | null> {
  let creds: ScramCredentials | null;
  try {
    creds = await lookup.scram(username, hash);
  } catch (err) {
    if (err instanceof SaslFailure) throw err;
    throw new SaslFailure('temporary-auth-failure', 'credential lookup failed');
  }
  if (creds === null || creds === undefined) return null;
  const n = hashLength(hash);
  if (
    !Number.isSafeInteger(creds.iterations) ||
    creds.iterations < 1 ||
    !(creds.salt instanceof Uint8Array) ||
    creds.salt.length === 0 ||
    !(creds.storedKey instanceof Uint8Array) ||
    creds.storedKey.length !== n ||
    !(creds.serverKey instanceof Uint8Array) ||
    creds.serverKey.length !== n
  ) {
    throw new SaslFailure('temporary-auth-failure', 'stored credentials are unusable');
  }
  return creds;
}

/** The authzid worth reporting: absent, or equal to the user's own identity, gives undefined. */
export function effectiveAuthzid(
  authzid: string | undefined,
  username: string,
  domain: string | undefined,
): string | undefined {
  if (!authzid) return undefined;
  if (authzid === username) return undefined;
  if (domain !== undefined && authzid === `${username}@${domain}`) return undefined;
  return authzid;
}
