import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fchmodSync,
  fchownSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import type { SecureContext } from 'node:tls';
import type { Config } from './config.js';
import {
  CertificateStore,
  ensureCertificate,
  loadCertificate,
  type CertificateFiles,
  type LoadedCertificate,
} from './tls.js';

/** The directory of the generated certificate and of those `natter cert import` writes. */
export function certsDir(dataDir: string): string {
  return join(dataDir, 'certs');
}

/**
 * The certificates `natter cert import` wrote: `<dataDir>/certs/<domain>.crt` with
 * `<domain>.key` beside it (the generated `self-signed.crt` is not one of them), sorted by name.
 */
export function importedCertificates(dataDir: string): { cert: string; key: string }[] {
  const dir = certsDir(dataDir);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.crt') && f !== 'self-signed.crt')
    .sort()
    .map((f) => ({ cert: join(dir, f), key: join(dir, `${f.slice(0, -'.crt'.length)}.key`) }))
    .filter((f) => existsSync(f.key));
}

/**
 * Writes `data` to `path` through a temporary file and a rename: a reader sees the old or the new
 * file. The directory belongs to the server's user while this may run as root (certbot's deploy
 * hook), so the temporary name is random and created exclusively (O_EXCL: a symlink planted there
 * is refused, never followed), and its mode and owner are set on the open descriptor.
 */
export function writeAtomic(
  path: string,
  data: Buffer,
  mode: number,
  owner?: { uid: number; gid: number },
): void {
  const tmp = `${path}.tmp-${randomBytes(8).toString('hex')}`;
  // Refused if anything is there already; nothing of ours to remove then.
  let fd: number | undefined = openSync(tmp, 'wx', 0o600);
  try {
    fchmodSync(fd, mode); // whatever the umask
    if (owner) fchownSync(fd, owner.uid, owner.gid);
    writeFileSync(fd, data);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** What a reload did to one certificate (one log line each). */
export interface CertificateChange {
  /** The certificate file. */
  cert: string;
  change: 'added' | 'renewed' | 'unchanged' | 'removed' | 'failed';
  names?: string[];
  notAfter?: string;
  /** failed: why; the previous certificate of these files, if any, is still served (`kept`). */
  error?: string;
  kept?: boolean;
}

const fileKey = (f: { cert: string; key: string }) => `${f.cert}\0${f.key}`;

/**
 * Every certificate the server presents, in order of precedence for a name (a later one wins):
 * 1. the default: `tls.cert`/`tls.key`, else the generated self-signed one (also what a TLS client
 *    sending no SNI, or an unknown name, gets);
 * 2. those imported into `<dataDir>/certs/<domain>.crt|.key` (`natter cert import`);
 * 3. `tls.certificates`.
 * Two stores share them: one for client listeners, one with the peers' CAs for server-to-server.
 * `reload()` re-reads every file (certbot renews them in place) and swaps what changed; a file that
 * fails to load never replaces a good certificate.
 */
export class ServerCertificates {
  readonly client: CertificateStore;
  readonly s2s: CertificateStore;
  private defaultCert: LoadedCertificate;
  private loaded: LoadedCertificate[];

  private constructor(
    private readonly dataDir: string,
    private readonly hosts: readonly string[],
    readonly files: CertificateFiles,
    defaultCert: LoadedCertificate,
    more: LoadedCertificate[],
    s2sCas: readonly string[],
  ) {
    this.defaultCert = defaultCert;
    this.loaded = more;
    this.client = new CertificateStore(defaultCert, more);
    this.s2s = new CertificateStore(defaultCert, more, s2sCas);
  }

  /** Loads every certificate; a missing or broken file stops the start (the error names it). */
  static async open(
    dataDir: string,
    hosts: readonly string[],
    tls: Config['tls'],
    s2sCas: readonly string[],
  ): Promise<ServerCertificates> {
    const files = await ensureCertificate(dataDir, [...hosts], tls);
    const more = [...importedCertificates(dataDir), ...tls.certificates].map(loadCertificate);
    return new ServerCertificates(dataDir, hosts, files, loadCertificate(files), more, s2sCas);
  }

  /** The certificate (PEM) this process serves from `certFile`, if it loaded one from there. */
  served(certFile: string): string | undefined {
    const file = resolve(certFile);
    return this.loaded.find((c) => resolve(c.cert) === file)?.certPem.toString();
  }

  /** The default certificate's context (STARTTLS on a client stream, before SNI chooses). */
  get context(): SecureContext {
    return this.client.default;
  }

  /** The default certificate's PEM, for a TLS server's own certificate (`setSecureContext`). */
  get pem(): { cert: Buffer; key: Buffer } {
    return { cert: this.defaultCert.certPem, key: this.defaultCert.keyPem };
  }

  /**
   * Re-reads the certificate files named by `tls` (and the imported ones) and serves them from now
   * on. Each failing file is reported and its previous certificate, if any, kept.
   */
  async reload(tls: Config['tls']): Promise<CertificateChange[]> {
    const changes: CertificateChange[] = [];
    const previous = new Map([this.defaultCert, ...this.loaded].map((c) => [fileKey(c), c]));
    const describe = (c: LoadedCertificate) => ({ names: c.names, notAfter: c.x509.validTo });
    const take = (files: { cert: string; key: string }, fresh: () => LoadedCertificate) => {
      const old = previous.get(fileKey(files));
      try {
        const c = fresh();
        const change = !old
          ? 'added'
          : old.x509.fingerprint256 === c.x509.fingerprint256
            ? 'unchanged'
            : 'renewed';
        changes.push({ cert: files.cert, change, ...describe(c) });
        return c;
      } catch (err) {
        changes.push({
          cert: files.cert,
          change: 'failed',
          error: (err as Error).message,
          kept: old !== undefined,
        });
        return old;
      }
    };
    let defaultCert: LoadedCertificate | undefined;
    try {
      const files = await ensureCertificate(this.dataDir, [...this.hosts], tls);
      defaultCert = take(files, () => loadCertificate(files));
      // New default files that fail: the previous default certificate stays in service.
      if (!defaultCert) changes[changes.length - 1]!.kept = true;
    } catch (err) {
      const cert = tls.cert ?? this.defaultCert.cert;
      changes.push({ cert, change: 'failed', error: (err as Error).message, kept: true });
    }
    defaultCert ??= this.defaultCert;
    const more = [...importedCertificates(this.dataDir), ...tls.certificates].flatMap((f) => {
      const c = take(f, () => loadCertificate(f));
      return c ? [c] : [];
    });
    const kept = new Set([defaultCert, ...more].map(fileKey));
    for (const [key, c] of previous)
      if (!kept.has(key)) changes.push({ cert: c.cert, change: 'removed', ...describe(c) });
    // Build both stores' contexts before swapping either, so that a failure changes nothing.
    let commit: (() => void)[];
    try {
      commit = [this.client.prepare(defaultCert, more), this.s2s.prepare(defaultCert, more)];
    } catch (err) {
      changes.push({ cert: defaultCert.cert, change: 'failed', error: (err as Error).message, kept: true });
      return changes;
    }
    for (const c of commit) c();
    this.defaultCert = defaultCert;
    this.loaded = more;
    return changes;
  }
}
