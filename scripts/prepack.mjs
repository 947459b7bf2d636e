#!/usr/bin/env node
// A workspace package's `prepack` (npm pack and npm publish run it in the package's directory):
// builds the package and those it references (tsc -b follows the project references, so a pack
// from a fresh clone works), then makes its `bin` files executable.
// Usage, as packages/<name>/package.json has it: node ../../scripts/prepack.mjs
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { makeBinsExecutable } from './bin-mode.mjs';

const dir = process.cwd();
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-b', join(dir, 'tsconfig.build.json')], { stdio: 'inherit' });
makeBinsExecutable(dir);
