import { existsSync, readFileSync } from 'node:fs';
import { isIP, isIPv4 } from 'node:net';
import { join, resolve } from 'node:path';
import { isNode, LineCounter, parseDocument, type Document } from 'yaml';
import { z } from 'zod';
import { TrustedProxies } from './listeners/forwarded.js';
import { isLoopbackHost } from './listeners/loopback.js';

const listener = z
  .object({
    type: z
      .enum(['c2s', 'c2s-tls', 'http', 'https', 'admin', 'component', 's2s', 's2s-tls'])
      .describe(
        'c2s: STARTTLS on a plain port; c2s-tls: direct TLS (XEP-0368); http: WebSocket (RFC 7395), BOSH (XEP-0206), XEP-0156 host-meta and health; https: the same over TLS (wss://, BOSH over https); admin: the HTTP admin API; component: XEP-0114 external components; s2s: server-to-server (federation, STARTTLS); s2s-tls: server-to-server over direct TLS (XEP-0368 _xmpps-server)',
      ),
    port: z.number().int().min(0).max(65535),
    /** Default '::'; for admin and component listeners 127.0.0.1. */
    host: z.string().optional(),
    /** c2s, c2s-tls: every connection starts with a PROXY protocol v2 header, from `trustedProxies` only. */
    proxyProtocol: z.boolean().default(false),
    /** admin: bearer token required on every request; mandatory when not bound to loopback. */
    token: z.string().min(16).optional(),
    /**
     * http, https: the URL clients reach this listener at (`https://chat.example.com:5443`, or a
     * reverse proxy's, with a path prefix if it adds one), for the XEP-0156 host-meta links.
     * Default: derived from each request's Host header and whether the listener is TLS.
     */
    publicUrl: z.string().optional(),
    /**
     * admin: the web console at `/console/` (docs/administration.md): on a loopback address on
     * unless `false`; off loopback only when this block is given (`console: {}`). Its
     * login sessions end after `idleTimeout` seconds without a request and `maxAge` seconds after
     * the login, whatever happens.
     */
    console: z
      .union([
        z.literal(false),
        z
          .object({
            idleTimeout: z
              .number()
              .positive()
              .default(30 * 60),
            maxAge: z
              .number()
              .positive()
              .default(12 * 60 * 60),
          })
          .strict(),
      ])
      .optional(),
  })
  .transform((l) => ({
    ...l,
    host: l.host ?? (l.type === 'admin' || l.type === 'component' ? '127.0.0.1' : '::'),
  }))
  .superRefine((l, ctx) => {
    if (l.proxyProtocol && l.type !== 'c2s' && l.type !== 'c2s-tls')
      ctx.addIssue({
        code: 'custom',
        path: ['proxyProtocol'],
        message: 'only c2s and c2s-tls listeners take it',
      });
    if (l.token !== undefined && l.type !== 'admin')
      ctx.addIssue({ code: 'custom', path: ['token'], message: 'only an admin listener takes a token' });
    if (l.console !== undefined && l.type !== 'admin')
      ctx.addIssue({
        code: 'custom',
        path: ['console'],
        message: 'only an admin listener serves the console',
      });
    if (l.publicUrl !== undefined) {
      if (l.type !== 'http' && l.type !== 'https')
        ctx.addIssue({
          code: 'custom',
          path: ['publicUrl'],
          message: 'only http and https listeners take it',
        });
      else if (!isPublicUrl(l.publicUrl))
        ctx.addIssue({
          code: 'custom',
          path: ['publicUrl'],
          message: 'an http:// or https:// URL without query or fragment, e.g. https://chat.example.com:5443',
        });
    }
    if (l.type === 'admin' && !l.token && !isLoopbackHost(l.host))
      ctx.addIssue({
        code: 'custom',
        path: ['token'],
        message: `an admin listener bound to ${l.host} (not loopback) needs a token; or bind it to 127.0.0.1`,
      });
  });

/** An absolute http(s) URL with a host and neither credentials, query nor fragment. */
function isPublicUrl(s: string): boolean {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return false;
  }
  return (
    (u.protocol === 'http:' || u.protocol === 'https:') &&
    u.hostname !== '' &&
    u.username === '' &&
    u.password === '' &&
    u.search === '' &&
    u.hash === '' &&
    !s.includes('?') &&
    !s.includes('#')
  );
}

