import assert from 'node:assert/strict';
import { test } from 'node:test';
import { payloadBody, payloadText } from './payload.js';

test('UTF-8 payloads are bodies as they are', () => {
  assert.equal(payloadText(Buffer.from('21.5 °C ✓', 'utf8')), '21.5 °C ✓');
  assert.deepEqual(payloadBody(Buffer.from('on'), 'skip'), { body: 'on', binary: false });
});

test('payloads that are not UTF-8, or hold characters XML forbids, are base64 with a note, or skipped', () => {
  const bytes = Buffer.from([0xff, 0x00, 0x10]);
  assert.equal(payloadText(bytes), undefined);
  assert.equal(payloadText(Buffer.from('a\u0001b')), undefined);
  assert.deepEqual(payloadBody(bytes, 'base64'), {
    body: '[binary payload, 3 bytes, base64] /wAQ',
    binary: true,
  });
  assert.equal(payloadBody(bytes, 'skip'), undefined);
});
