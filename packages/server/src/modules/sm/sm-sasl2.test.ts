import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import { TestClient } from '../../../test/support/test-client.js';
import { sasl2Exchange, userAgent } from '../../../test/support/sasl2-exchange.js';
import { trackSm, until } from '../../../test/hostile/support/sm-client.js';

const PW = 'sm-sasl2-password';
const UA = 'a1b2c3d4-0000-4000-8000-123456789abc';

function peer(c: TestClient) {
  return { features: c.features, send: (el: Element) => c.send(el), receive: c.receive.bind(c) };
}

const bindWithSm = () =>
  xml('bind', { xmlns: NS.bind2 }, xml('tag', null, 'sm'), xml('enable', { xmlns: NS.sm, resume: 'true' }));

describe('stream management in SASL2 (XEP-0198 with XEP-0388 and XEP-0386)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      modules: { ping: { idleMs: 0 }, sm: { resumeTimeoutMs: 5000, requestDelayMs: 50 } },
    });
    for (const u of ['romeo', 'juliet']) await server.addUser(u, PW);
  });
  after(() => server.destroy());

  test('XEP-0198 §5 inline: <resume/> in <authenticate/> answers <resumed/> in <success/> and re-sends what was not acknowledged', async () => {
    const c1 = await TestClient.open(server, 'starttls');
    const r1 = await sasl2Exchange(peer(c1), 'romeo', PW, 'SCRAM-SHA-256', [userAgent(UA), bindWithSm()]);
    const enabled = r1.element.getChild('bound', NS.bind2)!.getChild('enabled', NS.sm)!;
    const full = r1.element.getChildText('authorization-identifier', NS.sasl2)!;
    const tracker = trackSm(c1, { h: 0 });
    tracker.autoAck = false;
    c1.send(xml('presence'));
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'j' });
    const got = c1.receive((e) => e.name === 'message');
    juliet.send(xml('message', { to: full, type: 'chat' }, xml('body', null, 'unacked')));
    await got;
    c1.kill();
    await until(() => [...server.core.sessions.all()].some((s) => s.jid.toString() === full && s.hibernated));

    const c2 = await TestClient.open(server, 'starttls');
    const resent = c2.receive((e) => e.name === 'message' && e.getChildText('body') === 'unacked');
    const r2 = await sasl2Exchange(peer(c2), 'romeo', PW, 'SCRAM-SHA-256', [
      userAgent(UA),
      xml('resume', { xmlns: NS.sm, previd: enabled.attrs.id, h: '0' }),
      bindWithSm(),
    ]);
    assert.equal(r2.success, true, r2.element.toString());
    const resumed = r2.element.getChild('resumed', NS.sm);
    assert.ok(resumed, r2.element.toString());
    assert.equal(resumed.attrs.previd, enabled.attrs.id);
    assert.equal(r2.element.getChild('bound', NS.bind2), undefined, 'no Bind2 after a resumption');
    assert.equal(r2.element.getChildText('authorization-identifier', NS.sasl2), full);
    await resent;
    // The resumed stream is bound and counted.
    await c2.nothing((e) => e.name === 'features', 200);
    const pong = await c2.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: NS.ping })));
    assert.equal(pong.attrs.type, 'result');
    await juliet.close();
    await c2.close();
  });

  test('XEP-0198 §5 inline: an unknown previd gets <failed/> in <success/>, and Bind2 binds a new session', async () => {
    const c = await TestClient.open(server, 'starttls');
    const r = await sasl2Exchange(peer(c), 'romeo', PW, 'PLAIN', [
      xml('resume', { xmlns: NS.sm, previd: 'no-such-session', h: '0' }),
      bindWithSm(),
    ]);
    assert.equal(r.success, true);
    const failed = r.element.getChild('failed', NS.sm);
    assert.ok(failed?.getChild('item-not-found', NS.stanzas), r.element.toString());
    const bound = r.element.getChild('bound', NS.bind2);
    assert.ok(bound?.getChild('enabled', NS.sm));
    assert.match(r.element.getChildText('authorization-identifier', NS.sasl2)!, /^romeo@localhost\/sm\./);
    await c.close();
  });

  test('XEP-0198 §5 inline: another account’s session cannot be resumed; without Bind2 the features follow', async () => {
    const j = await TestClient.open(server, 'starttls');
    const rj = await sasl2Exchange(peer(j), 'juliet', PW, 'PLAIN', [bindWithSm()]);
    const id = rj.element.getChild('bound', NS.bind2)!.getChild('enabled', NS.sm)!.attrs.id;
    const c = await TestClient.open(server, 'starttls');
    const r = await sasl2Exchange(peer(c), 'romeo', PW, 'PLAIN', [
      xml('resume', { xmlns: NS.sm, previd: id, h: '0' }),
    ]);
    assert.ok(r.element.getChild('failed', NS.sm)?.getChild('item-not-found', NS.stanzas));
    assert.equal(r.element.getChildText('authorization-identifier', NS.sasl2), 'romeo@localhost');
    const features = await c.receive((e) => e.name === 'features');
    assert.ok(features.getChild('bind', NS.bind));
    // Juliet's session was not touched.
    const pong = await j.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: NS.ping })));
    assert.equal(pong.attrs.type, 'result');
    c.kill();
    await j.close();
  });
});
