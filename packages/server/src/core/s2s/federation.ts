import type { RouteEvent } from '../hooks.js';

/** How a server-to-server stream authenticated its peer. */
export type S2SAuthMethod = 'external' | 'dialback' | 'none';

/** One live server-to-server stream, as the operator sees it (`natter s2s`, the admin API). */
export interface S2SStreamInfo {
  id: string;
  direction: 'in' | 'out';
  /** Our domains this stream carries stanzas for (several with dialback piggybacking). */
  localDomains: string[];
  /** The peer's domains authenticated on this stream. */
  remoteDomains: string[];
  auth: S2SAuthMethod;
  /** Encrypted (STARTTLS or direct TLS), with the TLS version when known. */
  tls: boolean;
  tlsVersion?: string | undefined;
  /** The peer's address and port. */
  address: string;
  /** When the stream was opened (ms since the epoch). */
  since: number;
  stanzasIn: number;
  stanzasOut: number;
  state: string;
}

/**
 * Federation seen from the core: the router hands it every stanza for a domain that is not ours;
 * inbound streams ask it to check a dialback key with the authoritative server. Implemented by the
 * outbound pool (core/s2s/outbound-pool.ts).
 */
export interface Federation {
  /** Routes a stanza to a remote domain: queued, sent once a stream is up, or bounced. */
  send(ev: RouteEvent): void;
  /**
   * XEP-0220 §2.3, receiving server: asks the authoritative server of `remote` whether `key` is the
   * one it generated for the stream `streamId` (our inbound stream's id) from `remote` to `local`.
   * Resolves true (valid) or false (invalid); rejects when the authoritative server cannot be
   * reached or does not answer in time.
   */
  verifyDialback(req: { local: string; remote: string; streamId: string; key: string }): Promise<boolean>;
  /** Live outbound streams. */
  list(): S2SStreamInfo[];
  /** Closes every outbound stream (shutdown), bouncing what is queued. */
  stop(): Promise<void>;
}

/** True when `domain` matches a list entry (`example.org`, or `*.example.org` for its subdomains). */
export function domainListed(list: readonly string[], domain: string): boolean {
  return list.some((p) => (p.startsWith('*.') ? domain.endsWith(p.slice(1)) : p === domain));
}

/** Allow/deny policy of `s2s.allow` and `s2s.deny` for a remote domain. */
export function federationAllowed(
  s2s: { allow?: readonly string[] | undefined; deny: readonly string[] },
  domain: string,
): boolean {
  if (domainListed(s2s.deny, domain)) return false;
  return s2s.allow === undefined || domainListed(s2s.allow, domain);
}
