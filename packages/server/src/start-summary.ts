import { isIPv6 } from 'node:net';
import { join, resolve } from 'node:path';
import type { Config, ListenerConfig } from './config.js';
import type { CertificateFiles } from './tls.js';
import { WEBSOCKET_PATH } from './listeners/listeners.js';
import { BOSH_PATH } from './listeners/bosh-sessions.js';
import { NATTER_VERSION } from './version.js';

/**
 * What a started server runs and where, in the terms a user connects with: the fields of the
 * "natter started" log line, and what the start message (`startMessage`) says in words.
 */
export interface StartSummary {
  version: string;
  hosts: string[];
  /** Every listener as `type:port` (scripts and tests read the bound ports from it). */
  listeners: string[];
  modules: string[];
  /** The storage engine. */
  storage: 'sqlite' | 'postgres';
  /** Where the data is: the SQLite file, or the PostgreSQL server and database (never credentials). */
  database: string;
  /** The cluster node this process is (`--workers`, or `cluster`). */
  node?: string;
  /** Where clients connect: `host:port` for TCP streams, URLs for WebSocket and BOSH. */
  clients: ClientEndpoint[];
  /** Server-to-server federation: on or off, and the ports of the s2s listeners. */
  s2s: { enabled: boolean; ports: string[] };
  /** XEP-0114 component listeners (`host:port`). */
  components: string[];
  /** The service domains by module: `muc`, `pubsub`, `upload`, … */
  services: Record<string, string[]>;
  /**
   * The web chat page (module web-chat), when it runs: its URL on each http(s) listener, and from
   * where a login there is accepted (plain http: as `auth.allowPlaintext` says).
   */
  webChat?: { url: string; logins: 'any' | 'loopback' | 'none' }[];
  /** The admin API's base URL and its Prometheus endpoint, when an admin listener runs. */
  admin?: { url: string; metrics: string; token: boolean };
  certificate: { file: string; generated: boolean };
}

export interface ClientEndpoint {
  kind: 'c2s' | 'c2s-tls' | 'websocket' | 'bosh';
  /** `host:port`, or a URL. */
  address: string;
}

/** A listener as started: its configuration and the port it is bound to (port 0 resolved). */
export interface BoundListener {
  config: ListenerConfig;
  port: number;
}

const WILDCARD = new Set(['', '::', '0.0.0.0', '::0', '0:0:0:0:0:0:0:0']);

/**
 * The host part of an address a client can connect to: the bound address when it is a specific
 * one, else (bound to every interface) `fallback`, the first hosted domain for client listeners.
 */
function hostPart(bound: string, fallback: string): string {
  const h = WILDCARD.has(bound) ? fallback : bound;
  return isIPv6(h) ? `[${h}]` : h;
}

