import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestClient } from '../support/test-client.js';
import { RawClient } from './raw-client.js';

const PW = 'conformance-pw';

function condition(el: Element): string | undefined {
  return el
    .getChild('error')
    ?.elements()
    .find((c) => c.xmlns === NS.stanzas)?.name;
}
const isErr = (e: Element) => e.attrs.type === 'error';

describe('stanza semantics (RFC 6120 §8, RFC 6121 §4–§5)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ modules: { ping: { idleMs: 0 } } });
    for (const u of ['romeo', 'juliet', 'nurse', 'müller']) await server.addUser(u, PW);
  });
  after(() => server.destroy());

  test('RFC 6120 §8.1.3: an IQ without id gets bad-request', async () => {
    const c = await TestClient.login(server, 'romeo', PW);
    c.write(`<iq type='get' to='localhost'><ping xmlns='${NS.ping}'/></iq>`);
    const r = await c.receive((e) => e.name === 'iq');
    assert.equal(r.attrs.type, 'error');
    assert.equal(condition(r), 'bad-request');
    c.kill();
  });

  test('RFC 6120 §8.2.3: an IQ get with two children gets bad-request', async () => {
    const c = await TestClient.login(server, 'romeo', PW);
    const r = await c.iq(
      xml(
        'iq',
        { type: 'get', to: 'localhost' },
        xml('ping', { xmlns: NS.ping }),
        xml('query', { xmlns: NS.discoInfo }),
      ),
    );
    assert.equal(r.attrs.type, 'error');
    assert.equal(condition(r), 'bad-request');
    c.kill();
  });

  test('RFC 6120 §8.2.3: an IQ set with no child gets bad-request', async () => {
    const c = await TestClient.login(server, 'romeo', PW);
    const r = await c.iq(xml('iq', { type: 'set', to: 'localhost' }));
    assert.equal(condition(r), 'bad-request');
    c.kill();
  });

  test('RFC 6120 §8.2.3: an IQ without type gets bad-request', async () => {
    const c = await TestClient.login(server, 'romeo', PW);
    c.write(`<iq id='nt1' to='localhost'><ping xmlns='${NS.ping}'/></iq>`);
    const r = await c.receive((e) => e.name === 'iq' && e.attrs.id === 'nt1');
    assert.equal(condition(r), 'bad-request');
    c.kill();
  });

  test('RFC 6120 §8.2.3: an IQ result with an unknown id to the server is not answered', async () => {
    const c = await TestClient.login(server, 'romeo', PW);
    c.send(xml('iq', { type: 'result', id: 'never-asked', to: 'localhost' }));
    c.send(
      xml(
        'iq',
        { type: 'error', id: 'never-asked-2', to: 'localhost' },
        xml('error', { type: 'cancel' }, xml('bad-request', { xmlns: NS.stanzas })),
      ),
    );
    await c.nothing('iq', 500);
    assert.equal(c.closed, false);
    c.kill();
  });

  test('RFC 6121 §5.2.2: a message of unknown type is delivered as type normal', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'r' });
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'j', presence: true });
    romeo.send(
      xml('message', { to: 'juliet@localhost/j', type: 'bogus', id: 'u1' }, xml('body', null, 'odd type')),
    );
    const m = await juliet.receive((e) => e.name === 'message' && e.attrs.id === 'u1');
    assert.ok(m.attrs.type === undefined || m.attrs.type === 'normal', `type=${m.attrs.type}`);
    await romeo.nothing((e) => e.name === 'message' && isErr(e));
    romeo.kill();
    juliet.kill();
  });

  test('RFC 6121 §4.7.1: a presence of unknown type gets bad-request', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW);
    romeo.send(xml('presence', { to: 'juliet@localhost', type: 'bogus', id: 'p1' }));
    const r = await romeo.receive((e) => e.name === 'presence' && e.attrs.id === 'p1');
    assert.equal(r.attrs.type, 'error');
    assert.equal(condition(r), 'bad-request');
    romeo.kill();
  });

  test('RFC 6120 §8.1.5: an explicit xml:lang on a stanza is kept on delivery', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'r' });
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'j', presence: true });
    romeo.send(
      xml('message', { to: 'juliet@localhost/j', id: 'l1', 'xml:lang': 'fr' }, xml('body', null, 'bonjour')),
    );
    const m = await juliet.receive((e) => e.name === 'message' && e.attrs.id === 'l1');
    assert.equal(m.attrs['xml:lang'], 'fr');
    romeo.kill();
    juliet.kill();
  });

  test('RFC 6120 §8.1.5: a stanza without xml:lang gets the xml:lang of the sender stream', async () => {
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'j2', presence: true });
    const raw = await RawClient.connect(server);
    await raw.open({ 'xml:lang': 'de' });
    await raw.plain('romeo', PW);
    await raw.open({ 'xml:lang': 'de' });
    raw.write(`<iq type='set' id='b'><bind xmlns='${NS.bind}'><resource>lang</resource></bind></iq>`);
    await raw.receive((e) => e.name === 'iq' && e.attrs.id === 'b');
    raw.write(`<message to='juliet@localhost/j2' id='l2'><body>hallo</body></message>`);
    const m = await juliet.receive((e) => e.name === 'message' && e.attrs.id === 'l2');
    assert.equal(m.attrs['xml:lang'], 'de');
    raw.kill();
    juliet.kill();
  });

  test('RFC 6120 §8.1.2.1: a from of the sender bare JID is accepted and stamped with the full JID', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'bare-from' });
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'j', presence: true });
    romeo.send(
      xml('message', { to: 'juliet@localhost/j', from: 'romeo@localhost', id: 'f1' }, xml('body', null, 'x')),
    );
    const m = await juliet.receive((e) => e.name === 'message' && e.attrs.id === 'f1');
    assert.equal(m.attrs.from, 'romeo@localhost/bare-from');
    assert.equal(romeo.closed, false);
    romeo.kill();
    juliet.kill();
  });

  test('RFC 6120 §8.1.2.1: a from of another resource of the same account is invalid-from', async () => {
    const other = await TestClient.login(server, 'romeo', PW, { resource: 'other' });
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'me' });
    romeo.send(
      xml('message', { to: 'juliet@localhost', from: 'romeo@localhost/other' }, xml('body', null, 'x')),
    );
    await romeo.waitClosed();
    assert.equal(romeo.streamError?.condition, 'invalid-from');
    other.kill();
  });

  test('RFC 6120 §8.1.2.1: a from of another account (bare JID) is invalid-from', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW);
    romeo.send(xml('message', { to: 'juliet@localhost', from: 'nurse@localhost' }, xml('body', null, 'x')));
    await romeo.waitClosed();
    assert.equal(romeo.streamError?.condition, 'invalid-from');
  });

  test('RFC 7622 §3.2–3.3: a to with uppercase localpart and domain reaches the account and is delivered normalised', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'r' });
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'Balcony', presence: true });
    romeo.send(xml('message', { to: 'JULIET@LocalHost/Balcony', id: 'n1' }, xml('body', null, 'x')));
    const m = await juliet.receive((e) => e.name === 'message' && e.attrs.id === 'n1');
    assert.equal(m.attrs.to, 'juliet@localhost/Balcony');
    romeo.kill();
    juliet.kill();
  });

  test('RFC 7622 §3.3: a to with a non-ASCII uppercase or decomposed localpart reaches the account', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'r' });
    const m = await TestClient.login(server, 'müller', PW, { resource: 'm', presence: true });
    romeo.send(xml('message', { to: 'MÜLLER@localhost', id: 'u-up', type: 'chat' }, xml('body', null, 'x')));
    await m.receive((e) => e.name === 'message' && e.attrs.id === 'u-up');
    romeo.send(
      xml('message', { to: 'mu\u0308ller@localhost', id: 'u-nfd', type: 'chat' }, xml('body', null, 'x')),
    );
    await m.receive((e) => e.name === 'message' && e.attrs.id === 'u-nfd');
    await romeo.nothing((e) => e.name === 'message' && isErr(e));
    romeo.kill();
    m.kill();
  });

  test('RFC 7622 §3.4: a to with an empty resourcepart is jid-malformed', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW);
    const r = await romeo.iq(
      xml('iq', { type: 'get', to: 'juliet@localhost/' }, xml('ping', { xmlns: NS.ping })),
    );
    assert.equal(r.attrs.type, 'error');
    assert.equal(condition(r), 'jid-malformed');
    romeo.kill();
  });

  test('RFC 7622 §3.2: a trailing dot on the domainpart is stripped before routing', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW);
    const r = await romeo.iq(xml('iq', { type: 'get', to: 'localhost.' }, xml('ping', { xmlns: NS.ping })));
    assert.equal(r.attrs.type, 'result', r.toString());
    romeo.kill();
  });

  test('RFC 7622 §3.3.1: a localpart longer than 1023 bytes is jid-malformed', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW);
    const r = await romeo.iq(
      xml('iq', { type: 'get', to: `${'a'.repeat(1100)}@localhost` }, xml('ping', { xmlns: NS.ping })),
    );
    assert.equal(r.attrs.type, 'error');
    assert.equal(condition(r), 'jid-malformed');
    romeo.kill();
  });

  test('RFC 7622 §3.4: a resourcepart with spaces is valid, bound and routable', async () => {
    const j = await TestClient.login(server, 'juliet', PW, { resource: 'my phone', presence: true });
    assert.equal(j.jid, 'juliet@localhost/my phone');
    const romeo = await TestClient.login(server, 'romeo', PW);
    romeo.send(xml('message', { to: 'juliet@localhost/my phone', id: 'sp1' }, xml('body', null, 'x')));
    await j.receive((e) => e.name === 'message' && e.attrs.id === 'sp1');
    romeo.kill();
    j.kill();
  });

  test('RFC 6121 §8.5.2.1.1: a message to the own bare JID reaches the own available resource', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'self', presence: true });
    romeo.send(xml('message', { to: 'romeo@localhost', type: 'chat', id: 's1' }, xml('body', null, 'me')));
    const m = await romeo.receive((e) => e.name === 'message' && e.attrs.id === 's1');
    assert.equal(m.attrs.from, 'romeo@localhost/self');
    romeo.kill();
  });

  test('RFC 6121 §8.5.3.1: a message to the own full JID is delivered to that resource', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'selffull' });
    romeo.send(xml('message', { to: 'romeo@localhost/selffull', id: 's2' }, xml('body', null, 'me')));
    const m = await romeo.receive((e) => e.name === 'message' && e.attrs.id === 's2');
    assert.equal(m.attrs.from, 'romeo@localhost/selffull');
    romeo.kill();
  });

  test('RFC 6120 §8.3.1: a message error reply swaps the addresses, keeps the id and the original payload', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'e' });
    romeo.send(
      xml(
        'message',
        { to: 'ghost@localhost', id: 'e1', type: 'chat' },
        xml('body', null, 'boo'),
        xml('x', { xmlns: 'urn:example:extra' }),
      ),
    );
    const err = await romeo.receive((e) => e.name === 'message' && isErr(e));
    assert.equal(err.attrs.id, 'e1');
    assert.equal(err.attrs.from, 'ghost@localhost');
    assert.equal(err.attrs.to, 'romeo@localhost/e');
    assert.equal(err.getChildText('body'), 'boo');
    assert.ok(err.getChild('x', 'urn:example:extra'));
    assert.equal(condition(err), 'service-unavailable');
    assert.equal(err.getChild('error')?.attrs.type, 'cancel');
    romeo.kill();
  });

  test('RFC 6120 §8.3.1: an IQ error reply swaps the addresses, keeps the id and the original payload', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'e2' });
    const r = await romeo.iq(
      xml(
        'iq',
        { type: 'get', id: 'iqe1', to: 'juliet@localhost/nowhere' },
        xml('query', { xmlns: 'urn:example:q' }, xml('item')),
      ),
    );
    assert.equal(r.attrs.type, 'error');
    assert.equal(r.attrs.id, 'iqe1');
    assert.equal(r.attrs.from, 'juliet@localhost/nowhere');
    assert.equal(r.attrs.to, 'romeo@localhost/e2');
    assert.ok(r.getChild('query', 'urn:example:q')?.getChild('item'));
    assert.equal(condition(r), 'service-unavailable');
    romeo.kill();
  });

  test('RFC 6120 §8.3.1: no error is returned in reply to an error stanza (message, IQ, presence)', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'noerr' });
    const e = () => xml('error', { type: 'cancel' }, xml('item-not-found', { xmlns: NS.stanzas }));
    romeo.send(xml('message', { to: 'ghost@localhost', type: 'error', id: 'x1' }, e()));
    romeo.send(xml('message', { to: 'juliet@localhost/gone', type: 'error', id: 'x2' }, e()));
    romeo.send(xml('iq', { to: 'juliet@localhost/gone', type: 'error', id: 'x3' }, e()));
    romeo.send(xml('iq', { to: 'ghost@localhost', type: 'error', id: 'x4' }, e()));
    romeo.send(xml('presence', { to: 'ghost@localhost', type: 'error', id: 'x5' }, e()));
    await romeo.nothing((el) => el.attrs.type === 'error', 600);
    assert.equal(romeo.closed, false);
    romeo.kill();
  });

  test('RFC 6120 §8.2.3: an IQ result to an offline full JID gets no error', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW);
    romeo.send(xml('iq', { to: 'juliet@localhost/gone', type: 'result', id: 'res1' }));
    await romeo.nothing((el) => el.attrs.id === 'res1', 500);
    romeo.kill();
  });
});
