// A program that embeds the server (`startServer` from @natter/server) and whose start fails — a
// module of its own throws in setup, or a port is taken — gets the error, and nothing the failed
// start took is left behind: the program ends by itself, as Node programs do when nothing is left
// to wait for (no process.exit), holding no file of its data directory open.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const SERVER = pathToFileURL(join(ROOT, 'packages/server/src/index.ts')).href;
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/**
 * Runs `body` (a module script with `startServer` and `dataDir` in scope) in its own Node
 * process; resolves with its exit code and output, or fails if it has not ended within 30 s.
 */
function embed(body: string): Promise<{ code: number | null; out: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'natter-embed-'));
  dirs.push(dir);
  const file = join(dir, 'program.mts');
  writeFileSync(
    file,
    `import { startServer } from ${JSON.stringify(SERVER)};\n` +
      `import { readdirSync, readlinkSync } from 'node:fs';\n` +
      `const dataDir = ${JSON.stringify(join(dir, 'data'))};\n` +
      // Files of the data directory this process still has open (the database, its WAL …).
      `const held = () => readdirSync('/proc/self/fd').map((fd) => { try { return readlinkSync('/proc/self/fd/' + fd); } catch { return ''; } }).filter((f) => f.startsWith(dataDir));\n` +
      `${body}\n`,
  );
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=source', file], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the program did not end by itself within 30 s:\n${out}`));
    }, 30_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describe('a start that fails gives back what it took', () => {
  test('a module that throws in setup: the error reaches the program, its storage is closed, and it ends by itself', async () => {
    const r = await embed(`
const broken = {
  name: 'broken',
  description: 'fails at setup',
  specs: [],
  default: true,
  setup() { throw new Error('broken module: no licence key'); },
};
try {
  await startServer(
    { hosts: ['localhost'], dataDir, listeners: [{ type: 'c2s', port: 0, host: '127.0.0.1' }], log: { level: 'silent' } },
    { modules: [broken] },
  );
  console.log('started?!');
} catch (err) {
  console.log('start failed: ' + err.message);
}
console.log('files held: ' + JSON.stringify(held()));
`);
    assert.match(r.out, /start failed: broken module: no licence key/);
    assert.match(r.out, /files held: \[\]/, 'the database is closed');
    assert.equal(r.code, 0, r.out);
  });

  test('a port already taken: EADDRINUSE reaches the program, its storage is closed, and it ends by itself', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      const r = await embed(`
try {
  await startServer({
    hosts: ['localhost'],
    dataDir,
    listeners: [
      { type: 'http', port: 0, host: '127.0.0.1' },
      { type: 'c2s', port: ${port}, host: '127.0.0.1' },
    ],
    log: { level: 'silent' },
  });
  console.log('started?!');
} catch (err) {
  console.log('start failed: ' + err.code);
}
console.log('files held: ' + JSON.stringify(held()));
`);
      assert.match(r.out, /start failed: EADDRINUSE/);
      assert.match(r.out, /files held: \[\]/, 'the database is closed');
      assert.equal(r.code, 0, r.out);
    } finally {
      taken.close();
    }
  });
});
