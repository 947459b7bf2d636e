import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseJid, type Jid } from '@natter/jid';
import { createServerMechanism, SaslFailure } from '@natter/protocol';
import type { ServerCore } from '../../core/server-core.js';
import { logAuthFailure } from '../../core/auth-log.js';
import { ipKey } from '../../util/ip-key.js';
import { TrustedProxies, clientAddress } from '../../listeners/forwarded.js';
import { NATTER_VERSION } from '../../version.js';
import { AdminActionError } from '../actions.js';
import { adminCommand } from '../commands.js';
import { coerceInput, runCommand, type CommandActor } from '../registry.js';
import { APP_JS, CONSOLE_CSS, FAVICON_SVG, INDEX_HTML } from './assets.js';
import { ConsoleSessions, LoginGuard, sameCsrf, type ConsoleSession } from './console-sessions.js';
import { redactConfig } from './redact-config.js';

/**
 * The web console on the admin listener (`/console/`, docs/administration.md): static pages and a
 * small JSON API under `/console/api/` that runs the administrator's commands of the registry
 * (admin/registry.ts) as the logged-in admin (`via: 'console'`). It answers browsers, which the
 * rest of the admin listener refuses; in exchange:
 *
 * - only accounts listed in `admins` log in, with their XMPP password (checked against the stored
 *   SCRAM keys, as SASL PLAIN checks it); failures are logged like every failed authentication
 *   and cost the address growing delays;
 * - the session is a cookie of 256 random bits, HttpOnly, SameSite=Strict, Path=/console, kept in
 *   memory with an idle and an absolute lifetime;
 * - a request carrying an Origin must come from the console's own origin (scheme://Host of the
 *   request) and, but for the login, with a valid session; every change also needs the session's
 *   CSRF token in `x-csrf-token` and a JSON body (which no cross-site form can send);
 * - every answer forbids framing, referrers and caching, and the pages run under a CSP that allows
 *   only their own script and style files (no inline script): data is written with textContent.
 */

export const CONSOLE_COOKIE = 'natter_console';

/** The console's timeouts (seconds), from the admin listener's `console` option. */
export interface ConsoleOptions {
  idleTimeout: number;
  maxAge: number;
}

/** What the console shows that is not a registry command (reports the admin listener owns). */
export interface ConsoleReports {
  s2s(core: ServerCore): unknown;
}

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'no-store',
};

const MAX_BODY = 16 * 1024;
/** Accounts one page of the users list shows. */
const PAGE_SIZE = 25;

/** A console answer other than 200. */
class ConsoleError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

interface ApiRequest {
  session: ConsoleSession;
  query: URLSearchParams;
  body: unknown;
  actor: CommandActor;
}

type ApiHandler = (r: ApiRequest) => Promise<unknown> | unknown;

export class WebConsole {
  readonly sessions: ConsoleSessions;
  /** Failed-login delays per address, in storage: shared by every worker and node. */
  private readonly guard: LoginGuard;
  /** Proxies whose X-Forwarded-For / Forwarded header gives the client's address. */
  private readonly trusted: TrustedProxies;
  private readonly api: Map<string, ApiHandler>;

  constructor(
    private readonly core: ServerCore,
    options: ConsoleOptions,
    reports: ConsoleReports,
  ) {
    this.trusted = new TrustedProxies(core.config.trustedProxies);
    this.sessions = new ConsoleSessions(core.database.db, options.idleTimeout * 1000, options.maxAge * 1000);
    this.guard = new LoginGuard(core.database.db);
    const command =
      (id: string): ApiHandler =>
      ({ query, body, actor }) => {
        const c = adminCommand(id);
        if (!c) throw new ConsoleError(500, `no admin command ${id}`);
        return runCommand(
          core,
          c,
          c.http.method === 'GET' ? coerceInput(c, Object.fromEntries(query)) : body,
          actor,
        );
      };
    this.api = new Map<string, ApiHandler>([
      ['GET /console/api/session', ({ session }) => this.describe(session)],
      ['GET /console/api/stats', command('server.stats')],
      ['GET /console/api/users', (r) => this.users(r)],
      ['POST /console/api/users/add', command('user.add')],
      ['POST /console/api/users/disable', command('user.disable')],
      ['POST /console/api/users/enable', command('user.enable')],
      ['POST /console/api/users/password', command('user.passwd')],
      ['POST /console/api/users/remove', command('user.remove')],
      ['GET /console/api/sessions', command('sessions.list')],
      ['POST /console/api/sessions/end', command('sessions.end')],
      ['GET /console/api/rooms', command('rooms.list')],
      ['GET /console/api/s2s', () => reports.s2s(core)],
      ['GET /console/api/components', () => this.components()],
      ['GET /console/api/config', () => redactConfig(core.config)],
      ['GET /console/api/logs', () => this.logs()],
    ]);
  }

