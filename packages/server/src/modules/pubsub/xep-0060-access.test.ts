import { test, describe, before, after } from 'node:test';
import { xml } from '@natter/xml';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import { TestClient } from '../../../test/support/test-client.js';
import {
  BASE_MODULES,
  hasModule,
  pubsubIq,
  submitForm,
  NODE_CONFIG,
  ok,
  fails,
  publish,
} from '../../../test/support/pubsub.js';
import { subscribeTo, setGroups } from '../../../test/support/pep.js';

const PW = 'secret-password';
const PS = 'pubsub.localhost';
const NO_ROSTER =
  hasModule('roster') && hasModule('presence')
    ? false
    : 'needs the roster and presence modules (ctx.use("roster"))';

describe('XEP-0060 §4.5 access models on the pubsub service', () => {
  let server: TestServer;
  let owner: TestClient;
  let friend: TestClient;
  let stranger: TestClient;
  const create = async (node: string, fields: Record<string, string | string[]>) => {
    ok(
      await owner.iq(
        pubsubIq(
          'set',
          PS,
          false,
          xml('create', { node }),
          xml('configure', null, submitForm(NODE_CONFIG, fields)),
        ),
      ),
    );
    ok(await publish(owner, PS, node, 'only', xml('note', { xmlns: 'urn:example:note' }, node)));
  };
  const retrieve = (c: TestClient, node: string) => c.iq(pubsubIq('get', PS, false, xml('items', { node })));
  const subscribe = (c: TestClient, node: string) =>
    c.iq(pubsubIq('set', PS, false, xml('subscribe', { node, jid: c.jid.split('/')[0] })));

  before(async () => {
    server = await startTestServer({ modules: BASE_MODULES });
    for (const u of ['owner', 'friend', 'stranger']) await server.addUser(u, PW);
    owner = await TestClient.login(server, 'owner', PW, { resource: 'a', presence: true });
    friend = await TestClient.login(server, 'friend', PW, { resource: 'b', presence: true });
    stranger = await TestClient.login(server, 'stranger', PW, { resource: 'c', presence: true });
  });
  after(async () => {
    for (const c of [owner, friend, stranger]) await c.close();
    await server.destroy();
  });

  test('XEP-0060 §4.5 open: anyone subscribes and retrieves', async () => {
    await create('open-node', { 'pubsub#access_model': 'open' });
    ok(await retrieve(stranger, 'open-node'));
    ok(await subscribe(stranger, 'open-node'));
  });

  test('XEP-0060 §6.1.3.4/§6.5.9.4 whitelist: non-members get not-allowed + closed-node; members are let in', async () => {
    await create('wl', { 'pubsub#access_model': 'whitelist' });
    fails(await retrieve(friend, 'wl'), 'not-allowed', 'closed-node');
    fails(await subscribe(friend, 'wl'), 'not-allowed', 'closed-node');
    ok(
      await owner.iq(
        pubsubIq(
          'set',
          PS,
          true,
          xml(
            'affiliations',
            { node: 'wl' },
            xml('affiliation', { jid: 'friend@localhost', affiliation: 'member' }),
          ),
        ),
      ),
    );
    ok(await retrieve(friend, 'wl'));
    ok(await subscribe(friend, 'wl'));
    fails(await retrieve(stranger, 'wl'), 'not-allowed', 'closed-node');
  });

  test('XEP-0060 §4.1 outcast: a banned entity is forbidden even on an open node', async () => {
    ok(
      await owner.iq(
        pubsubIq(
          'set',
          PS,
          true,
          xml(
            'affiliations',
            { node: 'open-node' },
            xml('affiliation', { jid: 'stranger@localhost', affiliation: 'outcast' }),
          ),
        ),
      ),
    );
    fails(await retrieve(stranger, 'open-node'), 'forbidden');
  });

  test(
    "XEP-0060 §6.1.3.2 presence: only entities subscribed to an owner's presence; others get not-authorized + presence-subscription-required",
    { skip: NO_ROSTER },
    async () => {
      await create('pres', { 'pubsub#access_model': 'presence' });
      fails(await retrieve(friend, 'pres'), 'not-authorized', 'presence-subscription-required');
      await subscribeTo(friend, owner);
      ok(await retrieve(friend, 'pres'));
      ok(await subscribe(friend, 'pres'));
      fails(await retrieve(stranger, 'pres'), 'not-authorized', 'presence-subscription-required');
    },
  );

  test(
    'XEP-0060 §6.1.3.3 roster: only contacts in an allowed group; others get not-authorized + not-in-roster-group',
    { skip: NO_ROSTER },
    async () => {
      await create('family', { 'pubsub#access_model': 'roster', 'pubsub#roster_groups_allowed': ['Family'] });
      await setGroups(owner, 'friend@localhost', ['Friends']);
      fails(await retrieve(friend, 'family'), 'not-authorized', 'not-in-roster-group');
      await setGroups(owner, 'friend@localhost', ['Friends', 'Family']);
      ok(await retrieve(friend, 'family'));
      fails(await retrieve(stranger, 'family'), 'not-authorized', 'not-in-roster-group');
    },
  );
});
