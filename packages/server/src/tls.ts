import { existsSync, mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { generate } from 'selfsigned';

export interface CertificateFiles {
  cert: string;
  key: string;
  generated: boolean;
}

/**
 * The operator's certificate when configured; otherwise a self-signed one for the configured
 * hosts (and their service subdomains), generated once into the data directory.
 */
export async function ensureCertificate(
  dataDir: string,
  hosts: string[],
  configured: { cert?: string | undefined; key?: string | undefined },
): Promise<CertificateFiles> {
  if (configured.cert || configured.key) {
    if (!configured.cert || !configured.key) throw new Error('tls.cert and tls.key must be given together');
    for (const f of [configured.cert, configured.key])
      if (!existsSync(f)) throw new Error(`TLS file ${f} does not exist`);
    return { cert: configured.cert, key: configured.key, generated: false };
  }
  const dir = join(dataDir, 'certs');
  const cert = join(dir, 'self-signed.crt');
  const key = join(dir, 'self-signed.key');
  const namesFile = join(dir, 'names.json');
  const names = [...new Set(hosts.flatMap((h) => [h, `*.${h}`]))].sort();
  if (existsSync(cert) && existsSync(key) && existsSync(namesFile)) {
    const previous = JSON.parse(readFileSync(namesFile, 'utf8')) as string[];
    if (previous.join(',') === names.join(',')) return { cert, key, generated: true };
  }
  mkdirSync(dir, { recursive: true });
  const pems = await generate([{ name: 'commonName', value: hosts[0]! }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notAfterDate: new Date(Date.now() + 825 * 24 * 3600 * 1000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      // clientAuth too: outbound server-to-server presents it as a TLS client certificate.
      { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
      { name: 'subjectAltName', altNames: names.map((value) => ({ type: 2 as const, value })) },
    ],
  });
  writeFileSync(key, pems.private, { mode: 0o600 });
  chmodSync(key, 0o600);
  writeFileSync(cert, pems.cert);
  writeFileSync(namesFile, JSON.stringify(names));
  return { cert, key, generated: true };
}

/**
 * TLS 1.2 suites offered: only AEAD ciphers (AES-GCM, ChaCha20-Poly1305) with forward secrecy
 * (ECDHE, DHE); no CBC, no SHA-1 MAC, no static RSA key exchange. TLS 1.3 suites are all AEAD with
 * forward secrecy and stay OpenSSL's defaults.
 */
export const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'DHE-RSA-AES128-GCM-SHA256',
  'DHE-RSA-AES256-GCM-SHA384',
  'DHE-RSA-CHACHA20-POLY1305',
].join(':');

/** A context with our certificate; `ca` (PEM) replaces Node's roots for verifying peers (s2s). */
export function secureContext(files: CertificateFiles, ca?: readonly string[]): SecureContext {
  return createSecureContext({
    cert: readFileSync(files.cert),
    key: readFileSync(files.key),
    minVersion: 'TLSv1.2',
    ciphers: TLS12_CIPHERS,
    ...(ca ? { ca: [...ca] } : {}),
  });
}

/** The CAs a server-to-server peer's certificate may chain to: Node's roots plus `s2s.ca` files. */
export function s2sTrustedCas(extra: readonly string[]): string[] {
  return [...rootCertificates, ...extra.map((f) => readFileSync(f, 'utf8'))];
}

/**
 * Our certificates by the names they hold (SAN dNSName, or the subject CN without SAN): the
 * default one (tls.cert/tls.key or the generated one) plus `tls.certificates`. Inbound TLS picks
 * one by SNI; outbound server-to-server presents the one for the local domain it speaks for
 * (a TLS client certificate, for SASL EXTERNAL at the peer).
 */
export class CertificateStore {
  readonly default: SecureContext;
  private readonly byName = new Map<string, SecureContext>();
  private readonly filesByName = new Map<string, { cert: string; key: string }>();
  private readonly defaultFiles: { cert: string; key: string };

  /** `ca`: verify peers' certificates against these (server-to-server contexts). */
  constructor(
    defaultFiles: CertificateFiles,
    more: readonly { cert: string; key: string }[],
    ca?: readonly string[],
  ) {
    this.default = secureContext(defaultFiles, ca);
    this.defaultFiles = { cert: defaultFiles.cert, key: defaultFiles.key };
    // The default certificate's names first: a later, explicit certificate wins for a name.
    for (const files of [defaultFiles, ...more]) {
      for (const f of [files.cert, files.key])
        if (!existsSync(f)) throw new Error(`TLS file ${f} does not exist`);
      const ctx = files === defaultFiles ? this.default : secureContext({ ...files, generated: false }, ca);
      for (const name of certificateNames(readFileSync(files.cert))) {
        this.byName.set(name, ctx);
        this.filesByName.set(name, { cert: files.cert, key: files.key });
      }
    }
  }

  /** The context for a name: an exact match, then a wildcard one (`*.example.org`), else the default. */
  contextFor(name: string | undefined): SecureContext {
    return lookup(this.byName, name) ?? this.default;
  }

  /** The files of the certificate `contextFor(name)` uses (a TLS server's default certificate). */
  filesFor(name: string | undefined): { cert: string; key: string } {
    return lookup(this.filesByName, name) ?? this.defaultFiles;
  }

  /** For `tls.createServer({ SNICallback })`. */
  readonly sni = (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void => {
    cb(null, this.contextFor(servername));
  };
}

/** An exact match for a name, then a wildcard one (`*.example.org`). */
function lookup<T>(map: ReadonlyMap<string, T>, name: string | undefined): T | undefined {
  if (!name) return undefined;
  const lower = name.toLowerCase();
  const exact = map.get(lower);
  if (exact !== undefined) return exact;
  const dot = lower.indexOf('.');
  return dot > 0 ? map.get(`*${lower.slice(dot)}`) : undefined;
}

/** The DNS names a certificate (PEM) holds: SAN dNSName entries, or the subject CN without SAN. */
export function certificateNames(pem: Buffer): string[] {
  const cert = new X509Certificate(pem);
  const san = cert.subjectAltName;
  if (san) {
    return san
      .split(/,\s*/)
      .filter((e) => e.startsWith('DNS:'))
      .map((e) => e.slice(4).toLowerCase());
  }
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1];
  return cn ? [cn.toLowerCase()] : [];
}
