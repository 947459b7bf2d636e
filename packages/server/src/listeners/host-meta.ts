import { escapeAttr } from '@natter/xml';
import type { HttpEndpoints } from '../core/http-routes.js';
import { BOSH_PATH } from './bosh-sessions.js';

/** Where the http and https listeners accept WebSocket upgrades (RFC 7395). */
export const WEBSOCKET_PATH = '/xmpp-websocket';
/** XEP-0156 §3 (RFC 6415): where web clients look up the WebSocket and BOSH URLs. */
export const HOST_META_PATH = '/.well-known/host-meta';
export const HOST_META_JSON_PATH = '/.well-known/host-meta.json';

export interface HostMetaLink {
  rel: string;
  href: string;
}

/** A Host header we are willing to put in a URL: a name or address, and a port. */
const HOST_HEADER = /^(\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)(:\d{1,5})?$/;

/**
 * Where a client reached an http(s) listener (no trailing slash): the listener's `publicUrl`, else
 * `http(s)://` and the request's Host header (lower case); undefined when that header is missing or
 * is not a name or address with an optional port (it goes into URLs and pages).
 */
export function listenerBase(
  publicUrl: string | undefined,
  host: string | undefined,
  secure: boolean,
): string | undefined {
  if (publicUrl !== undefined) return publicUrl.replace(/\/+$/, '');
  if (!host || !HOST_HEADER.test(host)) return undefined;
  return `${secure ? 'https' : 'http'}://${host.toLowerCase()}`;
}

/** The WebSocket and BOSH URLs of an http(s) listener reached at `base` (from `listenerBase`). */
export function listenerEndpoints(base: string): HttpEndpoints {
  return { base, websocket: base.replace(/^http/, 'ws') + WEBSOCKET_PATH, bosh: base + BOSH_PATH };
}

/**
 * XEP-0156 §3: the alternative connection methods of an http(s) listener reached at `base`
 * (`https://chat.example.com:5443`, no trailing slash): its WebSocket and BOSH URLs.
 */
export function hostMetaLinks(base: string): HostMetaLink[] {
  const { websocket, bosh } = listenerEndpoints(base);
  return [
    { rel: 'urn:xmpp:alt-connections:websocket', href: websocket },
    { rel: 'urn:xmpp:alt-connections:xbosh', href: bosh },
  ];
}

/** The host-meta document for `base`: JSON (host-meta.json) or XRD (host-meta), as served. */
export function hostMetaBody(base: string, json: boolean): string {
  const links = hostMetaLinks(base);
  return json
    ? JSON.stringify({ links }, null, 2) + '\n'
    : "<?xml version='1.0' encoding='utf-8'?>\n" +
        "<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n" +
        links.map((l) => `  <Link rel="${escapeAttr(l.rel)}" href="${escapeAttr(l.href)}"/>\n`).join('') +
        '</XRD>\n';
}
