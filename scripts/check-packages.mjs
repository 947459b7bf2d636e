#!/usr/bin/env node
// Checks what `npm publish` would ship, as a user would get it (run by CI after the build):
//  1. builds, then `npm pack`s every publishable workspace package into a temporary directory
//     (each package's prepack builds it again: a no-op after the build, the whole build from a
//     fresh clone);
//  2. per tarball: no test file and no build cache inside, @natter/* dependencies at the versions
//     packed beside them, `publint --strict`, and `attw --profile esm-only` (the packages are ESM
//     only, by design: a require() from CommonJS and TypeScript's pre-exports `node10` resolution
//     are not supported, so those two columns are not checked; node16-from-ESM and bundler are);
//  3. installs the server tarball with its @natter/* dependency tarballs into a temporary global
//     prefix (`npm install -g --prefix`, as `npm install -g @natter/server` does) and runs the
//     installed `natter version`, `natter check` on a YAML configuration, and `natter serve`
//     until /health answers;
//  4. installs every tarball into a temporary project and imports each package there.
// Exits 1 at the first failure, saying what failed. Usage: node scripts/check-packages.mjs [--keep]
// (--keep leaves the temporary directory for a look).
//
// better-sqlite3 offline: its install script downloads a prebuilt binary from GitHub, which these
// machines cannot reach, then falls back to compiling (the machine's npmrc has nodedir=/usr and
// Debian's toolchain: about 3 minutes). To skip that, the binary `npm ci` built for the workspace is
// offered as a local prebuild (prebuild-install's npm_config_better_sqlite3_local_prebuilds), when
// the version npm picks for the install is the workspace's.
import { execFileSync, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const keep = process.argv.includes('--keep');
const bin = (name) => join(root, 'node_modules', '.bin', name);
const started = Date.now();
const tmp = mkdtempSync(join(tmpdir(), 'natter-packages-'));
const packs = join(tmp, 'packs');
mkdirSync(packs);

function step(what) {
  console.log(`\n== ${what} (${((Date.now() - started) / 1000).toFixed(0)} s)`);
}

function fail(message) {
  console.error(`\ncheck-packages: FAILED: ${message}`);
  if (keep) console.error(`(temporary files kept in ${tmp})`);
  else rmSync(tmp, { recursive: true, force: true });
  process.exit(1);
}

/** Runs a command, output shown; a non-zero exit fails the check. */
function run(cmd, args, options = {}) {
  try {
    return execFileSync(cmd, args, {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
      encoding: 'utf8',
      ...options,
    });
  } catch (err) {
    fail(
      `${cmd} ${args.join(' ')} exited ${err.status ?? err.signal}${err.stdout ? `:\n${err.stdout}` : ''}`,
    );
  }
}

// The publishable packages: the workspaces that are not private.
const rootManifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const packages = rootManifest.workspaces
  .map((dir) => ({ dir, manifest: JSON.parse(readFileSync(join(root, dir, 'package.json'), 'utf8')) }))
  .filter((p) => !p.manifest.private);
if (packages.length === 0) fail('no publishable package found');

step('build');
run('npm', ['run', 'build'], { stdio: 'inherit' });

step(`npm pack ${packages.map((p) => p.manifest.name).join(' ')}`);
const packed = JSON.parse(
  run('npm', ['pack', '--json', '--pack-destination', packs, ...packages.flatMap((p) => ['-w', p.dir])]),
);
const versions = new Map(packed.map((p) => [p.name, p.version]));
for (const p of packages) if (!versions.has(p.manifest.name)) fail(`${p.manifest.name} was not packed`);

for (const p of packed) {
  step(`${p.name}@${p.version}: ${p.entryCount} files, ${(p.size / 1024).toFixed(0)} KiB`);
  const tarball = join(packs, p.filename);
  const unwanted = p.files
    .map((f) => f.path)
    .filter((f) => /\.test\.|(^|\/)tests?\/|tsbuildinfo|test-support\.|-test-kit\./.test(f));
  if (unwanted.length > 0) fail(`${p.name} ships test files or build caches: ${unwanted.join(', ')}`);
  const manifest = JSON.parse(
    execFileSync('tar', ['-xOzf', tarball, 'package/package.json'], { encoding: 'utf8' }),
  );
  for (const field of ['dependencies', 'peerDependencies'])
    for (const [dep, range] of Object.entries(manifest[field] ?? {}))
      if (dep.startsWith('@natter/') && range !== versions.get(dep))
        fail(
          `${p.name} ${field} ${dep}@${range}, but ${dep} is packed at ${versions.get(dep) ?? 'no version'}`,
        );
  for (const [name, file] of Object.entries(manifest.bin ?? {})) {
    const entry = p.files.find((f) => f.path === file.replace(/^\.\//, ''));
    if (!entry) fail(`${p.name}: bin ${name} → ${file} is not in the tarball`);
    const head = execFileSync('tar', ['-xOzf', tarball, `package/${entry.path}`], { encoding: 'utf8' });
    if (!head.startsWith('#!/usr/bin/env node\n')) fail(`${p.name}: ${file} has no #!/usr/bin/env node line`);
    if ((entry.mode & 0o111) === 0) fail(`${p.name}: ${file} is not executable in the tarball`);
  }
  run(bin('publint'), ['run', '--strict', tarball], { stdio: 'inherit' });
  run(bin('attw'), ['--profile', 'esm-only', '--format', 'table-flipped', tarball], { stdio: 'inherit' });
}

const tarballOf = (name) => join(packs, packed.find((p) => p.name === name).filename);
/** @natter/* packages `name` depends on, itself included, transitively. */
function withNatterDeps(name, seen = new Set()) {
  if (seen.has(name)) return seen;
  seen.add(name);
  const manifest = packages.find((p) => p.manifest.name === name).manifest;
  for (const dep of Object.keys(manifest.dependencies ?? {}))
    if (dep.startsWith('@natter/')) withNatterDeps(dep, seen);
  return seen;
}

// better-sqlite3 as the workspace built it, offered as a local prebuild (see the top of the file).
const env = { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false' };
const sqlite = join(root, 'node_modules', 'better-sqlite3');
if (existsSync(join(sqlite, 'build', 'Release', 'better_sqlite3.node'))) {
  const { version } = JSON.parse(readFileSync(join(sqlite, 'package.json'), 'utf8'));
  const prebuilds = join(tmp, 'prebuilds');
  mkdirSync(prebuilds);
  const name = `better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
  execFileSync('tar', ['-czf', join(prebuilds, name), 'build/Release/better_sqlite3.node'], { cwd: sqlite });
  env.npm_config_better_sqlite3_local_prebuilds = prebuilds;
}

const server = '@natter/server';
const serverTarballs = [...withNatterDeps(server)].map(tarballOf);
step(`npm install -g --prefix TMP ${serverTarballs.map((t) => t.slice(packs.length + 1)).join(' ')}`);
const prefix = join(tmp, 'prefix');
run(
  'npm',
  [
    'install',
    '-g',
    '--prefix',
    prefix,
    '--prefer-offline',
    '--allow-scripts=better-sqlite3',
    ...serverTarballs,
  ],
  {
    env,
    stdio: 'inherit',
  },
);
const natter = join(prefix, 'bin', 'natter');
if (!existsSync(natter)) fail(`npm install -g made no ${natter}`);

step('the installed natter version');
const reported = run(natter, ['version'], { env }).trim();
if (reported !== versions.get(server))
  fail(`natter version said "${reported}", the package is ${versions.get(server)}`);
console.log(reported);

step('the installed natter check and natter serve, on a YAML configuration');
const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
const http = await freePort();
const work = join(tmp, 'work');
mkdirSync(work);
writeFileSync(
  join(work, 'natter.yaml'),
  `# the installed server's smoke test
hosts: [localhost]
dataDir: ${join(work, 'data')}
listeners:
  - type: http
    port: ${http}
    host: 127.0.0.1
log:
  level: warn
`,
);
console.log(run(natter, ['check'], { cwd: work, env }).trim());
const child = spawn(natter, ['serve'], { cwd: work, env, stdio: ['ignore', 'inherit', 'inherit'] });
let health;
for (let i = 0; i < 100 && !health && child.exitCode === null; i++) {
  health = await fetch(`http://127.0.0.1:${http}/health`)
    .then((r) => r.json())
    .catch(() => undefined);
  if (!health) await new Promise((r) => setTimeout(r, 200));
}
child.kill('SIGTERM');
const code = await new Promise((resolve) =>
  child.exitCode !== null ? resolve(child.exitCode) : child.on('exit', resolve),
);
if (health?.status !== 'ok') fail('the installed natter serve did not answer /health within 20 s');
if (code !== 0) fail(`the installed natter serve exited ${code} on SIGTERM`);
console.log(`natter serve answered /health (${JSON.stringify(health)}) and stopped cleanly`);

step('every package imported from a project that installed the tarballs');
const project = join(tmp, 'project');
mkdirSync(project);
writeFileSync(
  join(project, 'package.json'),
  JSON.stringify({
    name: 'natter-pack-check',
    private: true,
    type: 'module',
    allowScripts: { 'better-sqlite3': true },
  }),
);
run('npm', ['install', '--prefer-offline', ...packed.map((p) => join(packs, p.filename))], {
  cwd: project,
  env,
  stdio: 'inherit',
});
for (const p of packages) {
  const entries = Object.keys(p.manifest.exports ?? { '.': null }).map((e) =>
    e === '.' ? p.manifest.name : `${p.manifest.name}/${e.slice(2)}`,
  );
  for (const entry of entries) {
    const exported = run(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const m = await import(${JSON.stringify(entry)}); console.log(Object.keys(m).length);`,
      ],
      {
        cwd: project,
      },
    ).trim();
    if (Number(exported) === 0) fail(`${entry} exports nothing`);
    console.log(`import('${entry}'): ${exported} exports`);
  }
}

if (!keep) rmSync(tmp, { recursive: true, force: true });
else console.log(`\ntemporary files kept in ${tmp}`);
console.log(
  `\ncheck-packages: ${packed.length} packages packed, linted and installed in ${((Date.now() - started) / 1000).toFixed(0)} s`,
);
