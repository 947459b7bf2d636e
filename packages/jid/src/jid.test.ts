import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Jid, JidError, jid, parseJid, tryParseJid, type JidErrorCode, type JidPart } from './index.js';

function assertJidError(input: string, part: JidPart, code: JidErrorCode): JidError {
  let caught: unknown;
  try {
    parseJid(input);
  } catch (err) {
    caught = err;
  }
  assert.ok(
    caught instanceof JidError,
    `expected JidError for ${JSON.stringify(input)}, got ${String(caught)}`,
  );
  assert.equal(caught.part, part, `part for ${JSON.stringify(input)}: ${caught.message}`);
  assert.equal(caught.code, code, `code for ${JSON.stringify(input)}: ${caught.message}`);
  return caught;
}

test('RFC 7622 §3.5.1: the examples of valid JIDs parse', () => {
  const cases: Array<[string, string, string, string]> = [
    ['juliet@example.com', 'juliet', 'example.com', ''],
    ['juliet@example.com/foo', 'juliet', 'example.com', 'foo'],
    ['juliet@example.com/foo bar', 'juliet', 'example.com', 'foo bar'],
    ['juliet@example.com/foo@bar', 'juliet', 'example.com', 'foo@bar'],
    ['foo\\20bar@example.com', 'foo\\20bar', 'example.com', ''],
    ['fussball@example.com', 'fussball', 'example.com', ''],
    ['fußball@example.com', 'fußball', 'example.com', ''],
    ['π@example.com', 'π', 'example.com', ''],
    ['Σ@example.com/foo', 'σ', 'example.com', 'foo'],
    ['σ@example.com/foo', 'σ', 'example.com', 'foo'],
    ['ς@example.com/foo', 'ς', 'example.com', 'foo'],
    ['king@example.com/♚', 'king', 'example.com', '♚'],
    ['example.com', '', 'example.com', ''],
    ['example.com/foobar', '', 'example.com', 'foobar'],
    ['a.example.com/b@example.net', '', 'a.example.com', 'b@example.net'],
  ];
  for (const [input, local, domain, resource] of cases) {
    const j = parseJid(input);
    assert.deepEqual([j.local, j.domain, j.resource], [local, domain, resource], input);
  }
});

test('RFC 7622 §3.5.1: fußball and fussball stay distinct, Σ and σ are equal, ς differs from σ', () => {
  assert.ok(!parseJid('fußball@example.com').equals(parseJid('fussball@example.com')));
  assert.ok(parseJid('Σ@example.com/foo').equals(parseJid('σ@example.com/foo')));
  assert.ok(!parseJid('ς@example.com/foo').equals(parseJid('σ@example.com/foo')));
});

test('RFC 7622 §3.5.2: the examples of invalid JIDs are rejected with the right part and code', () => {
  assertJidError('"juliet"@example.com', 'local', 'forbidden-character');
  assertJidError('foo bar@example.com', 'local', 'disallowed-character');
  assertJidError('juliet@example.com/', 'resource', 'empty');
  assertJidError('@example.com/', 'local', 'empty');
  assertJidError('henry\u2163@example.com', 'local', 'disallowed-character');
  assertJidError('\u265a@example.com', 'local', 'disallowed-character');
  assertJidError('juliet@', 'domain', 'empty');
  assertJidError('/foobar', 'domain', 'empty');
});

test('RFC 7622 §3.1: resource is everything after the first slash, localpart before the first @', () => {
  const j = parseJid('a@b.example/c/d@e');
  assert.deepEqual([j.local, j.domain, j.resource], ['a', 'b.example', 'c/d@e']);
  const k = parseJid('b.example/x@y');
  assert.deepEqual([k.local, k.domain, k.resource], ['', 'b.example', 'x@y']);
  assertJidError('a@b@c.example', 'domain', 'forbidden-character');
  assertJidError('', 'domain', 'empty');
});

test('RFC 7622 §3.3.1: each forbidden localpart character is rejected and named in the message', () => {
  for (const ch of ['"', '&', "'", ':', '<', '>']) {
    assertJidError(`a${ch}b@example.com`, 'local', 'forbidden-character');
  }
  // '/' and '@' cannot reach the localpart through parseJid; jid() checks them directly.
  for (const ch of ['"', '&', "'", '/', ':', '<', '>', '@']) {
    assert.throws(
      () => jid(`a${ch}b`, 'example.com'),
      (e: unknown) => {
        assert.ok(e instanceof JidError);
        assert.equal(e.part, 'local');
        assert.equal(e.code, 'forbidden-character');
        assert.equal(e.message, `localpart contains forbidden character '${ch}'`);
        assert.equal(String(e), `JidError: localpart contains forbidden character '${ch}'`);
        return true;
      },
    );
  }
});

test('RFC 7622 §3.3: localpart and domainpart compare case-insensitively', () => {
  const a = parseJid('JuLiEt@Example.COM/Balcony');
  const b = parseJid('juliet@example.com/Balcony');
  assert.ok(a.equals(b));
  assert.equal(a.toString(), 'juliet@example.com/Balcony');
  assert.equal(parseJid('ΣΊΣΥΦΟΣ@Example.com').local, 'σίσυφος'); // Unicode default case mapping (Final_Sigma)
  assert.ok(parseJid('ÄNGEL@BÜCHER.example').equals(parseJid('ängel@bücher.example')));
});

