import type { SecureContext } from 'node:tls';
import type { RouteEvent } from '../hooks.js';
import type { Transport } from '../transport.js';

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

/** A live server-to-server stream as the core holds it (inbound streams; the pool's outbound ones). */
export interface S2SStreamHandle {
  info(): S2SStreamInfo;
  /** Ends the stream with a stream error (shutdown: system-shutdown). */
  fail(condition: 'system-shutdown' | 'policy-violation' | 'remote-connection-failed', text?: string): void;
}

/** Our TLS certificates by our domain names (SNI inbound, client certificate outbound). */
export interface CertificateSource {
  contextFor(name: string | undefined): SecureContext;
  /** The PEM files behind `contextFor(name)`, and their content as loaded (a reload may change it). */
  filesFor(name: string | undefined): { cert: string; key: string; certPem: Buffer; keyPem: Buffer };
  readonly sni: (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void;
}

/**
 * Opens a connection to a peer (the listeners' socket code; the core knows no socket): plain TCP
 * that can upgrade with STARTTLS to `servername`, or direct TLS (XEP-0368) at once. `context` holds
 * our certificate (presented as a TLS client certificate) and the CAs the peer's is checked against.
 */
export type Dialer = (opts: {
  host: string;
  port: number;
  directTls: boolean;
  servername: string;
  context: SecureContext;
  timeoutMs: number;
}) => Promise<Transport>;
