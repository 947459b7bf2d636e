import { isIP } from 'node:net';
import { z } from 'zod';
import { xml, type Element } from '@natter/xml';
import { StanzaError, dateTime } from '@natter/protocol';
import { defineModule, type IqRequest } from '../../core/module-api.js';
import { Secret, turnRestCredentials } from './turn-rest.js';

/** XEP-0215 v0.7+ namespace (requests, results and the disco feature). */
export const NS_EXTDISCO = 'urn:xmpp:extdisco:2';

const HOSTNAME =
  /^(?=.{1,253}\.?$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i;

/** A secret-bearing option: a non-empty string, kept in a `Secret` that never prints itself. */
const secret = (what: string) =>
  z
    .string({ error: `${what} must be a string` })
    .min(1, { error: `${what} must not be empty` })
    .transform((s) => new Secret(s));

const serviceSchema = z
  .object({
    /** XEP-0215 §8.3 registered types used for calls (RFC 7064 stun:, RFC 7065 turn: / turns:). */
    type: z.enum(['stun', 'turn', 'turns']),
    /** A host name or an IP address, as clients will reach it. */
    host: z
      .string()
      .refine((h) => isIP(h) !== 0 || HOSTNAME.test(h), { error: 'must be a host name or an IP address' }),
    port: z.number().int().min(1).max(65535),
    transport: z.enum(['udp', 'tcp']).optional(),
    /** XEP-0215 'restricted': credentials are needed. Implied by `secret`, `username`/`password`. */
    restricted: z.boolean().optional(),
    /** TURN REST API shared secret, the TURN server's `static-auth-secret` (coturn `use-auth-secret`). */
    secret: secret('secret').optional(),
    /** Static credentials, the same for every user (prefer `secret`). */
    username: z.string().min(1).optional(),
    password: secret('password').optional(),
    /** Lifetime of the credentials made with `secret`. */
    ttlSeconds: z
      .number()
      .int()
      .min(60)
      .max(30 * 86400)
      .default(86400),
    /** A human-readable label (XEP-0215 'name'). */
    name: z.string().min(1).optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    if (s.secret && (s.username !== undefined || s.password)) {
      ctx.addIssue({
        code: 'custom',
        message:
          'give either secret (temporary TURN REST API credentials) or username and password, not both',
      });
    }
    if ((s.username === undefined) !== (s.password === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'username and password go together' });
    }
    if (s.restricted === false && (s.secret || s.username !== undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['restricted'],
        message: 'a service with credentials is restricted',
      });
    }
  });

export type ExternalService = z.output<typeof serviceSchema>;

const optionsSchema = z
  .object({
    /** The STUN/TURN services to offer, in the order clients get them. */
    services: z.array(serviceSchema).default([]),
  })
  .strict()
  .superRefine((o, ctx) => {
    const seen = new Set<string>();
    o.services.forEach((s, i) => {
      const key = `${s.type} ${s.host.toLowerCase()} ${s.port} ${s.transport ?? ''}`;
      if (seen.has(key))
        ctx.addIssue({ code: 'custom', path: ['services', i], message: `duplicate service ${key.trim()}` });
      seen.add(key);
    });
  })
  .prefault({});

/** XEP-0082 date-time without fractions (the expiry is a whole second). */
const expiresAt = (unixSeconds: number) => dateTime(new Date(unixSeconds * 1000)).replace(/\.000Z$/, 'Z');

/**
 * One `<service/>` as a given user sees it: credentials made for that user when the service has
 * a shared secret (TURN REST API), the configured ones when it has static credentials.
 */
function serviceElement(s: ExternalService, user: string, nowMs: number): Element {
  const attrs: Record<string, string | number | undefined> = {
    type: s.type,
    host: s.host,
    port: s.port,
    transport: s.transport,
    name: s.name,
  };
  if (s.secret) {
    const c = turnRestCredentials(s.secret, user, s.ttlSeconds, nowMs);
    Object.assign(attrs, {
      username: c.username,
      password: c.password,
      expires: expiresAt(c.expiry),
      restricted: 'true',
    });
  } else if (s.username !== undefined && s.password) {
    Object.assign(attrs, { username: s.username, password: s.password.reveal(), restricted: 'true' });
  } else if (s.restricted !== undefined) {
    attrs.restricted = String(s.restricted);
  }
  return xml('service', attrs);
}