/** A syntactically valid domain name (RFC 7622 domainpart, ASCII labels), lower case. */
const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** Is `s` a lower-case domain name (ASCII labels), as `hosts` and component keys take? */
export function isDomainName(s: string): boolean {
  return DOMAIN.test(s);
}

/**
 * A DNS server as c-ares' setServers takes it: an address, "ipv4:port" or "[ipv6]:port". Checked
 * here so that a typo stops the server at start, naming the option, instead of failing every lookup.
 */
function isDnsServer(s: string): boolean {
  if (isIP(s) !== 0) return true;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(s);
  if (!m || Number(m[3]) < 1 || Number(m[3]) > 65535) return false;
  return m[1] !== undefined ? isIP(m[1]) === 6 : isIPv4(m[2]!);
}

const access = <const T extends readonly [string, ...string[]]>(values: T) => z.enum(values).optional();

/** One XEP-0114 external component, keyed by its domain. */
const component = z
  .object({
    /** Shared secret of the handshake (XEP-0114 §3). */
    secret: z.string().min(1, 'the component secret must not be empty'),
    /** XEP-0356 privileged entity permissions (modules/privilege; docs/components.md). */
    privileges: z
      .object({
        roster: access(['none', 'get', 'set', 'both']),
        /** XEP-0356 §4.4: roster pushes to the component (default: true when `roster` reads). */
        rosterPush: z.boolean().optional(),
        message: access(['none', 'outgoing']),
        presence: access(['none', 'managed_entity', 'roster']),
        iq: z.record(z.string(), z.enum(['none', 'get', 'set', 'both'])).optional(),
      })
      .strict()
      .superRefine((p, ctx) => {
        // XEP-0356 §7.4: the server MUST reject roster presence without read access to rosters
        if (p.presence === 'roster' && p.roster !== 'get' && p.roster !== 'both')
          ctx.addIssue({
            code: 'custom',
            path: ['presence'],
            message: 'presence "roster" needs roster "get" or "both" (XEP-0356 §7.4)',
          });
        if (p.iq && Object.hasOwn(p.iq, 'urn:xmpp:privilege:2'))
          ctx.addIssue({ code: 'custom', path: ['iq'], message: 'urn:xmpp:privilege:2 cannot be granted' });
      })
      .optional(),
  })
  .strict();

/** A remote domain name in a list (allow/deny): lower case, `*.example.org` for every subdomain. */
const DOMAIN_PATTERN = z
  .string()
  .refine(
    (d) => DOMAIN.test(d.startsWith('*.') ? d.slice(2) : d),
    'a lower-case domain name, or *.domain for its subdomains',
  );

/**
 * Server-to-server federation (RFC 6120, XEP-0220 dialback, XEP-0178 SASL EXTERNAL, XEP-0368);
 * docs/federation.md documents every key.
 */
