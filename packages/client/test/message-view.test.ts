// readMessage on stanzas as servers send them (parsed from XML text, as the client receives them).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseElement } from '@natter/xml';
import { readMessage, stanzaIdBy, xml } from '../src/index.node.js';

test('readMessage: body, ids, type, addresses, thread, XEP-0359 ids and XEP-0203 delay', () => {
  const el =
    parseElement(`<message xmlns="jabber:client" id="m1" type="chat" from="juliet@capulet.lit/balcony" to="romeo@montague.lit">
    <body>Wherefore art thou?</body><thread>t-1</thread><subject>s</subject>
    <origin-id xmlns="urn:xmpp:sid:0" id="o-1"/>
    <stanza-id xmlns="urn:xmpp:sid:0" by="romeo@montague.lit" id="s-1"/>
    <stanza-id xmlns="urn:xmpp:sid:0" by="room@muc.lit" id="s-2"/>
    <stanza-id xmlns="urn:xmpp:sid:0" id="no-by"/>
    <delay xmlns="urn:xmpp:delay" from="capulet.lit" stamp="2002-09-10T23:08:25.123Z"/>
  </message>`);
  const v = readMessage(el);
  assert.equal(v.element, el);
  assert.equal(v.id, 'm1');
  assert.equal(v.type, 'chat');
  assert.equal(v.from, 'juliet@capulet.lit/balcony');
  assert.equal(v.fromJid?.toBareString(), 'juliet@capulet.lit');
  assert.equal(v.fromJid?.resource, 'balcony');
  assert.equal(v.toJid?.toString(), 'romeo@montague.lit');
  assert.equal(v.body, 'Wherefore art thou?');
  assert.equal(v.thread, 't-1');
  assert.equal(v.subject, 's');
  assert.equal(v.originId, 'o-1');
  assert.deepEqual(v.stanzaIds, [
    { by: 'romeo@montague.lit', id: 's-1' },
    { by: 'room@muc.lit', id: 's-2' },
  ]);
  assert.equal(stanzaIdBy(v, 'room@muc.lit'), 's-2');
  assert.equal(stanzaIdBy(v, 'nobody@x'), undefined);
  assert.equal(v.delay?.stamp.toISOString(), '2002-09-10T23:08:25.123Z');
  assert.equal(v.delay?.from, 'capulet.lit');
});

test('readMessage: defaults and malformed parts', () => {
  const v = readMessage(
    parseElement(
      `<message xmlns="jabber:client" type="bogus" from="not a jid@@"><delay xmlns="urn:xmpp:delay" stamp="yesterday"/><x:body xmlns:x="urn:other">not the body</x:body></message>`,
    ),
  );
  assert.equal(v.type, 'normal'); // RFC 6121 §5.2.2
  assert.equal(v.from, 'not a jid@@');
  assert.equal(v.fromJid, undefined);
  assert.equal(v.to, undefined);
  assert.equal(v.body, undefined);
  assert.equal(v.delay, undefined);
  assert.deepEqual(v.stanzaIds, []);
  assert.equal(v.id, undefined);
  // a message built locally (no namespace yet) reads the same
  assert.equal(readMessage(xml('message', { to: 'a@b' }, xml('body', null, 'hi'))).body, 'hi');
});
