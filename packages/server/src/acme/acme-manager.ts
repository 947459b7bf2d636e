import { randomUUID, X509Certificate } from 'node:crypto';
import { Agent } from 'node:https';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as acme from 'acme-client';
import type { Config } from '../config.js';
import type { Logger } from '../core/logger.js';
import type { ClusterView } from '../core/cluster/cluster.js';
import { certsDir, writeAtomic } from '../certificates.js';
import { AcmeStore, type AcmeCertificate } from './acme-store.js';
import { acmeGroups, type AcmeGroup } from './acme-domains.js';

export type AcmeConfig = NonNullable<Config['tls']['acme']>;

/** The ACME directories known by name (`tls.acme.directory`). */
export const ACME_DIRECTORIES: Record<string, string> = {
  letsencrypt: acme.directory.letsencrypt.production,
  'letsencrypt-staging': acme.directory.letsencrypt.staging,
};

const DAY_MS = 24 * 3600_000;
/** First wait after a failed order; it doubles up to `checkHours`. */
const RETRY_MIN_MS = 60_000;
/** How long the ordering lease lasts without being renewed (it is renewed before each order). */
const LEASE_MS = 15 * 60_000;

export interface AcmeDeps {
  config: Config;
  store: AcmeStore;
  log: Logger;
  /** The hosted domains and service subdomains the server answers for. */
  served: readonly { domain: string; hosted: boolean }[];
  /** The certificate (PEM) this process serves from a file, if it loaded one from there. */
  servedPem: (certFile: string) => string | undefined;
  /** Re-reads `<dataDir>/certs/` and serves what changed (new handshakes), as SIGHUP does. */
  reloadCertificates: () => Promise<void>;
  /** The leader orders; every node installs what the leader stored (`STANDALONE` alone). */
  cluster: ClusterView;
  now?: () => number;
}

/** What one pass did for one certificate. */
export interface AcmeOutcome {
  name: string;
  /** `deferred`: another node holds the ordering lease; this one looks again a minute later. */
  result: 'issued' | 'current' | 'failed' | 'deferred';
  notAfter?: string;
  error?: string;
}

/**
 * Certificates from an ACME CA (RFC 8555; Let's Encrypt by default), HTTP-01 challenges answered
 * by the http listeners (`/.well-known/acme-challenge/`, from storage, so any worker or node may
 * answer). Every node checks at start and every `checkHours`: the leader orders a certificate
 * for each group that has none, lacks a name, or expires within `renewDays`, stores it, and tells
 * every node; each node (told, or at its own check) writes what is stored to
 * `<dataDir>/certs/<name>.crt|.key` and reloads its certificates when it serves an older one, so
 * new handshakes get it and no session is dropped. A failed order is logged and tried again later
 * (1 minute, doubling, at most `checkHours`); the certificate in service stays.
 */
export class AcmeManager {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<AcmeOutcome[]> | undefined;
  private stopped = false;
  private failures = 0;
  private readonly unsubscribe: (() => void)[] = [];
  private readonly now: () => number;
  /** This node's name on the ordering lease (unique to this process). */
  private readonly holder: string;

  constructor(private readonly deps: AcmeDeps) {
    this.now = deps.now ?? Date.now;
    this.holder = `${deps.cluster.nodeId}.${randomUUID().slice(0, 8)}`;
  }

  private get options(): AcmeConfig {
    return this.deps.config.tls.acme!;
  }

  /** The directory URL (`letsencrypt` and `letsencrypt-staging` are names for Let's Encrypt's). */
  get directory(): string {
    return ACME_DIRECTORIES[this.options.directory] ?? this.options.directory;
  }

  async start(): Promise<void> {
    acme.setLogger((message) => this.deps.log.debug({ acme: true }, message));
    const install = () => void this.install().catch((err: unknown) => this.installFailed(err));
    this.unsubscribe.push(
      this.deps.cluster.on('issued', install),
      // Messages from the leader may have been lost (a Redis outage): read the store again.
      this.deps.cluster.onResync(install),
      this.deps.cluster.onLeader(() => this.schedule(0)),
    );
    // What the leader stored before this node started (or before a restart) is served at once;
    // should storage fail now, the first check tries again (the start goes on).
    await this.install().catch((err: unknown) => this.installFailed(err));
    // Every node checks: the leader orders what is due, the others install what is stored (a
    // missed broadcast costs at most checkHours).
    this.schedule(0);
  }

