import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JidError, escapeLocal, parseJid, unescapeLocal } from './index.js';

test('XEP-0106 §3.2: each disallowed character and a backslash starting an escape are escaped', () => {
  assert.equal(escapeLocal('space cadet'), 'space\\20cadet');
  assert.equal(escapeLocal('call me "ishmael"'), 'call\\20me\\20\\22ishmael\\22');
  assert.equal(escapeLocal('at&t guy'), 'at\\26t\\20guy');
  assert.equal(escapeLocal("d'artagnan"), 'd\\27artagnan');
  assert.equal(escapeLocal('/.fanboy'), '\\2f.fanboy');
  assert.equal(escapeLocal('::foo::'), '\\3a\\3afoo\\3a\\3a');
  assert.equal(escapeLocal('<foo>'), '\\3cfoo\\3e');
  assert.equal(escapeLocal('user@host'), 'user\\40host');
  assert.equal(escapeLocal('c:\\net'), 'c\\3a\\net');
  assert.equal(escapeLocal('c:\\\\net'), 'c\\3a\\\\net');
  assert.equal(escapeLocal('c:\\cool stuff'), 'c\\3a\\cool\\20stuff');
  assert.equal(escapeLocal('c:\\5commas'), 'c\\3a\\5c5commas');
});

test('XEP-0106 §4.3: partial and unknown escape sequences are left alone', () => {
  for (const s of ['\\2plus\\2is\\4', 'foo\\bar', 'foob\\41r']) {
    assert.equal(escapeLocal(s), s);
    assert.equal(unescapeLocal(s), s);
  }
  assert.equal(unescapeLocal('a\\2F'), 'a\\2F'); // case is significant
});

test('XEP-0106 §3.3: unescaping reverses escaping', () => {
  assert.equal(unescapeLocal('space\\20cadet'), 'space cadet');
  assert.equal(unescapeLocal('c\\3a\\5c5commas'), 'c:\\5commas');
  assert.equal(unescapeLocal('treville\\40musketeers.lit'), 'treville@musketeers.lit');
});

test('XEP-0106 §4.1: a leading or trailing space cannot be escaped', () => {
  assert.throws(
    () => escapeLocal(' x'),
    (e: unknown) => e instanceof JidError && e.code === 'escape' && e.part === 'local',
  );
  assert.throws(() => escapeLocal('x '), JidError);
});

test('XEP-0106: an escaped localpart is a valid RFC 7622 localpart', () => {
  const local = escapeLocal("d'artagnan & co <x@y/z>");
  const j = parseJid(`${local}@musketeers.lit`);
  assert.equal(unescapeLocal(j.local), "d'artagnan & co <x@y/z>");
});
