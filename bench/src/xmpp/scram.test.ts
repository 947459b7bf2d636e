import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ScramClient } from './scram.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

test('RFC 5802 §5: SCRAM-SHA-1 example exchange gives the published proof and server signature', async () => {
  const c = new ScramClient('sha1', 'user', 'pencil', 'fyko+d2lbbFgONRv9qkxdawL');
  assert.equal(Buffer.from(c.first(), 'base64').toString(), 'n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL');
  const final = await c.final(b64('r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096'));
  assert.equal(
    Buffer.from(final, 'base64').toString(),
    'c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=',
  );
  assert.equal(c.verify(b64('v=rmF9pqV8S7suAoZWja4dJRkFsKQ=')), true);
  assert.equal(c.verify(b64('v=AAAApqV8S7suAoZWja4dJRkFsKQ=')), false);
});

test('RFC 7677 §3: SCRAM-SHA-256 example exchange gives the published proof and server signature', async () => {
  const c = new ScramClient('sha256', 'user', 'pencil', 'rOprNGfwEbeRWgbNEkqO');
  const final = await c.final(
    b64('r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096'),
  );
  assert.equal(
    Buffer.from(final, 'base64').toString(),
    'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  );
  assert.equal(c.verify(b64('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=')), true);
});