const hasCredentials = (s: ExternalService) => s.secret !== undefined || s.username !== undefined;

/**
 * External Service Discovery (XEP-0215): the STUN and TURN services configured here, for the
 * server's own users (XEP-0479 requires it of a server for audio/video calls).
 *
 * - `<services/>` (optionally filtered by `type`) lists the services; `<credentials/>` (§3.3)
 *   answers the services matching the requested host and type (and port, when given). A service
 *   with `secret` gets fresh TURN REST API credentials for the requesting user on each request
 *   (turn-rest.ts), with `expires` and `restricted='true'`.
 * - Only accounts of this host may ask (from one of their sessions, or through a component holding
 *   an XEP-0356 IQ privilege): any other entity (a remote server's user, a component) gets
 *   `forbidden` (§2 lets a server refuse the list to whom it will not give it).
 * - Off by default: configuring `services` turns it on. With an empty list it answers nothing and
 *   advertises nothing (the IQs then get the core's `service-unavailable`).
 * - Not done: pushes of updated lists (§3.2, a MAY): credentials last `ttlSeconds` and clients ask
 *   again; the `<x/>` extended information of §4.
 *
 * Secrets (`secret`, `password`) are held in `Secret` objects that print as `[secret]`, never
 * appear in config errors (the messages name the option only), and are never logged.
 */
export default defineModule({
  name: 'external-services',
  description:
    'External service discovery: STUN/TURN services for calls, with TURN REST API credentials (coturn use-auth-secret) for local users',
  specs: ['XEP-0215'],
  enabledByDefault: false,
  options: optionsSchema,
  setup(ctx) {
    const { services } = ctx.options;
    if (services.length === 0) {
      ctx.log.warn('no services configured: external service discovery (XEP-0215) is not offered');
      return;
    }

    /** The requester's bare JID when it is an account of this host; forbidden otherwise. */
    const localUser = (req: IqRequest): string => {
      const { from } = req;
      const local =
        from.local !== '' &&
        from.domain === ctx.domain &&
        (req.origin !== undefined || req.onBehalfOf !== undefined);
      if (!local) {
        throw new StanzaError('forbidden', {
          text: `external services are offered to accounts of ${ctx.domain} only`,
        });
      }
      return from.toBareString();
    };

    ctx.iq('host', 'get', NS_EXTDISCO, 'services', (req) => {
      const user = localUser(req);
      const type = req.payload.attrs.type;
      const now = Date.now();
      return xml(
        'services',
        { xmlns: NS_EXTDISCO, type },
        services
          .filter((s) => type === undefined || s.type === type)
          .map((s) => serviceElement(s, user, now)),
      );
    });

    ctx.iq('host', 'get', NS_EXTDISCO, 'credentials', (req) => {
      const user = localUser(req);
      const wanted = req.payload.getChildren('service', NS_EXTDISCO);
      if (wanted.length === 0 || wanted.some((w) => !w.attrs.host || !w.attrs.type)) {
        throw new StanzaError('bad-request', {
          text: "name the service: <service host='…' type='…'/> (port optional)",
        });
      }
      const matches = services.filter((s) =>
        wanted.some(
          (w) =>
            w.attrs.type === s.type &&
            w.attrs.host!.toLowerCase() === s.host.toLowerCase() &&
            (w.attrs.port === undefined || w.attrs.port === String(s.port)),
        ),
      );
      if (matches.length === 0) throw new StanzaError('item-not-found', { text: 'no such service' });
      const withCredentials = matches.filter(hasCredentials);
      if (withCredentials.length === 0) {
        throw new StanzaError('item-not-found', { text: 'this service needs no credentials' });
      }
      const now = Date.now();
      return xml(
        'credentials',
        { xmlns: NS_EXTDISCO },
        withCredentials.map((s) => serviceElement(s, user, now)),
      );
    });
  },
});
