import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { startTestServer } from '../../../test/support/test-server.js';
import { createLogger } from '../../core/logger.js';
import { SERVICE, createRoom, login, users } from '../../../test/support/muc.js';

test('the "persistent rooms loaded" log line has each key once (JSON log parsers keep every field)', async () => {
  const first = await startTestServer();
  await users(first, 'romeo');
  const romeo = await login(first, 'romeo', 'logs');
  await createRoom(romeo, `ledger@${SERVICE}`, 'Romeo', { 'muc#roomconfig_persistentroom': '1' });
  romeo.kill();
  await first.stop();

  const out = new PassThrough();
  const lines: string[] = [];
  let buffered = '';
  out.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    const parts = buffered.split('\n');
    buffered = parts.pop()!;
    lines.push(...parts);
  });
  const second = await startTestServer({}, { dataDir: first.dataDir, logger: createLogger('info', out) });
  try {
    const line = lines.find((l) => l.includes('persistent rooms loaded'));
    assert.ok(line, lines.join('\n'));
    const keys = [...line.matchAll(/"([^"]+)":/g)].map((m) => m[1]!);
    assert.deepEqual(
      keys.filter((k, i) => keys.indexOf(k) !== i),
      [],
      line,
    );
    const parsed = JSON.parse(line) as Record<string, unknown>;
    assert.equal(parsed.service, 'natter');
    assert.equal(parsed.muc, SERVICE);
    assert.equal(parsed.rooms, 1);
  } finally {
    await second.destroy();
  }
});
