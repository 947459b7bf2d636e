// The natter-gateway-mqtt command: a bad configuration is named, with the usage, before anything connects.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../src/cli.ts', import.meta.url));

function run(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', '--conditions=source', cli],
      { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 60_000 },
      (err, _stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
    );
  });
}

test('without a domain or secret the command exits with status 2 and names the option', async () => {
  const { code, stderr } = await run({ NATTER_MQTT_SECRET: 's' });
  assert.equal(code, 2);
  assert.match(stderr, /component\.domain is required/);
  assert.match(stderr, /NATTER_MQTT_DOMAIN/);
});

test('a server that cannot be reached at start exits with status 1 and says why', async () => {
  const { code, stderr } = await run({
    NATTER_MQTT_DOMAIN: 'mqtt.localhost',
    NATTER_MQTT_SECRET: 's',
    NATTER_MQTT_SERVICE: 'xmpp://127.0.0.1:1',
    NATTER_MQTT_DATA_FILE: '/nonexistent-dir-natter/never-written.json',
  });
  assert.equal(code, 1);
  assert.match(stderr, /natter-gateway-mqtt: connection-failed/);
});
