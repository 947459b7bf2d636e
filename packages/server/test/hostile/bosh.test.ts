// BOSH (XEP-0124) against bad input: requests out of order, resent, outside the window, for no
// session, too many at once, too large, malformed, too frequent, with a broken key sequence, and a
// flood of sessions from one address. Each gets its terminal condition, and the other sessions
// (a BOSH one and a TCP one, checked after every test) carry on.
import { test, describe, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestClient } from '../support/test-client.js';
import { BoshClient, bodyOf, NS_HTTPBIND } from '../support/bosh-client.js';

const PW = 'bosh-hostile-pw';
const MAX_STANZA = 16 * 1024;

const body = (text: string) => (e: Element) => e.name === 'message' && e.getChildText('body') === text;
const chat = (to: string, text: string) => xml('message', { to, type: 'chat' }, xml('body', null, text));

describe('BOSH (XEP-0124) against hostile and broken clients', () => {
  let server: TestServer;
  let url: string;
  let juliet: TestClient;
  let bystander: BoshClient;
  let n = 0;

  before(async () => {
    server = await startTestServer({
      modules: { ping: { idleMs: 0 } },
      limits: { maxStanzaBytes: MAX_STANZA },
    });
    url = `http://127.0.0.1:${server.port('http')}/http-bind`;
    for (const u of ['romeo', 'juliet', 'nurse']) await server.addUser(u, PW);
    juliet = await TestClient.login(server, 'juliet', PW, { resource: 'tcp' });
    bystander = await BoshClient.login(url, 'nurse', PW, { resource: 'bystander', create: { wait: 5 } });
  });
  after(async () => {
    await juliet.close();
    await server.destroy();
  });
  // Whatever a test did to its own session, the other sessions still work both ways.
  afterEach(async () => {
    const text = `still here ${++n}`;
    void bystander.send(chat(juliet.jid, text));
    await juliet.receive(body(text));
    juliet.send(chat(bystander.jid, `${text} too`));
    await bystander.receive(body(`${text} too`));
  });

  /** A logged-in session with no request out, for tests that number their requests themselves. */
  async function quietSession(create: Record<string, string | number> = {}): Promise<BoshClient> {
    const c = await BoshClient.login(url, 'romeo', PW, { resource: `r${n}`, create: { wait: 2, ...create } });
    await c.idle();
    return c;
  }

  test('XEP-0124 §14.2: requests arriving out of order are processed in rid order', async () => {
    const c = await quietSession();
    const first = c.rid;
    c.rid += 2;
    const later = c.request([chat(juliet.jid, 'second')], {}, first + 1);
    await sleep(200);
    await juliet.nothing(body('second'), 200);
    const earlier = c.request([chat(juliet.jid, 'first')], {}, first);
    const one = await juliet.receive(
      (e) => e.name === 'message' && /^(first|second)$/.test(e.getChildText('body') ?? ''),
    );
    assert.equal(one.getChildText('body'), 'first');
    await juliet.receive(body('second'));
    const [r1, r2] = await Promise.all([earlier, later]);
    assert.equal(r1.attrs.type, undefined, r1.raw);
    assert.equal(r2.attrs.type, undefined, r2.raw);
    await c.terminate();
  });

  test('XEP-0124 §14.3: a resent request gets the cached response; its payloads are not processed twice', async () => {
    const c = await quietSession();
    const rid = c.rid++;
    const text = bodyOf({ rid, sid: c.sid }, [chat(juliet.jid, 'only once')]);
    const original = await c.post(text);
    await juliet.receive(body('only once'));
    const again = await c.post(text);
    assert.equal(again.raw, original.raw);
    await juliet.nothing(body('only once'), 300);
    await c.terminate();
  });

  test('XEP-0124 §14.2: a rid far beyond the window ends the session with item-not-found', async () => {
    const c = await quietSession();
    const res = await c.request([], {}, c.rid + 100);
    assert.equal(res.attrs.type, 'terminate', res.raw);
    assert.equal(res.attrs.condition, 'item-not-found');
    const after = await c.request();
    assert.equal(after.attrs.condition, 'item-not-found', 'the session is gone');
  });

  test('XEP-0124 §14.3: an old rid whose response is no longer kept ends the session with item-not-found', async () => {
    const c = await quietSession();
    const res = await c.request([], {}, c.rid - 10);
    assert.equal(res.attrs.type, 'terminate', res.raw);
    assert.equal(res.attrs.condition, 'item-not-found');
  });

  test('XEP-0124 §17.2: an unknown sid gets item-not-found', async () => {
    const c = new BoshClient(url);
    c.sid = 'no-such-session';
    const res = await c.request();
    assert.equal(res.status, 200);
    assert.equal(res.attrs.type, 'terminate', res.raw);
    assert.equal(res.attrs.condition, 'item-not-found');
  });

  test('XEP-0124 §11: more simultaneous requests than `requests` end the session with policy-violation', async () => {
    const c = await quietSession({ wait: 10 });
    assert.equal(c.session.requests, '2');
    const base = c.rid;
    c.rid += 3;
    const held = c.request([], {}, base); // held: nothing to say
    await sleep(100);
    const ahead = c.request([], {}, base + 2); // waits for base + 1
    await sleep(100);
    const third = await c.request([], {}, base + 1); // a third request while two are unanswered
    assert.equal(third.attrs.type, 'terminate', third.raw);
    assert.equal(third.attrs.condition, 'policy-violation');
    for (const r of await Promise.all([held, ahead])) assert.equal(r.attrs.type, 'terminate', r.raw);
  });

  test('XEP-0124 §12: empty requests more often than `polling` end a polling session with policy-violation', async () => {
    const c = new BoshClient(url);
    await c.create({ hold: 0, wait: 10 });
    assert.equal(c.session.hold, '0');
    assert.equal(c.session.polling, '2');
    const first = await c.request();
    assert.equal(first.attrs.type, undefined, first.raw);
    const second = await c.request();
    assert.equal(second.attrs.type, 'terminate', second.raw);
    assert.equal(second.attrs.condition, 'policy-violation');
  });

  test('a body over twice the stanza limit ends its session with policy-violation, unread', async () => {
    const c = await quietSession();
    const big = bodyOf({ rid: c.rid++, sid: c.sid }, [chat(juliet.jid, 'x'.repeat(MAX_STANZA * 3))]);
    const res = await c.post(big);
    assert.equal(res.attrs.type, 'terminate', res.raw);
    assert.equal(res.attrs.condition, 'policy-violation');
    await juliet.nothing(
      (e) => e.name === 'message' && (e.getChildText('body') ?? '').startsWith('xxx'),
      200,
    );
    const after = await c.request();
    assert.equal(after.attrs.condition, 'item-not-found', 'the session is gone');
  });

  test('RFC 6120 §13.12: one payload over the stanza limit ends its session with policy-violation', async () => {
    const c = await quietSession();
    const res = await c.request([chat(juliet.jid, 'y'.repeat(MAX_STANZA + 1024))]);
    assert.equal(res.attrs.type, 'terminate', res.raw);
    assert.equal(res.attrs.condition, 'policy-violation');
  });

  test('a body too large to drain is cut without an answer, and its session is not touched', async () => {
    const c = await quietSession();
    await assert.rejects(c.post(bodyOf({ rid: c.rid, sid: c.sid }, ['z'.repeat(MAX_STANZA * 10)])));
    void c.send(chat(juliet.jid, 'after the cut'));
    await juliet.receive(body('after the cut'));
    await c.terminate();
  });

  for (const [what, make] of [
    [
      'an unclosed payload',
      (c: BoshClient) => bodyOf({ rid: c.rid++, sid: c.sid }, ['<message><body>']).replace('</body>', ''),
    ],
    [
      'text between payloads',
      (c: BoshClient) =>
        `<body xmlns='${NS_HTTPBIND}' rid='${c.rid++}' sid='${c.sid}'>hello<presence/></body>`,
    ],
    [
      'a comment',
      (c: BoshClient) => `<body xmlns='${NS_HTTPBIND}' rid='${c.rid++}' sid='${c.sid}'><!-- x --></body>`,
    ],
    [
      'a DTD',
      (c: BoshClient) =>
        `<!DOCTYPE body [<!ENTITY a 'b'>]><body xmlns='${NS_HTTPBIND}' rid='${c.rid++}' sid='${c.sid}'/>`,
    ],
    [
      'another root element',
      (c: BoshClient) => `<request xmlns='${NS_HTTPBIND}' rid='${c.rid++}' sid='${c.sid}'/>`,
    ],
    [
      'a rid that is no number',
      (c: BoshClient) => `<body xmlns='${NS_HTTPBIND}' rid='seven' sid='${c.sid}'/>`,
    ],
  ] as const) {
    test(`XEP-0124 §17.2: ${what} ends its session with bad-request`, async () => {
      const c = await quietSession();
      const res = await c.post(make(c));
      assert.equal(res.status, 200);
      assert.equal(res.attrs.type, 'terminate', res.raw);
      assert.equal(res.attrs.condition, 'bad-request');
      const after = await c.request();
      assert.equal(after.attrs.condition, 'item-not-found', 'the session is gone');
    });
  }

  test('XEP-0124 §17.2: a body that is not XML at all gets bad-request', async () => {
    const res = await new BoshClient(url).post('hello, server');
    assert.equal(res.attrs.type, 'terminate', res.raw);
    assert.equal(res.attrs.condition, 'bad-request');
  });

  test('XEP-0124 §15: a broken key sequence ends the session with item-not-found', async () => {
    const sha1 = (s: string) => createHash('sha1').update(s).digest('hex');
    const keys = ['seed'];
    for (let i = 0; i < 4; i++) keys.push(sha1(keys.at(-1)!)); // K(1) … K(4)
    const c = new BoshClient(url);
    await c.create({ newkey: keys[4]!, wait: 1 });
    const ok = await c.request([], { key: keys[3]! }); // K(3) hashes to K(4)
    assert.equal(ok.attrs.type, undefined, ok.raw);
    const bad = await c.request([], { key: keys[3]! }); // K(3) again: must be K(2)
    assert.equal(bad.attrs.type, 'terminate', bad.raw);
    assert.equal(bad.attrs.condition, 'item-not-found');
  });

  test('XEP-0124 §15: with keys, a resent request takes over a response only with the key it first carried', async () => {
    const sha1 = (s: string) => createHash('sha1').update(s).digest('hex');
    const keys = ['seed2'];
    for (let i = 0; i < 4; i++) keys.push(sha1(keys.at(-1)!));
    const c = new BoshClient(url);
    await c.create({ newkey: keys[4]!, wait: 1 });
    const rid = c.rid;
    const ok = await c.request([], { key: keys[3]! });
    assert.equal(ok.attrs.type, undefined, ok.raw);
    // Someone who saw the sid and rid, without the key: refused, and the session is left alone.
    for (const key of [undefined, keys[2]!]) {
      const diverted = await c.request([], key === undefined ? {} : { key }, rid);
      assert.equal(diverted.attrs.type, 'terminate', diverted.raw);
      assert.equal(diverted.attrs.condition, 'item-not-found');
    }
    // The client itself, resending with its key, gets the cached response; and carries on.
    const again = await c.request([], { key: keys[3]! }, rid);
    assert.equal(again.raw, ok.raw);
    const next = await c.request([], { key: keys[2]! });
    assert.equal(next.attrs.type, undefined, next.raw);
    await c.terminate();
  });

  test('XEP-0206 §5: a restart request with payloads is bad-request', async () => {
    const c = await quietSession();
    const res = await c.request([xml('presence')], { 'xmpp:restart': 'true' });
    assert.equal(res.attrs.type, 'terminate', res.raw);
    assert.equal(res.attrs.condition, 'bad-request');
  });

  test('XEP-0124 §7.1: a content attribute other than plain XML is not echoed; no response can render as a page', async () => {
    // A newline inside the attribute (written &#10;) once reached writeHead from a timer and ended
    // the process; text/html would have let a cached response run script on the BOSH origin.
    for (const content of ['text/xml\n;a=b', 'text/html', 'text/xml; charset=utf-8\u2028']) {
      const c = new BoshClient(url);
      const res = await c.create({ content, wait: 1 });
      assert.equal(res.headers['content-type'], 'text/xml; charset=utf-8', content);
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
      assert.match(String(res.headers['content-security-policy']), /default-src 'none'; sandbox/);
      // Later responses (written from the wait timer) too.
      const later = await c.poll();
      assert.equal(later.headers['content-type'], 'text/xml; charset=utf-8');
      await c.terminate();
    }
    const xmlOk = new BoshClient(url);
    const ok = await xmlOk.create({ content: 'application/xml; charset=utf-8' });
    assert.equal(ok.headers['content-type'], 'application/xml; charset=utf-8');
    await xmlOk.terminate();
  });

  test('XEP-0124 §16.1: a request without a sid nor a valid rid creates nothing', async () => {
    const before = server.core.streams.size;
    const res = await new BoshClient(url).post(
      `<body xmlns='${NS_HTTPBIND}' to='localhost' wait='5' hold='1' ver='1.6'/>`,
    );
    assert.equal(res.attrs.condition, 'bad-request', res.raw);
    assert.equal(server.core.streams.size, before);
  });

  test('stanzas before authentication end the stream as on TCP (not-authorized)', async () => {
    const c = new BoshClient(url);
    await c.create();
    const res = await c.request([chat('juliet@localhost', 'sneaky')]);
    const end = res.attrs.type === 'terminate' ? res : await c.request();
    assert.equal(end.attrs.condition, 'remote-stream-error', end.raw);
    assert.ok(
      end.children
        .find((e) => e.name === 'error' && e.xmlns === NS.stream)
        ?.getChild('not-authorized', NS.streams),
    );
    await juliet.nothing(body('sneaky'), 200);
  });
});

