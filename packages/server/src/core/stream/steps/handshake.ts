import { createHash, timingSafeEqual } from 'node:crypto';

/** XEP-0114 §3: the handshake is the lowercase hex SHA-1 of the stream id followed by the secret. */
export function handshakeDigest(streamId: string, secret: string): string {
  return createHash('sha1')
    .update(streamId + secret, 'utf8')
    .digest('hex');
}

/** Compares a component's handshake with the expected digest in constant time (case-insensitive hex). */
export function handshakeMatches(streamId: string, secret: string, offered: string): boolean {
  const expected = Buffer.from(handshakeDigest(streamId, secret), 'utf8');
  const got = Buffer.from(offered.trim().toLowerCase(), 'utf8');
  if (got.length !== expected.length) return false;
  return timingSafeEqual(got, expected);
}
