import { existsSync, mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
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
      { name: 'extKeyUsage', serverAuth: true },
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

export function secureContext(files: CertificateFiles): SecureContext {
  return createSecureContext({
    cert: readFileSync(files.cert),
    key: readFileSync(files.key),
    minVersion: 'TLSv1.2',
    ciphers: TLS12_CIPHERS,
  });
}
