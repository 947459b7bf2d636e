// XMPP over BOSH (XEP-0124, XEP-0206) on the http listener: sessions, SASL and restart, binding,
// stanzas both ways with a TCP client, long polls, `wait`, acknowledgements, termination and
// inactivity. Real sockets, a real server, a raw BOSH client (support/bosh-client.ts).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestClient } from '../support/test-client.js';
import { BoshClient, NS_XBOSH, bodyOf } from '../support/bosh-client.js';

const PW = 'bosh-conformance-pw';

const isMessage = (body: string) => (e: Element) => e.name === 'message' && e.getChildText('body') === body;

/**
 * `bosh` comes online; `watcher` (TCP) subscribes to its presence, which it approves; `watcher`
 * then sees it available.
 */
async function subscribe(watcher: TestClient, bosh: BoshClient): Promise<void> {
  const bare = bosh.jid.split('/')[0]!;
  void bosh.send(xml('presence'));
  await bosh.receive((e) => e.name === 'presence' && e.attrs.from === bosh.jid);
  watcher.send(xml('presence', { type: 'subscribe', to: bare }));
  const ask = await bosh.receive((e) => e.name === 'presence' && e.attrs.type === 'subscribe');
  void bosh.send(xml('presence', { type: 'subscribed', to: ask.attrs.from }));
  await watcher.receive((e) => e.name === 'presence' && e.attrs.type === 'subscribed');
  await watcher.receive((e) => e.name === 'presence' && e.attrs.from === bosh.jid && !e.attrs.type);
}

