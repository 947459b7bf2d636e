import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml } from '@natter/xml';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import { TestClient } from '../../../test/support/test-client.js';
import {
  BASE_MODULES,
  hasModule,
  pubsubIq,
  ok,
  publish,
  event,
  about,
  noEvent,
} from '../../../test/support/pubsub.js';
import { presenceWithCaps, subscribeTo, itemPayload } from '../../../test/support/pep.js';

const PW = 'secret-password';
const NICK = 'http://jabber.org/protocol/nick';
const NO_ROSTER =
  hasModule('roster') && hasModule('presence')
    ? false
    : 'needs the roster and presence modules (ctx.use("roster"))';

describe('XEP-0172 user nickname over PEP', { skip: NO_ROSTER }, () => {
  let server: TestServer;
  let juliet: TestClient;
  let romeo: TestClient;
  let nurse: TestClient;
  before(async () => {
    server = await startTestServer({ modules: BASE_MODULES });
    for (const u of ['juliet', 'romeo', 'nurse']) await server.addUser(u, PW);
    juliet = await TestClient.login(server, 'juliet', PW, { resource: 'balcony', presence: true });
    romeo = await TestClient.login(server, 'romeo', PW, { resource: 'orchard' });
    nurse = await TestClient.login(server, 'nurse', PW, { resource: 'chamber' });
    await presenceWithCaps(romeo, [`${NICK}+notify`]);
    await presenceWithCaps(nurse, [`${NICK}+notify`]);
    await subscribeTo(romeo, juliet);
  });
  after(async () => {
    for (const c of [juliet, romeo, nurse]) await c.close();
    await server.destroy();
  });

  test('XEP-0172 §4.5: a published nickname reaches contacts with nick+notify, not non-contacts', async () => {
    ok(await publish(juliet, undefined, NICK, 'current', xml('nick', { xmlns: NICK }, 'Jules')));
    const ev = await event(romeo, about(NICK));
    assert.equal(itemPayload(ev)?.text(), 'Jules');
    await noEvent(nurse, NICK);
  });

  test('XEP-0172 §4.5: the nickname can be retrieved by a contact; a newer one replaces it (max_items 1)', async () => {
    ok(await publish(juliet, undefined, NICK, 'current', xml('nick', { xmlns: NICK }, 'Juliet C.')));
    await event(romeo, about(NICK));
    const res = ok(await romeo.iq(pubsubIq('get', 'juliet@localhost', false, xml('items', { node: NICK }))));
    const items = res.getChild('pubsub')!.getChild('items')!.getChildren('item');
    assert.equal(items.length, 1);
    assert.equal(items[0]!.getChild('nick', NICK)?.text(), 'Juliet C.');
  });
});
