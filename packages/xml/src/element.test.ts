import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { xml, serialize } from './element.js';
import { parseElement } from './parse-element.js';

test('the builder inherits namespaces and drops undefined attributes', () => {
  const iq = xml(
    'iq',
    { type: 'set', id: 'a', to: undefined },
    xml('query', { xmlns: 'jabber:iq:roster' }, xml('item', { jid: 'x@y' }, xml('group', null, 'Friends'))),
  );
  const item = iq.getChild('query', 'jabber:iq:roster')?.getChild('item', 'jabber:iq:roster');
  assert.equal(item?.getChild('group', 'jabber:iq:roster')?.text(), 'Friends');
  assert.equal(
    serialize(iq, 'jabber:client'),
    '<iq type="set" id="a"><query xmlns="jabber:iq:roster"><item jid="x@y"><group>Friends</group></item></query></iq>',
  );
});

test('text and attributes are escaped and survive a round trip', () => {
  const nasty = `<&>"'\n\t]]>`;
  const el = xml('message', { xmlns: 'jabber:client', to: nasty }, xml('body', null, nasty));
  const s = serialize(el, '');
  assert.ok(!s.includes('<&'));
  const back = parseElement(s);
  assert.equal(back.attr('to'), nasty);
  assert.equal(back.getChildText('body'), nasty);
});

test('a stanza written to a standalone frame carries jabber:client; inside forwarded it keeps its namespace', () => {
  const msg = xml('message', { to: 'a@b' }, xml('body', null, 'hi'));
  assert.equal(serialize(msg, ''), '<message xmlns="jabber:client" to="a@b"><body>hi</body></message>');
  const parsed = parseElement('<message xmlns="jabber:client" to="a@b"/>');
  const fwd = xml('forwarded', { xmlns: 'urn:xmpp:forward:0' }, parsed);
  assert.equal(
    serialize(fwd, 'jabber:client'),
    '<forwarded xmlns="urn:xmpp:forward:0"><message xmlns="jabber:client" to="a@b"/></forwarded>',
  );
  // a client stanza written to a component stream takes the stream's namespace
  assert.equal(serialize(parsed, 'jabber:component:accept'), '<message to="a@b"/>');
});

test("a stanza's children in its namespace move with it to another stream namespace; forwarded ones do not", () => {
  const parsed = parseElement(
    '<message xmlns="jabber:client" to="a@b"><body>hi</body><forwarded xmlns="urn:xmpp:forward:0">' +
      '<message xmlns="jabber:client" to="c@d"><body>inner</body></message></forwarded></message>',
  );
  assert.equal(
    serialize(parsed, 'jabber:component:accept'),
    '<message to="a@b"><body>hi</body><forwarded xmlns="urn:xmpp:forward:0">' +
      '<message xmlns="jabber:client" to="c@d"><body>inner</body></message></forwarded></message>',
  );
});

test('stream-namespace elements are written with the stream prefix', () => {
  const f = xml(
    'features',
    { xmlns: 'http://etherx.jabber.org/streams' },
    xml('bind', { xmlns: 'urn:ietf:params:xml:ns:xmpp-bind' }),
  );
  assert.equal(
    serialize(f, 'jabber:client', true),
    '<stream:features><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/></stream:features>',
  );
  assert.match(serialize(f, ''), /^<stream:features xmlns:stream="http:\/\/etherx.jabber.org\/streams">/);
});

test('clone is deep', () => {
  const a = xml('a', { xmlns: 'x' }, xml('b', { k: '1' }));
  const b = a.clone();
  b.getChild('b')!.setAttr('k', '2');
  assert.equal(a.getChild('b')!.attr('k'), '1');
});

describe('serialize: XEP-0220 dialback elements on a server stream', () => {
  test('use the db: prefix the stream header declares, children in the stream namespace', () => {
    const el = xml(
      'result',
      { xmlns: 'jabber:server:dialback', from: 'a.test', to: 'b.test', type: 'error' },
      xml(
        'error',
        { xmlns: 'jabber:server', type: 'cancel' },
        xml('item-not-found', { xmlns: 'urn:ietf:params:xml:ns:xmpp-stanzas' }),
      ),
    );
    assert.equal(
      serialize(el, 'jabber:server', true),
      '<db:result from="a.test" to="b.test" type="error"><error type="cancel">' +
        '<item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></db:result>',
    );
  });

  test('outside a server stream they keep a default namespace declaration', () => {
    const el = xml('verify', { xmlns: 'jabber:server:dialback', id: 'x' }, 'key');
    assert.equal(serialize(el, ''), '<verify xmlns="jabber:server:dialback" id="x">key</verify>');
    assert.equal(
      serialize(el, 'jabber:client', true),
      '<verify xmlns="jabber:server:dialback" id="x">key</verify>',
    );
  });
});
