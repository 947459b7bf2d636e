import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml, parseElement, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import { TestClient } from '../../../test/support/test-client.js';
import { isEligible } from './eligibility.js';

const PW = 'carbon-copy-pw';

const chat = (to: string, body: string, ...extra: Element[]) =>
  xml('message', { to, type: 'chat', id: `m-${body}` }, xml('body', null, body), ...extra);
const isMessage = (body: string) => (e: Element) =>
  e.name === 'message' && (e.getChildText('body') === body || carbonBody(e) === body);
function carbon(e: Element): { kind: string; inner: Element } | undefined {
  const wrapper = e.getChild('sent', NS.carbons) ?? e.getChild('received', NS.carbons);
  const inner = wrapper?.getChild('forwarded', NS.forward)?.getChild('message', NS.client);
  return wrapper && inner ? { kind: wrapper.name, inner } : undefined;
}
function carbonBody(e: Element): string | undefined {
  return carbon(e)?.inner.getChildText('body');
}

async function enable(c: TestClient, on = true): Promise<void> {
  const res = await c.iq(xml('iq', { type: 'set' }, xml(on ? 'enable' : 'disable', { xmlns: NS.carbons })));
  assert.equal(res.attrs.type, 'result', res.toString());
}

describe('message carbons (XEP-0280)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ modules: { ping: { idleMs: 0 } } });
    for (const u of ['romeo', 'juliet']) await server.addUser(u, PW);
  });
  after(() => server.destroy());

  const login = (user: string, resource: string) =>
    TestClient.login(server, user, PW, { resource, presence: true });

  test('XEP-0280 §3: the server advertises urn:xmpp:carbons:2', async () => {
    const c = await login('romeo', 'disco');
    const res = await c.iq(
      xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: NS.discoInfo })),
    );
    const features = res
      .getChild('query', NS.discoInfo)!
      .getChildren('feature')
      .map((f) => f.attrs.var);
    assert.ok(features.includes(NS.carbons));
    await c.close();
  });

  test('XEP-0280 §4/§5: enable and disable answer with a result, repeatedly (§10.1); not for another account', async () => {
    const c = await login('romeo', 'toggle');
    await enable(c);
    await enable(c); // §10.1: a second enable is not an error
    await enable(c, false);
    await enable(c, false);
    const res = await c.iq(
      xml('iq', { type: 'set', to: 'juliet@localhost' }, xml('enable', { xmlns: NS.carbons })),
    );
    assert.equal(res.attrs.type, 'error');
    assert.ok(res.getChild('error')?.getChild('not-allowed', NS.stanzas));
    await c.close();
  });

  test('XEP-0280 §8: a message sent from one resource is copied to the other carbons-enabled resources as <sent/>', async () => {
    const a = await login('romeo', 'a');
    const b = await login('romeo', 'b');
    const juliet = await login('juliet', 'balcony');
    await enable(a);
    await enable(b);
    a.send(chat('juliet@localhost/balcony', 'sent-1'));
    const original = await juliet.receive(isMessage('sent-1'));
    assert.equal(original.getChild('sent', NS.carbons), undefined);
    const copy = await b.receive(isMessage('sent-1'));
    assert.equal(copy.attrs.from, 'romeo@localhost');
    assert.equal(copy.attrs.to, 'romeo@localhost/b');
    assert.equal(copy.attrs.type, 'chat');
    const c = carbon(copy)!;
    assert.equal(c.kind, 'sent');
    assert.equal(c.inner.attrs.from, 'romeo@localhost/a');
    assert.equal(c.inner.attrs.to, 'juliet@localhost/balcony');
    await a.nothing(isMessage('sent-1'), 200); // §8: not to the sending resource
    await Promise.all([a.close(), b.close(), juliet.close()]);
  });

  test('XEP-0280 §7: a message to a full JID is copied as <received/> to the other enabled resources', async () => {
    const a = await login('romeo', 'a');
    const b = await login('romeo', 'b');
    const juliet = await login('juliet', 'balcony');
    await enable(a);
    await enable(b);
    juliet.send(chat('romeo@localhost/a', 'recv-1'));
    const original = await a.receive(isMessage('recv-1'));
    assert.equal(carbon(original), undefined);
    const copy = await b.receive(isMessage('recv-1'));
    const c = carbon(copy)!;
    assert.equal(c.kind, 'received');
    assert.equal(copy.attrs.from, 'romeo@localhost');
    assert.equal(copy.attrs.to, 'romeo@localhost/b');
    assert.equal(c.inner.attrs.from, 'juliet@localhost/balcony');
    assert.equal(c.inner.attrs.to, 'romeo@localhost/a');
    await a.nothing(isMessage('recv-1'), 200); // §7: no copy to the resource that got the original
    await Promise.all([a.close(), b.close(), juliet.close()]);
  });

  test('XEP-0280 §7: a message to the bare JID is copied to enabled resources the RFC 6121 rules did not pick', async () => {
    const a = await login('romeo', 'a');
    const b = await login('romeo', 'b');
    const juliet = await login('juliet', 'balcony');
    a.send(xml('presence', null, xml('priority', null, '5')));
    await enable(a);
    await enable(b);
    juliet.send(chat('romeo@localhost', 'recv-bare'));
    const original = await a.receive(isMessage('recv-bare'));
    assert.equal(carbon(original), undefined);
    const copy = await b.receive(isMessage('recv-bare'));
    assert.equal(carbon(copy)?.kind, 'received');
    await Promise.all([a.close(), b.close(), juliet.close()]);
  });

  test('XEP-0280 §7: resources that did not enable carbons get no copies', async () => {
    const a = await login('romeo', 'a');
    const plain = await login('romeo', 'plain');
    const juliet = await login('juliet', 'balcony');
    await enable(a);
    a.send(chat('juliet@localhost/balcony', 'not-enabled-out'));
    juliet.send(chat('romeo@localhost/a', 'not-enabled-in'));
    await juliet.receive(isMessage('not-enabled-out'));
    await a.receive(isMessage('not-enabled-in'));
    await plain.nothing('message', 300);
    await Promise.all([a.close(), plain.close(), juliet.close()]);
  });

  test('XEP-0280 §5: after disabling, a resource gets no more copies', async () => {
    const a = await login('romeo', 'a');
    const b = await login('romeo', 'b');
    await enable(a);
    await enable(b);
    await enable(b, false);
    a.send(chat('juliet@localhost', 'after-disable'));
    await b.nothing('message', 300);
    await Promise.all([a.close(), b.close()]);
  });

  test('XEP-0280 §9 / XEP-0334: <private/> with <no-copy/> is neither copied when sent nor when received', async () => {
    const a = await login('romeo', 'a');
    const b = await login('romeo', 'b');
    const juliet = await login('juliet', 'balcony');
    await enable(a);
    await enable(b);
    const priv = () => [xml('private', { xmlns: NS.carbons }), xml('no-copy', { xmlns: NS.hints })];
    a.send(chat('juliet@localhost/balcony', 'private-out', ...priv()));
    juliet.send(chat('romeo@localhost/a', 'private-in', ...priv()));
    juliet.send(chat('romeo@localhost/a', 'nocopy-in', xml('no-copy', { xmlns: NS.hints })));
    await juliet.receive(isMessage('private-out'));
    const got = await a.receive(isMessage('private-in'));
    // 1.0 no longer asks the receiving server to strip <private/> (stripPrivate option, off by default).
    assert.ok(got.getChild('private', NS.carbons));
    await a.receive(isMessage('nocopy-in'));
    await b.nothing('message', 300);
    await Promise.all([a.close(), b.close(), juliet.close()]);
  });

  test('XEP-0280 §6: groupchat messages and bodiless normal messages are not copied; chat states are', async () => {
    const a = await login('romeo', 'a');
    const b = await login('romeo', 'b');
    const juliet = await login('juliet', 'balcony');
    await enable(a);
    await enable(b);
    juliet.send(xml('message', { to: 'romeo@localhost/a', type: 'groupchat' }, xml('body', null, 'gc')));
    juliet.send(xml('message', { to: 'romeo@localhost/a' }, xml('x', { xmlns: 'urn:example:payload' })));
    juliet.send(
      xml(
        'message',
        { to: 'romeo@localhost/a', type: 'chat', id: 'cs' },
        xml('composing', { xmlns: NS.chatStates }),
      ),
    );
    const copy = await b.receive((e) => e.name === 'message');
    assert.equal(carbon(copy)?.inner.attrs.id, 'cs');
    await b.nothing('message', 300);
    await Promise.all([a.close(), b.close(), juliet.close()]);
  });

  test('XEP-0313 §2.4: with MAM, copies carry the account archive <stanza-id/> inside the forwarded message', async () => {
    const a = await login('romeo', 'a');
    const b = await login('romeo', 'b');
    const juliet = await login('juliet', 'balcony');
    await enable(a);
    await enable(b);
    a.send(chat('juliet@localhost/balcony', 'sid-out'));
    const sent = carbon(await b.receive(isMessage('sid-out')))!.inner;
    assert.equal(sent.getChild('stanza-id', NS.sid)?.attrs.by, 'romeo@localhost');
    const toJuliet = await juliet.receive(isMessage('sid-out'));
    const jsid = toJuliet.getChildren('stanza-id', NS.sid);
    assert.deepEqual(
      jsid.map((s) => s.attrs.by),
      ['juliet@localhost'],
    ); // not romeo's id: §2.4
    juliet.send(chat('romeo@localhost/a', 'sid-in'));
    const direct = await a.receive(isMessage('sid-in'));
    const received = carbon(await b.receive(isMessage('sid-in')))!.inner;
    const id = direct.getChild('stanza-id', NS.sid)?.attrs.id;
    assert.ok(id);
    assert.equal(received.getChild('stanza-id', NS.sid)?.attrs.id, id);
    await Promise.all([a.close(), b.close(), juliet.close()]);
  });
});

