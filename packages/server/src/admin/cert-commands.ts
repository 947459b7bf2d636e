import { existsSync, mkdirSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Config } from '../config.js';
import { certsDir, importedCertificates, writeAtomic } from '../certificates.js';
import { builtinModules } from '../modules/index.js';
import { loadCertificate, namesCover, type LoadedCertificate } from '../tls.js';

/** `cert status` warns this many days before a certificate expires. */
export const EXPIRY_WARNING_DAYS = 14;
const DAY_MS = 24 * 3600 * 1000;

/** Where a certificate comes from, in order of precedence for a name (a later one wins). */
type Role = 'tls.cert' | 'generated' | 'imported' | 'tls.certificates';

export interface CertificateReport {
  cert: string;
  key: string;
  role: Role;
  /** Set when the files cannot be used (missing, unreadable, not PEM, the key does not match). */
  error?: string;
  names?: string[];
  subject?: string;
  issuer?: string;
  selfSigned?: boolean;
  notBefore?: string;
  notAfter?: string;
  daysLeft?: number;
  /** Hosted domains and service subdomains it covers. */
  covers?: string[];
  warnings: string[];
}

export interface DomainReport {
  domain: string;
  /** A hosted domain (`hosts`), else a service subdomain of one (conference., pubsub., upload.). */
  hosted: boolean;
  /** The certificate served for this name (by SNI), if one names it. */
  cert: string | null;
  ok: boolean;
  problem?: string;
}

export interface StatusReport {
  certificates: CertificateReport[];
  domains: DomainReport[];
  /** Every hosted domain has a valid certificate (the exit code). */
  ok: boolean;
}

function enabled(config: Config, name: string): boolean {
  const c = config.modules[name];
  const def = builtinModules.find((m) => m.name === name);
  return c === undefined ? def !== undefined && def.enabledByDefault !== false : c !== false;
}

/** The names the server answers for: each host, then its service subdomains (enabled modules only). */
export function servedDomains(config: Config): { domain: string; hosted: boolean }[] {
  const out: { domain: string; hosted: boolean }[] = [];
  const option = (module: string): string | undefined => {
    const c = config.modules[module];
    return c && typeof c.domain === 'string' ? c.domain.toLowerCase() : undefined;
  };
  const seen = new Set<string>();
  const add = (domain: string, hosted: boolean) => {
    if (seen.has(domain)) return;
    seen.add(domain);
    out.push({ domain, hosted });
  };
  for (const host of config.hosts.map((h) => h.toLowerCase())) add(host, true);
  for (const host of config.hosts.map((h) => h.toLowerCase())) {
    if (enabled(config, 'muc')) add(option('muc') ?? `conference.${host}`, false);
    if (enabled(config, 'pubsub')) add(option('pubsub') ?? `pubsub.${host}`, false);
    if (enabled(config, 'upload')) add(`upload.${host}`, false);
  }
  return out;
}

/** The certificates the server would load, in order of precedence (see certificates.ts). */
function configuredCertificates(config: Config): { cert: string; key: string; role: Role }[] {
  const dataDir = resolve(config.dataDir);
  const out: { cert: string; key: string; role: Role }[] = [];
  if (config.tls.cert || config.tls.key)
    out.push({
      cert: config.tls.cert ?? '(tls.cert missing)',
      key: config.tls.key ?? '(tls.key missing)',
      role: 'tls.cert',
    });
  else {
    const generated = {
      cert: join(certsDir(dataDir), 'self-signed.crt'),
      key: join(certsDir(dataDir), 'self-signed.key'),
    };
    if (existsSync(generated.cert)) out.push({ ...generated, role: 'generated' });
  }
  for (const f of importedCertificates(dataDir)) out.push({ ...f, role: 'imported' });
  for (const f of config.tls.certificates) out.push({ ...f, role: 'tls.certificates' });
  return out;
}

/** One line of X.509 distinguished name: "C=US, O=Let's Encrypt, CN=R11". */
const dn = (s: string) => s.split('\n').filter(Boolean).join(', ');