test('RFC 7622 §3.4: resourcepart is case-sensitive', () => {
  assert.ok(!parseJid('juliet@example.com/Balcony').equals(parseJid('juliet@example.com/balcony')));
  assert.equal(parseJid('juliet@example.com/BALCONY').resource, 'BALCONY');
});

test('RFC 7622 §3.2-3.4: each part may be up to 1023 octets of UTF-8, not more', () => {
  const l1023 = 'a'.repeat(1023);
  const domain1023 = Array.from({ length: 16 }, () => 'd'.repeat(63))
    .join('.')
    .slice(0, 1023); // 16*64-1 = 1023
  assert.equal(domain1023.length, 1023);
  const ok = parseJid(`${l1023}@${domain1023}/${'r'.repeat(1023)}`);
  assert.equal(ok.local.length, 1023);
  assertJidError(`${'a'.repeat(1024)}@example.com`, 'local', 'too-long');
  assertJidError(`${domain1023}x`, 'domain', 'too-long');
  assertJidError(`example.com/${'r'.repeat(1024)}`, 'resource', 'too-long');
  // octets, not UTF-16 code units: 'é' is 2 octets, '😀' is 4
  parseJid(`${'é'.repeat(511)}a@example.com`); // 1023 octets
  assertJidError(`${'é'.repeat(512)}@example.com`, 'local', 'too-long');
  parseJid(`example.com/${'😀'.repeat(255)}abc`); // 1023 octets
  assertJidError(`example.com/${'😀'.repeat(256)}`, 'resource', 'too-long');
});

test('Jid API: bare is the same instance when already bare, and has no resource', () => {
  const bare = parseJid('juliet@example.com');
  assert.equal(bare.bare, bare);
  assert.ok(bare.isBare);
  const full = parseJid('juliet@example.com/balcony');
  assert.ok(!full.isBare);
  assert.equal(full.bare, full.bare);
  assert.equal(full.bare.resource, '');
  assert.ok(full.bare.equals(bare));
  assert.equal(full.toBareString(), 'juliet@example.com');
  assert.equal(parseJid('example.com/x').toBareString(), 'example.com');
});

test('Jid API: instances are frozen and cannot be built with new', () => {
  const j = parseJid('juliet@example.com/balcony');
  assert.ok(Object.isFrozen(j));
  assert.throws(() => {
    (j as { local: string }).local = 'romeo';
  }, TypeError);
  assert.throws(
    () => new (Jid as unknown as new (...a: unknown[]) => Jid)(Symbol('x'), 'a', 'b', ''),
    TypeError,
  );
  assert.equal(j.toString(), j.toString());
  assert.equal(JSON.stringify({ j }), '{"j":"juliet@example.com/balcony"}');
});

test('Jid API: withResource prepares the new resource, and an empty one gives the bare JID', () => {
  const j = parseJid('Juliet@Example.com');
  const w = j.withResource('Balcony\u00a0Room');
  assert.equal(w.toString(), 'juliet@example.com/Balcony Room');
  assert.equal(w.withResource(''), w.bare);
  assert.equal(w.withResource('Balcony Room'), w);
  assert.throws(
    () => j.withResource('a\u0000'),
    (e: unknown) => e instanceof JidError && e.part === 'resource',
  );
});

test('jid(): builds, validates and normalises each part; undefined or empty parts are absent', () => {
  const j = jid('Juliet', 'EXAMPLE.com.', 'Balcony');
  assert.equal(j.toString(), 'juliet@example.com/Balcony');
  assert.ok(j.equals(parseJid('juliet@example.com/Balcony')));
  assert.equal(jid(undefined, 'example.com').toString(), 'example.com');
  assert.equal(jid('', 'example.com', '').toString(), 'example.com');
  assert.throws(
    () => jid('a', ''),
    (e: unknown) => e instanceof JidError && e.part === 'domain' && e.code === 'empty',
  );
  assert.throws(
    () => jid('a', 'example.com', '\u0007'),
    (e: unknown) => e instanceof JidError && e.part === 'resource',
  );
  assert.throws(
    () => jid(null as unknown as string, 'example.com'),
    (e: unknown) => e instanceof JidError && e.code === 'invalid-input',
  );
});

test('tryParseJid returns null for invalid input and a Jid otherwise', () => {
  assert.equal(tryParseJid('juliet@'), null);
  assert.equal(tryParseJid(42 as unknown as string), null);
  assert.equal(tryParseJid('juliet@example.com')?.local, 'juliet');
  assert.throws(
    () => parseJid(undefined as unknown as string),
    (e: unknown) => e instanceof JidError && e.part === 'jid' && e.code === 'invalid-input',
  );
});

test('parseJid keeps the input string as toString() when it is already normalised', () => {
  const input = 'juliet@example.com/balcony';
  assert.equal(parseJid(input).toString(), input);
  assert.equal(parseJid('Juliet@example.com/balcony').toString(), input);
});

test('parseJid caches recent results: the same input gives the same immutable instance', () => {
  const s = 'cache-check@example.com/r';
  assert.equal(parseJid(s), parseJid(s));
  assert.equal(tryParseJid('bad@'), null); // invalid input is not cached and still fails
  assert.equal(tryParseJid('bad@'), null);
});
