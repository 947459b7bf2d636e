import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml, type Element } from '@natter/xml';
import type { Jid } from '@natter/jid';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import { TestClient } from '../../../test/support/test-client.js';
import { defineModule } from '../../core/module.js';
import type { RosterApi } from '../roster/api.js';
import { builtinModules } from '../index.js';

const PW = 'secret-password';
/** Only the modules under test (other modules' hooks would change what the clients see). */
const MINE = new Set(['disco', 'ping', 'version', 'register', 'last']);
const others = Object.fromEntries(
  builtinModules.filter((m) => !MINE.has(m.name) && m.name !== 'roster').map((m) => [m.name, false as const]),
);
const rosterless = Object.fromEntries(
  builtinModules.filter((m) => !MINE.has(m.name)).map((m) => [m.name, false as const]),
);

/** owner → contacts subscribed to the owner's presence (subscription from/both on the owner's side). */
const subscribers = new Map<string, Set<string>>([['romeo@localhost', new Set(['juliet@localhost'])]]);
/** A stand-in for the roster module: only the lookup this module makes. */
const fakeRoster = defineModule({
  name: 'roster',
  description: 'test roster',
  specs: [],
  setup(ctx) {
    const api: Pick<RosterApi, 'isSubscriber'> = {
      isSubscriber: (owner: Jid, contact: Jid) =>
        subscribers.get(owner.toBareString())?.has(contact.toBareString()) ?? false,
    };
    ctx.provide('roster', api);
  },
});

const lastQuery = (to: string) => xml('iq', { type: 'get', to }, xml('query', { xmlns: NS.last }));
const seconds = (res: Element) => Number(res.getChild('query', NS.last)?.attrs.seconds);
const condition = (el: Element) =>
  el
    .getChild('error')
    ?.elements()
    .find((c) => c.xmlns === NS.stanzas && c.name !== 'text')?.name;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('last activity (XEP-0012)', () => {
  let server: TestServer;
  const start = () =>
    startTestServer(
      { modules: { ...others, ping: { idleMs: 0 } } },
      { modules: [fakeRoster], dataDir: server?.dataDir },
    );
  before(async () => {
    server = await start();
    for (const u of ['romeo', 'juliet', 'tybalt']) await server.addUser(u, PW);
  });
  after(() => server?.destroy());

  test('XEP-0012 §5: a query to the server answers its uptime', async () => {
    const c = await TestClient.login(server, 'tybalt', PW, { resource: 'r' });
    const res = await c.iq(lastQuery('localhost'));
    assert.equal(res.attrs.type, 'result');
    const s = seconds(res);
    assert.ok(Number.isInteger(s) && s >= 0 && s < 600);
    await c.close();
  });

  test('XEP-0012 §4: an online user has seconds 0', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'r', presence: true });
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'r' });
    const res = await juliet.iq(lastQuery('romeo@localhost'));
    assert.equal(res.attrs.type, 'result');
    assert.equal(seconds(res), 0);
    await Promise.all([romeo.close(), juliet.close()]);
  });

  test('XEP-0012 §4: a subscribed contact gets the seconds since logout and the last unavailable status; it survives a restart', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'r', presence: true });
    romeo.send(xml('presence', { type: 'unavailable' }, xml('status', null, 'Gone to Mantua')));
    await sleep(50);
    await romeo.close();
    await sleep(1100);
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'r' });
    const res = await juliet.iq(lastQuery('romeo@localhost'));
    assert.equal(res.attrs.type, 'result');
    assert.equal(res.attrs.from, 'romeo@localhost');
    assert.ok(seconds(res) >= 1 && seconds(res) < 30, `seconds=${seconds(res)}`);
    assert.equal(res.getChildText('query', NS.last), 'Gone to Mantua');
    await juliet.close();

    await server.stop();
    server = await start();
    const j2 = await TestClient.login(server, 'juliet', PW, { resource: 'r' });
    const again = await j2.iq(lastQuery('romeo@localhost'));
    assert.ok(seconds(again) >= 1, `seconds=${seconds(again)}`);
    assert.equal(again.getChildText('query', NS.last), 'Gone to Mantua');
    await j2.close();
  });

  test('XEP-0012 §4: a requester not subscribed to the user’s presence gets forbidden', async () => {
    const tybalt = await TestClient.login(server, 'tybalt', PW, { resource: 'r' });
    const res = await tybalt.iq(lastQuery('romeo@localhost'));
    assert.equal(res.attrs.type, 'error');
    assert.equal(condition(res), 'forbidden');
    await tybalt.close();
  });

  test('XEP-0012 §4: a logout without unavailable presence records an empty status', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'r', presence: true });
    romeo.kill();
    await sleep(200);
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'r' });
    const res = await juliet.iq(lastQuery('romeo@localhost'));
    assert.equal(res.attrs.type, 'result');
    assert.ok(seconds(res) <= 2);
    assert.equal(res.getChildText('query', NS.last), '');
    await juliet.close();
  });
});

describe('last activity (XEP-0012) without a roster module', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ modules: { ...rosterless, ping: { idleMs: 0 } } });
    for (const u of ['romeo', 'juliet']) await server.addUser(u, PW);
  });
  after(() => server?.destroy());

  test('XEP-0012 §4: only the user may ask, others get forbidden', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'r' });
    await romeo.close();
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'r' });
    const res = await juliet.iq(lastQuery('romeo@localhost'));
    assert.equal(condition(res), 'forbidden');
    const again = await TestClient.login(server, 'romeo', PW, { resource: 'r2' }); // connected, not available
    const self = await again.iq(lastQuery('romeo@localhost'));
    assert.equal(self.attrs.type, 'result');
    assert.ok(seconds(self) >= 0 && seconds(self) < 30);
    await Promise.all([juliet.close(), again.close()]);
  });
});
