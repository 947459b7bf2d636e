import { createHash } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { TLS_EXPORTER_LABEL, TLS_EXPORTER_LENGTH, endPointHash } from '@natter/protocol';

/**
 * Channel binding data of a TLS socket (the same computation runs in `@natter/client`):
 * - `tls-exporter` (RFC 9266): the TLS exporter with label "EXPORTER-Channel-Binding", 32 bytes,
 *   TLS 1.3 only (on TLS 1.2 it is safe only with extended master secret, which Node cannot tell).
 *   and an empty context (RFC 9266 §2; TLS 1.3 makes no difference between an absent and an
 *   empty context, RFC 8446 §7.5, checked with Node 20 / OpenSSL 3).
 * - `tls-server-end-point` (RFC 5929 §4): the hash of the server certificate (DER) with the hash
 *   of its signature algorithm (SHA-256 for MD5/SHA-1); none for algorithms without one.
 */
export function tlsChannelBinding(
  socket: TLSSocket,
  type: string,
  side: 'server' | 'client',
): Uint8Array | undefined {
  try {
    if (type === 'tls-exporter') {
      if (socket.getProtocol() !== 'TLSv1.3') return undefined;
      return new Uint8Array(
        socket.exportKeyingMaterial(TLS_EXPORTER_LENGTH, TLS_EXPORTER_LABEL, Buffer.alloc(0)),
      );
    }
    if (type === 'tls-server-end-point') {
      const cert = side === 'server' ? socket.getCertificate() : socket.getPeerCertificate();
      const raw = cert && 'raw' in cert ? (cert.raw as Buffer | undefined) : undefined;
      if (!raw || raw.length === 0) return undefined;
      const hash = endPointHash(raw);
      return hash ? new Uint8Array(createHash(hash).update(raw).digest()) : undefined;
    }
  } catch {
    // socket closed meanwhile
  }
  return undefined;
}
