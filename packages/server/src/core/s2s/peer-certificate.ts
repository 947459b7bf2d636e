import type { X509Certificate } from 'node:crypto';

/** Why a peer's certificate does not authenticate a domain (for logs and the stream error text). */
export type CertificateVerdict = { ok: true } | { ok: false; reason: string };

/**
 * RFC 6120 §13.7.1.2 / RFC 6125 and XEP-0178: a server certificate authenticates `domain` when its
 * chain verified against the trusted CAs (`authorized`, computed by the TLS layer against Node's
 * root store plus `s2s.ca`) and one of its DNS names matches the domain (SAN dNSName, one leading
 * wildcard label allowed; the subject CN only when the certificate has no SAN).
 */
export function certificateAuthenticates(
  cert: X509Certificate | undefined,
  authorized: boolean,
  authorizationError: string | undefined,
  domain: string,
): CertificateVerdict {
  if (!cert) return { ok: false, reason: 'no certificate presented' };
  if (!authorized)
    return { ok: false, reason: `certificate not trusted (${authorizationError ?? 'unknown issuer'})` };
  const now = Date.now();
  if (Date.parse(cert.validFrom) > now || Date.parse(cert.validTo) < now)
    return { ok: false, reason: 'certificate expired or not yet valid' };
  if (cert.checkHost(domain, { subject: 'default', wildcards: true, partialWildcards: false }) === undefined)
    return { ok: false, reason: `certificate does not name ${domain}` };
  return { ok: true };
}
