import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { isDomainName } from './config.js';
import { HOST_META_JSON_PATH, HOST_META_PATH, hostMetaBody } from './listeners/host-meta.js';
import { NATTER_VERSION } from './version.js';

/**
 * `natter init DOMAIN`: the files of a production install for one domain (a commented
 * configuration, a hardened systemd unit, a Dockerfile and a compose file) and the DNS records
 * to create. The files are text templates, so that the configuration keeps its comments; the
 * tests check that what they produce validates.
 */

/** Where the data lives in both set-ups: systemd's StateDirectory and the container's volume. */
export const DATA_DIR = '/var/lib/natter';
/** Where the configuration lives: systemd's ConfigurationDirectory, and mounted in the container. */
export const CONFIG_PATH = '/etc/natter/natter.yaml';

export interface InitOptions {
  /** PostgreSQL storage in natter.yaml, and a postgres service beside Natter in compose.yaml. */
  postgres: boolean;
  /** The PostgreSQL password (compose's postgres.env); generated when absent. */
  postgresPassword?: string;
  /** s2s.dialbackSecret; generated when absent. */
  dialbackSecret?: string;
  version?: string;
}

/** One listener the generated configuration opens, with what DNS and the firewall need of it. */
export interface Port {
  type: 'c2s' | 'c2s-tls' | 'https' | 'http' | 'admin' | 's2s' | 's2s-tls';
  port: number;
  /** Loopback only: neither published by Docker nor named in DNS. */
  local?: boolean;
}

/** The generated configuration's listeners. Ports ≥ 1024, so no capability is needed. */
export const INIT_PORTS: readonly Port[] = [
  { type: 'c2s', port: 5222 },
  { type: 'c2s-tls', port: 5223 },
  { type: 'https', port: 5443 },
  { type: 'http', port: 5280, local: true },
  { type: 'admin', port: 5281, local: true },
  { type: 's2s', port: 5269 },
];

/** The service subdomains a domain gets (MUC and pubsub by default; upload when enabled). */
const SUBDOMAINS = [
  { name: 'conference', what: 'group chat (MUC)' },
  { name: 'pubsub', what: 'publish-subscribe' },
  { name: 'upload', what: 'file upload, once modules.upload is enabled' },
];

const secret = (bytes: number) => randomBytes(bytes).toString('base64url');

export function initConfig(domain: string, o: InitOptions): string {
  const publicUrl = `https://${domain}:5443`;
  return `# Natter configuration for ${domain}, written by \`natter init\` (natter ${o.version ?? NATTER_VERSION}).
# YAML; a JSON file with the same keys works too. After editing: natter check --config ${CONFIG_PATH}
# Values shown are the defaults unless a comment says otherwise.

# The XMPP domains served here (virtual hosts): accounts are user@${domain}.
hosts:
  - ${domain}

# Where the SQLite database, generated certificates and uploaded files are kept.
dataDir: ${DATA_DIR}

# Storage: embedded SQLite in dataDir (default), or PostgreSQL (production, clusters).
storage:
${
  o.postgres
    ? `  engine: postgres
  # Host, user and password come from PGHOST, PGUSER and PGPASSWORD (node-postgres reads libpq's
  # variables; compose.yaml sets them), or write them here: postgres://natter:PASSWORD@HOST:5432/natter
  url: postgres:///natter
  poolSize: 10`
    : `  engine: sqlite
  # engine: postgres
  # url: postgres://natter:PASSWORD@localhost:5432/natter`
}

# The certificate for ${domain} and its service subdomains (conference.${domain}, pubsub.${domain},
# upload.${domain}). Without one, a self-signed certificate is generated, which clients and other
# servers do not trust: \`natter check\` warns until it is set. Either let Natter get one from
# Let's Encrypt (acme below: it needs port 80, see the http listener), or use certbot's:
#   certbot certonly -d ${domain} -d conference.${domain} -d pubsub.${domain} -d upload.${domain}
tls:
  # cert: /etc/letsencrypt/live/${domain}/fullchain.pem
  # key: /etc/letsencrypt/live/${domain}/privkey.pem
  # More certificates, chosen by the name a client or server asks for (SNI):
  certificates: []
  # ACME (docs/certificates.md): one certificate for ${domain} and its service subdomains, renewed
  # 30 days before it expires, served without a restart.
  # acme:
  #   agreeToTerms: true           # Let's Encrypt's terms: https://letsencrypt.org/repository/
  #   email: admin@${domain}

