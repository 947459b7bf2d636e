import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError, DEFAULT_LIMITS, loadConfig, parseConfig } from './config.js';

test('defaults: local broker and server, users of the parent domain, every topic', () => {
  const c = parseConfig({ component: { domain: 'mqtt.example.com', secret: 's' } });
  assert.equal(c.component.service, 'xmpp://127.0.0.1:5347');
  assert.equal(c.mqtt.url, 'mqtt://127.0.0.1:1883');
  assert.deepEqual(c.allowedUsers, ['example.com']);
  assert.deepEqual(c.topicPrefixes, ['']);
  assert.equal(c.binaryPayloads, 'base64');
  assert.deepEqual(c.limits, DEFAULT_LIMITS);
  assert.deepEqual(parseConfig({ component: { domain: 'mqtt', secret: 's' } }).allowedUsers, ['*']);
});

test('a bad option is named', () => {
  assert.throws(() => parseConfig({ component: { secret: 's' } }), /component.domain is required/);
  assert.throws(
    () => parseConfig({ component: { domain: 'd', secret: 's' }, limits: { maxPayloadBytes: 0 } }),
    (err: unknown) => err instanceof ConfigError && /limits.maxPayloadBytes/.test(err.message),
  );
  assert.throws(
    () => parseConfig({ component: { domain: 'd', secret: 's' }, binaryPayloads: 'hex' }),
    /binaryPayloads/,
  );
  assert.throws(
    () => parseConfig({ component: { domain: 'd', secret: 's' }, topicPrefixes: [1] }),
    /topicPrefixes/,
  );
});

test('the environment overrides the file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'natter-mqtt-config-'));
  const file = join(dir, 'gateway.json');
  await writeFile(
    file,
    JSON.stringify({ component: { domain: 'mqtt.a', secret: 'file' }, topicPrefixes: ['x/'] }),
  );
  const c = await loadConfig(file, { NATTER_MQTT_SECRET: 'env', NATTER_MQTT_TOPIC_PREFIXES: 'a/, b/' });
  assert.equal(c.component.secret, 'env');
  assert.equal(c.component.domain, 'mqtt.a');
  assert.deepEqual(c.topicPrefixes, ['a/', 'b/']);
  const envOnly = await loadConfig(undefined, { NATTER_MQTT_DOMAIN: 'mqtt.b', NATTER_MQTT_SECRET: 's' });
  assert.equal(envOnly.component.domain, 'mqtt.b');
  await assert.rejects(loadConfig(join(dir, 'missing.json'), {}), /cannot read/);
});
