// Finding a service's endpoints from the account's domain alone (RFC 6120 §3.2, XEP-0156,
// XEP-0368): the entry point of each runtime supplies a resolver (Node: DNS SRV; browsers:
// host-meta), and `createClient` without `service` uses it at each connection.
import { parseElement } from '@natter/xml';

/** The endpoints of `domain`'s XMPP service, best first, as `service` URLs (xmpp:, xmpps:, ws:, wss:). */
export type EndpointResolver = (domain: string) => Promise<string[]>;

/** XEP-0156 link relation of the WebSocket endpoint (RFC 7395 §4). */
export const WEBSOCKET_REL = 'urn:xmpp:alt-connections:websocket';
const XRD = 'http://docs.oasis-open.org/ns/xri/xrd-1.0';

export interface HostMetaOptions {
  /**
   * Where the host-meta documents are: `https://<domain>` by default (XEP-0156 §3: over HTTPS
   * only, since a forged answer would send the client elsewhere). Tests and intranets may give
   * another base URL for a domain.
   */
  base?: (domain: string) => string;
  /** Accept `ws:` endpoints (unencrypted) as well as `wss:` (default false). */
  allowInsecure?: boolean;
  /** The fetch to use (default: the runtime's). */
  fetch?: typeof globalThis.fetch;
  /** Longest wait for each document, ms (default 10 s). */
  timeout?: number;
}

/**
 * XEP-0156 §3: the WebSocket endpoints from `/.well-known/host-meta.json`, else the XRD
 * `/.well-known/host-meta`. `wss:` endpoints only unless `allowInsecure`.
 */
export function hostMetaResolver(options: HostMetaOptions = {}): EndpointResolver {
  return async (domain) => {
    const base = (options.base?.(domain) ?? `https://${domain}`).replace(/\/+$/, '');
    const get = options.fetch ?? globalThis.fetch;
    if (typeof get !== 'function')
      throw new Error('host-meta: no fetch in this runtime (give `fetch` to hostMetaResolver)');
    const timeout = options.timeout ?? 10_000;
    const read = async (path: string): Promise<string | undefined> => {
      const ctl = new AbortController();
      const timer = setTimeout(() => ctl.abort(), timeout);
      try {
        const res = await get(base + path, { signal: ctl.signal, redirect: 'error' });
        return res.ok ? await res.text() : undefined;
      } catch {
        return undefined;
      } finally {
        clearTimeout(timer);
      }
    };
    let hrefs: string[] = [];
    const json = await read('/.well-known/host-meta.json');
    if (json !== undefined) {
      try {
        const doc = JSON.parse(json) as { links?: { rel?: unknown; href?: unknown }[] };
        hrefs = (doc.links ?? []).flatMap((l) =>
          l.rel === WEBSOCKET_REL && typeof l.href === 'string' ? [l.href] : [],
        );
      } catch {
        hrefs = [];
      }
    }
    if (hrefs.length === 0) {
      const text = await read('/.well-known/host-meta');
      if (text !== undefined) {
        try {
          const xrd = parseElement(text);
          if (xrd.name === 'XRD' && xrd.xmlns === XRD)
            hrefs = xrd
              .getChildren('Link', XRD)
              .flatMap((l) => (l.attr('rel') === WEBSOCKET_REL && l.attr('href') ? [l.attr('href')!] : []));
        } catch {
          hrefs = [];
        }
      }
    }
    const ok = hrefs.filter(
      (h) => /^wss:\/\//i.test(h) || (options.allowInsecure === true && /^ws:\/\//i.test(h)),
    );
    if (ok.length === 0)
      throw new Error(
        hrefs.length > 0
          ? `host-meta of ${domain} lists only unencrypted WebSocket endpoints (allowInsecure to use them)`
          : `host-meta of ${domain} lists no WebSocket endpoint (${base}/.well-known/host-meta[.json])`,
      );
    return ok;
  };
}
