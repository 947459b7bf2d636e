// RFC 6120 §3.2.1 and XEP-0368: a domain's client endpoints from DNS SRV records, for Node.
import { Resolver } from 'node:dns/promises';
import type { EndpointResolver } from './discovery.js';

export interface SrvOptions {
  /** DNS servers to ask (`"127.0.0.1:5353"`); default: the system's. */
  servers?: string[];
  /** Look up direct TLS endpoints (`_xmpps-client._tcp`, XEP-0368) too (default true). */
  directTls?: boolean;
}

interface Srv {
  priority: number;
  weight: number;
  port: number;
  name: string;
  tls: boolean;
}

/**
 * RFC 2782 order: by priority, and within a priority at random weighted by weight (a record of
 * weight 0 has a small chance to come first).
 */
export function orderSrv<T extends { priority: number; weight: number }>(
  records: T[],
  random = Math.random,
): T[] {
  const out: T[] = [];
  const priorities = [...new Set(records.map((r) => r.priority))].sort((a, b) => a - b);
  for (const p of priorities) {
    const left = records.filter((r) => r.priority === p);
    while (left.length > 0) {
      const total = left.reduce((n, r) => n + r.weight, 0);
      let pick = 0;
      if (total > 0) {
        let x = random() * total;
        pick = left.findIndex((r) => (x -= r.weight) < 0);
        if (pick < 0) pick = left.length - 1;
      }
      out.push(left.splice(pick, 1)[0]!);
    }
  }
  return out;
}

const NO_RECORD = new Set(['ENOTFOUND', 'ENODATA', 'NXDOMAIN', 'ENONAME']);

/**
 * The endpoints of a domain from `_xmpps-client._tcp` (direct TLS) and `_xmpp-client._tcp`
 * (STARTTLS) records, ordered together by priority and weight (XEP-0368 §3); without records,
 * the domain itself on port 5222 (RFC 6120 §3.2.2). A single record with target "." says the
 * service is not offered: an error. TLS is verified against the domain, never the SRV target.
 */
export function srvResolver(options: SrvOptions = {}): EndpointResolver {
  return async (domain) => {
    const resolver = new Resolver({ timeout: 5000, tries: 2 });
    if (options.servers) resolver.setServers(options.servers);
    const lookup = async (name: string, tls: boolean): Promise<Srv[] | undefined> => {
      try {
        return (await resolver.resolveSrv(name)).map((r) => ({ ...r, tls }));
      } catch (err) {
        if (NO_RECORD.has((err as NodeJS.ErrnoException).code ?? '')) return undefined;
        throw new Error(`DNS SRV lookup of ${name} failed: ${(err as Error).message}`, { cause: err });
      }
    };
    // Each lookup on its own: a failure of one (a timeout, SERVFAIL) leaves the other's records.
    const [direct, starttls] = await Promise.allSettled([
      options.directTls === false ? Promise.resolve(undefined) : lookup(`_xmpps-client._tcp.${domain}`, true),
      lookup(`_xmpp-client._tcp.${domain}`, false),
    ]);
    if (direct.status === 'rejected' && starttls.status === 'rejected') throw starttls.reason;
    const usable = (r: PromiseSettledResult<Srv[] | undefined>) =>
      (r.status === 'fulfilled' ? (r.value ?? []) : []).filter((x) => x.name !== '' && x.name !== '.');
    const offered = [...usable(direct), ...usable(starttls)];
    if (offered.length === 0) {
      // No STARTTLS records at all (NXDOMAIN or none): the domain itself (RFC 6120 §3.2.2). A
      // lone "." there says the service is not offered.
      const records = starttls.status === 'fulfilled' ? starttls.value : undefined;
      if (records === undefined || records.length === 0) {
        if (starttls.status === 'rejected') throw starttls.reason;
        return [`xmpp://${domain}:5222`];
      }
      throw new Error(`${domain} says in DNS that it offers no XMPP client service`);
    }
    return orderSrv(offered).map((r) => {
      const host = r.name.replace(/\.$/, '');
      return `${r.tls ? 'xmpps' : 'xmpp'}://${host.includes(':') ? `[${host}]` : host}:${r.port}`;
    });
  };
}
