import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JidError, parseJid, type JidErrorCode, type JidPart } from './index.js';

function rejects(input: string, part: JidPart, code: JidErrorCode, message?: RegExp): void {
  assert.throws(
    () => parseJid(input),
    (e: unknown) => {
      assert.ok(e instanceof JidError, String(e));
      assert.equal(e.part, part, `${JSON.stringify(input)}: ${e.message}`);
      assert.equal(e.code, code, `${JSON.stringify(input)}: ${e.message}`);
      if (message) assert.match(e.message, message);
      return true;
    },
  );
}

test('RFC 8265 §3.3.2: localpart width mapping turns fullwidth forms into their ASCII equivalents', () => {
  assert.equal(parseJid('ｊｕｌｉｅｔ@example.com').local, 'juliet');
  assert.equal(parseJid('ＪＵＬＩＥＴ@example.com').local, 'juliet');
  // halfwidth katakana + halfwidth voiced mark → fullwidth katakana, composed by NFC
  assert.equal(parseJid('\uff76\uff9e@example.com').local, '\u30ac');
  // fullwidth forms of forbidden characters are forbidden after mapping
  rejects('a\uff20b@example.com', 'local', 'forbidden-character', /'@'/);
});

test('RFC 8265 §3.3.2: localpart is NFC-normalised so composed and decomposed forms are equal', () => {
  const composed = parseJid('caf\u00e9@example.com');
  const decomposed = parseJid('cafe\u0301@example.com');
  assert.ok(composed.equals(decomposed));
  assert.equal(decomposed.local, 'caf\u00e9');
  assert.equal(parseJid('CAFE\u0301@example.com').local, 'caf\u00e9');
});

test('RFC 8264 §9 (IdentifierClass): localpart rejects spaces, controls, symbols, punctuation, compatibility and unassigned code points', () => {
  rejects('a\u00a0b@example.com', 'local', 'disallowed-character', /U\+00A0/);
  rejects('a\u0000b@example.com', 'local', 'disallowed-character', /control/);
  rejects('a\u0085b@example.com', 'local', 'disallowed-character', /control/);
  rejects('a\u00bfb@example.com', 'local', 'disallowed-character', /punctuation/);
  rejects('a\u20acb@example.com', 'local', 'disallowed-character', /symbol/);
  rejects('\ufb01x@example.com', 'local', 'disallowed-character', /compatibility/); // ﬁ ligature
  rejects('a\u0378@example.com', 'local', 'disallowed-character', /unassigned/);
  rejects('a\u00adb@example.com', 'local', 'disallowed-character', /ignorable/); // soft hyphen
  rejects('a\ue000@example.com', 'local', 'disallowed-character'); // private use
  rejects('a\ud800@example.com', 'local', 'disallowed-character', /surrogate/);
  rejects('\u1100\u1100@example.com', 'local', 'disallowed-character', /jamo/); // old Hangul jamo sequence
  rejects('a\u0640b@example.com', 'local', 'disallowed-character'); // RFC 5892 exception: ARABIC TATWEEL
  // ASCII punctuation other than the forbidden eight is allowed
  assert.equal(parseJid('a.b-c_d+e!#$%*=?^`{|}~@example.com').local, 'a.b-c_d+e!#$%*=?^`{|}~');
});

test('RFC 5892 Appendix A: contextual code points are accepted only in their context', () => {
  assert.equal(parseJid('l\u00b7l@example.com').local, 'l\u00b7l');
  rejects('a\u00b7b@example.com', 'local', 'context-rule', /U\+00B7/);
  assert.equal(parseJid('\u0915\u094d\u200d\u0937@example.com').local, '\u0915\u094d\u200d\u0937'); // ZWJ after virama
  rejects('a\u200db@example.com', 'local', 'context-rule');
  rejects('\u0661\u06f1@example.com', 'local', 'context-rule'); // mixed Arabic-Indic digit sets
  assert.equal(parseJid('\u30a2\u30fb\u30a4@example.com').local, '\u30a2\u30fb\u30a4');
});

test('RFC 8265 §3.3.2 / RFC 5893: a right-to-left localpart must satisfy the Bidi Rule', () => {
  assert.equal(parseJid('\u05e9\u05dc\u05d5\u05dd@example.com').local, '\u05e9\u05dc\u05d5\u05dd');
  assert.equal(parseJid('\u05e9\u05dc1@example.com').local, '\u05e9\u05dc1');
  rejects('abc\u05d0@example.com', 'local', 'bidi-rule');
  rejects('\u05d0abc@example.com', 'local', 'bidi-rule');
  rejects('\u05d0.@example.com', 'local', 'bidi-rule');
});

