// Bundles the browser entry point with esbuild exactly as an app's bundler would (platform
// "browser": no "node" export condition), and reports what went in.
import { build, type Metafile } from 'esbuild';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

export const clientRoot = fileURLToPath(new URL('..', import.meta.url));

export interface BrowserBundle {
  code: string;
  inputs: string[];
  metafile: Metafile;
}

export async function bundleForBrowser(): Promise<BrowserBundle> {
  const result = await build({
    entryPoints: [`${clientRoot}src/index.ts`],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    // Workspace packages resolve to their TypeScript sources, as in the tests.
    conditions: ['source'],
    metafile: true,
    logLevel: 'silent',
  });
  const out = result.outputFiles[0];
  if (!out) throw new Error('esbuild produced no output');
  return { code: out.text, inputs: Object.keys(result.metafile.inputs), metafile: result.metafile };
}

/** A page on 127.0.0.1 for headless Chromium: it loads the bundle as `window.natter`, then sets `window.ready`. */
export interface TestPage {
  url: string;
  close(): Promise<void>;
}

export async function servePage(code: string): Promise<TestPage> {
  const server = createServer((req, res) => {
    if (req.url === '/natter-client.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      res.end(code);
    } else {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<!doctype html><meta charset="utf-8"><title>natter</title>
<script type="module">import * as natter from '/natter-client.js'; window.natter = natter; window.ready = true;</script>`);
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
