import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestClient } from '../support/test-client.js';
import { codes } from '../support/muc.js';

const PW = 'federation-im-pw-1';

/** Two federating Natter servers, a.test and b.test, with their MUC services routed too. */
async function pair(): Promise<{ a: TestServer; b: TestServer }> {
  const a = await startTestServer({ hosts: ['a.test'] }, { s2s: true });
  const b = await startTestServer({ hosts: ['b.test'] }, { s2s: true });
  for (const [from, to] of [
    [a, b],
    [b, a],
  ] as const) {
    from.core.config.s2s.routes[to.domain] = `127.0.0.1:${to.port('s2s')}`;
    from.core.config.s2s.routes[`conference.${to.domain}`] = `127.0.0.1:${to.port('s2s')}`;
  }
  await a.addUser('alice', PW);
  await b.addUser('bob', PW);
  return { a, b };
}

async function rosterItem(c: TestClient, jid: string): Promise<Element | undefined> {
  const r = await c.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS.roster })));
  return r
    .getChild('query', NS.roster)
    ?.getChildren('item')
    .find((i) => i.attrs.jid === jid);
}

async function eventually<T>(
  f: () => Promise<T>,
  ok: (v: T) => boolean,
  what: string,
  ms = 10_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: last ${String(v)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('instant messaging across two Natter servers', () => {
  let a: TestServer;
  let b: TestServer;
  before(async () => {
    ({ a, b } = await pair());
  });
  after(async () => {
    await a?.destroy();
    await b?.destroy();
  });

  test('RFC 6121: a subscription across domains ends "both" on both rosters, presence seen both ways', async () => {
    const alice = await TestClient.login(a, 'alice', PW, { resource: 'phone', presence: true });
    const bob = await TestClient.login(b, 'bob', PW, { resource: 'desk', presence: true });
    alice.send(xml('presence', { to: 'bob@b.test', type: 'subscribe' }));
    const req = await bob.receive((e) => e.name === 'presence' && e.attrs.type === 'subscribe', 10_000);
    assert.equal(req.attrs.from, 'alice@a.test');
    bob.send(xml('presence', { to: 'alice@a.test', type: 'subscribed' }));
    // Approved: alice's server probes, and bob's available presence reaches alice.
    const seen = await alice.receive(
      (e) => e.name === 'presence' && e.attrs.from === 'bob@b.test/desk' && e.attrs.type === undefined,
      10_000,
    );
    assert.ok(seen);
    bob.send(xml('presence', { to: 'alice@a.test', type: 'subscribe' }));
    await alice.receive((e) => e.name === 'presence' && e.attrs.type === 'subscribe', 10_000);
    alice.send(xml('presence', { to: 'bob@b.test', type: 'subscribed' }));
    await bob.receive(
      (e) => e.name === 'presence' && e.attrs.from === 'alice@a.test/phone' && e.attrs.type === undefined,
      10_000,
    );
    const aliceItem = await eventually(
      () => rosterItem(alice, 'bob@b.test'),
      (i) => i?.attrs.subscription === 'both',
      "bob in alice's roster with subscription both",
    );
    assert.equal(aliceItem?.attrs.ask, undefined);
    await eventually(
      () => rosterItem(bob, 'alice@a.test'),
      (i) => i?.attrs.subscription === 'both',
      "alice in bob's roster with subscription both",
    );

    // Logging out is seen across (unavailable), and logging in again too (the probe is answered).
    await bob.close();
    await alice.receive(
      (e) => e.name === 'presence' && e.attrs.from === 'bob@b.test/desk' && e.attrs.type === 'unavailable',
      10_000,
    );
    const bob2 = await TestClient.login(b, 'bob', PW, { resource: 'laptop', presence: true });
    await alice.receive((e) => e.name === 'presence' && e.attrs.from === 'bob@b.test/laptop', 10_000);
    // bob's server probed alice at login: her presence arrives without her sending anything.
    await bob2.receive((e) => e.name === 'presence' && e.attrs.from === 'alice@a.test/phone', 10_000);
    await alice.close();
    await bob2.close();
  });

  test('XEP-0030: disco#info of the other server is answered across', async () => {
    const alice = await TestClient.login(a, 'alice', PW);
    const r = await alice.iq(
      xml('iq', { type: 'get', to: 'b.test' }, xml('query', { xmlns: NS.discoInfo })),
      10_000,
    );
    assert.equal(r.attrs.type, 'result');
    const features = r
      .getChild('query', NS.discoInfo)
      ?.getChildren('feature')
      .map((f) => f.attrs.var);
    assert.ok(features?.includes(NS.discoInfo));
    await alice.close();
  });

  test("XEP-0054: a vCard is fetched from the other server's account", async () => {
    const bob = await TestClient.login(b, 'bob', PW);
    const set = await bob.iq(
      xml('iq', { type: 'set' }, xml('vCard', { xmlns: 'vcard-temp' }, xml('FN', {}, 'Bob Bäcker'))),
    );
    assert.equal(set.attrs.type, 'result');
    const alice = await TestClient.login(a, 'alice', PW);
    const r = await alice.iq(
      xml('iq', { type: 'get', to: 'bob@b.test' }, xml('vCard', { xmlns: 'vcard-temp' })),
      10_000,
    );
    assert.equal(r.attrs.type, 'result');
    assert.equal(r.attrs.from, 'bob@b.test');
    assert.equal(r.getChild('vCard', 'vcard-temp')?.getChildText('FN'), 'Bob Bäcker');
    await alice.close();
    await bob.close();
  });

  test('XEP-0045: a remote user joins a room here and talks; a local user sees them', async () => {
    const alice = await TestClient.login(a, 'alice', PW, { presence: true });
    const bob = await TestClient.login(b, 'bob', PW, { presence: true });
    const room = 'lobby@conference.a.test';
    alice.send(xml('presence', { to: `${room}/alice` }, xml('x', { xmlns: NS.muc })));
    const self = await alice.receive(
      (e) => e.name === 'presence' && e.attrs.from === `${room}/alice` && codes(e).includes(110),
      10_000,
    );
    assert.ok(self);
    if (codes(self).includes(201)) {
      // A new room is locked until configured (XEP-0045 §10.1.2): accept the default configuration.
      const ok = await alice.iq(
        xml(
          'iq',
          { type: 'set', to: room },
          xml('query', { xmlns: NS.mucOwner }, xml('x', { xmlns: 'jabber:x:data', type: 'submit' })),
        ),
      );
      assert.equal(ok.attrs.type, 'result');
    }
    bob.send(xml('presence', { to: `${room}/bob` }, xml('x', { xmlns: NS.muc })));
    const bobSelf = await bob.receive(
      (e) => e.name === 'presence' && e.attrs.from === `${room}/bob` && codes(e).includes(110),
      10_000,
    );
    assert.ok(bobSelf);
    await alice.receive((e) => e.name === 'presence' && e.attrs.from === `${room}/bob`, 10_000);
    bob.send(xml('message', { to: room, type: 'groupchat' }, xml('body', {}, 'hallo from b.test')));
    const heard = await alice.receive(
      (e) =>
        e.name === 'message' &&
        e.attrs.type === 'groupchat' &&
        e.getChildText('body') === 'hallo from b.test',
      10_000,
    );
    assert.equal(heard.attrs.from, `${room}/bob`);
    const echo = await bob.receive(
      (e) =>
        e.name === 'message' &&
        e.attrs.type === 'groupchat' &&
        e.getChildText('body') === 'hallo from b.test',
      10_000,
    );
    assert.equal(echo.attrs.from, `${room}/bob`);
    // Leaving is seen across as well.
    bob.send(xml('presence', { to: `${room}/bob`, type: 'unavailable' }));
    await alice.receive(
      (e) => e.name === 'presence' && e.attrs.from === `${room}/bob` && e.attrs.type === 'unavailable',
      10_000,
    );
    await alice.close();
    await bob.close();
  });
});
