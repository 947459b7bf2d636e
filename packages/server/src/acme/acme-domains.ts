import { isIP } from 'node:net';
import type { Config } from '../config.js';

/** One certificate to keep: a hosted domain and the service subdomains under it. */
export interface AcmeGroup {
  name: string;
  domains: string[];
}

/** Names no public CA issues for: loopback, `.localhost`, `.local`, `.test`, bare labels, IP literals. */
export function acquirable(domain: string): boolean {
  if (isIP(domain)) return false;
  if (!domain.includes('.')) return false;
  return !/(^|\.)(localhost|local|test|invalid|example|internal)$/.test(domain);
}

/**
 * The certificates ACME keeps: one per hosted domain (of `tls.acme.domains`, default every host a
 * CA can issue for), holding the domain and the service subdomains under it (`conference.`,
 * `pubsub.`, `upload.`); a service domain under no host gets one of its own.
 */
export function acmeGroups(
  config: Config,
  served: readonly { domain: string; hosted: boolean }[],
): AcmeGroup[] {
  const wanted = config.tls.acme?.domains;
  const hosts = served.filter((d) => d.hosted && (wanted ? wanted.includes(d.domain) : acquirable(d.domain)));
  const groups = hosts.map((h) => ({ name: h.domain, domains: [h.domain] }));
  for (const s of served.filter((d) => !d.hosted)) {
    const owner = groups.find((g) => s.domain.endsWith(`.${g.name}`));
    if (owner) owner.domains.push(s.domain);
    else if (wanted ? wanted.includes(s.domain) : false) groups.push({ name: s.domain, domains: [s.domain] });
  }
  return groups;
}
