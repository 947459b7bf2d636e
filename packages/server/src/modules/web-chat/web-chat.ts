import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  defineModule,
  type HttpHandler,
  type HttpRequestContext,
  type ModuleContext,
} from '../../core/module-api.js';
import { ConverseAssets } from './converse-assets.js';
import { webChatOptions, type WebChatOptions } from './options.js';
import { BOOT_SCRIPT, BOOT_SCRIPT_NAME, contentSecurityPolicy, indexPage } from './page.js';

/** What the page needs to know of each virtual host, asked at each request (modules set up in any order). */
type MucDomainOf = () => string | undefined;

/** Headers on every answer of ours (the page, the boot script, errors). */
const SAFE = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
} as const;

function plain(res: ServerResponse, status: number, text: string, extra: Record<string, string> = {}): void {
  const body = `${text}\n`;
  res.writeHead(status, {
    ...SAFE,
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    ...extra,
  });
  res.end(body);
}

/**
 * The `converse.initialize()` settings for a request that reached the listener at `endpoints`.
 * Credentials travel over that WebSocket: the server accepts them over plain ws:// only from
 * loopback (auth.allowPlaintext), and Converse shows the failure as it shows any other.
 */
function converseSettings(
  options: WebChatOptions,
  domain: { locked: boolean; name: string; muc: string | undefined },
  websocketUrl: string,
  assets: string,
  registration: boolean,
): Record<string, unknown> {
  return {
    assets_path: assets,
    websocket_url: websocketUrl,
    // The page knows the endpoint: no XEP-0156 lookup, and no BOSH.
    discover_connection_methods: false,
    authentication: 'login',
    view_mode: 'fullscreen',
    ...(domain.locked ? { locked_domain: domain.name } : { default_domain: domain.name }),
    ...(domain.muc ? { muc_domain: domain.muc } : {}),
    // A room asks for no nickname: the user's name is the default one.
    muc_nickname_from_jid: true,
    allow_registration: registration,
    ...options.converse,
  };
}

/**
 * The domain users log in to by name alone: `lockedDomain` (one of `hosts`), else the first host;
 * locked unless `lockedDomain` is false.
 */
export function loginDomain(
  lockedDomain: WebChatOptions['lockedDomain'],
  hosts: readonly string[],
): { name: string; locked: boolean } {
  const hosted = hosts.map((h) => h.toLowerCase());
  if (lockedDomain === false) return { name: hosted[0]!, locked: false };
  if (lockedDomain === undefined) return { name: hosted[0]!, locked: true };
  if (!hosted.includes(lockedDomain))
    throw new Error(
      `modules.web-chat.lockedDomain: ${lockedDomain} is not one of hosts (${hosted.join(', ')})`,
    );
  return { name: lockedDomain, locked: true };
}

/**
 * Where the upload module's slots point when it is configured with a `baseUrl` (often another
 * host): the page may PUT files there and show them. Without one, slots are on an http listener.
 */
function uploadOrigins(modules: ModuleContext<unknown>['config']['modules']): string[] {
  const upload = modules.upload;
  if (!upload || typeof upload.baseUrl !== 'string') return [];
  try {
    return [new URL(upload.baseUrl).origin];
  } catch {
    return [];
  }
}

/** The page, the boot script and Converse's files, under `options.path`. */
function webChatHandler(
  ctx: ModuleContext<WebChatOptions>,
  assets: ConverseAssets,
  mucDomains: Map<string, MucDomainOf>,
): HttpHandler {
  const { path: root, title } = ctx.options;
  const domain = loginDomain(ctx.options.lockedDomain, ctx.config.hosts);
  const assetDir = `converse/${assets.version}/`;
  const assetPrefix = root + assetDir;
  const origins = uploadOrigins(ctx.config.modules);

  function page(req: IncomingMessage, res: ServerResponse, { endpoints }: HttpRequestContext): void {
    if (!endpoints) {
      plain(res, 400, 'a valid Host header is required');
      return;
    }
    const settings = converseSettings(
      ctx.options,
      { ...domain, muc: mucDomains.get(domain.name)?.() },
      endpoints.websocket,
      assetDir,
      ctx.config.registration.enabled,
    );
    const body = indexPage({ title, assets: assetDir, settings });
    res.writeHead(200, {
      ...SAFE,
      'content-type': 'text/html; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      // Built for each request (the WebSocket URL follows the Host header): never reused stale.
      'cache-control': 'no-cache',
      'content-security-policy': contentSecurityPolicy(endpoints.websocket, origins),
      'x-frame-options': 'DENY',
      'cross-origin-opener-policy': 'same-origin',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  return async (req, res, context) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      plain(res, 405, 'method not allowed', { allow: 'GET, HEAD' });
      return;
    }
    if (path === root) {
      page(req, res, context);
      return;
    }
    if (path === root + BOOT_SCRIPT_NAME) {
      res.writeHead(200, {
        ...SAFE,
        'content-type': 'text/javascript; charset=utf-8',
        'content-length': Buffer.byteLength(BOOT_SCRIPT),
        'cache-control': 'no-cache',
      });
      res.end(req.method === 'HEAD' ? undefined : BOOT_SCRIPT);
      return;
    }
    if (path.startsWith(assetPrefix) && (await assets.serve(req, res, path.slice(assetPrefix.length))))
      return;
    // With the page at `/`, every path the listener and other modules leave reaches this handler.
    plain(res, 404, 'not found');
  };
}

/**
 * A web chat at `/` on the http and https listeners: Converse.js (the npm package, MPL-2.0) served
 * from its installed files, started against this listener's WebSocket with the host's domain
 * filled in (docs/decisions/0016-web-chat.md). Off by default: `modules: { "web-chat": {} }`.
 */
export default defineModule({
  name: 'web-chat',
  description:
    'A browser chat page (Converse.js) at / on the http and https listeners, connected over their WebSocket',
  specs: [],
  enabledByDefault: false,
  options: webChatOptions,
  setup(ctx) {
    loginDomain(ctx.options.lockedDomain, ctx.config.hosts); // a lockedDomain not hosted stops the start
    // Each host says where its rooms are, when the muc module is on there (asked per request).
    const mucDomains = ctx.processScoped('web-chat:muc-domains', () => new Map<string, MucDomainOf>());
    mucDomains.set(ctx.domain, () => ctx.use<{ domain: string }>('muc')?.domain);
    ctx.onStop(() => {
      mucDomains.delete(ctx.domain);
    });

    // One page for the whole server process (rule 7), whichever host sets it up first.
    ctx.processScoped('web-chat:route', () => {
      const assets = ConverseAssets.locate();
      ctx.httpRoute(ctx.options.path, webChatHandler(ctx, assets, mucDomains));
      const web = ctx.config.listeners.filter((l) => l.type === 'http' || l.type === 'https');
      const tls = web.some((l) => l.type === 'https' || l.publicUrl?.startsWith('https:'));
      if (web.length === 0) ctx.log.warn('web-chat is on but there is no http or https listener to serve it');
      else if (
        !tls &&
        ctx.config.auth.allowPlaintext === 'loopback' &&
        ctx.config.trustedProxies.length === 0
      )
        ctx.log.warn(
          'web-chat is served over plain http only: logins are accepted from this machine only (auth.allowPlaintext: loopback); for other machines add an https listener or a TLS reverse proxy',
        );
      ctx.log.debug({ path: ctx.options.path, converse: assets.version }, 'web chat page served');
      return assets;
    });
  },
});
