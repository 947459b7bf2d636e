import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StreamParser, type XmlError } from './stream-parser.js';
import type { Element } from './element.js';

function collect(limits = {}) {
  const out = {
    header: null as null | { name: string; xmlns: string; attrs: Record<string, string> },
    elements: [] as Element[],
    ended: false,
    error: null as XmlError | null,
  };
  const parser = new StreamParser(
    {
      streamStart: (h) => (out.header = h),
      element: (el) => out.elements.push(el),
      streamEnd: () => (out.ended = true),
      error: (e) => (out.error = e),
    },
    limits,
  );
  return { parser, out };
}

const STREAM =
  "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>";

test('RFC 6120 §4.2: the stream header is reported with its resolved namespace and attributes', () => {
  const { parser, out } = collect();
  parser.write(STREAM);
  assert.deepEqual(out.header, {
    name: 'stream',
    xmlns: 'http://etherx.jabber.org/streams',
    attrs: { to: 'example.com', version: '1.0' },
    contentNs: 'jabber:client',
  });
});

test('stanzas split at every byte, including inside multi-byte UTF-8 characters, parse identically', () => {
  const input = Buffer.from(
    STREAM +
      "<message to='jülia@example.com'><body>héllo 👋 &amp; &lt;ok&gt;</body></message></stream:stream>",
  );
  for (let cut = 1; cut < input.length; cut++) {
    const { parser, out } = collect();
    parser.write(input.subarray(0, cut));
    parser.write(input.subarray(cut));
    assert.equal(out.error, null, `cut at ${cut}`);
    assert.equal(out.elements.length, 1);
    const msg = out.elements[0]!;
    assert.equal(msg.xmlns, 'jabber:client');
    assert.equal(msg.attr('to'), 'jülia@example.com');
    assert.equal(msg.getChildText('body'), 'héllo 👋 & <ok>');
    assert.equal(out.ended, true);
  }
});

test('namespaces: prefixed and default declarations resolve on children', () => {
  const { parser, out } = collect();
  parser.write(
    STREAM + "<iq type='get' id='1'><q:query xmlns:q='jabber:iq:roster'><q:item jid='a@b'/></q:query></iq>",
  );
  const iq = out.elements[0]!;
  const q = iq.getChild('query', 'jabber:iq:roster');
  assert.ok(q);
  assert.equal(q.getChild('item', 'jabber:iq:roster')?.attr('jid'), 'a@b');
  assert.equal(q.toString(), '<query xmlns="jabber:iq:roster"><item jid="a@b"/></query>');
});

test('whitespace keepalives between stanzas are tolerated', () => {
  const { parser, out } = collect();
  parser.write(STREAM);
  for (let i = 0; i < 1000; i++) parser.write(' ');
  parser.write('<presence/>\n \n');
  assert.equal(out.error, null);
  assert.equal(out.elements.length, 1);
});

for (const [what, input] of [
  ['a comment', '<!-- hi -->'],
  ['a processing instruction', '<?foo bar?>'],
] as const) {
  test(`RFC 6120 §11.1: ${what} is refused with restricted-xml`, () => {
    const { parser, out } = collect();
    parser.write(STREAM + input);
    assert.equal(out.error?.condition, 'restricted-xml');
  });
}

test('RFC 6120 §11.1: a DTD with entity declarations (billion laughs) is refused', () => {
  const { parser, out } = collect();
  parser.write(
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><stream:stream>',
  );
  assert.equal(out.error?.condition, 'restricted-xml');
  assert.equal(out.header, null);
});

test('undefined entity references and mismatched tags are not-well-formed', () => {
  for (const bad of ['<message>&lol;</message>', '<message></presence>', '<a b="1" b="2"/>']) {
    const { parser, out } = collect();
    parser.write(STREAM + bad);
    assert.equal(out.error?.condition, 'not-well-formed', bad);
  }
});

test('invalid UTF-8 is not-well-formed', () => {
  const { parser, out } = collect();
  parser.write(STREAM);
  parser.write(Uint8Array.from([0x3c, 0x61, 0x3e, 0xff, 0xfe]));
  assert.equal(out.error?.condition, 'not-well-formed');
});

test('input fed one byte at a time: a leading byte-order mark is dropped, 4-byte characters survive', () => {
  const input = Buffer.from(
    '\ufeff' + STREAM + '<message><body>𝄞 é 中 👋</body></message><presence/></stream:stream>',
  );
  const { parser, out } = collect();
  for (let i = 0; i < input.length; i++) parser.write(input.subarray(i, i + 1));
  assert.equal(out.error, null);
  assert.equal(out.header?.name, 'stream');
  assert.equal(out.elements.length, 2);
  assert.equal(out.elements[0]!.getChildText('body'), '𝄞 é 中 👋');
  assert.equal(out.ended, true);
});

