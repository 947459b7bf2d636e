// Channel binding for SCRAM-*-PLUS (RFC 5802 §6, RFC 5056) and its XMPP advertisement (XEP-0440).
// Pure functions only: the TLS layer (Node sockets) computes the binding data itself.

/** XEP-0440 stream feature namespace. */
export const NS_SASL_CB = 'urn:xmpp:sasl-cb:0';

/**
 * Channel binding types this project implements, strongest first. `tls-exporter` (RFC 9266) only
 * on TLS 1.3; `tls-server-end-point` (RFC 5929 §4) on any TLS version. `tls-unique` is not
 * implemented: it is undefined for TLS 1.3 and unsafe on TLS 1.2 without extended master secret.
 */
export const CHANNEL_BINDING_TYPES = ['tls-exporter', 'tls-server-end-point'] as const;
export type ChannelBindingType = (typeof CHANNEL_BINDING_TYPES)[number];

/** RFC 9266 §2: exporter label; the context is empty and the length 32 bytes. */
export const TLS_EXPORTER_LABEL = 'EXPORTER-Channel-Binding';
export const TLS_EXPORTER_LENGTH = 32;

/** Channel binding of one connection: the type named in the GS2 header and its data. */
export interface ChannelBinding {
  type: string;
  data: Uint8Array;
}

/** RFC 5056 cb-name: letters, digits, '.' and '-'. */
export function isValidChannelBindingName(name: string): boolean {
  return /^[A-Za-z0-9.-]+$/.test(name);
}

// DER-encoded signature algorithm OIDs (RFC 3279, RFC 4055, RFC 5758) -> the hash to use for
// tls-server-end-point. RFC 5929 §4.1: MD5 and SHA-1 are replaced by SHA-256.
const SIGNATURE_HASHES: Record<string, 'sha224' | 'sha256' | 'sha384' | 'sha512'> = {
  '2a864886f70d010104': 'sha256', // md5WithRSAEncryption
  '2a864886f70d010105': 'sha256', // sha1WithRSAEncryption
  '2a864886f70d01010b': 'sha256', // sha256WithRSAEncryption
  '2a864886f70d01010c': 'sha384', // sha384WithRSAEncryption
  '2a864886f70d01010d': 'sha512', // sha512WithRSAEncryption
  '2a864886f70d01010e': 'sha224', // sha224WithRSAEncryption
  '2a8648ce3d0401': 'sha256', // ecdsa-with-SHA1
  '2a8648ce3d040301': 'sha224', // ecdsa-with-SHA224
  '2a8648ce3d040302': 'sha256', // ecdsa-with-SHA256
  '2a8648ce3d040303': 'sha384', // ecdsa-with-SHA384
  '2a8648ce3d040304': 'sha512', // ecdsa-with-SHA512
};

interface Tlv {
  tag: number;
  start: number;
  end: number;
}

function readTlv(der: Uint8Array, offset: number, limit: number): Tlv | undefined {
  if (offset + 2 > limit) return undefined;
  const tag = der[offset]!;
  let len = der[offset + 1]!;
  let start = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > limit) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[start + i]!;
    start += n;
  }
  const end = start + len;
  return end > limit ? undefined : { tag, start, end };
}

/**
 * The hash for tls-server-end-point over a DER certificate: the hash of its signature algorithm,
 * SHA-256 for MD5 and SHA-1 (RFC 5929 §4.1). Undefined when the algorithm has no single hash
 * (RSASSA-PSS with parameters, Ed25519) or the certificate cannot be read: then there is no binding.
 */
export function endPointHash(der: Uint8Array): 'sha224' | 'sha256' | 'sha384' | 'sha512' | undefined {
  // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE, signatureAlgorithm AlgorithmIdentifier, ... }
  const cert = readTlv(der, 0, der.length);
  if (cert?.tag !== 0x30) return undefined;
  const tbs = readTlv(der, cert.start, cert.end);
  if (tbs?.tag !== 0x30) return undefined;
  const alg = readTlv(der, tbs.end, cert.end);
  if (alg?.tag !== 0x30) return undefined;
  const oid = readTlv(der, alg.start, alg.end);
  if (oid?.tag !== 0x06) return undefined;
  let hex = '';
  for (let i = oid.start; i < oid.end; i++) hex += der[i]!.toString(16).padStart(2, '0');
  return SIGNATURE_HASHES[hex];
}
