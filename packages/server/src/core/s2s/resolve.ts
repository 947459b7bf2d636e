import { promises as dns, type LookupAddress } from 'node:dns';

/** Where to connect for a remote domain, in order of preference. */
export interface Candidate {
  /** Host name or address, resolved with the system's resolver (dns.lookup: /etc/hosts works). */
  host: string;
  port: number;
  /** XEP-0368: TLS from the first byte (`_xmpps-server`), else STARTTLS (`_xmpp-server`). */
  directTls: boolean;
}

export interface ResolveOptions {
  /** `s2s.routes`: domain → "host:port" or "tls://host:port". */
  routes?: Readonly<Record<string, string>>;
  /** `s2s.dnsServers`; default the system's. */
  dnsServers?: readonly string[] | undefined;
}

/**
 * RFC 6120 §3.2 and XEP-0368: the candidates to try for `domain`. A static route wins; otherwise
 * `_xmpps-server._tcp` and `_xmpp-server._tcp` SRV records ordered by priority and weighted at
 * random within a priority (RFC 2782); without SRV records, the domain itself on port 5269. An
 * empty list means the domain says it offers no XMPP service (SRV target ".").
 *
 * (Stub: static routes and the fallback only; SRV is being added.)
 */
export async function resolveCandidates(domain: string, opts: ResolveOptions = {}): Promise<Candidate[]> {
  const route = opts.routes?.[domain];
  if (route !== undefined) return [parseRoute(route)];
  return [{ host: domain, port: 5269, directTls: false }];
}

/** "host:port" or "tls://host:port" (IPv6 in brackets). */
export function parseRoute(route: string): Candidate {
  const directTls = route.startsWith('tls://');
  const rest = directTls ? route.slice(6) : route;
  const i = rest.lastIndexOf(':');
  let host = rest.slice(0, i);
  if (host.startsWith('[')) host = host.slice(1, -1);
  return { host, port: Number(rest.slice(i + 1)), directTls };
}

/**
 * The addresses of a candidate host, through the operating system's resolver (getaddrinfo: the
 * hosts file, then DNS), IPv6 and IPv4 in the system's order. Rejects with ENOTFOUND when the name
 * does not exist.
 */
export async function lookupAddresses(host: string): Promise<LookupAddress[]> {
  return dns.lookup(host, { all: true, verbatim: true });
}