/** `postgres://user:secret@db.example.com:5433/natter` → `db.example.com:5433, database natter`. */
function postgresLocation(url: string): string {
  try {
    const u = new URL(url);
    const db = decodeURIComponent(u.pathname.replace(/^\//, ''));
    return `${u.hostname}:${u.port || '5432'}${db ? `, database ${db}` : ''}`;
  } catch {
    return 'the configured server';
  }
}

/** The web-chat module's `path` option as configured (validated by the module), default `/`. */
function webChatPath(config: Config): string {
  const options = config.modules['web-chat'];
  return options && typeof options.path === 'string' ? options.path : '/';
}

export function startSummary(args: {
  config: Config;
  listeners: readonly BoundListener[];
  modules: string[];
  certificate: CertificateFiles;
  services: readonly { domain: string; module: string }[];
  node?: string;
}): StartSummary {
  const { config } = args;
  const domain = config.hosts[0]!.toLowerCase();
  const chatPath = args.modules.includes('web-chat') ? webChatPath(config) : undefined;
  const webChat: NonNullable<StartSummary['webChat']> = [];
  const clients: ClientEndpoint[] = [];
  const s2sPorts: string[] = [];
  const components: string[] = [];
  let admin: StartSummary['admin'];
  for (const { config: l, port } of args.listeners) {
    const at = `${hostPart(l.host, domain)}:${port}`;
    switch (l.type) {
      case 'c2s':
      case 'c2s-tls':
        clients.push({ kind: l.type, address: at });
        break;
      case 'http':
      case 'https': {
        const base = (l.publicUrl ?? `${l.type}://${at}`).replace(/\/+$/, '');
        clients.push({ kind: 'websocket', address: base.replace(/^http/, 'ws') + WEBSOCKET_PATH });
        clients.push({ kind: 'bosh', address: base + BOSH_PATH });
        if (chatPath !== undefined) {
          const { allowPlaintext } = config.auth;
          const logins =
            base.startsWith('https:') || allowPlaintext === 'always'
              ? 'any'
              : allowPlaintext === 'loopback'
                ? 'loopback'
                : 'none';
          webChat.push({ url: base + chatPath, logins });
        }
        break;
      }
      case 's2s':
      case 's2s-tls':
        s2sPorts.push(`${l.type}:${port}`);
        break;
      case 'component':
        components.push(`${hostPart(l.host, '127.0.0.1')}:${port}`);
        break;
      case 'admin':
        if (!admin) {
          const url = `http://${hostPart(l.host, '127.0.0.1')}:${port}`;
          admin = { url, metrics: `${url}/metrics`, token: l.token !== undefined };
        }
        break;
      default: {
        const never: never = l.type;
        throw new Error(`unknown listener type ${String(never)}`);
      }
    }
  }
  const services: Record<string, string[]> = {};
  for (const s of args.services) (services[s.module] ??= []).push(s.domain);
  return {
    version: NATTER_VERSION,
    hosts: config.hosts,
    listeners: args.listeners.map((l) => `${l.config.type}:${l.port}`),
    modules: args.modules,
    storage: config.storage.engine,
    database:
      config.storage.engine === 'sqlite'
        ? (config.storage.path ?? join(resolve(config.dataDir), 'natter.sqlite'))
        : postgresLocation(config.storage.url),
    ...(args.node !== undefined ? { node: args.node } : {}),
    clients,
    s2s: { enabled: config.s2s.enabled, ports: s2sPorts },
    components,
    services,
    ...(chatPath !== undefined ? { webChat } : {}),
    ...(admin ? { admin } : {}),
    certificate: { file: args.certificate.cert, generated: args.certificate.generated },
  };
}

/** How a user runs the CLI here: from a checkout (`npm run natter --`), or the installed `natter`. */
export interface CommandContext {
  /** The script node runs (`process.argv[1]`). */
  script: string | undefined;
  /** `--config` as given, if any. */
  configPath: string | undefined;
  cwd: string;
}

const CHECKOUT_CLI = /[\\/]packages[\\/]server[\\/](src[\\/]cli\.ts|dist[\\/]cli\.js)$/;

/**
 * The command that adds an account, as the user can paste it: `npm run natter -- user add …` when
 * the server runs from a checkout (src/cli.ts, or the repository's packages/server/dist/cli.js),
 * else `natter user add …`. It names the same configuration file, so that the account lands in the
 * same database: as given when it resolves the same where the command runs (npm runs scripts from
 * the repository's root), else as an absolute path; not at all when it is the `natter.json` the
 * command finds by itself.
 */
export function addUserCommand(ctx: CommandContext, host: string): string {
  const script = ctx.script ?? '';
  const checkout = CHECKOUT_CLI.test(script) && !/[\\/]node_modules[\\/]/.test(script);
  const runsIn = resolve(checkout ? script.replace(CHECKOUT_CLI, '') : ctx.cwd);
  const prefix = checkout ? 'npm run natter --' : 'natter';
  let config = '';
  if (ctx.configPath !== undefined) {
    const file = resolve(ctx.cwd, ctx.configPath);
    if (file !== join(runsIn, 'natter.json'))
      config = ` --config ${shellQuote(resolve(runsIn, ctx.configPath) === file ? ctx.configPath : file)}`;
  }
  return `${prefix} user add USER@${host}${config}`;
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** What the start message adds to the summary: the process's own facts. */
export interface StartContext {
  addUser: string;
  /** The log file, when log lines go there. */
  logFile?: string;
  /** `--workers N`: the number of worker processes. */
  workers?: number;
}

const CLIENT_LABEL: Record<ClientEndpoint['kind'], string> = {
  c2s: 'STARTTLS',
  'c2s-tls': 'direct TLS',
  websocket: 'WebSocket',
  bosh: 'BOSH',
};

const WEB_CHAT_LOGINS: Record<NonNullable<StartSummary['webChat']>[number]['logins'], string> = {
  any: '',
  loopback: ' (plain http: logins from this machine only; from others use https)',
  none: ' (plain http: no login, auth.allowPlaintext is never)',
};

/**
 * The start message: a few plain lines saying what runs, where to connect, and what to do next.
 * Printed on stdout by `natter serve` once every listener is up (see docs/monitoring.md, Logs).
 */
export function startMessage(s: StartSummary, ctx: StartContext): string {
  const rows: [string, string][] = [];
  const add = (label: string, value: string) => rows.push([label, value]);
  add('Domains', s.hosts.join(', '));
  const tcp = s.clients.filter((c) => c.kind === 'c2s' || c.kind === 'c2s-tls');
  if (tcp.length > 0) add('Clients', tcp.map((c) => `${c.address} (${CLIENT_LABEL[c.kind]})`).join(', '));
  for (const c of s.clients)
    if (c.kind === 'websocket' || c.kind === 'bosh') add(CLIENT_LABEL[c.kind], c.address);
  if (s.clients.length === 0) add('Clients', 'no client listener is configured');
  add(
    'Federation',
    !s.s2s.enabled
      ? 'off (s2s.enabled is false)'
      : s.s2s.ports.length > 0
        ? `on, ${s.s2s.ports.map((p) => p.replace(/^s2s-tls:/, 'direct TLS ').replace(/^s2s:/, 'port ')).join(', ')}`
        : 'on, outgoing only (no s2s listener)',
  );
  if (s.services.muc) add('Rooms (MUC)', s.services.muc.join(', '));
  if (s.services.pubsub) add('Pubsub', s.services.pubsub.join(', '));
  if (s.services.upload) add('File upload', s.services.upload.join(', '));
  if (s.webChat)
    add(
      'Web chat',
      s.webChat.length === 0
        ? 'no http or https listener to serve it'
        : s.webChat.map((w) => w.url + WEB_CHAT_LOGINS[w.logins]).join(', '),
    );
  if (s.components.length > 0) add('Components', s.components.join(', '));
  add(
    'Admin API',
    s.admin
      ? `${s.admin.url} (metrics: ${s.admin.metrics}${s.admin.token ? '; bearer token required' : ''})`
      : 'off (no admin listener)',
  );
  add(
    'Certificate',
    s.certificate.generated
      ? `self-signed, generated (${s.certificate.file}); clients will warn. For a real one set tls.cert and tls.key`
      : s.certificate.file,
  );
  add('Storage', s.storage === 'sqlite' ? `SQLite, ${s.database}` : `PostgreSQL at ${s.database}`);
  if (ctx.workers !== undefined) add('Processes', `${ctx.workers} workers sharing the ports`);
  else if (s.node !== undefined) add('Cluster node', s.node);
  if (ctx.logFile !== undefined) add('Logs', `${ctx.logFile} (JSON lines)`);
  const width = Math.max(...rows.map(([label]) => label.length)) + 2;
  return [
    `Natter ${s.version} is running.`,
    ...rows.map(([label, value]) => `  ${`${label}:`.padEnd(width)}${value}`),
    'Next: add a user (the password is asked for), then log in with any XMPP client:',
    `  ${ctx.addUser}`,
    '',
  ].join('\n');
}
