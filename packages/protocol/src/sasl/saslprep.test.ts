import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SaslFailure } from './sasl-failure.js';
import { saslprep } from './saslprep.js';

const refused = (input: string, opts?: { allowUnassigned?: boolean }) =>
  assert.throws(
    () => saslprep(input, opts),
    (e: unknown) => e instanceof SaslFailure && e.condition === 'malformed-request',
    JSON.stringify(input),
  );

test('RFC 4013 §3: example strings are prepared as specified', () => {
  assert.equal(saslprep('I\u00ADX'), 'IX'); // SOFT HYPHEN mapped to nothing
  assert.equal(saslprep('user'), 'user');
  assert.equal(saslprep('USER'), 'USER'); // case preserved
  assert.equal(saslprep('\u00AA'), 'a'); // NFKC
  assert.equal(saslprep('\u2168'), 'IX'); // NFKC
  refused('\u0007'); // prohibited
  refused('\u0627\u0031'); // bidi: RandALCat string must end with RandALCat
});

test('RFC 4013 §2.1: non-ASCII spaces map to SPACE and B.1 characters to nothing', () => {
  assert.equal(saslprep('a\u00A0b\u3000c'), 'a b c');
  assert.equal(saslprep('a\u200Cb\uFEFFc\uFE0F'), 'abc');
  // U+200B is in both C.1.2 and B.1; RFC 4013 §2.1 lists the C.1.2 mapping first, so it becomes SPACE.
  assert.equal(saslprep('a\u200Bb'), 'a b');
});

test('RFC 4013 §2.3: prohibited output (controls, private use, non-characters, surrogates, tags) is refused', () => {
  for (const s of [
    'a\u0000b',
    'a\u007F',
    'a\u0085',
    '\uE000',
    '\uFDD0',
    '\uFFFE',
    'a\uD800b',
    '\u2FF0',
    '\u200E',
    '\u{E0001}',
    '\u{F0000}',
    '\u{1D173}',
  ])
    refused(s);
});

test('RFC 4013 §2.4 / RFC 3454 §6: bidi rules', () => {
  assert.equal(saslprep('\u05D0\u05D1'), '\u05D0\u05D1');
  assert.equal(saslprep('\u0627\u0031\u0628'), '\u0627\u0031\u0628');
  refused('\u05D0a'); // RandALCat mixed with LCat
  refused('1\u05D0'); // must start with RandALCat
});

test('RFC 4013 §2.5: unassigned code points are allowed in queries and refused in stored strings', () => {
  assert.equal(saslprep('a\u0378'), 'a\u0378');
  refused('a\u0378', { allowUnassigned: false });
});