  /**
   * No new order or check from now on; resolves when the one in flight (if any) has ended.
   * Called first thing at shutdown, so that nothing is ordered while the server closes.
   */
  stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    for (const u of this.unsubscribe.splice(0)) u();
    return (
      this.running?.then(
        () => undefined,
        () => undefined,
      ) ?? Promise.resolve()
    );
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.pass(), ms);
    this.timer.unref();
  }

  private installFailed(err: unknown): void {
    this.deps.log.error({ err }, 'acme: installing the issued certificates failed');
  }

  /**
   * One check of every certificate (the timer's; also the tests'). Never rejects: whatever fails
   * (storage unreachable, the certificates directory not writable) is logged and tried again
   * with the same backoff as a failed order.
   */
  async pass(): Promise<AcmeOutcome[]> {
    if (this.running) return this.running;
    this.running = (async () => {
      const every = this.options.checkHours * 3600_000;
      const retry = () => Math.min(every, RETRY_MIN_MS * 2 ** (this.failures - 1));
      try {
        const out = await this.renewDue();
        const failed = out.filter((o) => o.result === 'failed');
        this.failures = failed.length ? this.failures + 1 : 0;
        const deferred = out.some((o) => o.result === 'deferred');
        const next = failed.length ? retry() : deferred ? Math.min(every, RETRY_MIN_MS) : every;
        if (failed.length)
          this.deps.log.warn(
            { acme: failed.map((f) => f.name), retryInMs: next },
            `acme: ${failed.length} certificate(s) not obtained; next try in ${Math.round(next / 1000)} s`,
          );
        this.schedule(next);
        return out;
      } catch (err) {
        this.failures++;
        const next = retry();
        if (!this.stopped)
          this.deps.log.error(
            { err, retryInMs: next },
            `acme: the certificate check failed: ${describe(err)}; next try in ${Math.round(next / 1000)} s`,
          );
        this.schedule(next);
        return [];
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  /** Orders what is missing or due; stores and installs what was issued. */
  private async renewDue(): Promise<AcmeOutcome[]> {
    if (this.stopped) return [];
    if (!this.deps.cluster.isLeader()) {
      await this.install();
      return [];
    }
    const groups = acmeGroups(this.deps.config, this.deps.served);
    const stored = async () => new Map((await this.deps.store.certificates()).map((c) => [c.name, c]));
    let have = await stored();
    if (groups.every((g) => !this.due(g, have.get(g.name)))) {
      await this.install();
      return groups.map((g) => ({
        name: g.name,
        result: 'current' as const,
        notAfter: new Date(have.get(g.name)!.notAfter).toISOString(),
      }));
    }
    // Something is due: only the holder of the lease orders (two nodes may both believe they lead).
    if (!(await this.deps.store.takeLease(this.holder, LEASE_MS))) {
      this.deps.log.info('acme: another node is ordering certificates; this one installs what it stores');
      await this.install();
      return groups.map((g) => ({ name: g.name, result: 'deferred' as const }));
    }
    try {
      // What the previous holder stored while this node waited is not ordered again.
      have = await stored();
      return await this.orderDue(groups, have);
    } finally {
      await this.deps.store
        .releaseLease(this.holder)
        .catch((err: unknown) =>
          this.deps.log.warn({ err }, 'acme: giving back the ordering lease failed (it expires by itself)'),
        );
    }
  }

  /** Orders each group that is due (holding the lease), stores and installs what was issued. */
  private async orderDue(groups: AcmeGroup[], have: Map<string, AcmeCertificate>): Promise<AcmeOutcome[]> {
    const out: AcmeOutcome[] = [];
    let issued = 0;
    for (const group of groups) {
      if (this.stopped) break;
      const current = have.get(group.name);
      const reason = this.due(group, current);
      if (!reason) {
        out.push({
          name: group.name,
          result: 'current',
          notAfter: new Date(current!.notAfter).toISOString(),
        });
        continue;
      }
      this.deps.log.info(
        { acme: group.name, domains: group.domains, directory: this.directory },
        `acme: ordering a certificate for ${group.domains.join(', ')} (${reason})`,
      );
      // Renewed before each order; lost (an order took longer than the lease, or clocks disagree)
      // means another node may be ordering now: this one stops and looks again later.
      if (!(await this.deps.store.takeLease(this.holder, LEASE_MS))) {
        out.push({ name: group.name, result: 'deferred' });
        continue;
      }
      try {
        const cert = await this.order(group);
        await this.deps.store.saveCertificate(cert);
        issued++;
        const notAfter = new Date(cert.notAfter).toISOString();
        this.deps.log.info(
          { acme: group.name, domains: group.domains, notAfter },
          `acme: certificate issued for ${group.domains.join(', ')}, valid until ${notAfter}`,
        );
        out.push({ name: group.name, result: 'issued', notAfter });
      } catch (err) {
        const error = describe(err);
        this.deps.log.error(
          { acme: group.name, domains: group.domains, err: error },
          `acme: ordering a certificate for ${group.name} failed: ${error}`,
        );
        out.push({ name: group.name, result: 'failed', error });
      }
    }
    if (this.stopped) return out;
    // Also what a previous leader stored and this node was never told of.
    await this.install();
    if (issued > 0) this.deps.cluster.broadcast('issued', { count: issued });
    return out;
  }

  /** Why `group` needs a new certificate, or undefined when the one stored will do. */
  private due(group: AcmeGroup, current: AcmeCertificate | undefined): string | undefined {
    if (!current) return 'none yet';
    const missing = group.domains.filter((d) => !current.domains.includes(d));
    if (missing.length) return `it lacks ${missing.join(', ')}`;
    const left = current.notAfter - this.now();
    if (left < this.options.renewDays * DAY_MS)
      return left <= 0 ? 'expired' : `${Math.floor(left / DAY_MS)} days left`;
    return undefined;
  }

  private async order(group: AcmeGroup): Promise<AcmeCertificate> {
    const store = this.deps.store;
    const directory = this.directory;
    // The CA of a private ACME server (step-ca, Pebble): acme-client talks through this agent
    // (its HTTP client is one for the process; one ACME configuration per process).
    acme.axios.defaults.httpsAgent = this.options.caFile
      ? new Agent({ ca: readFileSync(this.options.caFile) })
      : undefined;
    const saved = await store.account(directory);
    const accountKey =
      saved?.keyPem ??
      (await store.saveAccountKey(directory, (await acme.crypto.createPrivateEcdsaKey('P-256')).toString()));
    const client = new acme.Client({
      directoryUrl: directory,
      accountKey,
      ...(saved?.url ? { accountUrl: saved.url } : {}),
      backoffAttempts: 10,
      backoffMin: 500,
      backoffMax: 5000,
    });
    const [key, csr] = await acme.crypto.createCsr(
      { commonName: group.name, altNames: group.domains },
      await acme.crypto.createPrivateEcdsaKey('P-256'),
    );
    const certPem = await client.auto({
      csr,
      ...(this.options.email ? { email: this.options.email } : {}),
      termsOfServiceAgreed: this.options.agreeToTerms,
      challengePriority: ['http-01'],
      // The CA checks from outside; a check from here would ask our own DNS and prove nothing.
      skipChallengeVerification: true,
      challengeCreateFn: async (_authz, challenge, keyAuthorization) => {
        if (challenge.type !== 'http-01') throw new Error(`challenge ${challenge.type} is not supported`);
        await store.putChallenge(challenge.token, keyAuthorization);
      },
      challengeRemoveFn: async (_authz, challenge) => {
        await store.removeChallenge(challenge.token);
      },
    });
    if (!saved?.url) await store.saveAccountUrl(directory, client.getAccountUrl());
    const leaf = new X509Certificate(certPem);
    return {
      name: group.name,
      domains: group.domains,
      certPem,
      keyPem: key.toString(),
      notAfter: new Date(leaf.validTo).getTime(),
      issuedAt: this.now(),
    };
  }

  /**
   * Writes every stored certificate whose files differ to `<dataDir>/certs/<name>.crt|.key` (the
   * key first: a new certificate is never paired with an old key), then reloads the certificates
   * when this process serves an older one than stored. Workers of one machine share the files:
   * the first writes them, every one reloads.
   */
  async install(): Promise<number> {
    if (this.stopped) return 0;
    const dir = certsDir(this.deps.config.dataDir);
    let changed = 0;
    const stored = await this.deps.store.certificates();
    for (const c of stored) {
      const certFile = join(dir, `${c.name}.crt`);
      const keyFile = join(dir, `${c.name}.key`);
      const same =
        existsSync(certFile) &&
        existsSync(keyFile) &&
        readFileSync(certFile, 'utf8') === c.certPem &&
        readFileSync(keyFile, 'utf8') === c.keyPem;
      if (!same) {
        mkdirSync(dir, { recursive: true });
        writeAtomic(keyFile, Buffer.from(c.keyPem), 0o600);
        writeAtomic(certFile, Buffer.from(c.certPem), 0o644);
      }
      if (this.deps.servedPem(certFile) !== c.certPem) changed++;
    }
    if (changed > 0) await this.deps.reloadCertificates();
    return changed;
  }
}

/** An ACME error as the CA said it (RFC 7807 problem details), else the error's message. */
function describe(err: unknown): string {
  const e = err as { message?: string; response?: { data?: { detail?: string; type?: string } } };
  return e.response?.data?.detail ?? e.message ?? String(err);
}
