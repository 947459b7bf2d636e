#!/usr/bin/env node
// Runs every test file of the project on Node's built-in test runner, TypeScript loaded through tsx
// with the "source" export condition (so workspace packages resolve to their src/).
// Usage: node scripts/test.mjs [path-substring ...]   (filters test files by substring)
// Fails when no test file is found: a silently empty suite is how tests disappear.
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const roots = ['packages', 'test', 'bench/src'];
const skip = new Set(['node_modules', 'dist', 'data', '.git']);

function walk(dir, out) {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of entries) {
    if (skip.has(name)) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, out);
    else if (name.endsWith('.test.ts')) out.push(relative(root, path));
  }
  return out;
}

const filters = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const passthrough = process.argv.slice(2).filter((a) => a.startsWith('--'));
let files = roots.flatMap((r) => walk(join(root, r), [])).sort();
if (filters.length > 0) files = files.filter((f) => filters.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error(`no test files found${filters.length ? ` matching ${filters.join(', ')}` : ''}`);
  process.exit(1);
}
// Three files at a time on a 2-core machine: most test time is spent waiting on servers and
// sockets, and three keep both cores busy (measured: 908 s against 1067 s with two, no failures).
const concurrency = process.env.TEST_CONCURRENCY ?? '3';
const args = [
  '--import',
  'tsx',
  '--conditions=source',
  '--test',
  `--test-concurrency=${concurrency}`,
  '--test-timeout=120000',
  ...passthrough,
  ...files,
];
console.log(`running ${files.length} test files`);
const child = spawn(process.execPath, args, { cwd: root, stdio: 'inherit' });
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