/** What `natter cert status` reports; `now` for tests. */
export function certificateStatus(config: Config, now = Date.now()): StatusReport {
  const domains = servedDomains(config);
  const loaded: { report: CertificateReport; cert?: LoadedCertificate }[] = configuredCertificates(
    config,
  ).map((f) => {
    const report: CertificateReport = { ...f, warnings: [] };
    let cert: LoadedCertificate;
    try {
      cert = loadCertificate(f);
    } catch (err) {
      report.error = (err as Error).message;
      report.warnings.push(`not usable: ${report.error}`);
      return { report };
    }
    const notBefore = new Date(cert.x509.validFrom).getTime();
    const notAfter = new Date(cert.x509.validTo).getTime();
    const daysLeft = Math.floor((notAfter - now) / DAY_MS);
    Object.assign(report, {
      names: cert.names,
      subject: dn(cert.x509.subject),
      issuer: dn(cert.x509.issuer),
      // Signed by its own key (checkIssued would also want the keyCertSign usage, which leaves lack).
      selfSigned: cert.x509.issuer === cert.x509.subject && cert.x509.verify(cert.x509.publicKey),
      notBefore: new Date(notBefore).toISOString(),
      notAfter: new Date(notAfter).toISOString(),
      daysLeft,
      covers: domains.filter((d) => namesCover(cert.names, d.domain)).map((d) => d.domain),
    });
    if (notAfter <= now) report.warnings.push(`expired on ${report.notAfter}`);
    else if (notAfter - now <= EXPIRY_WARNING_DAYS * DAY_MS)
      report.warnings.push(`expires in ${daysLeft} days (${report.notAfter})`);
    if (notBefore > now) report.warnings.push(`not valid before ${report.notBefore}`);
    if (report.selfSigned) report.warnings.push('self-signed: clients and other servers will not trust it');
    return { report, cert };
  });
  // The server's choice for a name (tls.ts CertificateStore): a later certificate wins a name; an
  // exact name before a wildcard one.
  const byName = new Map<string, (typeof loaded)[number]>();
  for (const l of loaded) for (const name of l.cert?.names ?? []) byName.set(name, l);
  const served = (domain: string) => {
    const exact = byName.get(domain);
    if (exact) return exact;
    const dot = domain.indexOf('.');
    return dot > 0 ? byName.get(`*${domain.slice(dot)}`) : undefined;
  };
  const domainReports = domains.map(({ domain, hosted }): DomainReport => {
    const l = served(domain);
    if (!l) return { domain, hosted, cert: null, ok: false, problem: 'no certificate names it' };
    const r = l.report;
    const problem =
      r.daysLeft !== undefined && new Date(r.notAfter!).getTime() <= now
        ? `expired on ${r.notAfter}`
        : new Date(r.notBefore!).getTime() > now
          ? `not valid before ${r.notBefore}`
          : undefined;
    return { domain, hosted, cert: r.cert, ok: problem === undefined, ...(problem ? { problem } : {}) };
  });
  return {
    certificates: loaded.map((l) => l.report),
    domains: domainReports,
    ok: domainReports.every((d) => !d.hosted || d.ok),
  };
}

/** `natter cert status` as text. */
export function formatStatus(report: StatusReport): string {
  const lines: string[] = [];
  if (report.certificates.length === 0)
    lines.push(
      'no certificate yet: natter serve generates a self-signed one (set tls.cert/tls.key, or natter cert import)',
    );
  for (const c of report.certificates) {
    lines.push(`${c.cert} (${c.role})`);
    if (c.names) {
      lines.push(`  names:    ${c.names.join(', ') || '(none)'}`);
      lines.push(`  issuer:   ${c.issuer}${c.selfSigned ? ' (self-signed)' : ''}`);
      lines.push(`  notAfter: ${c.notAfter} (${c.daysLeft} days left)`);
      lines.push(`  covers:   ${c.covers!.join(', ') || '(no hosted domain)'}`);
    }
    for (const w of c.warnings) lines.push(`  WARNING: ${w}`);
  }
  lines.push('', 'domains:');
  const width = Math.max(...report.domains.map((d) => d.domain.length));
  for (const d of report.domains)
    lines.push(
      `  ${d.domain.padEnd(width)}  ${d.ok ? 'OK     ' : 'MISSING'}  ${d.ok ? d.cert : `${d.problem}${d.cert ? ` (${d.cert})` : ''}`}${d.hosted ? '' : '  [service]'}`,
    );
  if (!report.ok) lines.push('', 'a hosted domain has no valid certificate');
  return lines.join('\n');
}

/** A certificate found in a directory given to `cert import` (certbot: live/<lineage>/). */
interface Candidate {
  dir: string;
  cert: LoadedCertificate;
}

/**
 * Certificate directories under each of `dirs`: the directory itself when it holds fullchain.pem
 * and privkey.pem (one certbot lineage), else each of its subdirectories that does (certbot's
 * `live/`). Files are read through their symlinks (live/ → ../../archive/…).
 */
function findCandidates(dirs: readonly string[], problems: string[]): Candidate[] {
  const out: Candidate[] = [];
  const tryDir = (dir: string): boolean => {
    const cert = join(dir, 'fullchain.pem');
    const key = join(dir, 'privkey.pem');
    if (!existsSync(cert) || !existsSync(key)) return false;
    try {
      out.push({ dir, cert: loadCertificate({ cert: realpathSync(cert), key: realpathSync(key) }) });
    } catch (err) {
      problems.push(`${dir}: ${(err as Error).message}`);
    }
    return true;
  };
  for (const d of dirs) {
    const dir = resolve(d);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) {
      problems.push(`${dir}: not a directory`);
      continue;
    }
    if (tryDir(dir)) continue;
    for (const name of readdirSync(dir).sort()) {
      const sub = join(dir, name);
      let isDir = false;
      try {
        isDir = statSync(sub).isDirectory();
      } catch {
        // a dangling symlink
      }
      if (isDir) tryDir(sub);
    }
  }
  return out;
}

