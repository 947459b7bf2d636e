import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { StreamParser, XmlError, xml, serialize, type Element } from '@natter/xml';
import { JidError, parseJid } from '@natter/jid';

// Every property is bounded in time (CI on a loaded machine): interrupted runs count as passed.
const RUN = { numRuns: 2000, interruptAfterTimeLimit: 3000, markInterruptAsFailure: false } as const;
const LIMITS = { maxStanzaBytes: 4096, maxDepth: 12, maxAttributes: 16 };
const HEADER = `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`;

interface Outcome {
  elements: string[];
  error: XmlError | undefined;
  ended: boolean;
  thrown: unknown;
}

function parse(chunks: (string | Uint8Array)[]): Outcome {
  const out: Outcome = { elements: [], error: undefined, ended: false, thrown: undefined };
  const p = new StreamParser(
    {
      streamStart() {},
      element: (el) => out.elements.push(el.toString()),
      streamEnd: () => (out.ended = true),
      error: (e) => {
        if (out.error) throw new Error('error reported twice');
        out.error = e;
      },
    },
    LIMITS,
  );
  try {
    for (const c of chunks) p.write(c);
  } catch (err) {
    out.thrown = err;
  }
  return out;
}

/** Splits a string at arbitrary points (also inside multi-byte characters, as bytes). */
function split(text: string, cuts: number[]): Uint8Array[] {
  const bytes = Buffer.from(text, 'utf8');
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let last = 0;
  for (const p of [...points, bytes.length]) {
    out.push(bytes.subarray(last, p));
    last = p;
  }
  return out;
}

const name = fc.stringMatching(/^[a-z][a-z0-9]{0,6}$/);
const text = fc.string({
  unit: fc.constantFrom('a', 'é', '<', '&', '>', '"', "'", ' ', '中', '😀', '\n'),
  maxLength: 20,
});
const element: fc.Arbitrary<Element> = fc.letrec((tie) => ({
  el: fc
    .tuple(
      name,
      fc.dictionary(name, text, { maxKeys: 4 }),
      fc.array(fc.oneof({ weight: 2, arbitrary: text }, { weight: 1, arbitrary: tie('el') }), {
        maxLength: 3,
      }),
      fc.nat(4),
    )
    .map(([n, attrs, children]) => xml(n, attrs, ...(children as (Element | string)[]))),
})).el as fc.Arbitrary<Element>;
const stanza = fc
  .tuple(
    fc.constantFrom('message', 'presence', 'iq'),
    fc.dictionary(name, text, { maxKeys: 3 }),
    fc.array(element, { maxLength: 2 }),
  )
  .map(([n, attrs, children]) => xml(n, attrs, ...children));

test('property: well-formed stanzas split at any byte parse to the same elements as in one piece', () => {
  fc.assert(
    fc.property(
      fc.array(stanza, { minLength: 1, maxLength: 4 }),
      fc.array(fc.nat(), { maxLength: 12 }),
      (stanzas, cuts) => {
        const doc = HEADER + stanzas.map((s) => serialize(s, 'jabber:client', true)).join('');
        const whole = parse([doc]);
        const pieces = parse(split(doc, cuts));
        assert.equal(pieces.thrown, undefined);
        assert.deepEqual(pieces.elements, whole.elements);
        assert.equal(pieces.error?.condition, whole.error?.condition);
      },
    ),
    RUN,
  );
});

test('property: arbitrary bytes never throw out of the parser; errors are reported once, with an RFC 6120 condition', () => {
  const conditions = new Set(['not-well-formed', 'restricted-xml', 'policy-violation', 'bad-format']);
  const fragments = fc.constantFrom(
    '<',
    '>',
    '</',
    '/>',
    '<!DOCTYPE x [',
    '<!ENTITY a "b">',
    '&a;',
    '&amp;',
    '&#0;',
    '&#x1F600;',
    '<?pi?>',
    '<!--',
    '-->',
    '<![CDATA[',
    ']]>',
    'xmlns=',
    "xmlns:p='u'",
    '<p:a>',
    '"',
    "'",
    '=',
    ' ',
    'stream:stream',
    '<a ',
    'b="c"',
    '\u0000',
    '\uFFFE',
    '\uD800',
  );
  fc.assert(
    fc.property(
      fc.array(fc.oneof(fragments, fc.string({ maxLength: 8 }), fc.uint8Array({ maxLength: 8 })), {
        maxLength: 40,
      }),
      (chunks) => {
        const r = parse([HEADER, ...chunks]);
        assert.equal(r.thrown, undefined, String(r.thrown));
        if (r.error) assert.ok(conditions.has(r.error.condition), r.error.condition);
      },
    ),
    RUN,
  );
});

test('property: limits hold whatever the input: no element deeper, wider or larger than allowed is ever delivered', () => {
  fc.assert(
    fc.property(fc.nat(40), fc.nat(40), fc.nat(8000), (depth, attrs, size) => {
      const open = '<m>' + '<a>'.repeat(depth);
      const close = '</a>'.repeat(depth) + '</m>';
      const a = Array.from({ length: attrs }, (_, i) => ` x${i}='1'`).join('');
      const doc = `${HEADER}${open}<b${a}>${'y'.repeat(size)}</b>${close}`;
      const r = parse([doc]);
      // Depth of <b>, counting the stream root as 1.
      const tooDeep = depth + 3 > LIMITS.maxDepth;
      const tooWide = attrs > LIMITS.maxAttributes;
      if (tooDeep || tooWide) {
        assert.equal(r.error?.condition, 'policy-violation');
        assert.equal(r.elements.length, 0);
      }
      if (r.elements.length > 0) assert.ok(Buffer.byteLength(r.elements[0]!) <= LIMITS.maxStanzaBytes + 200);
    }),
    RUN,
  );
});

test('property: the stanza size limit holds when a huge stanza arrives in small pieces', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 512 }), (piece) => {
      const chunks = [
        HEADER,
        '<message><body>',
        ...Array.from({ length: Math.ceil(20_000 / piece) }, () => 'z'.repeat(piece)),
      ];
      const r = parse(chunks);
      assert.equal(r.error?.condition, 'policy-violation');
      assert.equal(r.elements.length, 0);
    }),
    { ...RUN, numRuns: 200 },
  );
});

test('property: JID parsing of hostile strings only ever throws JidError, quickly, even for huge inputs', () => {
  const hostile = fc.oneof(
    fc.string({ maxLength: 3100 }),
    fc.string({
      unit: fc.constantFrom(
        '@',
        '/',
        '.',
        'a',
        '\u0301',
        '\u200d',
        'ß',
        '[',
        ']',
        ':',
        '%',
        '\uD800',
        '\u202E',
      ),
      maxLength: 3100,
    }),
    fc
      .nat(3)
      .map(
        (k) =>
          [
            'a'.repeat(1024 * (k + 1)) + '@b',
            'a@' + 'b.'.repeat(600),
            'a@b/' + 'r'.repeat(5000),
            '@'.repeat(2000),
          ][k]!,
      ),
  );
  fc.assert(
    fc.property(hostile, (s) => {
      const started = performance.now();
      try {
        parseJid(s);
      } catch (err) {
        assert.ok(err instanceof JidError, `${String(err)}`);
      }
      assert.ok(performance.now() - started < 200, 'parsing took too long');
    }),
    { ...RUN, numRuns: 1000 },
  );
});
