import { BlockList, isIP } from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';

/** `::ffff:192.0.2.1` → `192.0.2.1`, lower case, brackets removed; '' for anything not an address. */
export function normalizeAddress(address: string | undefined): string {
  let a = (address ?? '').trim();
  if (a.startsWith('[') && a.endsWith(']')) a = a.slice(1, -1);
  if (a.toLowerCase().startsWith('::ffff:') && isIP(a.slice(7)) === 4) a = a.slice(7);
  return isIP(a) ? a.toLowerCase() : '';
}

/**
 * The `trustedProxies` setting: addresses and CIDR ranges (`10.0.0.0/8`, `2001:db8::/32`) of the
 * reverse proxies and load balancers whose client-address headers (and PROXY protocol) are believed.
 */
export class TrustedProxies {
  private readonly list = new BlockList();
  readonly size: number;

  constructor(entries: readonly string[]) {
    for (const entry of entries) {
      const problem = TrustedProxies.check(entry);
      if (problem) throw new Error(problem);
      const [addr, prefix] = entry.split('/') as [string, string | undefined];
      const a = normalizeAddress(addr);
      const family = isIP(a) === 6 ? 'ipv6' : 'ipv4';
      if (prefix === undefined) this.list.addAddress(a, family);
      else this.list.addSubnet(a, Number(prefix), family);
    }
    this.size = entries.length;
  }

  /** Why `entry` is not an address or CIDR range, or undefined when it is one. */
  static check(entry: string): string | undefined {
    const [addr, prefix, extra] = entry.split('/');
    const a = normalizeAddress(addr);
    if (!a || extra !== undefined) return `"${entry}" is not an IP address or CIDR range`;
    if (prefix !== undefined) {
      const max = isIP(a) === 6 ? 128 : 32;
      if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > max)
        return `"${entry}": the prefix length must be 0..${max}`;
    }
    return undefined;
  }

  trusts(address: string | undefined): boolean {
    if (this.size === 0) return false;
    const a = normalizeAddress(address);
    if (!a) return false;
    return this.list.check(a, isIP(a) === 6 ? 'ipv6' : 'ipv4');
  }
}

/** Splits on `sep` outside quoted-strings (RFC 7230 §3.2.6). */
function splitOutsideQuotes(s: string, sep: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quoted && c === '\\' && i + 1 < s.length) {
      current += c + s[++i]!;
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (c === sep && !quoted) {
      parts.push(current);
      current = '';
    } else current += c;
  }
  parts.push(current);
  return parts;
}

function unquote(v: string): string {
  const t = v.trim();
  if (t.length >= 2 && t.startsWith('"') && t.endsWith('"')) return t.slice(1, -1).replace(/\\(.)/g, '$1');
  return t;
}

/** A node (RFC 7239 §6): `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]:4711`, `unknown`, `_hidden`. */
function nodeAddress(node: string): string {
  if (node.startsWith('[')) {
    const end = node.indexOf(']');
    return end > 0 ? normalizeAddress(node.slice(1, end)) : '';
  }
  const direct = normalizeAddress(node);
  if (direct) return direct;
  const colon = node.lastIndexOf(':');
  // IPv4 with a port (an unbracketed IPv6 address was taken as a whole above).
  return colon > 0 && node.indexOf(':') === colon ? normalizeAddress(node.slice(0, colon)) : '';
}

/**
 * The `for=` addresses of a `Forwarded` header (RFC 7239), nearest the client first; '' stands for
 * a hop without a usable address (`unknown`, an obfuscated name, no `for=`).
 */
export function forwardedFor(header: string): string[] {
  return splitOutsideQuotes(header, ',').map((element) => {
    for (const pair of splitOutsideQuotes(element, ';')) {
      const eq = pair.indexOf('=');
      if (eq < 0) continue;
      if (pair.slice(0, eq).trim().toLowerCase() === 'for') return nodeAddress(unquote(pair.slice(eq + 1)));
    }
    return '';
  });
}

/** The addresses of an `X-Forwarded-For` header, nearest the client first ('' for junk). */
export function xForwardedFor(header: string): string[] {
  return header.split(',').map((s) => nodeAddress(s.trim()));
}

function headerText(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(',') : v;
}

/**
 * Which header the trusted proxies write: exactly one counts. Proxies append to the header they
 * write and pass the others through as the client sent them, so reading any other header would
 * let a client choose its own address.
 */
export type ForwardedHeader = 'x-forwarded-for' | 'forwarded';

/**
 * The client's address for an HTTP request that came from `peer`. Only a trusted proxy's header
 * counts, and only the one configured (`header`). The chain is walked from the right (the hop
 * nearest us) past trusted proxies; the first address that is not trusted is the client. A hop
 * without a usable address stops the walk at the last trusted hop (never further than the peer).
 */
export function clientAddress(
  peer: string | undefined,
  headers: IncomingHttpHeaders,
  trusted: TrustedProxies,
  header: ForwardedHeader = 'x-forwarded-for',
): string {
  const direct = normalizeAddress(peer) || (peer ?? '');
  if (!trusted.trusts(direct)) return direct;
  const text = headerText(headers[header]);
  const chain = text === undefined ? [] : header === 'forwarded' ? forwardedFor(text) : xForwardedFor(text);
  let client = direct;
  for (let i = chain.length - 1; i >= 0; i--) {
    const hop = chain[i]!;
    if (!hop) break;
    client = hop;
    if (!trusted.trusts(hop)) break;
  }
  return client;
}

/**
 * Did the client reach the trusted proxy `peer` over TLS? With `Forwarded`, from the nearest hop's
 * `proto=`; with `X-Forwarded-For`, from the last `X-Forwarded-Proto` value (`https`/`wss`). Never
 * for untrusted peers.
 */
export function forwardedSecure(
  peer: string | undefined,
  headers: IncomingHttpHeaders,
  trusted: TrustedProxies,
  header: ForwardedHeader = 'x-forwarded-for',
): boolean {
  if (!trusted.trusts(peer)) return false;
  const forwarded = header === 'forwarded' ? headerText(headers.forwarded) : undefined;
  let proto: string | undefined;
  if (header === 'forwarded') {
    const nearest = splitOutsideQuotes(forwarded ?? '', ',').at(-1) ?? '';
    for (const pair of splitOutsideQuotes(nearest, ';')) {
      const eq = pair.indexOf('=');
      if (eq > 0 && pair.slice(0, eq).trim().toLowerCase() === 'proto') proto = unquote(pair.slice(eq + 1));
    }
  } else {
    proto = headerText(headers['x-forwarded-proto'])?.split(',').at(-1);
  }
  const p = proto?.trim().toLowerCase();
  return p === 'https' || p === 'wss';
}