const s2s = z
  .object({
    /** Federation on (default) or off: off, remote domains get remote-server-not-found and no s2s listener starts by default. */
    enabled: z.boolean().default(true),
    /**
     * Require a certificate that verifies for the peer's domain (Prosody's s2s_secure_auth): no
     * dialback fallback. Default false, as on the public network many servers use self-signed ones.
     */
    requireTrustedCertificates: z.boolean().default(false),
    /** Refuse peers that do not encrypt the stream with TLS (default true). */
    requireEncryption: z.boolean().default(true),
    /** Extra CA certificates (PEM files) trusted for peers' certificates, besides Node's root store. */
    ca: z.array(z.string()).default([]),
    /**
     * Secret keying XEP-0185 dialback keys; default: random per process. Set the same on every node of
     * a cluster.
     */
    dialbackSecret: z.string().min(16).optional(),
    /**
     * Static routes: remote domain → "host:port" (or "tls://host:port" for direct TLS), used instead
     * of DNS for that domain (private federations, tests, split horizons).
     */
    routes: z
      .record(
        z.string().refine((d) => DOMAIN.test(d), 'a lower-case domain name'),
        z
          .string()
          .regex(/^(tls:\/\/)?(\[[0-9a-fA-F:.]+\]|[^:\s/]+):\d{1,5}$/, 'host:port or tls://host:port'),
      )
      .default({}),
    /** DNS servers for SRV lookups ("ip" or "ip:port"); default: the system's. */
    dnsServers: z
      .array(z.string().refine(isDnsServer, 'an IP address, "ipv4:port" or "[ipv6]:port"'))
      .optional(),
    /** Only these remote domains may federate (default: every domain not denied). */
    allow: z.array(DOMAIN_PATTERN).optional(),
    /** These remote domains may not federate, in either direction. */
    deny: z.array(DOMAIN_PATTERN).default([]),
    /** Time to connect and authenticate to a peer before queued stanzas bounce (remote-server-timeout). */
    connectTimeoutMs: z.number().int().min(500).default(20_000),
    /** An outbound stream that carried nothing for this long is closed. */
    idleTimeoutMs: z.number().int().min(1000).default(600_000),
    /** Stanzas queued per remote domain while its stream is being set up; more bounce (resource-constraint). */
    maxQueue: z.number().int().min(1).default(1000),
    /** Inbound stanzas per second allowed per remote domain (burst: twice as many). */
    stanzasPerSecond: z.number().int().min(1).default(500),
    /** Inbound s2s connections allowed per remote IP address. */
    maxConnectionsPerIp: z.number().int().min(1).default(16),
    /** Inbound s2s streams in total. */
    maxInbound: z.number().int().min(1).default(5000),
  })
  .strict()
  .prefault({});

/**
 * A cluster of Natter processes on several machines (docs/decisions/0009): they share the
 * PostgreSQL storage and talk over Redis (core/cluster/redis-bus.ts). Absent: a single process.
 */
const cluster = z
  .object({
    /** This node's name for operators (logs, `natter-<id>` Redis client names); unique per machine. */
    nodeId: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,32}$/, '1 to 32 characters among letters, digits, "_" and "-"'),
    /** The Redis server: `redis://[:password@]host:port/db`, or `rediss://…` for TLS. Never logged. */
    redis: z.string().refine(isRedisUrl, 'a redis:// or rediss:// URL, e.g. redis://10.0.0.5:6379/0'),
    /**
     * Prefix of the cluster's Redis keys and pub/sub channels (default `natter`): two clusters on one
     * Redis need different prefixes (pub/sub channels are shared by every database index).
     */
    prefix: z
      .string()
      .regex(/^[A-Za-z0-9_.:-]{1,64}$/, '1 to 64 characters among letters, digits, "_", ".", ":" and "-"')
      .default('natter'),
  })
  .strict()
  .optional();

function isRedisUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return (u.protocol === 'redis:' || u.protocol === 'rediss:') && u.hostname !== '';
  } catch {
    return false;
  }
}

const limits = z
  .object({
    maxStanzaBytes: z
      .number()
      .int()
      .min(1024)
      .default(256 * 1024),
    maxDepth: z.number().int().min(4).max(1000).default(32),
    maxAttributes: z.number().int().min(4).default(64),
    authTimeoutMs: z.number().int().min(100).default(30_000),
    maxAuthFailures: z.number().int().min(1).default(3),
    maxResourcesPerAccount: z.number().int().min(1).default(20),
    /** Bytes the server buffers for a slow reader before dropping it. */
    maxSendBufferBytes: z
      .number()
      .int()
      .min(16 * 1024)
      .default(4 * 1024 * 1024),
    /** Connection and address limits (socket-guard.ts, docs/reliability.md). */
    maxSocketsPerIp: z.number().int().min(1).default(512),
    handshakeTimeoutMs: z.number().int().min(100).default(10_000),
    maxConnections: z.union([z.literal('auto'), z.number().int().min(1)]).default('auto'),
    ipv6Prefix: z.number().int().min(1).max(128).default(64),
    /** Turns every rate limit off (benchmarks on loopback). */
    disabled: z.boolean().default(false),
  })
  .prefault({});

