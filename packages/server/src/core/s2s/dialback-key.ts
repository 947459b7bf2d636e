import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * XEP-0185 dialback key: HMAC-SHA256 over "Receiving Server, ' ', Originating Server, ' ',
 * Stream ID", keyed with the hex SHA-256 of a secret only the authoritative server (this process,
 * or every node of a cluster sharing `s2s.dialbackSecret`) knows. Deterministic: answering a
 * `<db:verify/>` needs no state beyond the secret.
 */
export function dialbackKey(
  secret: string,
  receiving: string,
  originating: string,
  streamId: string,
): string {
  const k = createHash('sha256').update(secret).digest('hex');
  return createHmac('sha256', k).update(`${receiving} ${originating} ${streamId}`).digest('hex');
}

/** Compares a key a peer presented with the one we would have generated (constant time). */
export function dialbackKeyValid(
  secret: string,
  receiving: string,
  originating: string,
  streamId: string,
  presented: string,
): boolean {
  const expected = Buffer.from(dialbackKey(secret, receiving, originating, streamId));
  const got = Buffer.from(presented.trim());
  return got.length === expected.length && timingSafeEqual(got, expected);
}