  /** Whether a path is the console's (everything else keeps the admin listener's rules). */
  static owns(pathname: string): boolean {
    return pathname === '/console' || pathname.startsWith('/console/');
  }

  handle(req: IncomingMessage, res: ServerResponse, url: URL): void {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
    void this.route(req, res, url).catch((err: unknown) => {
      if (err instanceof ConsoleError) return json(res, err.status, { error: err.message }, err.headers);
      if (err instanceof AdminActionError) return json(res, err.status, { error: err.message });
      this.core.log.error({ err, path: url.pathname }, 'console request failed');
      json(res, 500, { error: 'the request failed: see the server log' });
    });
  }

  private async route(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const origin = req.headers.origin;
    // A browser's request from another origin (a page the admin visits, DNS rebinding with a
    // foreign Origin) is refused before anything else.
    if (origin !== undefined && !sameOrigin(origin, req.headers.host))
      throw new ConsoleError(403, 'the console answers only its own pages (foreign Origin)');

    if (method === 'GET' || method === 'HEAD') {
      const asset = ASSETS[path];
      if (asset) {
        if (origin !== undefined) await this.requireSession(req);
        res.writeHead(200, { 'content-type': asset.type });
        res.end(method === 'HEAD' ? undefined : asset.body);
        return;
      }
      if (path === '/console') {
        res.writeHead(308, { location: '/console/' }).end();
        return;
      }
    }

    if (path === '/console/api/login') {
      if (method !== 'POST') throw new ConsoleError(405, 'method not allowed', { allow: 'POST' });
      return this.login(req, res);
    }
    const key = `${method} ${path}`;
    const handler = this.api.get(key);
    if (!handler) {
      if (path === '/console/api/logout' && method === 'POST') {
        const session = await this.requireSession(req);
        requireChange(req, session);
        await this.sessions.end(cookie(req));
        this.core.log.info({ jid: session.jid }, 'console logout');
        json(res, 200, {}, { 'set-cookie': clearCookie() });
        return;
      }
      throw new ConsoleError(404, 'not found');
    }
    const session = await this.requireLiveSession(req);
    let body: unknown;
    if (method === 'POST') {
      requireChange(req, session);
      body = await readJson(req);
    }
    const out = await handler({
      session,
      query: url.searchParams,
      body,
      actor: { via: 'console', by: session.jid },
    });
    json(res, 200, out);
  }

  /** The live session of the request's cookie, its admin still in `admins`; else 401. */
  private async requireSession(req: IncomingMessage): Promise<ConsoleSession> {
    const session = await this.sessions.use(cookie(req));
    if (!session) throw new ConsoleError(401, 'log in first (no session, or it expired)');
    if (!this.isAdmin(session.jid)) {
      await this.sessions.endAll(session.jid);
      throw new ConsoleError(401, `${session.jid} is no longer an administrator (admins)`);
    }
    return session;
  }

  /**
   * `requireSession`, and the admin's account still exists and is not disabled (checked at every
   * API request: disabling or removing an admin ends their console sessions too).
   */
  private async requireLiveSession(req: IncomingMessage): Promise<ConsoleSession> {
    const session = await this.requireSession(req);
    const account = parseJid(session.jid);
    const info = await this.core.accounts.info(account.local, account.domain);
    if (!info || info.disabled) {
      await this.sessions.endAll(session.jid);
      throw new ConsoleError(401, `${session.jid} is disabled or removed`);
    }
    return session;
  }

