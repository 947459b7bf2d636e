import { escapeAttr } from '@natter/xml';
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

/**
 * XEP-0156 §3: the alternative connection methods of an http(s) listener reached at `base`
 * (`https://chat.example.com:5443`, no trailing slash): its WebSocket and BOSH URLs.
 */
export function hostMetaLinks(base: string): HostMetaLink[] {
  return [
    { rel: 'urn:xmpp:alt-connections:websocket', href: base.replace(/^http/, 'ws') + WEBSOCKET_PATH },
    { rel: 'urn:xmpp:alt-connections:xbosh', href: base + BOSH_PATH },
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
