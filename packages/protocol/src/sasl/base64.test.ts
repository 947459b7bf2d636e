import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fromBase64, toBase64 } from './base64.js';
import { SaslFailure } from './sasl-failure.js';
import { enc } from './fixtures.test.js';

test('RFC 4648 §10: base64 test vectors encode and decode', () => {
  const vectors: [string, string][] = [
    ['', ''],
    ['f', 'Zg=='],
    ['fo', 'Zm8='],
    ['foo', 'Zm9v'],
    ['foob', 'Zm9vYg=='],
    ['fooba', 'Zm9vYmE='],
    ['foobar', 'Zm9vYmFy'],
  ];
  for (const [plain, encoded] of vectors) {
    assert.equal(toBase64(enc(plain)), encoded);
    assert.deepEqual(fromBase64(encoded), enc(plain));
  }
});

test('base64 round-trips every byte value and all tail lengths', () => {
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  for (let n = 0; n <= 256; n += 1)
    assert.deepEqual(fromBase64(toBase64(all.subarray(0, n))), all.subarray(0, n));
  assert.equal(toBase64(Uint8Array.of(0xfb, 0xff)), '+/8=');
});

test('RFC 6120 §6.4.2: strict base64 decoding rejects invalid input with incorrect-encoding', () => {
  const bad = [
    'Zg',
    'Zg=',
    'Z===',
    'Zm9v YmFy',
    'Zm9v\nYmFy',
    'Zg==Zg==',
    'Z=g=',
    '=Zg=',
    'Zm-_',
    'Zm9\u00e9',
    'Zh==',
    'Zm9=',
    '====',
    'Zm9vYmFy=',
  ];
  for (const text of bad) {
    assert.throws(
      () => fromBase64(text),
      (err: unknown) => err instanceof SaslFailure && err.condition === 'incorrect-encoding',
      text,
    );
  }
});
