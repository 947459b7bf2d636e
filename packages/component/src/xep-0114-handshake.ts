import { createHash } from 'node:crypto';

/**
 * XEP-0114 §3: the handshake value is the lower-case hex SHA-1 of the stream id the server sent
 * concatenated with the shared secret (both as UTF-8).
 */
export function handshakeDigest(streamId: string, secret: string): string {
  return createHash('sha1')
    .update(streamId + secret, 'utf8')
    .digest('hex');
}

/** Parses `xmpp://host:port` (or `host:port`, or `host`, port 5347 by default). */
export function parseService(service: string): { host: string; port: number } {
  const m = /^(?:xmpp:\/\/|tcp:\/\/)?(\[[^\]]+\]|[^:/]+)(?::(\d+))?\/?$/.exec(service.trim());
  if (!m) throw new TypeError(`service must look like xmpp://host:port, got ${JSON.stringify(service)}`);
  const host = m[1]!.replace(/^\[|\]$/g, '');
  const port = m[2] === undefined ? 5347 : Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new TypeError(`bad port in service ${service}`);
  return { host, port };
}