describe('message carbons eligibility (XEP-0280 §6)', () => {
  const m = (s: string) => parseElement(s);
  test('XEP-0280 §6: chat is eligible; normal only with a body or IM payload; error and headline never', () => {
    assert.ok(isEligible(m(`<message xmlns='jabber:client' type='chat'/>`), 'sent'));
    assert.ok(isEligible(m(`<message xmlns='jabber:client'><body>x</body></message>`), 'received'));
    assert.ok(
      !isEligible(m(`<message xmlns='jabber:client'><x xmlns='urn:example'/></message>`), 'received'),
    );
    assert.ok(
      isEligible(
        m(`<message xmlns='jabber:client'><received xmlns='urn:xmpp:receipts' id='1'/></message>`),
        'received',
      ),
    );
    assert.ok(
      !isEligible(m(`<message xmlns='jabber:client' type='error'><body>x</body></message>`), 'received'),
    );
    assert.ok(
      !isEligible(m(`<message xmlns='jabber:client' type='headline'><body>x</body></message>`), 'received'),
    );
  });
  test('XEP-0280 §6: carbons of carbons are never made', () => {
    const wrapped = `<message xmlns='jabber:client' type='chat'><sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'/></sent></message>`;
    assert.ok(!isEligible(m(wrapped), 'received'));
  });
  test('XEP-0280 §6 MUC rules: groupchat no; PM from an occupant no; PM to an occupant and invitations yes', () => {
    const x = `<x xmlns='http://jabber.org/protocol/muc#user'/>`;
    assert.ok(
      !isEligible(m(`<message xmlns='jabber:client' type='groupchat'><body>x</body></message>`), 'received'),
    );
    assert.ok(
      !isEligible(m(`<message xmlns='jabber:client' type='chat'><body>x</body>${x}</message>`), 'received'),
    );
    assert.ok(
      isEligible(m(`<message xmlns='jabber:client' type='chat'><body>x</body>${x}</message>`), 'sent'),
    );
    const mediated = `<message xmlns='jabber:client'><x xmlns='http://jabber.org/protocol/muc#user'><invite from='a@b'/></x></message>`;
    assert.ok(isEligible(m(mediated), 'received'));
    assert.ok(
      isEligible(
        m(`<message xmlns='jabber:client'><x xmlns='jabber:x:conference' jid='room@muc'/></message>`),
        'received',
      ),
    );
  });
});

describe('message carbons with stripPrivate', () => {
  test('XEP-0280 ≤0.13 §9 (stripPrivate option): the receiving server removes <private/> before delivery', async () => {
    const server = await startTestServer({
      modules: { ping: { idleMs: 0 }, carbons: { stripPrivate: true } },
    });
    try {
      for (const u of ['romeo', 'juliet']) await server.addUser(u, PW);
      const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'a', presence: true });
      const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'b', presence: true });
      const sent = chat(
        'juliet@localhost',
        'strip-me',
        xml('private', { xmlns: NS.carbons }),
        xml('no-copy', { xmlns: NS.hints }),
      );
      romeo.send(sent);
      const got = await juliet.receive(isMessage('strip-me'));
      assert.equal(got.getChild('private', NS.carbons), undefined);
      assert.ok(got.getChild('no-copy', NS.hints));
      await Promise.all([romeo.close(), juliet.close()]);
    } finally {
      await server.destroy();
    }
  });
});
