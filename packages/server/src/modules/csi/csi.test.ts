import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import { TestClient } from '../../../test/support/test-client.js';
import { enableSm, trackSm, until } from '../../../test/hostile/support/sm-client.js';

const PW = 'secret-password';
/** From romeo (without the presence module a client also gets its own broadcast presence). */
const fromRomeo = (name: string) => (e: { name: string; attrs: Record<string, string> }) =>
  e.name === name && (e.attrs.from ?? '').startsWith('romeo@');

describe('client state indication (XEP-0352)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ modules: { ping: { idleMs: 0 }, sm: { resumeTimeoutMs: 3000 } } });
    for (const u of ['romeo', 'juliet']) await server.addUser(u, PW);
  });
  after(() => server.destroy());

  test('XEP-0352 §3: csi is offered after authentication', async () => {
    const c = await TestClient.open(server, 'starttls');
    await c.authenticate('romeo', PW);
    assert.ok(c.features?.getChild('csi', NS.csi));
    c.kill();
  });

  test('XEP-0352 §4: while inactive, presence and chat states are held (latest only) and flushed on active; bodies pass at once', async () => {
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'phone', presence: true });
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'pc', presence: true });
    juliet.send(xml('inactive', { xmlns: NS.csi }));
    await juliet.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: NS.ping }))); // inactive is in effect
    const to = 'juliet@localhost/phone';
    romeo.send(xml('presence', { to }, xml('show', null, 'away')));
    romeo.send(xml('presence', { to }, xml('show', null, 'dnd')));
    romeo.send(xml('message', { to, type: 'chat' }, xml('composing', { xmlns: NS.chatStates })));
    await juliet.nothing(
      (e) => (e.name === 'presence' || e.name === 'message') && (e.attrs.from ?? '').startsWith('romeo@'),
      400,
    );
    // A message with a body is never held; what was held comes first, so order is kept.
    romeo.send(
      xml(
        'message',
        { to, type: 'chat' },
        xml('body', null, 'hello'),
        xml('active', { xmlns: NS.chatStates }),
      ),
    );
    const first = await juliet.receive(
      (e) => (e.name === 'presence' || e.name === 'message') && (e.attrs.from ?? '').startsWith('romeo@'),
    );
    assert.equal(first.name, 'presence');
    assert.equal(first.getChildText('show'), 'dnd', 'only the latest presence of a sender is kept');
    const second = await juliet.receive((e) => e.name === 'message');
    assert.ok(second.getChild('composing', NS.chatStates));
    const third = await juliet.receive((e) => e.name === 'message');
    assert.equal(third.getChildText('body'), 'hello');
    await juliet.nothing(fromRomeo('presence'), 200);
    // Held again; flushed by <active/>.
    romeo.send(xml('presence', { to }, xml('show', null, 'xa')));
    await juliet.nothing(fromRomeo('presence'), 300);
    juliet.send(xml('active', { xmlns: NS.csi }));
    const p = await juliet.receive(fromRomeo('presence'));
    assert.equal(p.getChildText('show'), 'xa');
    // Active: nothing held.
    romeo.send(xml('presence', { to }, xml('show', null, 'chat')));
    assert.equal((await juliet.receive(fromRomeo('presence'), 2000)).getChildText('show'), 'chat');
    await juliet.close();
    await romeo.close();
  });

  test('XEP-0352 with XEP-0198: presence held when the connection drops is delivered after resumption', async () => {
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'held', presence: true });
    const { tracker, enabled } = await enableSm(juliet);
    juliet.send(xml('inactive', { xmlns: NS.csi }));
    await juliet.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: NS.ping })));
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'p2' });
    romeo.send(xml('presence', { to: 'juliet@localhost/held' }, xml('status', null, 'held while inactive')));
    await juliet.nothing(fromRomeo('presence'), 300);
    const h = tracker.h;
    juliet.kill();
    await until(() => [...server.core.sessions.all()].some((s) => s.hibernated), 3000, 'hibernation');
    const again = await TestClient.open(server, 'starttls');
    await again.authenticate('juliet', PW);
    trackSm(again, { h });
    const p = again.receive(fromRomeo('presence'), 3000);
    again.send(xml('resume', { xmlns: NS.sm, previd: enabled.attrs.id, h: String(h) }));
    assert.equal((await p).getChildText('status'), 'held while inactive');
    await again.close();
    await romeo.close();
  });
});
