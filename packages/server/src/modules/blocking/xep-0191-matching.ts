import type { Jid } from '@natter/jid';

/**
 * XEP-0191 §6 (JID matching, as XEP-0016 §2.1): does a blocklist match this address? An item
 * `user@domain/resource` matches only that resource, `user@domain` any of its resources,
 * `domain/resource` only that resource of the domain, and `domain` the domain itself, everyone
 * at it and its subdomains. Items are stored normalised (`Jid.toString()`), so this is a few
 * set lookups.
 */
export function blocklistMatches(list: ReadonlySet<string>, address: Jid): boolean {
  if (list.size === 0) return false;
  const { local, domain, resource } = address;
  if (resource !== '' && list.has(address.toString())) return true;
  if (local !== '' && list.has(address.toBareString())) return true;
  if (resource !== '' && list.has(`${domain}/${resource}`)) return true;
  let d = domain;
  for (;;) {
    if (list.has(d)) return true;
    const dot = d.indexOf('.');
    if (dot < 0) return false;
    d = d.slice(dot + 1);
  }
}
