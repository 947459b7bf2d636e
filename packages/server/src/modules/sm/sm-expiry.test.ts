import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import { TestClient } from '../../../test/support/test-client.js';
import { enableSm, until } from '../../../test/hostile/support/sm-client.js';

const PW = 'expiry-password';

const chat = (to: string, body: string) => xml('message', { to, type: 'chat' }, xml('body', null, body));

/** The body a user sees: the message's own, or that of the message inside a carbon. */
function shownBody(e: Element): string | undefined {
  const wrapper = e.getChild('received', NS.carbons) ?? e.getChild('sent', NS.carbons);
  const inner = wrapper ? wrapper.getChild('forwarded', NS.forward)?.getChild('message', NS.client) : e;
  return inner?.getChildText('body');
}
const shows = (body: string) => (e: Element) => e.name === 'message' && shownBody(e) === body;

async function enableCarbons(c: TestClient): Promise<void> {
  const res = await c.iq(xml('iq', { type: 'set' }, xml('enable', { xmlns: NS.carbons })));
  assert.equal(res.attrs.type, 'result');
}

/** Every message body `c` has seen and not yet consumed, with how many times. */
function tally(c: TestClient): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of c.received) {
    const body = e.name === 'message' && e.attrs.type !== 'error' ? shownBody(e) : undefined;
    if (body !== undefined) out[body] = (out[body] ?? 0) + 1;
  }
  return out;
}

describe('XEP-0198 §5: a hibernated session that expires re-routes only what no other resource has', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      modules: { ping: { idleMs: 0 }, sm: { resumeTimeoutMs: 300, requestDelayMs: 50 } },
    });
    for (const u of ['romeo', 'juliet']) await server.addUser(u, PW);
  });
  after(() => server.destroy());

  /** romeo/a with resumable SM that never acknowledges, romeo/b, juliet; carbons on both or neither. */
  async function setup(carbons: boolean) {
    const a = await TestClient.login(server, 'romeo', PW, { resource: 'a', presence: true });
    const b = await TestClient.login(server, 'romeo', PW, { resource: 'b', presence: true });
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'balcony', presence: true });
    if (carbons) {
      await enableCarbons(a);
      await enableCarbons(b);
    }
    const { tracker } = await enableSm(a);
    tracker.autoAck = false; // everything stays unacknowledged: all of it is in the queue at expiry
    // Presence from b and juliet's arrival are not what this test is about.
    a.received.length = 0;
    b.received.length = 0;
    return { a, b, juliet };
  }

  async function dropAndExpire(a: TestClient, b: TestClient, during: () => Promise<void>): Promise<void> {
    a.kill();
    await until(
      () => server.core.sessions.local('romeo@localhost/a')?.hibernated === true,
      3000,
      'hibernation',
    );
    await during();
    // Presence unavailable for romeo/a is sent once its queue has been routed again.
    await b.receive(
      (e) => e.name === 'presence' && e.attrs.from === 'romeo@localhost/a' && e.attrs.type === 'unavailable',
    );
    // Whatever was routed went out before that presence; an IQ round trip flushes b's stream.
    await b.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: NS.ping })));
  }

  test('with carbons: the other resource sees each message once and never its own as incoming', async () => {
    const { a, b, juliet } = await setup(true);
    juliet.send(chat('romeo@localhost', 'bare before')); // both resources (equal priority)
    juliet.send(chat('romeo@localhost/a', 'to a before')); // a, and b as a carbon
    b.send(chat('juliet@localhost/balcony', 'b says before')); // a gets a <sent/> carbon
    b.send(chat('romeo@localhost/a', 'b to a')); // the account's own message
    for (const body of ['bare before', 'to a before', 'b says before', 'b to a'])
      await a.receive(shows(body));
    for (const body of ['bare before', 'to a before']) await b.receive(shows(body));
    b.received.length = 0;

    await dropAndExpire(a, b, async () => {
      juliet.send(chat('romeo@localhost/a', 'to a during')); // queued for a, carbon to b
      juliet.send(chat('romeo@localhost', 'bare during')); // a (hibernated, available) and b
      b.send(chat('juliet@localhost/balcony', 'b says during')); // a <sent/> carbon queued for a
      await b.receive(shows('to a during'));
      await b.receive(shows('bare during'));
      await juliet.receive(shows('b says during'));
    });

    // Each of these b already had once (consumed above); nothing came again, nothing of its own.
    assert.deepEqual(tally(b), {});
    await Promise.all([b.close(), juliet.close()]);
  });

  test('without carbons: what only the dropped resource had reaches the other one exactly once', async () => {
    const { a, b, juliet } = await setup(false);
    juliet.send(chat('romeo@localhost/a', 'only a before'));
    juliet.send(chat('romeo@localhost', 'both before'));
    b.send(chat('romeo@localhost/a', 'b to a again'));
    for (const body of ['only a before', 'both before', 'b to a again']) await a.receive(shows(body));
    await b.receive(shows('both before'));

    await dropAndExpire(a, b, async () => {
      juliet.send(chat('romeo@localhost/a', 'only a during'));
      juliet.send(chat('romeo@localhost', 'both during'));
      await b.receive(shows('both during'));
    });

    assert.deepEqual(tally(b), { 'only a before': 1, 'only a during': 1 });
    const resent = b.received.find(shows('only a before'))!;
    assert.equal(resent.attrs.from, 'juliet@localhost/balcony');
    assert.ok(resent.getChild('delay', NS.delay), 'routed again with a delay stamp');
    await Promise.all([b.close(), juliet.close()]);
  });
});
