import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestClient } from '../support/test-client.js';

const PW = 'conformance-pw';

function condition(el: Element): string | undefined {
  return el
    .getChild('error')
    ?.elements()
    .find((c) => c.xmlns === NS.stanzas)?.name;
}
const msgId = (id: string) => (e: Element) => e.name === 'message' && e.attrs.id === id;
const isErr = (e: Element) => e.attrs.type === 'error';

/** Logs in and sends initial presence with `priority`, waiting for the own presence echo. */
async function online(server: TestServer, user: string, resource: string, priority = 0): Promise<TestClient> {
  const c = await TestClient.login(server, user, PW, { resource });
  c.send(xml('presence', null, xml('priority', null, String(priority))));
  await c.receive((e) => e.name === 'presence' && e.attrs.from === c.jid, 3000).catch(() => undefined);
  return c;
}

describe('server delivery rules (RFC 6121 §8.5)', () => {
  let server: TestServer;
  let n = 0;
  before(async () => {
    server = await startTestServer({ modules: { ping: { idleMs: 0 } } });
    for (const u of ['romeo', 'juliet', 'benvolio', 'tybalt', 'paris', 'friar', 'mercutio'])
      await server.addUser(u, PW);
  });
  after(() => server.destroy());

  test('RFC 6121 §8.5.2.2.1: a chat message to a bare JID with no available resource is stored and delivered later, without error', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: `r${++n}` });
    romeo.send(
      xml('message', { to: 'benvolio@localhost', type: 'chat', id: 'off1' }, xml('body', null, 'later')),
    );
    await romeo.nothing((e) => e.name === 'message' && isErr(e), 400);
    const ben = await TestClient.login(server, 'benvolio', PW, { resource: 'b', presence: true });
    const m = await ben.receive(msgId('off1'));
    assert.equal(m.getChildText('body'), 'later');
    assert.ok(m.getChild('delay', NS.delay), 'XEP-0203 delay on offline delivery');
    romeo.kill();
    ben.kill();
  });

  test('RFC 6121 §8.5.2.1.1: a chat message to a bare JID with one available resource is delivered to it', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: `r${++n}` });
    const j = await online(server, 'juliet', 'one', 0);
    romeo.send(xml('message', { to: 'juliet@localhost', type: 'chat', id: 'one1' }, xml('body', null, 'hi')));
    const m = await j.receive(msgId('one1'));
    assert.equal(m.attrs.to, 'juliet@localhost');
    romeo.kill();
    j.kill();
  });

  for (const type of ['chat', 'normal']) {
    test(`RFC 6121 §8.5.2.1.1: a ${type} message to a bare JID goes to the highest-priority resource`, async () => {
      const romeo = await TestClient.login(server, 'romeo', PW, { resource: `r${++n}` });
      const hi = await online(server, 'tybalt', 'high', 5);
      const lo = await online(server, 'tybalt', 'low', 1);
      const id = `prio-${type}`;
      romeo.send(xml('message', { to: 'tybalt@localhost', type, id }, xml('body', null, 'x')));
      await hi.receive(msgId(id));
      romeo.kill();
      hi.kill();
      lo.kill();
    });
  }

  test('RFC 6121 §8.5.2.1.1: a headline to a bare JID goes to every non-negative resource, not to negative ones', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: `r${++n}` });
    const a = await online(server, 'paris', 'a', 3);
    const b = await online(server, 'paris', 'b', 0);
    const neg = await online(server, 'paris', 'neg', -1);
    romeo.send(
      xml('message', { to: 'paris@localhost', type: 'headline', id: 'hl1' }, xml('body', null, 'news')),
    );
    await a.receive(msgId('hl1'));
    await b.receive(msgId('hl1'));
    await neg.nothing(msgId('hl1'));
    romeo.kill();
    a.kill();
    b.kill();
    neg.kill();
  });

  test('RFC 6121 §8.5.2.1.1: a chat message to a bare JID whose only resource has negative priority is not delivered to it (stored offline or error)', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: `r${++n}` });
    const neg = await online(server, 'friar', 'cell', -1);
    romeo.send(xml('message', { to: 'friar@localhost', type: 'chat', id: 'neg1' }, xml('body', null, 'x')));
    await neg.nothing(msgId('neg1'), 500);
    neg.kill();
    // Stored offline: delivered once a non-negative resource comes online (or an error was returned).
    const err = romeo.received.find((e) => e.name === 'message' && isErr(e) && e.attrs.id === 'neg1');
    if (!err) {
      const f = await TestClient.login(server, 'friar', PW, { resource: 'later', presence: true });
      await f.receive(msgId('neg1'));
      f.kill();
    } else assert.equal(condition(err), 'service-unavailable');
    romeo.kill();
  });

  test('RFC 6121 §8.5.2.1.1: a groupchat message to a bare JID gets service-unavailable', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: `r${++n}` });
    const j = await online(server, 'juliet', 'gc', 0);
    romeo.send(
      xml('message', { to: 'juliet@localhost', type: 'groupchat', id: 'gc1' }, xml('body', null, 'x')),
    );
    const err = await romeo.receive((e) => e.name === 'message' && isErr(e) && e.attrs.id === 'gc1');
    assert.equal(condition(err), 'service-unavailable');
    await j.nothing(msgId('gc1'));
    romeo.kill();
    j.kill();
  });

  test('RFC 6121 §8.5.2.2.1: a headline to a bare JID with no available resource is silently dropped (not stored)', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: `r${++n}` });
    romeo.send(
      xml('message', { to: 'mercutio@localhost', type: 'headline', id: 'hl-off' }, xml('body', null, 'x')),
    );
    await romeo.nothing((e) => e.name === 'message' && isErr(e), 400);
    const m = await TestClient.login(server, 'mercutio', PW, { resource: 'm', presence: true });
    await m.nothing(msgId('hl-off'), 500);
    romeo.kill();
    m.kill();
  });

  // RFC 6121 §8.5.3.2.1: full JID, no matching resource.
  test('RFC 6121 §8.5.3.2.1: a chat message to an offline full JID is treated as sent to the bare JID', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: `r${++n}` });
    const j = await online(server, 'juliet', 'present', 0);
    romeo.send(
      xml('message', { to: 'juliet@localhost/absent', type: 'chat', id: 'fc1' }, xml('body', null, 'x')),
    );
    await j.receive(msgId('fc1'));
    romeo.kill();
    j.kill();
  });

  for (const type of ['normal', 'headline', 'groupchat']) {
    test(`RFC 6121 §8.5.3.2.1: a ${type} message to an offline full JID is ignored or bounced, never delivered to another resource`, async () => {
      const romeo = await TestClient.login(server, 'romeo', PW, { resource: `r${++n}` });
      const j = await online(server, 'juliet', `other-${type}`, 0);
      const id = `full-${type}`;
      const attrs: Record<string, string> = { to: 'juliet@localhost/absent', id };
      if (type !== 'normal') attrs.type = type;
      romeo.send(xml('message', attrs, xml('body', null, 'x')));
      await j.nothing(msgId(id), 500);
      const err = romeo.received.find((e) => e.name === 'message' && isErr(e) && e.attrs.id === id);
      if (err) assert.equal(condition(err), 'service-unavailable');
      romeo.kill();
      j.kill();
    });
  }

  test('RFC 6121 §8.5.3.2.1: an error message to an offline full JID is silently ignored', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: `r${++n}` });
    const j = await online(server, 'juliet', 'other-error', 0);
    romeo.send(
      xml(
        'message',
        { to: 'juliet@localhost/absent', type: 'error', id: 'fe1' },
        xml('error', { type: 'cancel' }, xml('gone', { xmlns: NS.stanzas })),
      ),
    );
    await j.nothing(msgId('fe1'), 400);
    await romeo.nothing((e) => e.name === 'message' && isErr(e) && e.attrs.id === 'fe1', 100);
    romeo.kill();
    j.kill();
  });

  test('RFC 6121 §8.5.3.1: directed presence to a full JID is delivered to that resource only', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: `r${++n}` });
    const a = await online(server, 'juliet', 'pa', 0);
    const b = await online(server, 'juliet', 'pb', 0);
    romeo.send(xml('presence', { to: 'juliet@localhost/pa', id: 'dp1' }));
    const p = await a.receive((e) => e.name === 'presence' && e.attrs.id === 'dp1');
    assert.equal(p.attrs.from, romeo.jid);
    await b.nothing((e) => e.name === 'presence' && e.attrs.id === 'dp1');
    romeo.kill();
    a.kill();
    b.kill();
  });

  test('RFC 6121 §8.5.3.2.2: available presence to an offline full JID is silently ignored', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: `r${++n}` });
    const a = await online(server, 'juliet', 'here', 0);
    romeo.send(xml('presence', { to: 'juliet@localhost/absent', id: 'dp2' }));
    await a.nothing((e) => e.name === 'presence' && e.attrs.id === 'dp2');
    await romeo.nothing((e) => e.name === 'presence' && isErr(e), 100);
    romeo.kill();
    a.kill();
  });

  test('RFC 6121 §8.5.2.1.2: directed available presence to a bare JID reaches every available resource', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: `r${++n}` });
    const a = await online(server, 'juliet', 'ba', 0);
    const b = await online(server, 'juliet', 'bb', 2);
    romeo.send(xml('presence', { to: 'juliet@localhost', id: 'dp3' }));
    await a.receive((e) => e.name === 'presence' && e.attrs.id === 'dp3');
    await b.receive((e) => e.name === 'presence' && e.attrs.id === 'dp3');
    romeo.kill();
    a.kill();
    b.kill();
  });

  test('RFC 6121 §4.2.2: initial presence is broadcast to the other available resources of the same account', async () => {
    const a = await online(server, 'benvolio', 'first', 0);
    const b = await online(server, 'benvolio', 'second', 0);
    const p = await a.receive((e) => e.name === 'presence' && e.attrs.from === 'benvolio@localhost/second');
    assert.equal(p.attrs.type, undefined);
    a.kill();
    b.kill();
  });

  test('RFC 6121 §4.5.2: unavailable presence sent by a resource reaches the other resources of the account', async () => {
    const a = await online(server, 'benvolio', 'stay', 0);
    const b = await online(server, 'benvolio', 'leave', 0);
    b.send(xml('presence', { type: 'unavailable' }));
    const p = await a.receive(
      (e) =>
        e.name === 'presence' &&
        e.attrs.from === 'benvolio@localhost/leave' &&
        e.attrs.type === 'unavailable',
    );
    assert.ok(p);
    a.kill();
    b.kill();
  });

  test('RFC 6121 §4.5.2: a resource whose connection is lost is announced unavailable to the other resources', async () => {
    const a = await online(server, 'benvolio', 'watch', 0);
    const b = await online(server, 'benvolio', 'crash', 0);
    b.kill();
    const p = await a.receive(
      (e) =>
        e.name === 'presence' &&
        e.attrs.from === 'benvolio@localhost/crash' &&
        e.attrs.type === 'unavailable',
    );
    assert.ok(p);
    a.kill();
  });

  test('RFC 6121 §8.5.3.1: an IQ to the own full JID is delivered to the own session', async () => {
    const c = await TestClient.login(server, 'romeo', PW, { resource: 'selfiq' });
    c.send(
      xml(
        'iq',
        { type: 'get', to: 'romeo@localhost/selfiq', id: 'selfping' },
        xml('ping', { xmlns: NS.ping }),
      ),
    );
    const req = await c.receive((e) => e.name === 'iq' && e.attrs.id === 'selfping');
    assert.equal(req.attrs.type, 'get');
    assert.equal(req.attrs.from, 'romeo@localhost/selfiq');
    c.kill();
  });

  test('RFC 6121 §8.5.3.2.3: an IQ to the full JID of a non-existent resource gets service-unavailable', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: `r${++n}` });
    const r = await romeo.iq(
      xml('iq', { type: 'get', to: 'juliet@localhost/nope' }, xml('ping', { xmlns: NS.ping })),
    );
    assert.equal(r.attrs.type, 'error');
    assert.equal(condition(r), 'service-unavailable');
    assert.equal(r.attrs.from, 'juliet@localhost/nope');
    romeo.kill();
  });

  test('RFC 6121 §8.5.1: an IQ to the bare JID of a non-existent account gets service-unavailable', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: `r${++n}` });
    const r = await romeo.iq(
      xml('iq', { type: 'get', to: 'nobody@localhost' }, xml('query', { xmlns: NS.discoInfo })),
    );
    assert.equal(r.attrs.type, 'error');
    assert.equal(condition(r), 'service-unavailable');
    assert.equal(r.attrs.from, 'nobody@localhost');
    romeo.kill();
  });

  test('RFC 6121 §8.5.1: an IQ to the full JID of a non-existent account gets service-unavailable', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: `r${++n}` });
    const r = await romeo.iq(
      xml('iq', { type: 'get', to: 'nobody@localhost/res' }, xml('ping', { xmlns: NS.ping })),
    );
    assert.equal(condition(r), 'service-unavailable');
    romeo.kill();
  });

  test('RFC 6121 §8.5.1: presence subscription to a non-existent account is not answered with an error leak', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: `r${++n}` });
    romeo.send(xml('presence', { to: 'nobody@localhost', type: 'subscribe', id: 'sub0' }));
    await romeo.nothing((e) => e.name === 'presence' && isErr(e), 400);
    romeo.kill();
  });

  for (const type of ['normal', 'chat', 'headline']) {
    test(`RFC 6121 §8.5.1: a ${type} message to a non-existent account is ignored or gets service-unavailable`, async () => {
      const romeo = await TestClient.login(server, 'romeo', PW, { resource: `r${++n}` });
      const attrs: Record<string, string> = { to: 'nobody@localhost', id: `nx-${type}` };
      if (type !== 'normal') attrs.type = type;
      romeo.send(xml('message', attrs, xml('body', null, 'x')));
      const err = await romeo
        .receive((e) => e.name === 'message' && e.attrs.id === `nx-${type}`, 600)
        .catch(() => undefined);
      if (err) {
        assert.equal(err.attrs.type, 'error');
        assert.equal(condition(err), 'service-unavailable');
      }
      romeo.kill();
    });
  }

  test('RFC 6120 §10.3: an IQ to the server domain is answered by the server', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: `r${++n}` });
    const r = await romeo.iq(
      xml('iq', { type: 'get', to: 'localhost', id: 'srv1' }, xml('ping', { xmlns: NS.ping })),
    );
    assert.equal(r.attrs.type, 'result');
    assert.equal(r.attrs.from, 'localhost');
    assert.equal(r.attrs.to, romeo.jid);
    assert.equal(r.attrs.id, 'srv1');
    romeo.kill();
  });

  test('RFC 6120 §10.3: a message to the server domain is not echoed back and gets no error for type normal', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: `r${++n}` });
    romeo.send(xml('message', { to: 'localhost', id: 'sm1' }, xml('body', null, 'hello server')));
    await romeo.nothing((e) => e.name === 'message' && e.attrs.id === 'sm1' && !isErr(e), 400);
    romeo.kill();
  });

  test('RFC 6120 §10.3: an IQ to a full JID under the server domain (domain/resource) gets an answer', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: `r${++n}` });
    const r = await romeo.iq(
      xml('iq', { type: 'get', to: 'localhost/some-resource' }, xml('ping', { xmlns: NS.ping })),
    );
    assert.ok(r.attrs.type === 'result' || condition(r) === 'service-unavailable', r.toString());
    romeo.kill();
  });
});