test('RFC 7622 §3.2: domainpart is lowercased, NFC-normalised and loses one trailing dot', () => {
  assert.equal(parseJid('Example.COM.').domain, 'example.com');
  assert.ok(parseJid('a@example.com.').equals(parseJid('a@example.com')));
  assert.equal(parseJid('B\u00dcCHER.example').domain, 'b\u00fccher.example');
  assert.equal(parseJid('bu\u0308cher.example').domain, 'b\u00fccher.example');
  assert.equal(parseJid('ｅｘａｍｐｌｅ．ｃｏｍ').domain, 'example.com');
  assert.equal(parseJid('xn--bcher-kva.example').domain, 'xn--bcher-kva.example');
  assert.equal(parseJid('_xmpp-server.example').domain, '_xmpp-server.example');
  rejects('.', 'domain', 'empty');
  rejects('a@example.com..', 'domain', 'empty-label');
  rejects('a@.example.com', 'domain', 'empty-label');
});

test('RFC 7622 §3.2: domain labels are at most 63 octets and contain no spaces, controls or symbols', () => {
  assert.equal(parseJid(`${'a'.repeat(63)}.example`).domain.length, 63 + 8);
  rejects(`${'a'.repeat(64)}.example`, 'domain', 'label-too-long');
  rejects(`${'\u00e9'.repeat(32)}.example`, 'domain', 'label-too-long'); // 64 octets
  rejects('exa mple.com', 'domain', 'disallowed-character', /space/);
  rejects('exa\tmple.com', 'domain', 'disallowed-character', /control/);
  rejects('exa\u00a0mple.com', 'domain', 'disallowed-character');
  rejects('example.com\u0000', 'domain', 'disallowed-character');
  rejects('exam*ple.com', 'domain', 'forbidden-character', /'\*'/);
  rejects('b\u00fccher\u2603.example', 'domain', 'disallowed-character', /symbol/);
});

test('RFC 7622 §3.2: IPv4 and bracketed IPv6 literals are accepted, malformed ones rejected', () => {
  assert.equal(parseJid('juliet@192.0.2.1/x').domain, '192.0.2.1');
  assert.equal(parseJid('juliet@[2001:DB8::1]/x').domain, '[2001:db8::1]');
  assert.equal(parseJid('[::ffff:192.0.2.1]').domain, '[::ffff:192.0.2.1]');
  assert.equal(parseJid('[1:2:3:4:5:6:7:8]').domain, '[1:2:3:4:5:6:7:8]');
  assert.equal(parseJid('[::]').domain, '[::]');
  for (const bad of [
    '[::1',
    '[]',
    '[1:2:3:4:5:6:7:8:9]',
    '[1::2::3]',
    '[12345::]',
    '[::g]',
    '[1:2:3:4:5:6:7]',
    '[192.0.2.1]',
    '[::1]x',
  ]) {
    rejects(bad, 'domain', 'invalid-ip-literal');
  }
  for (const bad of ['256.0.0.1', '1.2.3', '01.2.3.4', '1.2.3.4.5', '123']) {
    rejects(bad, 'domain', 'invalid-ip-literal');
  }
});

test('RFC 8265 §4.2.2 (OpaqueString): resourcepart maps non-ASCII spaces to U+0020, applies NFC and preserves case', () => {
  assert.equal(parseJid('example.com/a\u00a0B\u2003c').resource, 'a B c');
  assert.equal(parseJid('example.com/Cafe\u0301').resource, 'Caf\u00e9');
  assert.equal(parseJid('example.com/ＡＢ').resource, 'ＡＢ'); // no width mapping in OpaqueString
  assert.equal(parseJid('example.com/ ').resource, ' ');
  assert.equal(parseJid('example.com/♚ €').resource, '♚ €');
});

test('RFC 8264 §9 (FreeformClass): resourcepart rejects controls, unassigned, private-use and ignorable code points', () => {
  rejects('example.com/a\u0000', 'resource', 'disallowed-character', /control/);
  rejects('example.com/a\u007f', 'resource', 'disallowed-character', /control/);
  rejects('example.com/a\u0085', 'resource', 'disallowed-character', /control/);
  rejects('example.com/a\u0378', 'resource', 'disallowed-character', /unassigned/);
  rejects('example.com/a\ue000', 'resource', 'disallowed-character');
  rejects('example.com/a\ufeff', 'resource', 'disallowed-character', /ignorable/);
  rejects('example.com/a\udc00', 'resource', 'disallowed-character', /surrogate/);
});
