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

describe('resource binding (RFC 6120 §7)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ modules: { ping: { idleMs: 0 } } });
    await server.addUser('romeo', PW);
  });
  after(() => server.destroy());

  async function authed(): Promise<TestClient> {
    const c = await TestClient.open(server, 'starttls');
    await c.authenticate('romeo', PW);
    return c;
  }
  const bindIq = (resource?: Element) =>
    xml('iq', { type: 'set' }, xml('bind', { xmlns: NS.bind }, resource));

  test('RFC 6120 §7.6: an empty <resource/> is treated as no resource: the server generates one', async () => {
    const c = await authed();
    const r = await c.iq(bindIq(xml('resource')));
    assert.equal(r.attrs.type, 'result', r.toString());
    const jid = r.getChild('bind', NS.bind)?.getChildText('jid', NS.bind) ?? '';
    assert.match(jid, /^romeo@localhost\/.+$/);
    c.kill();
  });

  test('RFC 6120 §7.7.2.1: a resourcepart longer than 1023 bytes gets bad-request (modify)', async () => {
    const c = await authed();
    const r = await c.iq(bindIq(xml('resource', null, 'x'.repeat(1100))));
    assert.equal(r.attrs.type, 'error');
    assert.equal(condition(r), 'bad-request');
    assert.equal(r.getChild('error')?.attrs.type, 'modify');
    c.kill();
  });

  test('RFC 6120 §7.7.2.1 / RFC 7622 §3.4: a resourcepart with a control character gets bad-request', async () => {
    const c = await authed();
    const r = await c.iq(bindIq(xml('resource', null, 'bad\u0085res')));
    assert.equal(r.attrs.type, 'error', r.toString());
    assert.equal(condition(r), 'bad-request');
    c.kill();
  });

  test('RFC 7622 §3.4: the bound resourcepart keeps its case and is NFC-normalised', async () => {
    const c = await authed();
    const r = await c.iq(bindIq(xml('resource', null, 'Cafe\u0301')));
    assert.equal(r.attrs.type, 'result', r.toString());
    assert.equal(r.getChild('bind', NS.bind)?.getChildText('jid', NS.bind), 'romeo@localhost/Caf\u00e9');
    c.kill();
  });

  test('RFC 6120 §7.6.1: the bind result has the id of the request and a jid of the authenticated account', async () => {
    const c = await authed();
    const r = await c.iq(
      xml(
        'iq',
        { type: 'set', id: 'bind-id-1' },
        xml('bind', { xmlns: NS.bind }, xml('resource', null, 'orchard')),
      ),
    );
    assert.equal(r.attrs.id, 'bind-id-1');
    assert.equal(r.getChild('bind', NS.bind)?.getChildText('jid', NS.bind), 'romeo@localhost/orchard');
    c.kill();
  });

  test('RFC 6120 §7.7.2.2: on a resource conflict the server either overrides the old session (conflict stream error) or refuses/renames the new one', async () => {
    const old = await TestClient.login(server, 'romeo', PW, { resource: 'same' });
    const c = await authed();
    const r = await c.iq(bindIq(xml('resource', null, 'same')));
    if (r.attrs.type === 'error') {
      assert.equal(condition(r), 'conflict');
      assert.equal(old.closed, false);
    } else {
      const jid = r.getChild('bind', NS.bind)?.getChildText('jid', NS.bind);
      if (jid === 'romeo@localhost/same') {
        await old.waitClosed();
        assert.equal(old.streamError?.condition, 'conflict');
      } else {
        assert.match(jid ?? '', /^romeo@localhost\/.+/);
        assert.equal(old.closed, false);
      }
    }
    c.kill();
    old.kill();
  });

  test('RFC 6120 §7.7.2.2: a second bind on a bound stream is refused with not-allowed; the first resource stays bound', async () => {
    const c = await TestClient.login(server, 'romeo', PW, { resource: 'first' });
    const r = await c.iq(bindIq(xml('resource', null, 'second')));
    assert.equal(r.attrs.type, 'error', r.toString());
    assert.equal(condition(r), 'not-allowed');
    assert.equal(r.attrs.from, undefined, 'answered by the stream itself');
    const pong = await c.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: NS.ping })));
    assert.equal(pong.attrs.to, 'romeo@localhost/first');
    c.kill();
  });

  test('RFC 6120 §7.6.1 / §8.1.3: a bind that is not an IQ set, or has no id, gets bad-request and the stream stays open', async () => {
    const c = await authed();
    const got = await c.iq(xml('iq', { type: 'get' }, xml('bind', { xmlns: NS.bind })));
    assert.equal(condition(got), 'bad-request', got.toString());
    c.send(xml('iq', { type: 'set' }, xml('bind', { xmlns: NS.bind })));
    const noId = await c.receive((e) => e.name === 'iq' && e.attrs.type === 'error');
    assert.equal(condition(noId), 'bad-request', noId.toString());
    const jid = await c.bind('after');
    assert.equal(jid, 'romeo@localhost/after');
    c.kill();
  });

  test('RFC 6120 §7.3: a stanza before binding is refused with not-authorized and the stream closes', async () => {
    const c = await authed();
    c.send(xml('message', { to: 'romeo@localhost' }, xml('body', null, 'x')));
    await c.waitClosed();
    assert.equal(c.streamError?.condition, 'not-authorized');
  });
});