listeners:
  # Clients, STARTTLS on a plain port (RFC 6120); DNS _xmpp-client._tcp.
  - type: c2s
    port: 5222
  # Clients, direct TLS (XEP-0368); DNS _xmpps-client._tcp.
  - type: c2s-tls
    port: 5223
  # Web clients over TLS: WebSocket (wss://${domain}:5443/xmpp-websocket), BOSH (/http-bind) and
  # XEP-0156 host-meta. publicUrl is the address clients reach it at (a reverse proxy's, if any).
  - type: https
    port: 5443
    publicUrl: ${publicUrl}
  # Plain HTTP on loopback: /health for monitoring, and a TLS reverse proxy on this machine (list
  # it in trustedProxies). Off loopback, clients could not log in over it without TLS.
  - type: http
    port: 5280
    host: 127.0.0.1
  # With tls.acme: the CA checks http://${domain}/.well-known/acme-challenge/ on port 80.
  # - type: http
  #   port: 80
  # The admin API (natter sessions, natter user passwd/remove): loopback only, or set a token.
  - type: admin
    port: 5281
    host: 127.0.0.1
  # Federation with other servers, STARTTLS; DNS _xmpp-server._tcp.
  - type: s2s
    port: 5269
  # Federation over direct TLS (XEP-0368); DNS _xmpps-server._tcp.
  # - type: s2s-tls
  #   port: 5270

# Reverse proxies whose X-Forwarded-For / PROXY headers give the client's address (IPs or CIDRs).
trustedProxies: []

auth:
  # Where passwords may be sent without TLS: loopback (default), never, or always (risky).
  allowPlaintext: loopback
  # PBKDF2 iterations of new SCRAM keys (4096 at least).
  iterations: 4096

# In-band registration (XEP-0077): anyone may create an account when enabled.
registration:
  enabled: false
  # New accounts per IP address per hour.
  perIpPerHour: 5

# Server-to-server federation (docs/federation.md).
s2s:
  enabled: true
  # Refuse peers that do not encrypt.
  requireEncryption: true
  # Refuse peers without a certificate valid for their domain (no dialback fallback).
  requireTrustedCertificates: false
  # The key of XEP-0185 dialback (generated here; random per start when absent). Keep it secret;
  # set the same on every node of a cluster.
  dialbackSecret: ${o.dialbackSecret ?? secret(24)}
  # Only these remote domains may federate (default: all not denied); these may not.
  # allow: [example.net]
  deny: []

limits:
  # Largest stanza accepted, in bytes.
  maxStanzaBytes: 262144
  # Sessions (resources) per account.
  maxResourcesPerAccount: 20
  # Open sockets per client address.
  maxSocketsPerIp: 512
  # Time to authenticate after connecting, in ms.
  authTimeoutMs: 30000

# Modules: all but a few are on by default (docs/protocol-support.md); name: false turns one off,
# an object configures one (and turns on one that is off by default). Replace {} with lines like:
#   upload: {}       # XEP-0363 HTTP file upload at upload.${domain}
#   mam: false       # no message archive
modules: {}

log:
  # trace, debug, info, warn, error, fatal or silent; JSON lines on stdout.
  level: info
`;
}

/** The hardened systemd unit. `natter` is looked up in PATH: npm install -g puts it in /usr/local/bin. */
export function initUnit(domain: string, o: InitOptions): string {
  return `# systemd unit for Natter (${domain}), written by \`natter init\`.
# Install: npm install -g @natter/server@${o.version ?? NATTER_VERSION}
#          useradd --system --home-dir ${DATA_DIR} --shell /usr/sbin/nologin natter
#          install -D -m 0640 -g natter natter.yaml ${CONFIG_PATH}
#          cp natter.service /etc/systemd/system/ && systemctl daemon-reload && systemctl enable --now natter
# Commands on the same data run as that user: sudo -u natter natter user add alice@${domain} --config ${CONFIG_PATH}
[Unit]
Description=Natter XMPP server (${domain})
Documentation=https://www.npmjs.com/package/@natter/server
Wants=network-online.target
After=network-online.target${o.postgres ? ' postgresql.service' : ''}

[Service]
Type=simple
# A system user of its own (not DynamicUser: \`natter user add\` and the other commands that open
# the database must run as the same user), owning ${DATA_DIR} (StateDirectory) and nothing else.
User=natter
Group=natter
StateDirectory=natter
StateDirectoryMode=0750
ConfigurationDirectory=natter
WorkingDirectory=${DATA_DIR}
# Secrets kept out of the configuration (PGPASSWORD, NATTER_ADMIN_TOKEN), if the file exists.
EnvironmentFile=-/etc/natter/natter.env
Environment=NODE_ENV=production
ExecStart=/usr/bin/env natter serve --config ${CONFIG_PATH}
# Reloads certificates and configuration without dropping sessions.
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=5s
# natter stops its listeners and ends its sessions within 10 s (--shutdown-timeout).
TimeoutStopSec=30s
LimitNOFILE=65536
UMask=0027