  private isAdmin(bare: string): boolean {
    return this.core.config.admins.some((a) => {
      try {
        return parseJid(a).bare.toString() === bare;
      } catch {
        return false;
      }
    });
  }

  private describe(session: ConsoleSession): unknown {
    return {
      jid: session.jid,
      csrf: session.csrf,
      hosts: [...this.core.hosts.keys()],
      version: NATTER_VERSION,
      logs: this.core.recentLogs !== undefined,
    };
  }

  /**
   * `POST /console/api/login {jid, password}`: an account of `admins` whose password matches its
   * stored keys gets a session. Any failure — wrong password, unknown or disabled account, not an
   * administrator — is the same 401 (the answer says nothing about which), logged as an
   * authentication failure and counted against the address.
   */
  private async login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    requireJson(req);
    const body = (await readJson(req)) as { jid?: unknown; password?: unknown } | undefined;
    const given = typeof body?.jid === 'string' ? body.jid.slice(0, 3071) : '';
    const password = typeof body?.password === 'string' ? body.password : '';
    if (password.length > 1024) throw new ConsoleError(400, 'password: too long');
    // Behind a TLS proxy in trustedProxies, the client's address from its header: otherwise every
    // login would come from the proxy, one bucket of delays for everyone.
    const address = clientAddress(
      req.socket.remoteAddress,
      req.headers,
      this.trusted,
      this.core.config.trustedProxyHeader,
    );
    const who = ipKey(address, 64);
    const limiterWait = this.core.limiter?.authWait?.(address) ?? 0;
    if (limiterWait > 0) this.refuse(address, given, { waitMs: limiterWait, reason: 'delay' });
    // One check at a time per address, on any worker or node, and none while its delay runs.
    const refused = await this.guard.claim(who);
    if (refused) this.refuse(address, given, refused);
    let verdict = false;
    try {
      verdict = await this.authenticate(res, address, who, given, password);
    } finally {
      if (!verdict) await this.guard.release(who);
    }
  }

  private refuse(address: string, given: string, r: { waitMs: number; reason: 'delay' | 'checking' }): never {
    const seconds = Math.max(1, Math.ceil(r.waitMs / 1000));
    this.failed(address, given, 'temporary-auth-failure');
    throw new ConsoleError(
      429,
      r.reason === 'delay'
        ? `too many failed logins from your address: try again in ${seconds} s`
        : `a login from your address is being checked: try again in ${seconds} s`,
      { 'retry-after': String(seconds) },
    );
  }

  /**
   * Checks the login claimed for `who`; true once the claim is settled (a success or a counted
   * failure), false when it ended without a verdict (the caller releases it).
   */
  private async authenticate(
    res: ServerResponse,
    address: string,
    who: string,
    given: string,
    password: string,
  ): Promise<boolean> {
    let account: Jid | undefined;
    try {
      const j = parseJid(given);
      account = j.local !== '' && j.resource === '' && this.core.hosts.has(j.domain) ? j : undefined;
    } catch {
      account = undefined;
    }
    // The password is checked even for a non-admin, so that timing does not tell admins apart.
    const ok = account !== undefined && (await this.checkPassword(account, password));
    if (!ok || !account || !this.isAdmin(account.toString())) {
      this.failed(address, given, 'not-authorized');
      this.core.limiter?.authFailed(address);
      await this.guard.failed(who);
      throw new ConsoleError(401, 'wrong JID or password, or not an administrator');
    }
    await this.guard.succeeded(who);
    this.core.metrics.authSucceeded('console');
    const { id, session } = await this.sessions.create(account.toString());
    this.core.log.info({ jid: session.jid, ip: ipKey(address, 128) }, 'console login');
    json(res, 200, this.describe(session), {
      'set-cookie': `${CONSOLE_COOKIE}=${id}; Path=/console; HttpOnly; SameSite=Strict`,
    });
    return true;
  }

  private failed(address: string, username: string, condition: string): void {
    logAuthFailure(this.core.log, { address, username, mechanism: 'console', condition });
    this.core.metrics.authFailed('console', condition);
  }

  /** The password against the account's stored SCRAM keys, by the PLAIN mechanism's own check. */
  private async checkPassword(account: Jid, password: string): Promise<boolean> {
    let disabled = false;
    const mech = createServerMechanism(
      'PLAIN',
      {
        scram: async (_username, hash) => {
          const keys = await this.core.accounts.scram(account.local, account.domain, hash);
          disabled = keys?.disabled ?? false;
          return keys;
        },
      },
      { domain: account.domain, unknownUserIterations: this.core.config.auth.iterations },
    );
    try {
      const step = await mech.step(new TextEncoder().encode(`\0${account.local}\0${password}`));
      return step.done && !disabled;
    } catch (err) {
      if (err instanceof SaslFailure) return false;
      throw err;
    }
  }

  /**
   * One page of accounts (`user.list`, with `search` and `after`), each with what `user.info`
   * says of it (disabled or not, sessions).
   */
  private async users({ query, actor }: ApiRequest): Promise<unknown> {
    const list = adminCommand('user.list')!;
    const info = adminCommand('user.info')!;
    const input = coerceInput(list, Object.fromEntries(query));
    const page = (await runCommand(this.core, list, { ...input, limit: PAGE_SIZE }, actor)) as {
      host: string;
      users: string[];
      more: boolean;
    };
    const users = [];
    for (const jid of page.users) {
      try {
        users.push(await runCommand(this.core, info, { jid }, actor));
      } catch (err) {
        // Removed between the two commands: left out.
        if (!(err instanceof AdminActionError && err.status === 404)) throw err;
      }
    }
    return { host: page.host, users, more: page.more };
  }

  /** The configured XEP-0114 components and whether each is connected (here or on another node). */
  private components(): unknown {
    const { core } = this;
    return {
      components: Object.keys(core.config.components)
        .sort()
        .map((domain) => {
          const node = core.cluster?.componentNode(domain);
          return {
            domain,
            connected: core.components.has(domain) || node !== undefined,
            ...(node !== undefined ? { node } : {}),
          };
        }),
    };
  }

  private logs(): unknown {
    const ring = this.core.recentLogs;
    if (!ring) return { available: false, lines: [] };
    return {
      available: true,
      lines: ring.lines().map((l) => {
        try {
          return JSON.parse(l) as unknown;
        } catch {
          return { msg: l };
        }
      }),
    };
  }
}

