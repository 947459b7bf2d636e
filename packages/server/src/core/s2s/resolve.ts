import { promises as dns, type LookupAddress, type SrvRecord } from 'node:dns';
import { domainToASCII } from 'node:url';

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
  /** Bound on both SRV queries together (default 5000 ms); past it we fall back to the domain. */
  timeoutMs?: number;
}

/** How the candidates were found; `reason` says why the fallback was used, for the caller's log. */
export interface Resolution {
  candidates: Candidate[];
  source: 'route' | 'srv' | 'no-service' | 'fallback' | 'invalid-domain';
  /** For `fallback`: `no-srv` (no records), or the DNS error code (ETIMEOUT, ECONNREFUSED ...). */
  reason?: string;
}

/** A hostile or careless zone may list thousands of targets; we never try more than this many. */
export const MAX_CANDIDATES = 16;

const DEFAULT_TIMEOUT_MS = 5000;
/** RFC 6120 §3.2.2: without SRV records, the domain itself on the IANA-registered s2s port. */
const XMPP_SERVER_PORT = 5269;
/** Errors that mean "this name has no SRV records", as opposed to "the DNS did not answer". */
const NO_RECORDS = new Set(['ENOTFOUND', 'ENODATA']);

/**
 * RFC 6120 §3.2 and XEP-0368: the candidates to try for `domain`. A static route wins; otherwise
 * `_xmpps-server._tcp` and `_xmpp-server._tcp` SRV records ordered by priority and weighted at
 * random within a priority (RFC 2782); without SRV records, the domain itself on port 5269. An
 * empty list means the domain says it offers no XMPP service (SRV target ".").
 */
export async function resolveCandidates(domain: string, opts: ResolveOptions = {}): Promise<Candidate[]> {
  return (await resolveDomain(domain, opts)).candidates;
}

/** What resolveCandidates does, with how the answer was found (for logs and tests). */
export async function resolveDomain(domain: string, opts: ResolveOptions = {}): Promise<Resolution> {
  // Static routes are keyed by the configured (ASCII, lower-case) domain; an internationalised
  // domain may be configured by its A-label, so both spellings are looked up.
  const ascii = domainToASCII(domain);
  const route = opts.routes?.[domain] ?? (ascii ? opts.routes?.[ascii] : undefined);
  if (route !== undefined) return { candidates: [parseRoute(route)], source: 'route' };
  // DNS knows only A-labels (RFC 5890); a name that has none cannot exist, so nothing to try.
  if (!ascii) return { candidates: [], source: 'invalid-domain' };

  const [tls, plain] = await querySrv(ascii, opts);
  const records = [...usable(tls, true), ...usable(plain, false)];
  if (records.length > 0) return { candidates: orderSrv(records, MAX_CANDIDATES), source: 'srv' };
  // RFC 2782: a lone "." target says the service is decidedly not offered at this domain. With the
  // other name empty or unanswered, trying the domain anyway would contradict its owner.
  if (tls.kind === 'no-service' || plain.kind === 'no-service')
    return { candidates: [], source: 'no-service' };
  // RFC 6120 §3.2.2: no SRV records, or no answer (a machine may have no DNS at all, and a static
  // /etc/hosts entry must still work): the domain itself. The DNS failure is the caller's to log.
  const failed = [tls, plain].find((r): r is SrvError => r.kind === 'error');
  return {
    candidates: [{ host: ascii, port: XMPP_SERVER_PORT, directTls: false }],
    source: 'fallback',
    reason: failed?.code ?? 'no-srv',
  };
}

type SrvAnswer =
  { kind: 'records'; records: SrvRecord[] } | { kind: 'none' } | { kind: 'no-service' } | SrvError;
interface SrvError {
  kind: 'error';
  code: string;
}

