import { z } from 'zod';
import { tryParseJid } from '@natter/jid';
import { buildForm } from '@natter/protocol';
import { defineModule } from '../../core/module-api.js';
import type { DiscoApi } from '../disco/api.js';

/** The FORM_TYPE of XEP-0157 (registered by XEP-0128) for the server's disco#info. */
export const NS_SERVERINFO = 'http://jabber.org/network/serverinfo';

/** The roles XEP-0157 registers fields for: `<role>-addresses`. */
export const ROLES = ['abuse', 'admin', 'feedback', 'sales', 'security', 'status', 'support'] as const;

const SCHEMES = ['mailto', 'xmpp', 'https', 'http', 'tel', 'sip', 'sips'];

/**
 * Why `uri` is not a contact address a client can use, or undefined when it is one. Absolute
 * URIs of the schemes people are reached at: `mailto:` (RFC 6068) with an address, `xmpp:`
 * (RFC 5122) with a valid JID, `http(s):` with a host, `tel:`, `sip:`, `sips:`.
 */
export function contactUriProblem(uri: string): string | undefined {
  if (/\s/.test(uri) || [...uri].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f))
    return 'a URI has no spaces or control characters';
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(uri)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    const hint = uri.includes('@') ? ` (mailto:${uri} or xmpp:${uri})` : '';
    return `not a URI: it needs a scheme such as mailto:, xmpp: or https:${hint}`;
  }
  if (!SCHEMES.includes(scheme))
    return `unsupported scheme "${scheme}:" (use one of ${SCHEMES.map((s) => `${s}:`).join(', ')})`;
  let parsed: URL;
  try {
    parsed = new URL(uri);
  } catch {
    return 'not a valid URI';
  }
  const rest = uri.slice(scheme.length + 1);
  switch (scheme) {
    case 'mailto': {
      const to = decodeURIComponent(rest.split('?')[0] ?? '');
      const ok = to.split(',').every((a) => /^[^@\s]+@[^@\s]+$/.test(a));
      return ok ? undefined : 'a mailto: URI needs an e-mail address, e.g. mailto:abuse@example.com';
    }
    case 'xmpp': {
      // RFC 5122: xmpp:[//authority/]jid[?query][#fragment]
      let path = rest.split(/[?#]/)[0] ?? '';
      if (path.startsWith('//')) path = path.slice(2).split('/').slice(1).join('/');
      let decoded: string;
      try {
        decoded = decodeURIComponent(path);
      } catch {
        return 'an xmpp: URI needs a valid JID, e.g. xmpp:admin@example.com';
      }
      return decoded !== '' && tryParseJid(decoded)
        ? undefined
        : 'an xmpp: URI needs a valid JID, e.g. xmpp:admin@example.com';
    }
    case 'http':
    case 'https':
      return parsed.hostname !== '' && rest.startsWith('//') ? undefined : `an ${scheme}: URI needs a host`;
    default:
      return rest.length > 0 ? undefined : `a ${scheme}: URI needs an address`;
  }
}

const contactUri = z.string().superRefine((uri, ctx) => {
  const problem = contactUriProblem(uri);
  if (problem) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(uri)}: ${problem}` });
});

const addresses = z.array(contactUri).default([]);

const optionsSchema = z
  .object({
    abuse: addresses,
    admin: addresses,
    feedback: addresses,
    sales: addresses,
    security: addresses,
    status: addresses,
    support: addresses,
  })
  .strict()
  .prefault({});

/**
 * Contact Addresses for XMPP Services (XEP-0157): the configured addresses of each role, as a
 * XEP-0128 extension form (FORM_TYPE http://jabber.org/network/serverinfo) of the server's
 * disco#info, through the disco module's extension point (disco/api.ts). Only roles with
 * addresses get a field (`list-multi`, in the configured order). URIs are checked at start-up.
 * Off by default: configuring addresses turns it on.
 */
export default defineModule({
  name: 'contact-addresses',
  description: "Contact addresses (abuse, admin, security, support…) published in the server's disco#info",
  specs: ['XEP-0157', 'XEP-0128'],
  enabledByDefault: false,
  dependencies: ['disco'],
  options: optionsSchema,
  setup(ctx) {
    const roles = ROLES.filter((r) => ctx.options[r].length > 0);
    if (roles.length === 0) {
      ctx.log.warn('no contact addresses configured: none published (XEP-0157)');
      return;
    }
    const disco = ctx.use<DiscoApi>('disco');
    if (!disco) throw new Error('contact-addresses needs the disco module');
    const form = buildForm({
      type: 'result',
      formType: NS_SERVERINFO,
      fields: roles.map((r) => ({ var: `${r}-addresses`, type: 'list-multi', values: [...ctx.options[r]] })),
    });
    return disco.addHostExtension(form);
  },
});
