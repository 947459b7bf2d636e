import { existsSync, mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls';
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
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

/** A certificate read from its files and checked: the PEM parses and the key matches it. */
export interface LoadedCertificate {
  /** The files it was read from. */
  cert: string;
  key: string;
  certPem: Buffer;
  keyPem: Buffer;
  /** The first certificate of the chain (ours). */
  x509: X509Certificate;
  /** The DNS names it holds, lower case (see certificateNames). */
  names: string[];
}

/**
 * Reads and checks a certificate and its key; the error says which file is wrong and why
 * (missing, unreadable, not PEM, the key does not match). Reads each file once: what is checked
 * is what is used.
 */
export function loadCertificate(files: { cert: string; key: string }): LoadedCertificate {
  for (const f of [files.cert, files.key])
    if (!existsSync(f)) throw new Error(`TLS file ${f} does not exist`);
  const read = (f: string): Buffer => {
    try {
      return readFileSync(f);
    } catch (err) {
      throw new Error(`TLS file ${f} cannot be read: ${(err as Error).message}`);
    }
  };
  const certPem = read(files.cert);
  const keyPem = read(files.key);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(certPem);
  } catch (err) {
    throw new Error(`TLS file ${files.cert} holds no PEM certificate: ${(err as Error).message}`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw new Error(`TLS file ${files.key} holds no PEM private key: ${(err as Error).message}`);
  }
  if (!x509.checkPrivateKey(key))
    throw new Error(`the key in ${files.key} does not match the certificate in ${files.cert}`);
  return { cert: files.cert, key: files.key, certPem, keyPem, x509, names: certificateNames(certPem) };
}

/** A certificate's files and the PEM read from them when it was loaded. */
export interface CertificatePem {
  cert: string;
  key: string;
  certPem: Buffer;
  keyPem: Buffer;
}

const pemOf = (c: LoadedCertificate): CertificatePem => ({
  cert: c.cert,
  key: c.key,
  certPem: c.certPem,
  keyPem: c.keyPem,
});

/** What one CertificateStore serves; replaced as a whole, so a handshake never sees half of a reload. */
interface StoreState {
  default: SecureContext;
  defaultFiles: CertificatePem;
  byName: Map<string, SecureContext>;
  filesByName: Map<string, CertificatePem>;
}

/**
 * Our certificates by the names they hold (SAN dNSName, or the subject CN without SAN): the
 * default one (tls.cert/tls.key or the generated one), then those imported into dataDir/certs,
 * then `tls.certificates` (a later one wins a name). Inbound TLS picks one by SNI; outbound
 * server-to-server presents the one for the local domain it speaks for (a TLS client certificate,
 * for SASL EXTERNAL at the peer). `replace` swaps them all at once (SIGHUP): handshakes under way
 * and open connections keep the context they started with.
 */
export class CertificateStore {
  private state: StoreState;

  /** `ca`: verify peers' certificates against these (server-to-server contexts). */
  constructor(
    defaultFiles: { cert: string; key: string; generated?: boolean } | LoadedCertificate,
    more: readonly ({ cert: string; key: string } | LoadedCertificate)[],
    private readonly ca?: readonly string[],
  ) {
    const load = (f: { cert: string; key: string } | LoadedCertificate) =>
      'x509' in f ? f : loadCertificate(f);
    this.state = this.build(load(defaultFiles), more.map(load));
  }

  /** The context of the default certificate (a handshake without SNI, or with an unknown name). */
  get default(): SecureContext {
    return this.state.default;
  }

  /** Serves these certificates from now on (they were loaded and checked by the caller). */
  replace(defaultCert: LoadedCertificate, more: readonly LoadedCertificate[]): void {
    this.prepare(defaultCert, more)();
  }

  /**
   * Builds the contexts for these certificates (this may throw) and returns what swaps them in (this
   * does not): several stores are prepared first, then all committed.
   */
  prepare(defaultCert: LoadedCertificate, more: readonly LoadedCertificate[]): () => void {
    const state = this.build(defaultCert, more);
    return () => {
      this.state = state;
    };
  }

  private build(defaultCert: LoadedCertificate, more: readonly LoadedCertificate[]): StoreState {
    const context = (c: LoadedCertificate) =>
      createSecureContext({
        cert: c.certPem,
        key: c.keyPem,
        minVersion: 'TLSv1.2',
        ciphers: TLS12_CIPHERS,
        ...(this.ca ? { ca: [...this.ca] } : {}),
      });
    const state: StoreState = {
      default: context(defaultCert),
      defaultFiles: pemOf(defaultCert),
      byName: new Map(),
      filesByName: new Map(),
    };
    // The default certificate's names first: a later, explicit certificate wins for a name.
    for (const c of [defaultCert, ...more]) {
      const ctx = c === defaultCert ? state.default : context(c);
      for (const name of c.names) {
        state.byName.set(name, ctx);
        state.filesByName.set(name, pemOf(c));
      }
    }
    return state;
  }

  /** The context for a name: an exact match, then a wildcard one (`*.example.org`), else the default. */
  contextFor(name: string | undefined): SecureContext {
    return lookup(this.state.byName, name) ?? this.state.default;
  }

  /** The certificate `contextFor(name)` uses, its files and their content (a TLS server's default certificate). */
  filesFor(name: string | undefined): CertificatePem {
    return lookup(this.state.filesByName, name) ?? this.state.defaultFiles;
  }

  /** For `tls.createServer({ SNICallback })`. */
  readonly sni = (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void => {
    cb(null, this.contextFor(servername));
  };
}

/**
 * Whether a certificate holding `names` is valid for `domain` (RFC 6125 §6.4): an exact name, or
 * a wildcard standing for exactly one label (`*.example.org` covers `chat.example.org`, neither
 * `example.org` nor `a.b.example.org`).
 */
export function namesCover(names: readonly string[], domain: string): boolean {
  const lower = domain.toLowerCase();
  if (names.includes(lower)) return true;
  const dot = lower.indexOf('.');
  return dot > 0 && names.includes(`*${lower.slice(dot)}`);
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