/** XMPP over BOSH (XEP-0124/XEP-0206) at /http-bind on the http and https listeners. */
const bosh = z
  .object({
    /** Longest time a request is held without anything to answer (XEP-0124 `wait`); clients may ask for less. */
    maxWaitSeconds: z.number().int().min(1).max(300).default(60),
    /** Requests held at once per session (XEP-0124 `hold`); `requests` is one more. Clients may ask for fewer. */
    maxHold: z.number().int().min(0).max(5).default(1),
    /** A session left without a request for this long ends, as a dropped connection (XEP-0124 `inactivity`). */
    inactivitySeconds: z.number().int().min(1).max(3600).default(60),
    /** Shortest interval between two empty requests when the first was answered empty (XEP-0124 `polling`); 0: unchecked. */
    pollingSeconds: z.number().int().min(0).max(60).default(2),
  })
  .strict()
  .prefault({});

export const configSchema = z
  .object({
    hosts: z.array(z.string().min(1)).min(1).default(['localhost']),
    /**
     * Accounts (bare JIDs of hosted domains) with the administrator's rights over XMPP: the
     * XEP-0133 service administration commands. Default none.
     */
    admins: z.array(z.string().min(3)).default([]),
    dataDir: z.string().default('./data'),
    storage: z
      .discriminatedUnion('engine', [
        z.object({ engine: z.literal('sqlite'), path: z.string().optional() }),
        z.object({
          engine: z.literal('postgres'),
          url: z.string(),
          poolSize: z.number().int().min(1).optional(),
        }),
      ])
      .default({ engine: 'sqlite' }),
    listeners: z.array(listener).default([
      { type: 'c2s', port: 5222, host: '::', proxyProtocol: false },
      { type: 'c2s-tls', port: 5223, host: '::', proxyProtocol: false },
      { type: 'http', port: 5280, host: '::', proxyProtocol: false },
      { type: 'admin', port: 5281, host: '127.0.0.1', proxyProtocol: false },
      { type: 's2s', port: 5269, host: '::', proxyProtocol: false },
    ]),
    /**
     * Reverse proxies / load balancers (addresses or CIDR ranges) whose X-Forwarded-For and
     * Forwarded headers, and PROXY protocol headers, give the client's address. Default: none.
     */
    trustedProxies: z
      .array(
        z.string().refine((e) => TrustedProxies.check(e) === undefined, 'not an IP address or CIDR range'),
      )
      .default([]),
    /**
     * The one header the trusted proxies write the client's address to (nginx, HAProxy, Caddy,
     * Traefik: X-Forwarded-For). The other is ignored: a proxy passes it through from the client.
     */
    trustedProxyHeader: z.enum(['x-forwarded-for', 'forwarded']).default('x-forwarded-for'),
    tls: z
      .object({
        cert: z.string().optional().describe('PEM certificate chain file; generated self-signed when absent'),
        key: z.string().optional(),
        /**
         * More certificates, chosen by the names they hold: by SNI on every TLS listener (c2s
         * STARTTLS, c2s-tls, s2s, s2s-tls), by our domain on outbound s2s streams; one per hosted
         * domain, e.g. certbot's live directories. The default (tls.cert/tls.key) otherwise.
         */
        certificates: z.array(z.object({ cert: z.string(), key: z.string() }).strict()).default([]),
        /**
         * Certificates from an ACME CA (RFC 8555), HTTP-01 on the http listeners, renewed before
         * they expire and served without a restart (docs/certificates.md). Off unless given.
         */
        acme: z
          .object({
            /** `letsencrypt` (default), `letsencrypt-staging`, or a directory URL (step-ca, …). */
            directory: z
              .string()
              .refine(
                (d) => d === 'letsencrypt' || d === 'letsencrypt-staging' || /^https:\/\/\S+$/.test(d),
                'letsencrypt, letsencrypt-staging or an https:// directory URL',
              )
              .default('letsencrypt'),
            /** The CA's terms of service must be accepted, in so many words. */
            agreeToTerms: z.literal(true, {
              error:
                "set agreeToTerms: true to accept the ACME CA's terms of service (Let's Encrypt: https://letsencrypt.org/repository/)",
            }),
            /** Contact for the CA (expiry warnings, policy changes). */
            email: z.email().optional(),
            /**
             * Hosted domains (and service domains) to get certificates for. Default: every host a
             * public CA issues for (not localhost, .local, .test, .example, IP addresses).
             */
            domains: z.array(z.string().min(1)).optional(),
            /** Renew when fewer days than this are left. */
            renewDays: z.number().int().min(1).max(60).default(30),
            /** How often the certificates are checked. */
            checkHours: z.number().positive().max(24).default(12),
            /** PEM file of the CA that signs the ACME server's own HTTPS certificate (private CAs). */
            caFile: z.string().optional(),
          })
          .strict()
          .optional(),
      })
      .prefault({}),
    auth: z
      .object({
        /** Where credentials may be sent without TLS: loopback (default), always, never. */
        allowPlaintext: z.enum(['loopback', 'always', 'never']).default('loopback'),
        /** PBKDF2 iterations for new SCRAM keys. */
        iterations: z.number().int().min(4096).default(4096),
        /**
         * Offer SCRAM-SHA-256 and SCRAM-SHA-256-PLUS. Set false after importing accounts that
         * have SCRAM-SHA-1 keys only (Prosody, ejabberd) until their users have logged in once with
         * PLAIN or changed their password: a client that picks SCRAM-SHA-256 fails for them as with
         * a wrong password (docs/migration.md, docs/decisions/0015-imported-scram-keys.md).
         */
        offerScramSha256: z.boolean().default(true),
      })
      .prefault({}),
    registration: z
      .object({
        enabled: z.boolean().default(false),
        /** New accounts allowed per IP address per hour. */
        perIpPerHour: z.number().int().min(1).default(5),
      })
      .prefault({}),
    limits,
    bosh,
    s2s,
    cluster,
    /** XEP-0114 external components: domain → { secret }. */
    components: z
      .record(
        z.string().refine((d) => DOMAIN.test(d), 'a component key must be a lower-case domain name'),
        component,
      )
      .default({}),
    /** Module name → options, or false to disable a default module. */
    modules: z
      .record(z.string(), z.union([z.literal(false), z.record(z.string(), z.unknown())]))
      .prefault({}),
    log: z
      .object({
        level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
        /**
         * How log lines on stdout look: `json` (one object a line, for log shippers), `pretty` (for
         * people: time, level, message), or `auto` (default): pretty when stdout is a terminal,
         * JSON otherwise. Without effect when `file` is set: stdout then carries no log lines.
         */
        format: z.enum(['auto', 'json', 'pretty']).default('auto'),
        /**
         * Log to this file instead of stdout, as JSON lines, appended (its directory is created; a
         * new file gets mode 0640). stdout then carries only the start message. `reopenLogFiles()`
         * (core/logger.ts) reopens it after a rotation.
         */
        file: z.string().min(1).optional(),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.cluster && c.storage.engine !== 'postgres')
      ctx.addIssue({
        code: 'custom',
        path: ['storage', 'engine'],
        message:
          'a cluster (cluster.redis) needs storage every node shares: set storage.engine to "postgres" (SQLite is one machine\'s file)',
      });
    if (c.cluster && c.s2s.enabled && c.s2s.dialbackSecret === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['s2s', 'dialbackSecret'],
        message:
          'a cluster with federation on needs s2s.dialbackSecret, the same on every node (a dialback key made by one node is verified by another); or set s2s.enabled to false',
      });
    const hosts = c.hosts.map((h) => h.toLowerCase());
    c.admins.forEach((admin, i) => {
      const at = admin.indexOf('@');
      const domain = admin.slice(at + 1).toLowerCase();
      if (at <= 0 || admin.includes('/') || !hosts.includes(domain))
        ctx.addIssue({
          code: 'custom',
          path: ['admins', i],
          message: `${admin} is not an account of a hosted domain (USER@HOST, HOST one of hosts)`,
        });
    });
    for (const domain of Object.keys(c.components)) {
      const clash = hosts.includes(domain)
        ? 'a virtual host'
        : hosts.some((h) => domain === `conference.${h}` || domain === `pubsub.${h}`)
          ? 'a service domain (MUC or pubsub)'
          : c.modules.upload !== undefined &&
              c.modules.upload !== false &&
              hosts.some((h) => domain === `upload.${h}`)
            ? 'the file upload service (module upload)'
            : undefined;
      if (clash)
        ctx.addIssue({
          code: 'custom',
          path: ['components', domain],
          message: `${domain} is already ${clash}; give the component a domain of its own`,
        });
    }
  });

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
export type ListenerConfig = z.infer<typeof listener>;
export type S2SConfig = Config['s2s'];
export type Limits = Config['limits'];
export type BoshConfig = Config['bosh'];

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
}