export interface ImportReport {
  imported: { domain: string; from: string; names: string[]; notAfter: string }[];
  /** The same certificate was already there. */
  current: { domain: string; from: string }[];
  /** Names covered by the certificate imported for their host (no file of their own needed). */
  coveredBy: { domain: string; by: string }[];
  missing: { domain: string; hosted: boolean }[];
  problems: string[];
  dir: string;
}

/**
 * `natter cert import DIR…` (as Prosody's `prosodyctl cert import`): for each hosted domain, and
 * each service subdomain its certificate does not cover, the certificate found in `dirs` that
 * covers it (the one valid longest; expired ones never) is copied to
 * `<dataDir>/certs/<domain>.crt` and `.key` (mode 0600), which the server loads (by SNI) at start
 * and on SIGHUP. Run as root, the files get the owner of the certs directory.
 */
export function importCertificates(config: Config, dirs: readonly string[], now = Date.now()): ImportReport {
  const problems: string[] = [];
  const candidates = findCandidates(dirs, problems).filter((c) => {
    if (new Date(c.cert.x509.validTo).getTime() > now) return true;
    problems.push(`${c.dir}: expired on ${new Date(c.cert.x509.validTo).toISOString()}, skipped`);
    return false;
  });
  const dir = certsDir(resolve(config.dataDir));
  const report: ImportReport = { imported: [], current: [], coveredBy: [], missing: [], problems, dir };
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o755 });
  const stat = statSync(dir);
  const owner = process.getuid?.() === 0 ? { uid: stat.uid, gid: stat.gid } : undefined;
  const domains = servedDomains(config);
  /** What each host's chosen certificate covers, so that its subdomains need no file of their own. */
  const chosen = new Map<string, Candidate>();
  const best = (domain: string, prefer: readonly string[]): Candidate | undefined =>
    candidates
      .filter((c) => namesCover(c.cert.names, domain))
      .sort(
        (a, b) =>
          // Covering more of the host's service subdomains first, then valid longest.
          prefer.filter((p) => namesCover(b.cert.names, p)).length -
            prefer.filter((p) => namesCover(a.cert.names, p)).length ||
          new Date(b.cert.x509.validTo).getTime() - new Date(a.cert.x509.validTo).getTime(),
      )[0];
  for (const { domain, hosted } of domains) {
    const parent = hosted
      ? undefined
      : [...chosen.entries()].find(([, c]) => namesCover(c.cert.names, domain));
    if (parent) {
      report.coveredBy.push({ domain, by: parent[0] });
      continue;
    }
    const subs = domains.filter((d) => !d.hosted && d.domain.endsWith(`.${domain}`)).map((d) => d.domain);
    const c = best(domain, subs);
    if (!c) {
      report.missing.push({ domain, hosted });
      continue;
    }
    chosen.set(domain, c);
    const certFile = join(dir, `${domain}.crt`);
    const keyFile = join(dir, `${domain}.key`);
    let same = false;
    try {
      const existing = loadCertificate({ cert: certFile, key: keyFile });
      same = existing.certPem.equals(c.cert.certPem) && existing.keyPem.equals(c.cert.keyPem);
    } catch {
      // absent or broken: written below
    }
    if (same) {
      report.current.push({ domain, from: c.dir });
      continue;
    }
    // The key first: the server never pairs a new certificate with an old key (it would refuse it).
    writeAtomic(keyFile, c.cert.keyPem, 0o600, owner);
    writeAtomic(certFile, c.cert.certPem, 0o644, owner);
    report.imported.push({
      domain,
      from: c.dir,
      names: c.cert.names,
      notAfter: new Date(c.cert.x509.validTo).toISOString(),
    });
  }
  return report;
}

/** `natter cert import` as text. */
export function formatImport(report: ImportReport): string {
  const lines: string[] = [];
  for (const i of report.imported)
    lines.push(
      `imported ${i.domain} from ${i.from} (names ${i.names.join(', ')}; valid until ${i.notAfter})`,
    );
  for (const c of report.current) lines.push(`up to date: ${c.domain} (${c.from})`);
  for (const c of report.coveredBy) lines.push(`covered: ${c.domain} by the certificate of ${c.by}`);
  for (const m of report.missing)
    lines.push(
      `not found: ${m.domain}${m.hosted ? '' : ' (service)'}: no certificate in the given directories covers it`,
    );
  for (const p of report.problems) lines.push(`skipped: ${p}`);
  if (report.imported.length > 0)
    lines.push(
      `written to ${report.dir}; tell the running server to use them: kill -HUP <pid of natter serve> (systemd: systemctl reload natter)`,
    );
  return lines.join('\n');
}