# Hardening. Certificates: the natter user cannot read /etc/letsencrypt/*/privkey.pem; copy the
# pair for it in a certbot deploy hook, or add LoadCredential=privkey.pem:/etc/letsencrypt/… and
# point tls.key at /run/credentials/natter.service/privkey.pem.
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths=${DATA_DIR}
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
RemoveIPC=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM
# Every port is 1024 or above: no capability at all. To listen on 80 (tls.acme) or 443, set
# CapabilityBoundingSet=CAP_NET_BIND_SERVICE and AmbientCapabilities=CAP_NET_BIND_SERVICE.
CapabilityBoundingSet=
AmbientCapabilities=
# Not MemoryDenyWriteExecute: V8's JIT needs writable executable memory.

[Install]
WantedBy=multi-user.target
`;
}

const PUBLISHED = INIT_PORTS.filter((p) => !p.local);

export function initDockerfile(domain: string, o: InitOptions): string {
  const version = o.version ?? NATTER_VERSION;
  return `# Natter (${domain}) in a container, written by \`natter init\`. compose.yaml builds and runs it.
FROM node:20-slim
ARG NATTER_VERSION=${version}
# better-sqlite3 installs a prebuilt binary for this platform (or builds one with python3, make, g++).
RUN npm install -g @natter/server@\${NATTER_VERSION} && npm cache clean --force
RUN mkdir -p ${DATA_DIR} /etc/natter && chown node:node ${DATA_DIR}
# The configuration is part of the image: after editing it, docker compose up -d --build.
COPY --chown=node:node natter.yaml ${CONFIG_PATH}
USER node
WORKDIR ${DATA_DIR}
VOLUME ["${DATA_DIR}"]
EXPOSE ${PUBLISHED.map((p) => p.port).join(' ')}
ENV NODE_ENV=production
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \\
  CMD ["node", "-e", "fetch('http://127.0.0.1:5280/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["natter"]
CMD ["serve", "--config", "${CONFIG_PATH}"]
`;
}

export function initCompose(domain: string, o: InitOptions): string {
  const ports = PUBLISHED.map((p) => `      - "${p.port}:${p.port}"`).join('\n');
  const natter = `  natter:
    build: .
    restart: unless-stopped
    init: true
${
  o.postgres
    ? `    depends_on:
      postgres:
        condition: service_healthy
    # PGPASSWORD; the rest of the connection is below (natter.yaml has url: postgres:///natter).
    env_file: ${ENV_FILE}
    environment:
      PGHOST: postgres
      PGUSER: natter
      PGDATABASE: natter
`
    : ''
}    ports:
${ports}
    volumes:
      - natter-data:${DATA_DIR}
`;
  const postgres = `  postgres:
    image: postgres:16
    restart: unless-stopped
    # POSTGRES_PASSWORD, generated by natter init.
    env_file: ${ENV_FILE}
    environment:
      POSTGRES_USER: natter
      POSTGRES_DB: natter
    volumes:
      - postgres-data:/var/lib/postgresql/data
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U natter -d natter"]
      interval: 5s
      timeout: 5s
      retries: 12
`;
  return `# Natter${o.postgres ? ' and PostgreSQL' : ''} for ${domain}, written by \`natter init\`.
# Start, and after editing natter.yaml (built into the image): docker compose up -d --build
# Logs: docker compose logs -f natter
# Accounts: docker compose exec natter natter user add alice@${domain} --config ${CONFIG_PATH}
name: natter
services:
${natter}${o.postgres ? postgres : ''}volumes:
  natter-data:
${o.postgres ? '  postgres-data:\n' : ''}`;
}

/** compose.yaml's env file: the PostgreSQL password, for both containers. */
export const ENV_FILE = 'postgres.env';

export function initEnvFile(o: InitOptions & { postgresPassword: string }): string {
  return `# Generated by natter init: the PostgreSQL password, for the postgres and natter containers.
POSTGRES_PASSWORD=${o.postgresPassword}
PGPASSWORD=${o.postgresPassword}
`;
}

/**
 * The DNS records to create for `domain`, served by `target` (the machine's name; the domain
 * itself by default): SRV for clients and servers (RFC 6120 §3.2.1, XEP-0368), the service
 * subdomains, as zone-file lines.
 */
export function dnsRecords(domain: string, target = domain, ports: readonly Port[] = INIT_PORTS): string[] {
  const srv: Partial<Record<Port['type'], string>> = {
    c2s: '_xmpp-client._tcp',
    'c2s-tls': '_xmpps-client._tcp',
    s2s: '_xmpp-server._tcp',
    's2s-tls': '_xmpps-server._tcp',
  };
  const lines: string[] = [];
  for (const p of ports) {
    const name = srv[p.type];
    if (name && !p.local) lines.push(`${name}.${domain}. 3600 IN SRV 0 5 ${p.port} ${target}.`);
  }
  for (const s of SUBDOMAINS) lines.push(`${s.name}.${domain}. 3600 IN CNAME ${target}.   ; ${s.what}`);
  return lines;
}

/** What `natter init` prints: the DNS records, and the XEP-0156 host-meta web clients look for. */
export function initReport(domain: string): string {
  const base = `https://${domain}:5443`;
  return [
    `DNS records for ${domain} (the SRV targets and CNAMEs point at ${domain}, which needs A/AAAA records`,
    `for this machine; put the machine's own name there instead if ${domain} is elsewhere):`,
    '',
    ...dnsRecords(domain).map((l) => `  ${l}`),
    '',
    `Web clients (XEP-0156) look for https://${domain}${HOST_META_PATH} and ${HOST_META_JSON_PATH} on`,
    `port 443. Natter serves them on its https listener (${base}${HOST_META_JSON_PATH}); have the web`,
    `server of ${domain} proxy those two paths there, or serve this JSON:`,
    '',
    hostMetaBody(base, true).trimEnd(),
  ].join('\n');
}