describe('BOSH: a flood of session creations from one address', () => {
  let server: TestServer;
  let url: string;
  before(async () => {
    server = await startTestServer({
      modules: { ping: { idleMs: 0 }, limits: { maxUnauthenticatedPerIp: 3, maxConnectionsPerIp: 5 } },
    });
    url = `http://127.0.0.1:${server.port('http')}/http-bind`;
    for (const u of ['romeo', 'juliet', 'tybalt']) await server.addUser(u, PW);
  });
  after(() => server.destroy());

  test('unauthenticated sessions beyond the cap push out the oldest; past the connection cap, creations are refused', async () => {
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'tcp' });
    const flood: BoshClient[] = [];
    for (let i = 0; i < 8; i++) {
      const c = new BoshClient(url);
      const res = await c.create({ wait: 1 });
      assert.equal(res.attrs.type, undefined, `creation ${i}: ${res.raw}`);
      flood.push(c);
    }
    const answers = await Promise.all(flood.map((c) => c.request()));
    const ended = answers.filter((r) => r.attrs.type === 'terminate');
    assert.equal(ended.length, 5, answers.map((r) => r.raw).join('\n'));
    for (const r of ended) {
      assert.equal(r.attrs.condition, 'remote-stream-error', r.raw);
      assert.ok(r.children[0]?.getChild('policy-violation', NS.streams), r.raw);
    }
    for (const r of answers.slice(5)) assert.equal(r.attrs.type, undefined, 'the newest three live');
    // Authenticated sessions are not pushed out: with juliet and four logged-in BOSH sessions the
    // address is at its cap, and the next creation is refused.
    const users = [];
    for (const u of ['romeo', 'romeo', 'tybalt', 'tybalt'])
      users.push(await BoshClient.login(url, u, PW, { resource: `u${users.length}`, create: { wait: 1 } }));
    const refused = await new BoshClient(url).create();
    assert.equal(refused.attrs.type, 'terminate', refused.raw);
    assert.equal(refused.attrs.condition, 'policy-violation');
    // Those that are in still work.
    void users[0]!.send(chat(juliet.jid, 'in'));
    await juliet.receive(body('in'));
    await Promise.all(users.map((u) => u.terminate()));
    await juliet.close();
  });
});
