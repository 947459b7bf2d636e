import { createHash } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { TLS_EXPORTER_LABEL, TLS_EXPORTER_LENGTH, endPointHash } from '@natter/protocol';

/**
 * Channel binding data of a TLS connection to the server (the server computes the same):
 * - `tls-exporter` (RFC 9266): TLS exporter, label "EXPORTER-Channel-Binding", empty context,
 *   32 bytes; only on TLS 1.3 (on TLS 1.2 it needs extended master secret, which Node cannot tell).
 * - `tls-server-end-point` (RFC 5929 §4): hash of the server certificate (DER) with the hash of
 *   its signature algorithm, SHA-256 for MD5/SHA-1; none for algorithms without one (Ed25519).
 */
export function tlsChannelBinding(socket: TLSSocket, type: string): Uint8Array | undefined {
  try {
    if (type === 'tls-exporter') {
      if (socket.getProtocol() !== 'TLSv1.3') return undefined;
      return new Uint8Array(
        socket.exportKeyingMaterial(TLS_EXPORTER_LENGTH, TLS_EXPORTER_LABEL, Buffer.alloc(0)),
      );
    }
    if (type === 'tls-server-end-point') {
      const raw = socket.getPeerCertificate().raw as Buffer | undefined;
      if (!raw || raw.length === 0) return undefined;
      const hash = endPointHash(raw);
      return hash ? new Uint8Array(createHash(hash).update(raw).digest()) : undefined;
    }
  } catch {
    // the socket closed meanwhile
  }
  return undefined;
}