/** The files of `natter init`, by name, with their modes. */
export function initFiles(domain: string, o: InitOptions): Map<string, { text: string; mode: number }> {
  const files = new Map<string, { text: string; mode: number }>([
    ['natter.yaml', { text: initConfig(domain, o), mode: 0o640 }],
    ['natter.service', { text: initUnit(domain, o), mode: 0o644 }],
    ['Dockerfile', { text: initDockerfile(domain, o), mode: 0o644 }],
    ['compose.yaml', { text: initCompose(domain, o), mode: 0o644 }],
    // The image needs natter.yaml only: postgres.env stays out of the build context.
    ['.dockerignore', { text: '*\n!natter.yaml\n', mode: 0o644 }],
  ]);
  if (o.postgres)
    files.set(ENV_FILE, {
      text: initEnvFile({ ...o, postgresPassword: o.postgresPassword ?? secret(24) }),
      mode: 0o600,
    });
  return files;
}

/** `natter init DOMAIN [--dir DIR] [--postgres] [--force]`; returns the exit code. */
export function initCommand(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      dir: { type: 'string', short: 'd' },
      postgres: { type: 'boolean' },
      force: { type: 'boolean', short: 'f' },
    },
  });
  const domain = positionals[0]?.toLowerCase();
  if (!domain || positionals.length > 1) {
    console.error('usage: natter init DOMAIN [--dir DIR] [--postgres] [--force]');
    return 1;
  }
  if (!isDomainName(domain)) {
    console.error(`natter init: "${domain}" is not a domain name (letters, digits, "-" and ".")`);
    return 1;
  }
  const dir = values.dir ?? `natter-${domain}`;
  const postgres = values.postgres === true;
  // --force keeps the PostgreSQL password: a database volume made with it would not accept another.
  const envPath = join(dir, ENV_FILE);
  const kept = existsSync(envPath)
    ? /^POSTGRES_PASSWORD=(.+)$/m.exec(readFileSync(envPath, 'utf8'))?.[1]
    : undefined;
  const files = initFiles(domain, { postgres, postgresPassword: kept });
  const existing = [...files.keys()].filter((f) => existsSync(join(dir, f)));
  if (existing.length > 0 && values.force !== true) {
    console.error(
      `natter init: ${existing.map((f) => join(dir, f)).join(', ')} already exist${existing.length === 1 ? 's' : ''}; use --force to overwrite, or --dir for another directory`,
    );
    return 1;
  }
  mkdirSync(dir, { recursive: true });
  for (const [name, { text, mode }] of files) {
    const path = join(dir, name);
    if (name === ENV_FILE && kept !== undefined) continue;
    writeFileSync(path, text, { mode });
    chmodSync(path, mode);
  }
  console.log(
    `wrote ${[...files.keys()].map((f) => join(dir, f) + (f === ENV_FILE && kept !== undefined ? ' (kept)' : '')).join(', ')}`,
  );
  console.log(`
Next:
  check:   natter check --config ${join(dir, 'natter.yaml')}
  systemd: npm install -g @natter/server@${NATTER_VERSION}
           useradd --system --home-dir ${DATA_DIR} --shell /usr/sbin/nologin natter
           install -D -m 0640 -g natter ${join(dir, 'natter.yaml')} ${CONFIG_PATH}
           cp ${join(dir, 'natter.service')} /etc/systemd/system/ && systemctl enable --now natter
  Docker:  cd ${dir} && docker compose up -d --build
`);
  console.log(initReport(domain));
  return 0;
}
