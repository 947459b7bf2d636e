import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import { TestClient } from '../../../test/support/test-client.js';

const PW = 'limits-pw';

let qn = 0;
/** Bodies of the whole archive of `c`'s account, oldest first. */
async function archivedBodies(c: TestClient): Promise<string[]> {
  const queryid = `l${++qn}`;
  const iq = await c.iq(
    xml(
      'iq',
      { type: 'set' },
      xml('query', { xmlns: NS.mam, queryid }, xml('set', { xmlns: NS.rsm }, xml('max', null, '100'))),
    ),
  );
  assert.equal(iq.attrs.type, 'result', iq.toString());
  const bodies: string[] = [];
  for (let i = 0; i < c.received.length;) {
    const e = c.received[i]!;
    const r = e.name === 'message' ? e.getChild('result', NS.mam) : undefined;
    if (r && r.attrs.queryid === queryid) {
      c.received.splice(i, 1);
      const m = r.getChild('forwarded', NS.forward)!.getChild('message', NS.client)!;
      bodies.push(m.getChildText('body') ?? '');
    } else i++;
  }
  return bodies;
}

const chat = (to: string, body: string) => xml('message', { to, type: 'chat' }, xml('body', null, body));
const withBody = (body: string) => (e: Element) =>
  e.name === 'message' && e.attrs.type !== 'error' && e.getChildText('body') === body;
const errorFor = (body: string) => (e: Element) =>
  e.name === 'message' && e.attrs.type === 'error' && e.getChildText('body') === body;
const ping = (c: TestClient) =>
  c.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: NS.ping })));

async function addContact(owner: TestClient, contact: string): Promise<void> {
  const res = await owner.iq(
    xml('iq', { type: 'set' }, xml('query', { xmlns: NS.roster }, xml('item', { jid: contact }))),
  );
  assert.equal(res.attrs.type, 'result', res.toString());
}

describe('archive limits: bounced messages are never archived', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      modules: { ping: { idleMs: 0 }, offline: { quota: 1 }, mam: { archiveStrangers: true } },
    });
    for (const u of ['writer', 'absent']) await server.addUser(u, PW);
  });
  after(() => server.destroy());

  test('a message refused by the offline quota is in neither archive; one to no such user is not in the sender’s', async () => {
    const writer = await TestClient.login(server, 'writer', PW, { resource: 'w', presence: true });
    writer.send(chat('absent@localhost', 'stored offline'));
    writer.send(chat('absent@localhost', 'over the quota'));
    writer.send(chat('nobody@localhost', 'to no one'));
    await writer.receive(errorFor('over the quota'));
    await writer.receive(errorFor('to no one'));
    assert.deepEqual(await archivedBodies(writer), ['stored offline']);
    await writer.close();

    const absent = await TestClient.login(server, 'absent', PW, { resource: 'back' });
    assert.deepEqual(await archivedBodies(absent), ['stored offline']);
    await absent.close();
  });
});

describe('archive limits: per-owner quotas', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      modules: {
        ping: { idleMs: 0 },
        mam: { maxMessages: 3, maxBytes: 3000, archiveStrangers: true },
      },
    });
    for (const u of ['keeper', 'talker', 'big', 'bigtalker']) await server.addUser(u, PW);
  });
  after(() => server.destroy());

  test('past maxMessages the oldest messages of that archive are dropped', async () => {
    const keeper = await TestClient.login(server, 'keeper', PW, { resource: 'k', presence: true });
    const talker = await TestClient.login(server, 'talker', PW, { resource: 't', presence: true });
    for (let i = 1; i <= 5; i++) talker.send(chat('keeper@localhost', `m${i}`));
    await keeper.receive(withBody('m5'));
    assert.deepEqual(await archivedBodies(keeper), ['m3', 'm4', 'm5']);
    // A new message pushes out the oldest one (a ring buffer).
    talker.send(chat('keeper@localhost', 'm6'));
    await keeper.receive(withBody('m6'));
    assert.deepEqual(await archivedBodies(keeper), ['m4', 'm5', 'm6']);
    await Promise.all([keeper.close(), talker.close()]);
  });

  test('past maxBytes the oldest messages of that archive are dropped', async () => {
    const big = await TestClient.login(server, 'big', PW, { resource: 'b', presence: true });
    const talker = await TestClient.login(server, 'bigtalker', PW, { resource: 't', presence: true });
    const body = (n: number) => `${n}:${'x'.repeat(1200)}`;
    for (let i = 1; i <= 3; i++) talker.send(chat('big@localhost', body(i)));
    await big.receive(withBody(body(3)));
    // Each stored stanza is a little over 1,200 bytes: two fit in 3,000.
    assert.deepEqual(await archivedBodies(big), [body(2), body(3)]);
    await Promise.all([big.close(), talker.close()]);
  });
});

describe('archive limits: messages from strangers', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      modules: {
        ping: { idleMs: 0 },
        // Two per minute (one more every 30 s): far more than this test takes.
        mam: { archiveStrangers: 'rate-limited', strangerMessagesPerMinute: 2 },
      },
    });
    for (const u of ['owner', 'friend', 'stranger', 'private', 'nosy']) await server.addUser(u, PW);
  });
  after(() => server.destroy());

  test("a stranger's flood is archived only up to the rate; a contact's messages always are", async () => {
    const owner = await TestClient.login(server, 'owner', PW, { resource: 'o', presence: true });
    await addContact(owner, 'friend@localhost');
    const friend = await TestClient.login(server, 'friend', PW, { resource: 'f', presence: true });
    const stranger = await TestClient.login(server, 'stranger', PW, { resource: 's', presence: true });
    for (let i = 1; i <= 6; i++) stranger.send(chat('owner@localhost', `s${i}`));
    await owner.receive(withBody('s6')); // every one is delivered
    for (let i = 1; i <= 4; i++) friend.send(chat('owner@localhost', `f${i}`));
    await owner.receive(withBody('f4'));
    assert.deepEqual(await archivedBodies(owner), ['s1', 's2', 'f1', 'f2', 'f3', 'f4']);
    // The sender's own archive is the sender's: it keeps all it sent.
    assert.deepEqual(await archivedBodies(stranger), ['s1', 's2', 's3', 's4', 's5', 's6']);
    await Promise.all([owner.close(), friend.close(), stranger.close()]);
  });

  test('archiveStrangers=false keeps nothing from strangers', async () => {
    const strict = await startTestServer({
      modules: { ping: { idleMs: 0 }, mam: { archiveStrangers: false } },
    });
    try {
      for (const u of ['private', 'nosy', 'pal']) await strict.addUser(u, PW);
      const priv = await TestClient.login(strict, 'private', PW, { resource: 'p', presence: true });
      await addContact(priv, 'pal@localhost');
      const nosy = await TestClient.login(strict, 'nosy', PW, { resource: 'n', presence: true });
      const pal = await TestClient.login(strict, 'pal', PW, { resource: 'p', presence: true });
      nosy.send(chat('private@localhost', 'hello?'));
      await priv.receive(withBody('hello?'));
      pal.send(chat('private@localhost', 'hi, pal here'));
      await priv.receive(withBody('hi, pal here'));
      await ping(priv);
      assert.deepEqual(await archivedBodies(priv), ['hi, pal here']);
      await Promise.all([priv.close(), nosy.close(), pal.close()]);
    } finally {
      await strict.destroy();
    }
  });
});
