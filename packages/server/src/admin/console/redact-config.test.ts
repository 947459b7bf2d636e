import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../config.js';
import { redactConfig } from './redact-config.js';

test('the configuration view hides tokens, passwords, secrets and URL passwords, and keeps the rest', () => {
  const config = parseConfig({
    hosts: ['example.com'],
    storage: {
      engine: 'postgres',
      url: 'postgres://natter:db-pass-123@db.internal:5432/natter?sslpassword=tls-pass',
    },
    listeners: [{ type: 'admin', port: 5281, token: 'admin-token-0123456789' }],
    components: { 'gw.example.com': { secret: 'component-secret' } },
    s2s: { dialbackSecret: 'dialback-secret-0123456789' },
  });
  const shown = JSON.stringify(redactConfig(config));
  for (const secret of [
    'db-pass-123',
    'tls-pass',
    'admin-token-0123456789',
    'component-secret',
    'dialback-secret',
  ])
    assert.ok(!shown.includes(secret), secret);
  const r = redactConfig(config) as typeof config & { storage: { url: string } };
  assert.equal(r.storage.url, 'postgres://natter:redacted@db.internal:5432/natter?sslpassword=redacted');
  assert.equal(r.listeners[0]!.port, 5281);
  assert.deepEqual(r.hosts, ['example.com']);
  assert.equal(
    config.listeners[0]!.token,
    'admin-token-0123456789',
    'the running configuration is untouched',
  );
  assert.equal(
    redactConfig('host=db user=natter password=hunter2 dbname=natter'),
    'host=db user=natter password=(redacted) dbname=natter',
  );
  assert.deepEqual(redactConfig({ maxTokensPerAccount: 5, allowPasswordChange: true }), {
    maxTokensPerAccount: 5,
    allowPasswordChange: true,
  });
});
