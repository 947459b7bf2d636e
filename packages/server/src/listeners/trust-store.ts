import { X509Certificate } from 'node:crypto';
import type { DetailedPeerCertificate } from 'node:tls';

/** Longest chain followed from a peer's certificate to a trusted one. */
const MAX_DEPTH = 8;

/**
 * The CAs server-to-server peers' certificates may chain to (Node's roots plus `s2s.ca`), for the
 * one check OpenSSL gets wrong for us: as a TLS server verifying a client certificate it demands
 * the clientAuth extended key usage, which server certificates issued today (Let's Encrypt's
 * among them) no longer carry, and reports `INVALID_PURPOSE`. A server's certificate presented as
 * a client certificate is what XEP-0178 expects, so the chain is checked here instead: every link
 * issued and signed by the next, each in its validity period, ending at a trusted certificate.
 */
export class TrustStore {
  private readonly trusted: X509Certificate[];

  constructor(pems: readonly string[]) {
    this.trusted = pems.flatMap(splitPem).flatMap((pem) => {
      try {
        return [new X509Certificate(pem)];
      } catch {
        return [];
      }
    });
  }

  /** Whether the peer's chain (leaf first, as the TLS layer gives it) ends at a trusted certificate. */
  verifies(peer: DetailedPeerCertificate, now = Date.now()): boolean {
    const chain: X509Certificate[] = [];
    const seen = new Set<DetailedPeerCertificate>();
    for (let c: DetailedPeerCertificate | undefined = peer; c?.raw && !seen.has(c); c = c.issuerCertificate) {
      seen.add(c);
      chain.push(new X509Certificate(c.raw));
      if (chain.length > MAX_DEPTH) break;
    }
    const leaf = chain[0];
    if (!leaf) return false;
    const intermediates = chain.slice(1).filter((c) => c.ca);
    let cert = leaf;
    for (let depth = 0; depth < MAX_DEPTH; depth++) {
      if (!current(cert, now)) return false;
      const anchor = this.trusted.find((t) => signedBy(cert, t));
      if (anchor) return current(anchor, now);
      const next = intermediates.find((i) => i !== cert && signedBy(cert, i));
      if (!next) return false;
      cert = next;
    }
    return false;
  }
}

function signedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

function current(cert: X509Certificate, now: number): boolean {
  return Date.parse(cert.validFrom) <= now && now <= Date.parse(cert.validTo);
}

function splitPem(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}
