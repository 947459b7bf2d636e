import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml } from '@natter/xml';
import { NS, parseForm, fieldValue } from '@natter/protocol';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import { TestClient } from '../../../test/support/test-client.js';
import {
  BASE_MODULES,
  hasModule,
  pubsubIq,
  ok,
  fails,
  publish,
  event,
  about,
  noEvent,
} from '../../../test/support/pubsub.js';
import { presenceWithCaps, subscribeTo } from '../../../test/support/pep.js';

const PW = 'secret-password';
const BM = 'urn:xmpp:bookmarks:1';
const NO_ROSTER =
  hasModule('roster') && hasModule('presence')
    ? false
    : 'needs the roster and presence modules (ctx.use("roster"))';
/** XEP-0402 §3 / XEP-0223 §3: the publish-options every bookmark publish carries. */
const PRIVATE = {
  'pubsub#persist_items': 'true',
  'pubsub#max_items': 'max',
  'pubsub#send_last_published_item': 'never',
  'pubsub#access_model': 'whitelist',
};
const bookmark = (name: string) =>
  xml('conference', { xmlns: BM, name, autojoin: 'true' }, xml('nick', null, 'Jules'));

describe('XEP-0402 bookmarks over PEP, private per XEP-0223', { skip: NO_ROSTER }, () => {
  let server: TestServer;
  let juliet: TestClient;
  let romeo: TestClient;
  before(async () => {
    server = await startTestServer({ modules: BASE_MODULES });
    for (const u of ['juliet', 'romeo']) await server.addUser(u, PW);
    juliet = await TestClient.login(server, 'juliet', PW, { resource: 'balcony' });
    romeo = await TestClient.login(server, 'romeo', PW, { resource: 'orchard' });
    await presenceWithCaps(juliet, [`${BM}+notify`]);
    await presenceWithCaps(romeo, [`${BM}+notify`]);
    await subscribeTo(romeo, juliet);
  });
  after(async () => {
    for (const c of [juliet, romeo]) await c.close();
    await server.destroy();
  });

  test('XEP-0402 §3.1: adding a bookmark with the private publish-options notifies the owner only', async () => {
    ok(await publish(juliet, undefined, BM, 'theplay@conference.localhost', bookmark('The Play'), PRIVATE));
    const ev = await event(juliet, about(BM));
    assert.equal(ev.getChild('items')!.getChild('item')!.attrs.id, 'theplay@conference.localhost');
    await noEvent(romeo, BM);
    const cfg = ok(await juliet.iq(pubsubIq('get', undefined, true, xml('configure', { node: BM }))));
    const form = parseForm(
      cfg.getChild('pubsub', NS.pubsubOwner)!.getChild('configure')!.getChild('x', NS.dataForms)!,
    );
    assert.equal(fieldValue(form, 'pubsub#access_model'), 'whitelist');
    assert.equal(fieldValue(form, 'pubsub#persist_items'), '1');
  });

  test('XEP-0223 §4: a contact cannot retrieve private items (not-allowed + closed-node)', async () => {
    fails(
      await romeo.iq(pubsubIq('get', 'juliet@localhost', false, xml('items', { node: BM }))),
      'not-allowed',
      'closed-node',
    );
    fails(
      await romeo.iq(
        pubsubIq('set', 'juliet@localhost', false, xml('subscribe', { node: BM, jid: 'romeo@localhost' })),
      ),
      'not-allowed',
      'closed-node',
    );
  });

  test('XEP-0402 §3.1 + XEP-0060 §7.1.5: a second bookmark meets the preconditions; max_items=max keeps both', async () => {
    ok(await publish(juliet, undefined, BM, 'orchard@conference.localhost', bookmark('Orchard'), PRIVATE));
    await event(juliet, about(BM));
    const res = ok(await juliet.iq(pubsubIq('get', undefined, false, xml('items', { node: BM }))));
    assert.deepEqual(
      res
        .getChild('pubsub')!
        .getChild('items')!
        .getChildren('item')
        .map((i) => i.attrs.id),
      ['theplay@conference.localhost', 'orchard@conference.localhost'],
    );
  });

  test('XEP-0060 §7.1.5: publishing with access_model=open against the whitelist node fails the precondition', async () => {
    fails(
      await publish(juliet, undefined, BM, 'x@conference.localhost', bookmark('X'), {
        ...PRIVATE,
        'pubsub#access_model': 'open',
      }),
      'conflict',
      'precondition-not-met',
    );
  });

  test('XEP-0402 §3.3: removing a bookmark retracts it with a notification to the owner', async () => {
    ok(
      await juliet.iq(
        pubsubIq(
          'set',
          undefined,
          false,
          xml('retract', { node: BM, notify: 'true' }, xml('item', { id: 'orchard@conference.localhost' })),
        ),
      ),
    );
    const ev = await event(juliet, about(BM));
    assert.equal(ev.getChild('items')!.getChild('retract')!.attrs.id, 'orchard@conference.localhost');
    await noEvent(romeo, BM);
  });

  test('XEP-0223 §3 persist_items: bookmarks survive a restart', async () => {
    await juliet.close();
    await romeo.close();
    await server.stop();
    server = await startTestServer({ modules: BASE_MODULES }, { dataDir: server.dataDir });
    juliet = await TestClient.login(server, 'juliet', PW, { resource: 'balcony' });
    romeo = await TestClient.login(server, 'romeo', PW, { resource: 'orchard' });
    const res = ok(await juliet.iq(pubsubIq('get', undefined, false, xml('items', { node: BM }))));
    const items = res.getChild('pubsub')!.getChild('items')!.getChildren('item');
    assert.deepEqual(
      items.map((i) => i.attrs.id),
      ['theplay@conference.localhost'],
    );
    assert.equal(items[0]!.getChild('conference', BM)?.attrs.name, 'The Play');
    fails(
      await romeo.iq(pubsubIq('get', 'juliet@localhost', false, xml('items', { node: BM }))),
      'not-allowed',
      'closed-node',
    );
  });
});
