// The natter-gateway-mqtt command as a real process: bad configurations, failures, a normal run.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { xml } from '@natter/client';
import { startHarness } from '@natter/component/testing';
import { topicToLocal } from '../src/topic-address.js';
import { BROKER_URL, connectBroker, uniquePrefix } from './support/broker.js';
import { GATEWAY_DOMAIN, GATEWAY_SECRET, is, wrapClient } from './support/xmpp.js';

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

test('the command runs the gateway until SIGTERM, then saves its subscriptions and exits 0', async () => {
  const h = await startHarness({ domain: GATEWAY_DOMAIN, secret: GATEWAY_SECRET, connect: false });
  const dir = await mkdtemp(join(tmpdir(), 'natter-mqtt-cli-'));
  const dataFile = join(dir, 'subscriptions.json');
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=source', cli], {
    env: {
      PATH: process.env.PATH ?? '',
      NATTER_MQTT_DOMAIN: GATEWAY_DOMAIN,
      NATTER_MQTT_SECRET: GATEWAY_SECRET,
      NATTER_MQTT_SERVICE: h.componentOptions.service,
      NATTER_MQTT_URL: BROKER_URL,
      NATTER_MQTT_DATA_FILE: dataFile,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    await new Promise<void>((resolve, reject) => {
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString('utf8');
        if (stderr.includes('"gateway online"')) resolve();
      });
      void exited.then((code) => reject(new Error(`exited with ${code}: ${stderr}`)));
    });
    const alice = wrapClient(await h.user('alice', { resource: 'test' }), `alice@${h.host}`);
    const topic = `${uniquePrefix()}/cli`;
    const contact = `${topicToLocal(topic)}@${GATEWAY_DOMAIN}`;
    await alice.client.send(xml('presence', { to: contact, type: 'subscribe' }));
    await alice.receive(is('presence', { from: contact, type: undefined }));
    const publisher = await connectBroker();
    try {
      await publisher.publishAsync(topic, 'from the command', { qos: 1 });
    } finally {
      await publisher.endAsync();
    }
    const msg = await alice.receive(is('message', { from: contact }));
    assert.equal(msg.getChildText('body'), 'from the command');
    child.kill('SIGTERM');
    assert.equal(await exited, 0, stderr);
    const saved = JSON.parse(await readFile(dataFile, 'utf8')) as { contacts: object };
    assert.deepEqual(saved.contacts, { [`alice@${h.host}`]: [topic] });
  } finally {
    child.kill('SIGKILL');
    await h.stop();
  }
});
