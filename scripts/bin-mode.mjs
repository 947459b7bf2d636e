#!/usr/bin/env node
// Makes the `bin` files of the workspace packages executable (tsc writes them 0644): after
// `npm run build`, `packages/server/dist/cli.js` runs as `./packages/server/dist/cli.js`.
// Usage: node scripts/bin-mode.mjs [PACKAGE_DIR ...]   (default: every packages/* directory)
import { chmodSync, existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** chmod 0755 on each `bin` of the package in `dir`; a missing file is an error (not built?). */
export function makeBinsExecutable(dir) {
  const { bin } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const files = typeof bin === 'string' ? [bin] : Object.values(bin ?? {});
  for (const file of files) chmodSync(join(dir, file), 0o755);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const dirs =
    process.argv.length > 2
      ? process.argv.slice(2)
      : readdirSync(join(root, 'packages'))
          .map((name) => join(root, 'packages', name))
          .filter((dir) => existsSync(join(dir, 'package.json')));
  for (const dir of dirs) makeBinsExecutable(dir);
}
