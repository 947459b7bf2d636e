/**
 * The page at the module's path: an HTML shell that loads Converse's stylesheet and bundle, the
 * settings as a JSON data block, and a small script of ours that hands them to
 * `converse.initialize()`. No inline script, so the Content-Security-Policy can keep scripts to
 * this origin's files.
 */

/** Where, under the page's path, the boot script is served. */
export const BOOT_SCRIPT_NAME = 'natter-web-chat.js';

/** The id of the JSON data block the boot script reads. */
const SETTINGS_ID = 'natter-web-chat-settings';

/**
 * Starts Converse with the settings the page carries. `assets_path` arrives relative to the page
 * (a reverse proxy may add a path prefix): Converse wants it absolute. Module scripts run in
 * document order, so converse.min.js, before this one in the page, has defined `window.converse`.
 *
 * One plugin of ours: the login screen's footer without the sponsors' logos, which Converse loads
 * from conversejs.org: the page makes no request to another site (and its CSP would refuse them).
 */
export const BOOT_SCRIPT = `// Natter web chat: starts Converse with the settings in the page.
const { converse } = window;
const settings = JSON.parse(document.getElementById(${JSON.stringify(SETTINGS_ID)}).textContent);
settings.assets_path = new URL(settings.assets_path, document.baseURI).href;
settings.whitelisted_plugins = [...(settings.whitelisted_plugins ?? []), 'natter-web-chat'];
converse.plugins.add('natter-web-chat', {
  initialize() {
    const { api, VERSION_NAME } = this._converse;
    const { html } = converse.env;
    const Footer = api.elements.registry['converse-footer'];
    if (!Footer || !html) return;
    api.elements.define(
      'converse-footer',
      class extends Footer {
        render() {
          return html\`<footer class="footer mt-auto py-3">
            <p class="brand-subtitle subdued text-center mb-0">
              <a href="https://conversejs.org" target="_blank" rel="noopener">Converse</a>
              \${VERSION_NAME ?? ''}, an open-source XMPP chat client
            </p>
          </footer>\`;
        }
      },
    );
  },
});
converse.initialize(settings);
`;

export interface PageInput {
  title: string;
  /** Relative to the page: `converse/14.0.0/` (with the trailing slash). */
  assets: string;
  /** `converse.initialize()` settings (JSON values). */
  settings: Record<string, unknown>;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * JSON inside `<script type="application/json">`: `<`, `>` and `&` as \\u escapes, so that no
 * `</script>` or `<!--` in a value can end or alter the block (U+2028/2029 are valid JSON).
 */
const jsonForScript = (value: unknown) =>
  JSON.stringify(value).replace(/[<>&]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

export function indexPage({ title, assets, settings }: PageInput): string {
  const a = escapeHtml(assets);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<link rel="icon" href="${a}images/favicon.ico">
<link rel="stylesheet" href="${a}converse.min.css">
<script type="application/json" id="${SETTINGS_ID}">${jsonForScript(settings)}</script>
<script type="module" src="${a}converse.min.js"></script>
<script type="module" src="${BOOT_SCRIPT_NAME}"></script>
</head>
<body class="converse-fullscreen">
<noscript>This chat needs JavaScript.</noscript>
</body>
</html>
`;
}

/**
 * The page's Content-Security-Policy. Scripts: this origin's files only, plus WebAssembly
 * compilation ('wasm-unsafe-eval', not 'unsafe-eval': OMEMO's curve25519 module; no eval or
 * `new Function` is allowed). Styles: this origin's stylesheet and inline style attributes, which
 * Converse's templates use (e.g. the hidden SVG icon sprite, chat boxes): 'unsafe-inline' for
 * styles only. Connections: this origin and the WebSocket endpoint (maybe another host behind a
 * proxy). Images and media: this origin, data: and blob: (avatars, previews of files being sent).
 * `origins` (the upload service's, when it is elsewhere) may be connected to (HTTP upload PUTs)
 * and shown (the files shared). Nothing else: no image from another site (a link in a message stays
 * a link, and nobody learns who reads it), no frame or plugin, no foreign base URL, no framing.
 */
export function contentSecurityPolicy(websocketUrl: string, origins: readonly string[] = []): string {
  const ws = new URL(websocketUrl);
  const more = origins.map((o) => ` ${o}`).join('');
  return [
    "default-src 'none'",
    "script-src 'self' 'wasm-unsafe-eval'",
    "style-src 'self' 'unsafe-inline'",
    `connect-src 'self' ${ws.protocol}//${ws.host}${more}`,
    `img-src 'self' data: blob:${more}`,
    `media-src 'self' data: blob:${more}`,
    "font-src 'self'",
    "worker-src 'self'",
    "manifest-src 'self'",
    "form-action 'self'",
    "base-uri 'none'",
    "object-src 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}