/** The static files, with no data in them (the script asks the API). */
const ASSETS: Record<string, { type: string; body: string }> = {
  '/console/': { type: 'text/html; charset=utf-8', body: INDEX_HTML },
  '/console/app.js': { type: 'text/javascript; charset=utf-8', body: APP_JS },
  '/console/console.css': { type: 'text/css; charset=utf-8', body: CONSOLE_CSS },
  '/console/favicon.svg': { type: 'image/svg+xml', body: FAVICON_SVG },
};

/**
 * Whether an Origin is the console's own: scheme://Host of the request. The listener speaks plain
 * HTTP, but behind a TLS proxy the page's origin is https://Host: both schemes name the same host
 * the request was sent to, so both are taken.
 */
function sameOrigin(origin: string, host: string | undefined): boolean {
  if (!host) return false;
  const h = host.toLowerCase();
  const o = origin.toLowerCase();
  return o === `http://${h}` || o === `https://${h}`;
}

/** A change: JSON body and the session's CSRF token, else 403. */
function requireChange(req: IncomingMessage, session: ConsoleSession): void {
  requireJson(req);
  const token = req.headers['x-csrf-token'];
  if (!sameCsrf(typeof token === 'string' ? token : undefined, session))
    throw new ConsoleError(403, 'missing or wrong CSRF token (x-csrf-token)');
}

/** A JSON body (a cross-site HTML form cannot send one), else 415. */
function requireJson(req: IncomingMessage): void {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') throw new ConsoleError(415, 'the body must be JSON (application/json)');
}

/** The console's session cookie of a request. */
function cookie(req: IncomingMessage): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === CONSOLE_COOKIE) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function clearCookie(): string {
  return `${CONSOLE_COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0`;
}

function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new ConsoleError(413, 'request body too large'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (!text) return resolve(undefined);
      try {
        resolve(JSON.parse(text));
      } catch {
        reject(new ConsoleError(400, 'the body is not JSON'));
      }
    });
    req.on('error', reject);
  });
}

function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
}