/**
 * Where an option was written, for error messages: the line of `path` in the file (YAML), or
 * undefined when unknown (JSON, or an option left out).
 */
type OptionLine = (path: readonly PropertyKey[]) => number | undefined;

/**
 * Validates a configuration object; errors name the option and say what is expected, and, given
 * the file it came from, name the file (and the option's line when `lineOf` knows it).
 */
export function parseConfig(input: unknown, source?: { file: string; lineOf?: OptionLine }): Config {
  const r = configSchema.safeParse(input ?? {});
  if (!r.success) {
    const lines = r.error.issues.map((i) => {
      // An unknown key is reported on its object; its own line is the one to show.
      const at = i.code === 'unrecognized_keys' && i.keys[0] !== undefined ? [...i.path, i.keys[0]] : i.path;
      const line = source?.lineOf?.(at);
      return `  ${i.path.join('.') || '(root)'}${line !== undefined ? ` (line ${line})` : ''}: ${i.message}`;
    });
    throw new ConfigError(`invalid configuration${source ? ` in ${source.file}` : ''}:\n${lines.join('\n')}`);
  }
  return r.data;
}

/** The configuration files `natter serve` and `natter check` look for in the working directory. */
export const DEFAULT_CONFIG_FILES = ['natter.json', 'natter.yaml', 'natter.yml'] as const;

