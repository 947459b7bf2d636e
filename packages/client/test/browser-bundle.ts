// Bundles the browser entry point with esbuild exactly as an app's bundler would (platform
// "browser": no "node" export condition), and reports what went in.
import { build, type Metafile } from 'esbuild';
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
