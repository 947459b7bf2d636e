// Profiling aid: parses a large chat stream with StreamParser only.
// node --cpu-prof --import tsx --conditions=source packages/xml/bench/parse-only.ts
import { StreamParser } from '../src/index.js';
const HEADER =
  "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>";
const msg = (i: number) =>
  `<message from='romeo@example.com/orchard' to='juliet@example.com' type='chat' id='m${i}'><body>Art thou not Romeo, and a Montague? &amp; more ${i}</body><active xmlns='http://jabber.org/protocol/chatstates'/><request xmlns='urn:xmpp:receipts'/></message>`;
const payload = Buffer.from(HEADER + Array.from({ length: 50_000 }, (_, i) => msg(i)).join(''));
const chunks: Buffer[] = [];
for (let o = 0; o < payload.length; o += 16384) chunks.push(payload.subarray(o, o + 16384));
let n = 0;
const t0 = performance.now();
for (let r = 0; r < 10; r++) {
  const p = new StreamParser({
    streamStart() {},
    element: () => n++,
    streamEnd() {},
    error: (e) => {
      throw e;
    },
  });
  for (const c of chunks) p.write(c);
}
const ms = performance.now() - t0;
console.log(`${n} stanzas in ${ms.toFixed(0)} ms: ${Math.round(n / (ms / 1000))} stanzas/s`);