test('a byte-order mark after the start of the input is a character like any other', () => {
  const { parser, out } = collect();
  parser.write(Buffer.from(STREAM));
  parser.write(Buffer.from('<message><body>\ufeffx</body></message>'));
  assert.equal(out.error, null);
  assert.equal(out.elements[0]!.getChildText('body'), '\ufeffx');
});

test('invalid UTF-8 split over two reads is not-well-formed', () => {
  for (const [first, second] of [
    [[0x3c, 0x61, 0x3e, 0xe2, 0x82], [0x41]], // a 3-byte sequence cut short by ASCII
    [
      [0x3c, 0x61, 0x3e, 0xf0],
      [0x9f, 0x91, 0xc3],
    ], // a 4-byte sequence with a lead byte inside
    [[0x3c, 0x61, 0x3e, 0xc0], [0x80]], // overlong
  ]) {
    const { parser, out } = collect();
    parser.write(STREAM);
    parser.write(Uint8Array.from(first!));
    parser.write(Uint8Array.from(second!));
    assert.equal(out.error?.condition, 'not-well-formed', JSON.stringify([first, second]));
  }
});

test('limits: nesting depth, attribute count and stanza size give policy-violation', () => {
  {
    const { parser, out } = collect({ maxDepth: 10 });
    parser.write(STREAM + '<a>'.repeat(20));
    assert.equal(out.error?.condition, 'policy-violation');
  }
  {
    const { parser, out } = collect({ maxAttributes: 5 });
    parser.write(STREAM + '<a ' + Array.from({ length: 10 }, (_, i) => `a${i}="x"`).join(' ') + '/>');
    assert.equal(out.error?.condition, 'policy-violation');
  }
  {
    const { parser, out } = collect({ maxStanzaBytes: 10_000 });
    parser.write(STREAM + '<message><body>');
    for (let i = 0; i < 100 && !out.error; i++) parser.write('x'.repeat(1000));
    assert.equal(out.error?.condition, 'policy-violation');
  }
});

test('many small stanzas in one chunk do not add up to the stanza size limit', () => {
  const { parser, out } = collect({ maxStanzaBytes: 1000 });
  parser.write(STREAM);
  for (let i = 0; i < 50; i++) parser.write('<presence/>'.repeat(50));
  assert.equal(out.error, null);
  assert.equal(out.elements.length, 2500);
});

test('nothing is accepted after an error', () => {
  const { parser, out } = collect();
  parser.write(STREAM + '<a></b>');
  parser.write('<presence/>');
  assert.equal(out.elements.length, 0);
  assert.equal(out.error?.condition, 'not-well-formed');
});

test('XML 1.0 §2.11 / §3.3.3: literal line ends are normalised (CRLF and CR to LF, in attributes to one space); a &#13; reference stays a CR and is written back as one', () => {
  const { parser, out } = collect();
  parser.write(STREAM);
  parser.write("<message a='1\t2\n3\r\n4'><body>x\r\ny\rz&#13;w</body></message>");
  const [m] = out.elements;
  assert.ok(m, String(out.error));
  assert.equal(m.attrs.a, '1 2 3 4');
  assert.equal(m.getChildText('body'), 'x\ny\nz\rw');
  // Serialised and parsed again, the CR survives.
  const again = collect();
  again.parser.write(STREAM);
  again.parser.write(m.toString());
  assert.equal(again.out.elements[0]?.getChildText('body'), 'x\ny\nz\rw');
});

test('RFC 6120 §13.12: the stanza size limit counts markup at its shortest, so a stanza of many small elements under the limit passes', () => {
  const { parser, out } = collect({ maxStanzaBytes: 64 * 1024 });
  parser.write(STREAM);
  const children = '<a/>'.repeat(12_000); // 48,000 bytes
  parser.write(`<message>${children}</message>`);
  assert.equal(out.error, null);
  assert.equal(out.elements[0]?.children.length, 12_000);
  const over = collect({ maxStanzaBytes: 64 * 1024 });
  over.parser.write(STREAM);
  over.parser.write(`<message>${'<a/>'.repeat(20_000)}</message>`); // 80,000 bytes
  assert.equal(over.out.error?.condition, 'policy-violation');
});

test('RFC 6120 §4.9.3.1: a second stream header inside the stream is bad-format at its start tag', () => {
  const { parser, out } = collect();
  parser.write(STREAM);
  parser.write("<message><body>before</body></message><stream:stream to='example.com' version='1.0'>");
  assert.equal(out.elements.length, 1);
  assert.equal(out.error?.condition, 'bad-format');
});