/** Both SRV names at once, within one time bound, through a resolver of our own (not the process's). */
async function querySrv(ascii: string, opts: ResolveOptions): Promise<[SrvAnswer, SrvAnswer]> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  // c-ares retries by itself; two tries of at most half the budget each keep one lost UDP packet
  // from failing the lookup, and the timer below bounds the whole regardless of c-ares' back-off.
  const resolver = new dns.Resolver({ timeout: Math.max(100, Math.floor(timeoutMs / 2)), tries: 2 });
  if (opts.dnsServers && opts.dnsServers.length > 0) resolver.setServers([...opts.dnsServers]);
  let timedOut = false;
  // cancel() rejects the pending queries with ECANCELLED, so nothing outlives the bound.
  const timer = setTimeout(() => {
    timedOut = true;
    resolver.cancel();
  }, timeoutMs);
  try {
    const settled = await Promise.allSettled([
      resolver.resolveSrv(`_xmpps-server._tcp.${ascii}`),
      resolver.resolveSrv(`_xmpp-server._tcp.${ascii}`),
    ]);
    return [classify(settled[0], timedOut), classify(settled[1], timedOut)];
  } finally {
    clearTimeout(timer);
  }
}

function classify(result: PromiseSettledResult<SrvRecord[]>, timedOut: boolean): SrvAnswer {
  if (result.status === 'rejected') {
    const code = (result.reason as NodeJS.ErrnoException).code ?? 'EUNKNOWN';
    if (NO_RECORDS.has(code)) return { kind: 'none' };
    return { kind: 'error', code: timedOut && code === 'ECANCELLED' ? 'ETIMEOUT' : code };
  }
  const records = result.value;
  if (records.length === 0) return { kind: 'none' };
  if (records.length === 1 && isRoot(records[0]!.name)) return { kind: 'no-service' };
  return { kind: 'records', records };
}

/** c-ares reports the root target as "" (some resolvers as "."). */
const isRoot = (name: string) => name === '' || name === '.';

/** One usable SRV record, from either name. */
export interface SrvTarget {
  host: string;
  port: number;
  priority: number;
  weight: number;
  directTls: boolean;
}

function usable(answer: SrvAnswer, directTls: boolean): SrvTarget[] {
  if (answer.kind !== 'records') return [];
  // A "." among other records, or port 0, cannot be connected to: skipped rather than tried.
  return answer.records
    .filter((r) => !isRoot(r.name) && r.port > 0)
    .map((r) => ({
      host: r.name.replace(/\.$/, '').toLowerCase(),
      port: r.port,
      priority: r.priority,
      weight: r.weight,
      directTls,
    }));
}

/**
 * RFC 2782 ordering: lowest priority first; within a priority, repeatedly pick a record at random
 * with probability proportional to its weight (weight-0 records first in the list, so they are
 * picked only when the draw is 0 or nothing else is left). At equal priority every direct-TLS
 * record comes before every STARTTLS one: XEP-0368 §3 leaves the choice to us, and direct TLS
 * saves the round trips of STARTTLS and never sends a byte in the clear. Stops at `max`, so a zone
 * with thousands of records costs O(max × records).
 */
export function orderSrv(
  records: readonly SrvTarget[],
  max: number,
  random: () => number = Math.random,
): Candidate[] {
  const groups = new Map<string, SrvTarget[]>();
  for (const r of [...records].sort(
    (a, b) => a.priority - b.priority || Number(b.directTls) - Number(a.directTls),
  )) {
    const key = `${r.priority}/${r.directTls}`;
    const group = groups.get(key);
    if (group) group.push(r);
    else groups.set(key, [r]);
  }
  const out: Candidate[] = [];
  const seen = new Set<string>();
  for (const group of groups.values()) {
    // The records of one priority arrive in whatever order the DNS gave them; RFC 2782 lets weight-0
    // records be in any order as long as they are first, so shuffle them to spread load fairly.
    const zero = shuffle(
      group.filter((r) => r.weight === 0),
      random,
    );
    const pending = [...zero, ...group.filter((r) => r.weight > 0)];
    while (pending.length > 0 && out.length < max) {
      const total = pending.reduce((sum, r) => sum + r.weight, 0);
      const draw = Math.floor(random() * (total + 1));
      let running = 0;
      let i = 0;
      for (; i < pending.length - 1; i++) {
        running += pending[i]!.weight;
        if (running >= draw) break;
      }
      const [picked] = pending.splice(i, 1);
      const key = `${picked!.host}:${picked!.port}:${picked!.directTls}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({ host: picked!.host, port: picked!.port, directTls: picked!.directTls });
    }
    if (out.length >= max) break;
  }
  return out;
}

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
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
