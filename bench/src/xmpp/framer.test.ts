import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Framer, attr, childText, elementName } from './framer.js';

function collect(): { f: Framer; out: string[]; opened: string[]; closed: number[] } {
  const out: string[] = [];
  const opened: string[] = [];
  const closed: number[] = [];
  const f = new Framer({
    streamOpen: (h) => opened.push(h),
    element: (x) => out.push(x),
    streamClose: () => closed.push(1),
  });
  return { f, out, opened, closed };
}

test('RFC 6120 §4.2: first-level children of the stream are framed whole, whatever the chunking', () => {
  const doc =
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' id='x'>" +
    "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>" +
    "<message to='a@b' type='chat'><body>x &lt; y é 😀</body><message/></message>  <presence from='a&apos;b'/></stream:stream>";
  for (const size of [1, 2, 3, 7, 50, doc.length]) {
    const { f, out, opened, closed } = collect();
    for (let i = 0; i < doc.length; i += size) f.push(doc.slice(i, i + size));
    assert.equal(opened.length, 1);
    assert.deepEqual(out.map(elementName), ['stream:features', 'message', 'presence']);
    assert.equal(out[1], "<message to='a@b' type='chat'><body>x &lt; y é 😀</body><message/></message>");
    assert.equal(closed.length, 1);
  }
});

test("XML 1.0 §3.1: a '>' inside a quoted attribute value does not end the tag", () => {
  const { f, out } = collect();
  f.push(`<stream:stream><iq id="a>b" type='result'/><iq id='c'/>`);
  assert.deepEqual(out, [`<iq id="a>b" type='result'/>`, "<iq id='c'/>"]);
  assert.equal(attr(out[0]!, 'id'), 'a>b');
  assert.equal(attr(out[0]!, 'type'), 'result');
});

test('attribute and child text helpers read the first tag only', () => {
  const x = "<message from='u1@d/r' xml:lang='en' id='m1'><body>hello</body><thread>t</thread></message>";
  assert.equal(attr(x, 'id'), 'm1');
  assert.equal(attr(x, 'lang'), undefined);
  assert.equal(attr(x, 'to'), undefined);
  assert.equal(childText(x, 'body'), 'hello');
  assert.equal(childText(x, 'thread'), 't');
  assert.equal(childText(x, 'subject'), undefined);
});
