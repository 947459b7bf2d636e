#!/usr/bin/env node
// Checks the README's first command end to end on the built server: `natter serve` from dist/
// starts with a fresh data directory, answers on its c2s and HTTP listeners, and exits 0 on SIGTERM.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
const dir = mkdtempSync(join(tmpdir(), 'natter-smoke-'));
const [c2s, tls, http] = [await freePort(), await freePort(), await freePort()];
writeFileSync(
  join(dir, 'natter.json'),
  JSON.stringify({
    dataDir: join(dir, 'data'),
    listeners: [
      { type: 'c2s', port: c2s, host: '127.0.0.1' },
      { type: 'c2s-tls', port: tls, host: '127.0.0.1' },
      { type: 'http', port: http, host: '127.0.0.1' },
    ],
  }),
);
const child = spawn(
  process.execPath,
  [join(root, 'packages/server/dist/cli.js'), 'serve', '--config', join(dir, 'natter.json')],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
let log = '';
child.stdout.on('data', (d) => (log += d));
const fail = (msg) => {
  console.error(`smoke-start: ${msg}\n${log}`);
  child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
  process.exit(1);
};
const deadline = Date.now() + 20_000;
let health;
while (Date.now() < deadline) {
  health = await fetch(`http://127.0.0.1:${http}/health`)
    .then((r) => r.json())
    .catch(() => undefined);
  if (health) break;
  await new Promise((r) => setTimeout(r, 200));
}
if (health?.status !== 'ok') fail('no healthy /health within 20 s');
const header = await new Promise((resolve) => {
  const s = connect(c2s, '127.0.0.1', () =>
    s.write(
      "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>",
    ),
  );
  let got = '';
  s.on('data', (d) => {
    got += d;
    if (got.includes('</stream:features>')) {
      s.destroy();
      resolve(got);
    }
  });
  s.on('error', () => resolve(got));
  setTimeout(() => resolve(got), 5000);
});
if (!header.includes('starttls')) fail(`c2s listener did not offer STARTTLS: ${header}`);
child.kill('SIGTERM');
const code = await new Promise((resolve) => child.on('exit', resolve));
rmSync(dir, { recursive: true, force: true });
if (code !== 0) fail(`exit code ${code} after SIGTERM`);
console.log('smoke-start: built server started, answered on c2s and /health, stopped cleanly on SIGTERM');
