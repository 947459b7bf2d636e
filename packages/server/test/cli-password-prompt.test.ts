// `natter user add` at a terminal: the password is asked for twice and never shown (util-linux
// `script` gives the CLI a real pseudo-terminal), and the account works with it. Piped stdin and
// --password keep working for scripts.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestServer } from './support/test-server.js';
import { TestClient } from './support/test-client.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const CLI = join(ROOT, 'packages/server/src/cli.ts');
const SECRET = 'zebra-Quartz-81-unseen';

/** Runs the CLI under a pseudo-terminal, typing `lines` once it has asked for them. */
function atTerminal(args: string[], lines: string[]): Promise<{ code: number; output: string }> {
  const command = [process.execPath, '--import', 'tsx', '--conditions=source', CLI, ...args]
    .map((a) => `'${a.replace(/'/g, `'\\''`)}'`)
    .join(' ');
  return new Promise((resolve, reject) => {
    // `exec`: the CLI is the terminal's process itself, whatever shell script runs it with.
    const child = spawn('script', ['-qec', `exec ${command}`, '/dev/null'], {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, SHELL: '/bin/sh' },
    });
    let output = '';
    let asked = 0;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`timed out; output so far:\n${output}`));
    }, 60_000);
    const onData = (d: Buffer) => {
      output += d.toString();
      // Each prompt ends with ": "; answer each once.
      const prompts = output.match(/password(?: again)?: /g)?.length ?? 0;
      while (asked < prompts && asked < lines.length) child.stdin.write(`${lines[asked++]}\r`);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, output });
    });
  });
}

describe('natter user add: the password at a terminal', () => {
  const dir = mkdtempSync(join(tmpdir(), 'natter-cli-prompt-'));
  const config = join(dir, 'natter.json');
  const storage = { engine: 'sqlite' as const, path: join(dir, 'natter.sqlite') };
  before(() => {
    writeFileSync(
      config,
      JSON.stringify({
        hosts: ['localhost'],
        dataDir: dir,
        storage,
        listeners: [],
        log: { level: 'silent' },
      }),
    );
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('asked twice, never echoed; the account takes it', async () => {
    const r = await atTerminal(['user', 'add', 'alice@localhost', '--config', config], [SECRET, SECRET]);
    assert.equal(r.code, 0, r.output);
    assert.match(r.output, /password: /);
    assert.match(r.output, /password again: /);
    assert.match(r.output, /created alice@localhost/);
    assert.ok(!r.output.includes(SECRET), `the password was shown:\n${r.output}`);
    // The account logs in with what was typed.
    const server = await startTestServer(
      { storage },
      { dataDir: mkdtempSync(join(tmpdir(), 'natter-cli-srv-')) },
    );
    try {
      const c = await TestClient.login(server, 'alice', SECRET);
      c.kill();
    } finally {
      await server.destroy();
    }
  });

  test('two different answers: nothing is created', async () => {
    const r = await atTerminal(['user', 'add', 'bob@localhost', '--config', config], [SECRET, `${SECRET}x`]);
    assert.notEqual(r.code, 0);
    assert.match(r.output, /the passwords differ/);
    const server = await startTestServer(
      { storage },
      { dataDir: mkdtempSync(join(tmpdir(), 'natter-cli-srv-')) },
    );
    try {
      assert.equal(await server.core.accounts.exists('bob', 'localhost'), false);
    } finally {
      await server.destroy();
    }
  });
});