describe('XMPP over BOSH (XEP-0124, XEP-0206)', () => {
  let server: TestServer;
  let url: string;
  before(async () => {
    server = await startTestServer({ modules: { ping: { idleMs: 0 } } });
    url = `http://127.0.0.1:${server.port('http')}/http-bind`;
    for (const u of ['romeo', 'juliet', 'mercutio', 'tybalt', 'nurse', 'paris']) await server.addUser(u, PW);
  });
  after(() => server.destroy());

  test('XEP-0124 §7.2, XEP-0206 §4: the session creation response carries the session attributes and the stream features', async () => {
    const c = new BoshClient(url);
    const res = await c.create({ wait: 100, hold: 3, ver: '1.6', ack: '1' });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'text/xml; charset=utf-8');
    assert.equal(res.headers['access-control-allow-origin'], '*');
    const a = res.attrs;
    assert.match(a.sid ?? '', /^[\w-]{20,}$/, 'an unpredictable sid');
    assert.equal(a.wait, '60', 'wait is at most what the server allows');
    assert.equal(a.hold, '1', 'hold is at most what the server allows');
    assert.equal(a.requests, '2', 'requests = hold + 1');
    assert.equal(a.inactivity, '60');
    assert.equal(a.polling, '2');
    assert.equal(a.ver, '1.6', "the lower of the client's version and ours");
    assert.equal(a.ack, c.session.ack, 'acknowledgements: ack = the creation rid');
    assert.equal(Number(a.ack), c.rid - 1);
    assert.equal(a.from, 'localhost');
    assert.equal(a['xmpp:version'], '1.0');
    assert.equal(a['xmpp:restartlogic'], 'true');
    assert.equal(a['xmlns:xmpp'], NS_XBOSH);
    assert.equal(a.maxpause, undefined, 'pausing is not offered');
    const mechanisms = c.features
      ?.getChild('mechanisms', NS.sasl)
      ?.getChildren('mechanism')
      .map((m) => m.text());
    assert.ok(mechanisms?.includes('SCRAM-SHA-256'), c.features?.toString());
    assert.equal(c.features?.getChild('starttls', NS.tls), undefined, 'no STARTTLS inside BOSH');
    const ours = await new BoshClient(url).create({ ver: '2.3' });
    assert.equal(ours.attrs.ver, '1.11');
    await c.terminate();
  });

  test('XEP-0124 §7.1: a CORS preflight is answered for web clients on other origins', async () => {
    const res = await fetch(url, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://webclient.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type',
      },
    });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    assert.match(res.headers.get('access-control-allow-methods') ?? '', /POST/);
    assert.match(res.headers.get('access-control-allow-headers') ?? '', /content-type/i);
    const get = await fetch(url);
    assert.equal(get.status, 405);
  });

  test('XEP-0206 §5: SCRAM, restart, bind; messages both ways with a TCP client', async () => {
    const romeo = await BoshClient.login(url, 'romeo', PW, { resource: 'bosh' });
    assert.equal(romeo.jid, 'romeo@localhost/bosh');
    assert.ok(romeo.features?.getChild('bind', NS.bind), 'features after the restart offer binding');
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'tcp' });
    void romeo.send(
      xml('message', { to: juliet.jid, type: 'chat', id: 'b1' }, xml('body', null, 'over BOSH')),
    );
    const got = await juliet.receive(isMessage('over BOSH'));
    assert.equal(got.attrs.from, 'romeo@localhost/bosh');
    juliet.send(xml('message', { to: romeo.jid, type: 'chat', id: 't1' }, xml('body', null, 'over TCP')));
    const back = await romeo.receive(isMessage('over TCP'));
    assert.equal(back.attrs.from, juliet.jid);
    assert.equal(back.xmlns, NS.client);
    // XEP-0206 §2: a stanza left in the wrapper's namespace is read as jabber:client.
    void romeo.request([`<message to='${juliet.jid}' type='chat'><body>no namespace</body></message>`]);
    await juliet.receive(isMessage('no namespace'));
    const ping = await romeo.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: NS.ping })));
    assert.equal(ping.attrs.type, 'result');
    await romeo.terminate();
    await juliet.close();
  });

  test('XEP-0124 §8: a held request is answered as soon as a stanza arrives (long poll)', async () => {
    const c = await BoshClient.login(url, 'mercutio', PW, { resource: 'poll', create: { wait: 30 } });
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'poller' });
    await c.idle();
    const started = Date.now();
    const poll = c.request();
    await sleep(300);
    juliet.send(xml('message', { to: c.jid, type: 'chat' }, xml('body', null, 'wake up')));
    const res = await poll;
    const took = Date.now() - started;
    assert.ok(took >= 250 && took < 5000, `answered after ${took} ms`);
    assert.equal(res.children[0]?.getChildText('body'), 'wake up', res.raw);
    await c.terminate();
    await juliet.close();
  });

  test('XEP-0124 §8: with nothing to send, a held request gets an empty body after `wait`', async () => {
    const c = await BoshClient.login(url, 'tybalt', PW, { resource: 'wait', create: { wait: 1 } });
    assert.equal(c.session.wait, '1');
    await c.idle();
    const started = Date.now();
    const res = await c.request();
    const took = Date.now() - started;
    assert.ok(took >= 900 && took < 4000, `answered after ${took} ms`);
    assert.equal(res.children.length, 0, res.raw);
    assert.equal(res.attrs.type, undefined);
    assert.match(res.raw, /^<body xmlns="http:\/\/jabber.org\/protocol\/httpbind"\/>$/);
    await c.terminate();
  });

  test('XEP-0124 §9.1: with acknowledgements on, a response to an earlier request acknowledges the later one', async () => {
    const c = await BoshClient.login(url, 'nurse', PW, { resource: 'ack', create: { ack: '1', wait: 30 } });
    await c.idle();
    const first = c.request();
    await sleep(100);
    const second = c.request([xml('presence')]);
    const r1 = await first;
    assert.equal(r1.attrs.ack, String(c.rid - 1), r1.raw);
    await c.terminate();
    await second;
  });

  test('XEP-0124 §12: terminate ends the session; the contact sees unavailable presence', async () => {
    const paris = await BoshClient.login(url, 'paris', PW, { resource: 'leaving' });
    const watcher = await TestClient.login(server, 'romeo', PW, { resource: 'watch', presence: true });
    await subscribe(watcher, paris);
    const res = await paris.terminate();
    assert.equal(res.attrs.type, 'terminate', res.raw);
    assert.equal(res.attrs.condition, undefined, 'a clean end');
    const gone = await watcher.receive(
      (e) => e.name === 'presence' && e.attrs.from === paris.jid && e.attrs.type === 'unavailable',
    );
    assert.ok(gone);
    // XEP-0124 §14: the session is gone; its sid is no longer served after a while, never reopened.
    const again = await paris.request();
    assert.equal(again.attrs.type, 'terminate', again.raw);
    await watcher.close();
  });

  test('XEP-0206 §6: a stream error ends the session with remote-stream-error and the error inside', async () => {
    const c = new BoshClient(url, { domain: 'nowhere.example' });
    const res = await c.create();
    assert.equal(res.attrs.type, 'terminate', res.raw);
    assert.equal(res.attrs.condition, 'remote-stream-error');
    const error = res.children.find((e) => e.name === 'error' && e.xmlns === NS.stream);
    assert.ok(error?.getChild('host-unknown', NS.streams), res.raw);
  });

  test('XEP-0124 §7: the wrapper without xmpp:version and xml:lang still opens an XMPP 1.0 stream', async () => {
    const c = new BoshClient(url);
    const res = await c.post(bodyOf({ rid: c.rid++, to: 'localhost', wait: 5, hold: 1, ver: '1.11' }));
    assert.equal(res.attrs['xmpp:version'], '1.0', res.raw);
    assert.ok(res.children.some((e) => e.name === 'features'));
    c.sid = res.attrs.sid!;
    await c.terminate();
  });
});

describe('XMPP over BOSH: inactivity (XEP-0124 §10)', () => {
  let server: TestServer;
  let url: string;
  before(async () => {
    server = await startTestServer({ modules: { ping: { idleMs: 0 } }, bosh: { inactivitySeconds: 1 } });
    url = `http://127.0.0.1:${server.port('http')}/http-bind`;
    await server.addUser('benvolio', PW);
    await server.addUser('romeo', PW);
  });
  after(() => server.destroy());

  test('a session left without requests for `inactivity` seconds ends like a dropped connection', async () => {
    const c = await BoshClient.login(url, 'benvolio', PW, { resource: 'idle', create: { wait: 2 } });
    assert.equal(c.session.inactivity, '1');
    const watcher = await TestClient.login(server, 'romeo', PW, { resource: 'watch', presence: true });
    await subscribe(watcher, c);
    await c.idle(); // the last held request comes back after `wait`; then no request is made
    const gone = await watcher.receive(
      (e) => e.name === 'presence' && e.attrs.from === c.jid && e.attrs.type === 'unavailable',
      5000,
    );
    assert.ok(gone);
    const late = await c.request();
    assert.equal(late.attrs.type, 'terminate');
    assert.equal(late.attrs.condition, 'item-not-found', 'as if the session did not exist');
    await watcher.close();
  });
});
