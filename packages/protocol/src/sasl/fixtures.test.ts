// Shared fixtures for the SASL tests. Named *.test.ts so the package build (which excludes tests) leaves it out.
import assert from 'node:assert/strict';
import type {
  CredentialLookup,
  SaslClientMechanism,
  SaslServerMechanism,
  SaslServerResult,
} from './mechanism.js';
import { SaslFailure, type SaslFailureCondition } from './sasl-failure.js';
import { deriveScramCredentials, type ScramCredentials, type ScramHash } from './scram-crypto.js';

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

/** In-memory accounts; `only` restricts which hashes have stored credentials. */
export async function memoryLookup(
  accounts: Record<string, string>,
  only: ScramHash[] = ['SHA-1', 'SHA-256'],
): Promise<CredentialLookup & { calls: string[] }> {
  const table = new Map<string, ScramCredentials>();
  for (const [user, password] of Object.entries(accounts)) {
    for (const hash of only) table.set(`${hash}:${user}`, await deriveScramCredentials(hash, password));
  }
  const calls: string[] = [];
  return {
    calls,
    async scram(username, hash) {
      calls.push(`${hash}:${username}`);
      return table.get(`${hash}:${username}`) ?? null;
    },
  };
}

/** Drives a client against a server until the server is done; returns the server result. */
export async function runExchange(
  client: SaslClientMechanism,
  server: SaslServerMechanism,
): Promise<SaslServerResult> {
  let message = await client.initial();
  for (let i = 0; i < 5; i++) {
    const step = await server.step(message);
    if (step.done) {
      await client.success(step.result.additionalData ?? null);
      return step.result;
    }
    message = await client.challenge(step.challenge);
  }
  throw new Error('exchange did not finish');
}

export async function rejectsWith(promise: Promise<unknown>, condition: SaslFailureCondition): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof SaslFailure, `expected SaslFailure, got ${String(err)}`);
    assert.equal(err.condition, condition, `expected ${condition}, got ${err.condition} (${err.message})`);
    return true;
  });
}
