import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import { TestClient } from '../../../test/support/test-client.js';
import { enableSm, trackSm, until } from '../../../test/hostile/support/sm-client.js';

const PW = 'secret-password';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function chat(to: string, body: string) {
  return xml('message', { to, type: 'chat' }, xml('body', null, body));
}

describe('stream management (XEP-0198)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      modules: { ping: { idleMs: 0 }, sm: { resumeTimeoutMs: 3000, requestDelayMs: 50 } },
    });
    for (const u of ['romeo', 'juliet', 'nurse']) await server.addUser(u, PW);
  });
  after(() => server.destroy());

  test('XEP-0198 §3: sm is offered after authentication; enable answers enabled with an id and max', async () => {
    const c = await TestClient.open(server, 'starttls');
    assert.equal(c.features?.getChild('sm', NS.sm), undefined);
    await c.authenticate('romeo', PW);
    assert.ok(c.features?.getChild('sm', NS.sm));
    await c.bind('feat');
    const { enabled } = await enableSm(c);
    assert.equal(enabled.attrs.resume, 'true');
    assert.ok((enabled.attrs.id ?? '').length >= 8);
    assert.equal(enabled.attrs.max, '3');
    // Enabling twice is an unexpected request.
    c.send(xml('enable', { xmlns: NS.sm }));
    const f = await c.receive((e) => e.name === 'failed');
    assert.ok(f.getChild('unexpected-request', NS.stanzas));
    await c.close();
  });

  test('XEP-0198 §3: enable before binding a resource fails with unexpected-request', async () => {
    const c = await TestClient.open(server, 'starttls');
    await c.authenticate('romeo', PW);
    c.send(xml('enable', { xmlns: NS.sm }));
    const f = await c.receive((e) => e.name === 'failed' && e.xmlns === NS.sm);
    assert.ok(f.getChild('unexpected-request', NS.stanzas));
    c.kill();
  });

  test('XEP-0198 §4: <r/> is answered with h counting every stanza received since enable', async () => {
    const c = await TestClient.login(server, 'romeo', PW, { resource: 'count' });
    await enableSm(c, false);
    c.send(xml('presence'));
    for (let i = 0; i < 3; i++)
      await c.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: NS.ping })));
    c.send(xml('message', { to: 'romeo@localhost/nowhere-else', type: 'headline' }, xml('body', null, 'x')));
    const a = c.receive((e) => e.name === 'a' && e.xmlns === NS.sm);
    c.send(xml('r', { xmlns: NS.sm }));
    assert.equal((await a).attrs.h, '5');
    await c.close();
  });

  test('XEP-0198 §4: error replies written by the stream itself are counted like any stanza', async () => {
    const c = await TestClient.login(server, 'romeo', PW, { resource: 'replies' });
    const { tracker } = await enableSm(c, false);
    c.write(`<iq type='get' to='localhost'><ping xmlns='${NS.ping}'/></iq>`); // no id: bad-request from the stream
    c.write(`<presence type='bogus'/>`); // bad-request
    c.send(xml('iq', { type: 'set', id: 's1' }, xml('session', { xmlns: NS.session })));
    await c.receive((e) => e.name === 'iq' && e.attrs.id === 's1');
    await until(() => tracker.h === 3, 3000, 'three replies');
    c.send(xml('a', { xmlns: NS.sm, h: String(tracker.h) }));
    const pong = await c.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: NS.ping })));
    assert.equal(pong.attrs.type, 'result');
    assert.equal(c.closed, false);
    await c.close();
  });

  test('XEP-0198 §4: the server requests acks and an h above what it sent is a stream error', async () => {
    const c = await TestClient.login(server, 'romeo', PW, { resource: 'acks' });
    const { tracker } = await enableSm(c, false);
    for (let i = 0; i < 6; i++)
      await c.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: NS.ping })));
    await until(() => tracker.nonzas.some((n) => n.name === 'r'), 3000, 'an ack request');
    c.send(xml('a', { xmlns: NS.sm, h: '1000' }));
    await c.waitClosed();
    assert.equal(c.streamError?.condition, 'undefined-condition');
  });

  test('XEP-0198 §5: a killed connection is resumed; every message arrives exactly once and in order', async () => {
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'phone', presence: true });
    const { tracker, enabled } = await enableSm(juliet);
    tracker.autoAck = false; // nothing acknowledged: everything after h must come again
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'sender', presence: true });
    const N = 60;
    let sent = 0;
    const sending = (async () => {
      for (; sent < N; sent++) {
        romeo.send(chat('juliet@localhost/phone', `m${sent}`));
        if (sent % 5 === 4) await sleep(10);
      }
    })();
    await until(() => tracker.bodies.length >= 15, 5000, 'some messages before the drop');
    juliet.kill();
    const seenBefore = tracker.bodies.slice();
    const h = tracker.h;
    await sending;
    // Hibernated: still counted and visible.
    await until(
      () =>
        [...server.core.sessions.all()].some(
          (s) => s.jid.toString() === 'juliet@localhost/phone' && s.hibernated,
        ),
      3000,
      'hibernation',
    );
    const again = await TestClient.open(server, 'starttls');
    await again.authenticate('juliet', PW);
    const t2 = trackSm(again, { h });
    const resumed = again.receive((e) => e.xmlns === NS.sm && (e.name === 'resumed' || e.name === 'failed'));
    again.send(xml('resume', { xmlns: NS.sm, previd: enabled.attrs.id, h: String(h) }));
    const r = await resumed;
    assert.equal(r.name, 'resumed', r.toString());
    assert.equal(r.attrs.previd, enabled.attrs.id);
    await until(
      () => seenBefore.length + t2.bodies.length >= N,
      5000,
      `all ${N} messages (have ${seenBefore.length}+${t2.bodies.length})`,
    );
    await sleep(200);
    const all = [...seenBefore, ...t2.bodies];
    assert.deepEqual(
      all,
      Array.from({ length: N }, (_, i) => `m${i}`),
    );
    // The resumed session is a normal one: new messages flow, and its sender got no error.
    romeo.send(chat('juliet@localhost/phone', 'after'));
    await until(() => t2.bodies.includes('after'), 3000, 'a message after resumption');
    assert.equal(romeo.received.filter((e) => e.attrs.type === 'error').length, 0);
    await again.close();
    await romeo.close();
  });

  test('XEP-0198 §5 over WebSocket (RFC 7395): a dropped session is resumed on a new WebSocket', async () => {
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'web', transport: 'ws' }); // no presence: only the messages are counted
    const { tracker, enabled } = await enableSm(juliet);
    tracker.autoAck = false;
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'ws-sender' });
    for (let i = 0; i < 5; i++) romeo.send(chat('juliet@localhost/web', `w${i}`));
    await until(() => tracker.bodies.length === 5, 3000, 'five messages');
    juliet.kill();
    for (let i = 5; i < 10; i++) romeo.send(chat('juliet@localhost/web', `w${i}`));
    await until(
      () => [...server.core.sessions.all()].some((s) => s.jid.resource === 'web' && s.hibernated),
      3000,
      'hibernation',
    );
    const again = await TestClient.open(server, 'ws');
    await again.authenticate('juliet', PW);
    const t2 = trackSm(again, { h: 3 });
    const resumed = again.receive((e) => e.xmlns === NS.sm && e.name === 'resumed');
    again.send(xml('resume', { xmlns: NS.sm, previd: enabled.attrs.id, h: '3' })); // acknowledges only w0..w2
    await resumed;
    await until(() => t2.bodies.length >= 7, 3000, 'the unacknowledged messages');
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(t2.bodies, ['w3', 'w4', 'w5', 'w6', 'w7', 'w8', 'w9']);
    await again.close();
    await romeo.close();
  });

  test('XEP-0198 §5: resuming an unknown or expired session fails with item-not-found; binding still works', async () => {
    const c = await TestClient.open(server, 'starttls');
    await c.authenticate('nurse', PW);
    c.send(xml('resume', { xmlns: NS.sm, previd: 'nope', h: '0' }));
    const f = await c.receive((e) => e.name === 'failed' && e.xmlns === NS.sm);
    assert.ok(f.getChild('item-not-found', NS.stanzas));
    await c.bind('fresh');
    await c.close();
  });

  test('XEP-0198 §5: another account cannot resume a session', async () => {
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'stolen', presence: true });
    const { enabled } = await enableSm(juliet);
    juliet.kill();
    const thief = await TestClient.open(server, 'starttls');
    await thief.authenticate('nurse', PW);
    thief.send(xml('resume', { xmlns: NS.sm, previd: enabled.attrs.id, h: '0' }));
    const f = await thief.receive((e) => e.name === 'failed' && e.xmlns === NS.sm);
    assert.ok(f.getChild('item-not-found', NS.stanzas));
    thief.kill();
  });

  test('XEP-0198 §5: a client resuming before the server noticed the old connection died takes the session over', async () => {
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'tablet', presence: true });
    const { tracker, enabled } = await enableSm(juliet);
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'takeover' });
    romeo.send(chat('juliet@localhost/tablet', 'one'));
    await until(() => tracker.bodies.includes('one'), 3000, 'first message');
    const again = await TestClient.open(server, 'starttls');
    await again.authenticate('juliet', PW);
    const t2 = trackSm(again, { h: tracker.h });
    const resumed = again.receive((e) => e.xmlns === NS.sm && e.name === 'resumed');
    again.send(xml('resume', { xmlns: NS.sm, previd: enabled.attrs.id, h: String(tracker.h) }));
    await resumed;
    await juliet.waitClosed();
    assert.equal(juliet.streamError?.condition, 'conflict');
    romeo.send(chat('juliet@localhost/tablet', 'two'));
    await until(() => t2.bodies.includes('two'), 3000, 'second message on the new connection');
    assert.deepEqual(t2.bodies, ['two']);
    await again.close();
    await romeo.close();
  });
});

