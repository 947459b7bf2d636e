// YAML configuration files: `natter serve --config natter.yaml` starts a server that answers on the
// ports the file names; a mistake is reported with the file, the option and its line; natter.yaml
// in the working directory is found like natter.json, and both at once is refused.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './support/federation-peers.js';
import { runNatter, spawnNatter } from './support/run-cli.js';
import { loadConfigFile } from '../src/config.js';

describe('YAML configuration', () => {
  const dir = mkdtempSync(join(tmpdir(), 'natter-yaml-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('natter serve --config natter.yaml: the server starts and answers on the configured port', async () => {
    const http = await freePort();
    const file = join(dir, 'natter.yaml');
    writeFileSync(
      file,
      `# a comment, as JSON cannot have
hosts: [localhost]
dataDir: ${join(dir, 'data')}
listeners:
  - type: http   # WebSocket, BOSH, /health
    port: ${http}
    host: 127.0.0.1
log:
  level: warn
`,
    );
    const child = spawnNatter(['serve', '--config', file]);
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    try {
      let health: { status?: string } | undefined;
      for (let i = 0; i < 150 && !health; i++) {
        health = await fetch(`http://127.0.0.1:${http}/health`)
          .then((r) => r.json() as Promise<{ status?: string }>)
          .catch(() => undefined);
        if (!health) await new Promise((r) => setTimeout(r, 200));
      }
      assert.equal(health?.status, 'ok', output);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });

  test('an invalid value: the error names the file, the option and its line; exit 1', async () => {
    const file = join(dir, 'bad-port.yaml');
    writeFileSync(file, 'hosts: [localhost]\n\nlisteners:\n  - type: c2s\n    port: 99999\n');
    const r = await runNatter(['check', '--config', file]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /invalid configuration in .*bad-port\.yaml/);
    assert.match(r.stderr, /listeners\.0\.port \(line 5\): .*65535/);
  });

  test('an unknown option is reported at its own line', () => {
    const file = join(dir, 'typo.yaml');
    writeFileSync(file, 'hosts: [localhost]\n# listeners below\nlistner: []\n');
    assert.throws(() => loadConfigFile(file), /\(line 3\): Unrecognized key: "listner"/);
  });

  test('a YAML syntax error names the file and the line the parser gives', async () => {
    const file = join(dir, 'syntax.yml');
    writeFileSync(file, 'hosts:\n  - localhost\nauth:\n  allowPlaintext: never\nauth:\n  iterations: 5000\n');
    const r = await runNatter(['check', '--config', file]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /syntax\.yml is not valid YAML at line 5, column 1: Map keys must be unique/);
  });

  test('YAML 1.2: "no" and "on" stay strings, so a host named "no" is not false', () => {
    const file = join(dir, 'strings.yaml');
    writeFileSync(file, 'hosts: [no, on]\n');
    assert.deepEqual(loadConfigFile(file).hosts, ['no', 'on']);
  });

  test('natter.yaml in the working directory is used; with natter.json beside it, neither is', async () => {
    const cwd = mkdtempSync(join(dir, 'cwd-'));
    writeFileSync(join(cwd, 'natter.yaml'), 'hosts: [yaml.example]\ntls:\n  cert: c.pem\n  key: k.pem\n');
    const found = await runNatter(['check'], cwd);
    assert.equal(found.code, 0, found.stderr);
    assert.match(found.stdout, /configuration OK \(natter\.yaml\): hosts yaml\.example/);
    writeFileSync(join(cwd, 'natter.json'), '{}');
    const both = await runNatter(['check'], cwd);
    assert.equal(both.code, 1);
    assert.match(both.stderr, /both natter\.json and natter\.yaml are in .*name it with --config/);
  });
});
