// Compares candidate XML parsers for XMPP streams on throughput and strictness.
// Run: node --import tsx --conditions=source packages/xml/bench/parser-compare.ts
// Results are recorded in docs/decisions/0002-xml-parser.md.
import { SaxesParser } from 'saxes';
// @ts-expect-error ltx ships no types for its low-level parser
import LtxParser from 'ltx/lib/parsers/ltx.js';
import { StreamParser } from '../src/index.js';

const HEADER =
  "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>";
function message(i: number): string {
  return (
    `<message from='romeo@example.com/orchard' to='juliet@example.com' type='chat' id='m${i}'>` +
    `<body>Art thou not Romeo, and a Montague? &amp; more — ünïcödé ${i}</body>` +
    `<active xmlns='http://jabber.org/protocol/chatstates'/><request xmlns='urn:xmpp:receipts'/></message>`
  );
}
const COUNT = 50_000;
const payload = Buffer.from(HEADER + Array.from({ length: COUNT }, (_, i) => message(i)).join(''));
const chunks: Buffer[] = [];
for (let o = 0; o < payload.length; o += 16 * 1024) chunks.push(payload.subarray(o, o + 16 * 1024));
const textChunks = chunks.map((c) => c.toString('latin1')); // for the string-based candidates, same sizes

interface Candidate {
  name: string;
  run(): number; // returns stanza count
  accepts(input: string): boolean;
}

const candidates: Candidate[] = [
  {
    name: 'natter StreamParser (own tokenizer + element model + limits)',
    run() {
      let n = 0;
      const p = new StreamParser({
        streamStart() {},
        element: () => n++,
        streamEnd() {},
        error: (e) => {
          throw e;
        },
      });
      for (const c of chunks) p.write(c);
      return n;
    },
    accepts(input) {
      let ok = true;
      const p = new StreamParser({
        streamStart() {},
        element() {},
        streamEnd() {},
        error: () => (ok = false),
      });
      p.write(HEADER + input);
      return ok;
    },
  },
  {
    name: 'saxes alone (xmlns, tokens only)',
    run() {
      let n = 0;
      let depth = 0;
      const p = new SaxesParser({ xmlns: true, position: false });
      p.on('opentag', () => depth++);
      p.on('closetag', () => {
        if (--depth === 1) n++;
      });
      const dec = new TextDecoder();
      for (const c of chunks) p.write(dec.decode(c, { stream: true }));
      return n;
    },
    accepts(input) {
      let ok = true;
      const p = new SaxesParser({ xmlns: true, position: false });
      p.on('error', () => (ok = false));
      p.on('doctype', () => (ok = false));
      p.on('comment', () => (ok = false));
      p.on('processinginstruction', () => (ok = false));
      p.write(HEADER + input);
      return ok;
    },
  },
  {
    name: "ltx's parser (xmpp.js; tokens only)",
    run() {
      let n = 0;
      let depth = 0;
      const p = new LtxParser();
      p.on('startElement', () => depth++);
      p.on('endElement', () => {
        if (--depth === 1) n++;
      });
      const dec = new TextDecoder();
      for (const c of chunks) p.write(dec.decode(c, { stream: true }));
      return n;
    },
    accepts(input) {
      let ok = true;
      const p = new LtxParser();
      p.on('error', () => (ok = false));
      try {
        p.write(HEADER + input);
      } catch {
        ok = false;
      }
      return ok;
    },
  },
];

const BAD: [string, string][] = [
  ['comment', '<!-- x -->'],
  ['processing instruction', '<?php echo 1; ?>'],
  ['DTD / entity declaration', '<!DOCTYPE x [<!ENTITY a "b">]>'],
  ['undefined entity', '<message>&lol;</message>'],
  ['mismatched end tag', '<message><body></message>'],
  ['duplicate attribute', "<message a='1' a='2'/>"],
  ['unquoted attribute', '<message a=1/>'],
  ['illegal character U+0001', '<message>\u0001</message>'],
  ['unbound prefix', '<foo:bar/>'],
  ['< in attribute value', "<message a='<'/>"],
];

void textChunks;
console.log(
  `input: ${COUNT} chat messages, ${(payload.length / 1e6).toFixed(1)} MB in 16 KiB chunks; median of 5 runs\n`,
);
console.log('| parser | MB/s | stanzas/s | bad inputs refused |');
console.log('|---|---:|---:|---:|');
for (const c of candidates) {
  c.run(); // warm-up
  const times: number[] = [];
  let n = 0;
  for (let i = 0; i < 5; i++) {
    const t0 = process.hrtime.bigint();
    n = c.run();
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  if (n !== COUNT) throw new Error(`${c.name} counted ${n} stanzas, expected ${COUNT}`);
  times.sort((a, b) => a - b);
  const t = times[2]!;
  const refused = BAD.filter(([, input]) => !c.accepts(input));
  console.log(
    `| ${c.name} | ${(payload.length / 1e6 / t).toFixed(1)} | ${Math.round(COUNT / t).toLocaleString('en')} | ${refused.length}/${BAD.length} |`,
  );
}
console.log('\nbad inputs: ' + BAD.map(([n]) => n).join('; '));
for (const c of candidates) {
  const missed = BAD.filter(([, input]) => c.accepts(input)).map(([n]) => n);
  if (missed.length) console.log(`${c.name} accepts: ${missed.join('; ')}`);
}