describe('stream management: sessions that are not resumed (XEP-0198 §5)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      modules: {
        ping: { idleMs: 0 },
        sm: { resumeTimeoutMs: 400, requestDelayMs: 5000, requestAfter: 1000 },
      },
    });
    for (const u of ['romeo', 'juliet']) await server.addUser(u, PW);
  });
  after(() => server.destroy());

  /** Waits until the offline module holds `n` messages for `owner`. */
  const untilStored = async (owner: string, n: number): Promise<void> => {
    const offline = server.core.hosts.get('localhost')!.provided.get('offline') as {
      count(o: string): Promise<number>;
    };
    const end = Date.now() + 5000;
    while ((await offline.count(owner)) < n) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${n} stored messages`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  test('XEP-0198 §5: when the resumption time runs out, unacknowledged messages go to offline storage, in order, with a delay stamp', async () => {
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'phone', presence: true });
    const { tracker } = await enableSm(juliet);
    tracker.autoAck = false;
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'sender', presence: true });
    for (let i = 0; i < 5; i++) romeo.send(chat('juliet@localhost/phone', `before ${i}`));
    await until(() => tracker.bodies.length === 5, 3000, 'five messages');
    juliet.kill();
    await until(() => [...server.core.sessions.all()].some((s) => s.hibernated), 3000, 'hibernation');
    for (let i = 0; i < 3; i++) romeo.send(chat('juliet@localhost/phone', `during ${i}`));
    await until(
      () => server.core.sessions.ofAccount('juliet@localhost').length === 0,
      3000,
      'the session to end',
    );
    // The session leaves the registry first, then its messages are stored: wait for all eight
    // (with PostgreSQL the writes take longer), else the next login races the last of them.
    await untilStored('juliet@localhost', 8);
    const back = await TestClient.login(server, 'juliet', PW, { resource: 'desktop', presence: true });
    const got: string[] = [];
    for (let i = 0; i < 8; i++) {
      const m = await back.receive((e) => e.name === 'message' && e.getChildText('body') !== undefined, 5000);
      got.push(m.getChildText('body')!);
      assert.ok(m.getChild('delay', NS.delay), 'delayed delivery stamp');
      assert.equal(m.attrs.from, 'romeo@localhost/sender');
    }
    assert.deepEqual(got, [
      'before 0',
      'before 1',
      'before 2',
      'before 3',
      'before 4',
      'during 0',
      'during 1',
      'during 2',
    ]);
    await back.nothing((e) => e.name === 'message', 300);
    assert.equal(romeo.received.filter((e) => e.attrs.type === 'error').length, 0);
    await back.close();
    await romeo.close();
  });

  test('XEP-0198 §5: acknowledged messages are not stored again; a clean close ends the session at once', async () => {
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'acked', presence: true });
    const { tracker } = await enableSm(juliet);
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'acker' });
    for (let i = 0; i < 3; i++) romeo.send(chat('juliet@localhost/acked', `acked ${i}`));
    await until(() => tracker.bodies.length === 3, 3000, 'three messages');
    const a = juliet.receive((e) => e.name === 'a' && e.xmlns === NS.sm);
    juliet.send(xml('a', { xmlns: NS.sm, h: String(tracker.h) }));
    juliet.send(xml('r', { xmlns: NS.sm }));
    await a;
    await juliet.close();
    await until(
      () => server.core.sessions.ofAccount('juliet@localhost').length === 0,
      3000,
      'the session to end',
    );
    const back = await TestClient.login(server, 'juliet', PW, { resource: 'later', presence: true });
    await back.nothing((e) => e.name === 'message', 500);
    await back.close();
    await romeo.close();
  });

  test('XEP-0198 §5: without resumption, a dropped session sends its unacknowledged messages to offline storage at once', async () => {
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'noresume', presence: true });
    const { tracker } = await enableSm(juliet, false);
    tracker.autoAck = false;
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'nr' });
    romeo.send(chat('juliet@localhost/noresume', 'lost?'));
    await until(() => tracker.bodies.length === 1, 3000, 'the message');
    juliet.kill();
    await until(
      () => server.core.sessions.ofAccount('juliet@localhost').length === 0,
      3000,
      'the session to end',
    );
    await untilStored('juliet@localhost', 1);
    const back = await TestClient.login(server, 'juliet', PW, { resource: 'again', presence: true });
    const m = await back.receive((e) => e.name === 'message' && e.getChildText('body') === 'lost?', 5000);
    assert.ok(m.getChild('delay', NS.delay));
    await back.close();
    await romeo.close();
  });

  test('XEP-0198 §5: at the resource limit, the oldest hibernated session gives way to a new client', async () => {
    const tight = await startTestServer({
      limits: { maxResourcesPerAccount: 2 },
      modules: { ping: { idleMs: 0 }, sm: { resumeTimeoutMs: 60_000 } },
    });
    try {
      await tight.addUser('juliet', PW);
      for (const r of ['one', 'two']) {
        const c = await TestClient.login(tight, 'juliet', PW, { resource: r });
        await enableSm(c);
        c.kill();
        await until(
          () => tight.core.sessions.local(`juliet@localhost/${r}`)?.hibernated === true,
          3000,
          'hibernation',
        );
      }
      const fresh = await TestClient.login(tight, 'juliet', PW, { resource: 'three' });
      assert.equal(
        tight.core.sessions.get('juliet@localhost/one'),
        undefined,
        'the oldest hibernated session ended',
      );
      assert.equal(tight.core.sessions.local('juliet@localhost/two')?.hibernated, true);
      await fresh.close();
    } finally {
      await tight.destroy();
    }
  });

  test('XEP-0198 §5: with no offline storage, unacknowledged messages come back to their sender as errors', async () => {
    const bare = await startTestServer({
      modules: { ping: { idleMs: 0 }, offline: false, sm: { resumeTimeoutMs: 0 } },
    });
    try {
      await bare.addUser('romeo', PW);
      await bare.addUser('juliet', PW);
      const juliet = await TestClient.login(bare, 'juliet', PW, { resource: 'x', presence: true });
      const { tracker } = await enableSm(juliet);
      tracker.autoAck = false;
      const romeo = await TestClient.login(bare, 'romeo', PW, { resource: 'y', presence: true });
      romeo.send(
        xml('message', { to: 'juliet@localhost/x', type: 'chat', id: 'lost-1' }, xml('body', null, 'b')),
      );
      await until(() => tracker.bodies.length === 1, 3000, 'the message');
      juliet.kill();
      const err = await romeo.receive((e) => e.name === 'message' && e.attrs.type === 'error', 5000);
      assert.equal(err.attrs.id, 'lost-1');
      assert.ok(err.getChild('error')?.getChild('service-unavailable', NS.stanzas));
      await romeo.close();
    } finally {
      await bare.destroy();
    }
  });
});
