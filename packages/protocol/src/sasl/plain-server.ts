import type {
  CredentialLookup,
  SaslServerMechanism,
  SaslServerResult,
  SaslServerStep,
  ServerMechanismOptions,
} from './mechanism.js';
import { SaslFailure } from './sasl-failure.js';
import { saslprep } from './saslprep.js';
import { constantTimeEqual, DEFAULT_ITERATIONS, deriveFromPrepared, type ScramHash } from './scram-crypto.js';
import { decodeMessage, malformed } from './scram-message.js';
import { effectiveAuthzid, fakeCredentials, safeLookup } from './unknown-user.js';

/**
 * Server side of PLAIN (RFC 4616): `[authzid] NUL authcid NUL passwd`, checked against the stored
 * SCRAM credentials (SHA-256 preferred, SHA-1 as fallback) by re-deriving StoredKey from the password.
 */
export class PlainServerMechanism implements SaslServerMechanism {
  readonly name = 'PLAIN';
  private state: 'start' | 'asked' | 'finished' = 'start';

  constructor(
    private readonly lookup: CredentialLookup,
    private readonly opts: ServerMechanismOptions = {},
  ) {}

  async step(input: Uint8Array | null): Promise<SaslServerStep> {
    const state = this.state;
    this.state = 'finished';
    if (state === 'finished') throw new SaslFailure('malformed-request', 'the exchange is already over');
    if (input === null) {
      if (state !== 'start') throw new SaslFailure('malformed-request', 'a response is required');
      // No initial response: ask for it with an empty challenge (RFC 4616 §2, RFC 6120 §6.4.2).
      this.state = 'asked';
      return { done: false, challenge: new Uint8Array(0) };
    }
    // An empty message (`=`) has no NUL separators: verify() refuses it as malformed.
    return { done: true, result: await this.verify(input) };
  }

  private async verify(input: Uint8Array): Promise<SaslServerResult> {
    const first = input.indexOf(0);
    const second = first < 0 ? -1 : input.indexOf(0, first + 1);
    if (second < 0 || input.indexOf(0, second + 1) >= 0)
      malformed('PLAIN message needs exactly two NUL separators');
    const authzidRaw = decodeMessage(input.subarray(0, first));
    const authcid = saslprep(decodeMessage(input.subarray(first + 1, second)));
    const password = saslprep(decodeMessage(input.subarray(second + 1)));
    if (authcid === '') malformed('empty authentication identity');

    let hash: ScramHash = 'SHA-256';
    let creds = await safeLookup(this.lookup, authcid, 'SHA-256');
    if (creds === null) {
      hash = 'SHA-1';
      creds = await safeLookup(this.lookup, authcid, 'SHA-1');
    }
    const known = creds !== null;
    if (creds === null) {
      hash = 'SHA-256';
      creds = await fakeCredentials(hash, authcid, this.opts.unknownUserIterations ?? DEFAULT_ITERATIONS);
    }
    // An empty password still goes through a derivation (with a placeholder) so it costs the same.
    const derived = await deriveFromPrepared(
      hash,
      password === '' ? '\0' : password,
      creds.salt,
      creds.iterations,
    );
    const ok = constantTimeEqual(derived.storedKey, creds.storedKey);
    if (!ok || !known || password === '') throw new SaslFailure('not-authorized');
    if (this.opts.passwordVerified) {
      try {
        await this.opts.passwordVerified(authcid, password);
      } catch {
        // Keys not completed now: the next PLAIN login tries again.
      }
    }
    const authzid = effectiveAuthzid(authzidRaw, authcid, this.opts.domain);
    return { username: authcid, ...(authzid !== undefined ? { authzid } : {}) };
  }
}
