import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { JidError, escapeLocal, jid, parseJid, tryParseJid, unescapeLocal } from './index.js';

// Each property stops after ~2 s whatever numRuns says (interrupted runs count as passed).
const RUN = { numRuns: 3000, interruptAfterTimeLimit: 2000, markInterruptAsFailure: false } as const;

/** One "character": mostly JID-relevant ones, plus any code point (lone surrogates included). */
const anyUnit = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      '@',
      '/',
      '.',
      ' ',
      '[',
      ']',
      ':',
      '\\',
      '\u00a0',
      '\u0301',
      '\u200d',
      '\u00b7',
    ),
  },
  { weight: 5, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'A',
      'ß',
      'Σ',
      'ς',
      'é',
      'e\u0301',
      'Ａ',
      'ｶ',
      'ﾞ',
      'İ',
      'ǅ',
      'Ⅳ',
      'ﬁ',
      'א',
      '١',
      '۱',
      'ᄀ',
      '가',
    ),
  },
  { weight: 3, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
);
const anyString = fc.string({ unit: anyUnit, maxLength: 40 });

/** Candidate JIDs likely to be valid: letters/digits in local and domain, anything in the resource. */
const localUnit = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...'abcXYZ019._-+'.split('')) },
  {
    weight: 3,
    arbitrary: fc.constantFrom('ß', 'Σ', 'ς', 'é', 'E\u0301', 'Ａ', 'ｶ', 'ﾞ', 'İ', 'π', 'ж', '中', 'ü'),
  },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }) },
);
const label = fc.string({
  unit: fc.constantFrom(...'abcQRZ09-_'.split(''), 'ü', 'É', 'ж'),
  minLength: 1,
  maxLength: 10,
});
const candidate = fc
  .tuple(
    fc.option(fc.string({ unit: localUnit, minLength: 1, maxLength: 12 }), { nil: undefined }),
    fc.array(label, { minLength: 1, maxLength: 4 }),
    fc.boolean(),
    fc.option(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }), { nil: undefined }),
  )
  .map(
    ([l, labels, dot, r]) =>
      `${l === undefined ? '' : `${l}@`}${labels.join('.')}${dot ? '.' : ''}${r === undefined ? '' : `/${r}`}`,
  );

test('property: parseJid throws nothing but JidError for arbitrary strings', () => {
  fc.assert(
    fc.property(anyString, (s) => {
      try {
        parseJid(s);
      } catch (err) {
        assert.ok(err instanceof JidError, `${JSON.stringify(s)} threw ${String(err)}`);
        assert.match(err.message, /^(localpart|domainpart|resourcepart|JID) /);
      }
    }),
    RUN,
  );
});

test('property: normalisation is idempotent and parseJid(j.toString()) equals j', () => {
  let valid = 0;
  fc.assert(
    fc.property(fc.oneof(candidate, anyString), (s) => {
      const j = tryParseJid(s);
      if (j === null) return;
      valid++;
      const again = parseJid(j.toString());
      assert.ok(
        again.equals(j),
        `${JSON.stringify(s)} → ${JSON.stringify(j.toString())} → ${JSON.stringify(again.toString())}`,
      );
      assert.equal(again.toString(), j.toString());
      assert.ok(jid(j.local, j.domain, j.resource).equals(j));
    }),
    RUN,
  );
  assert.ok(valid > 100, `only ${valid} valid JIDs generated`);
});

test('property: the bare JID of any parsed JID has no resource and keeps local and domain', () => {
  fc.assert(
    fc.property(fc.oneof(candidate, anyString), (s) => {
      const j = tryParseJid(s);
      if (j === null) return;
      const b = j.bare;
      assert.equal(b.resource, '');
      assert.ok(b.isBare);
      assert.equal(b.bare, b);
      assert.equal(b.local, j.local);
      assert.equal(b.domain, j.domain);
      assert.equal(b.toString(), j.toBareString());
    }),
    RUN,
  );
});

test('property: XEP-0106 unescapeLocal(escapeLocal(s)) === s and escaping removes every forbidden character', () => {
  fc.assert(
    fc.property(anyString, (s) => {
      fc.pre(!s.startsWith(' ') && !s.endsWith(' '));
      const e = escapeLocal(s);
      assert.equal(unescapeLocal(e), s);
      assert.doesNotMatch(e, /[ "&'/:<>@]/);
    }),
    RUN,
  );
});