/**
 * The configuration file in `dir` (one of DEFAULT_CONFIG_FILES), or undefined when there is none;
 * two of them at once is an error, as either could be the one meant.
 */
export function findConfigFile(dir = '.'): string | undefined {
  const found = DEFAULT_CONFIG_FILES.filter((f) => existsSync(join(dir, f)));
  if (found.length > 1)
    throw new ConfigError(
      `both ${found.join(' and ')} are in ${resolve(dir)}: remove one, or name it with --config`,
    );
  return found[0] === undefined ? undefined : join(dir, found[0]);
}

/** Is this file YAML (by its name: .yaml or .yml), or JSON (anything else)? */
export function isYamlFile(path: string): boolean {
  return /\.ya?ml$/i.test(path);
}

/**
 * Reads and validates a configuration file: JSON, or YAML when its name ends in .yaml or .yml
 * (YAML 1.2 core schema, so `no` stays a string; comments allowed). Errors name the file, the
 * option, and for YAML the line.
 */
export function loadConfigFile(path: string): Config {
  let text: string;
  try {
    text = readFileSync(resolve(path), 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read configuration file ${path}: ${(err as Error).message}`);
  }
  if (isYamlFile(path)) return parseYamlConfig(text, path);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`configuration file ${path} is not valid JSON: ${(err as Error).message}`);
  }
  return parseConfig(data, { file: path });
}

/** Parses YAML configuration text (from `file`, for messages) and validates it. */
export function parseYamlConfig(text: string, file: string): Config {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  const problem = doc.errors[0];
  if (problem) {
    const at = problem.linePos?.[0];
    const where = at ? ` at line ${at.line}, column ${at.col}` : '';
    // The parser's own message repeats the position and quotes the line; its first line suffices.
    const what = problem.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw new ConfigError(`configuration file ${file} is not valid YAML${where}: ${what}`);
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new ConfigError(`configuration file ${file}: ${(err as Error).message}`);
  }
  return parseConfig(data ?? {}, { file, lineOf: (path) => yamlLine(doc, lineCounter, path) });
}

/**
 * The line of the option at `path` in a YAML document: the node itself, or, for an option that
 * is missing, the nearest enclosing one that was written.
 */
function yamlLine(doc: Document, lines: LineCounter, path: readonly PropertyKey[]): number | undefined {
  for (let n = path.length; n >= 0; n--) {
    const node: unknown = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
    if (isNode(node) && node.range) return lines.linePos(node.range[0]).line;
  }
  return undefined;
}
