import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { xml } from '@natter/xml';
import { NS, parseForm, fieldValue } from '@natter/protocol';
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
  event,
  about,
  noEvent,
} from '../../../test/support/pubsub.js';
import { presenceWithCaps, subscribeTo, itemPayload } from '../../../test/support/pep.js';

const PW = 'secret-password';
const DATA = 'urn:xmpp:avatar:data';
const META = 'urn:xmpp:avatar:metadata';
const NO_ROSTER =
  hasModule('roster') && hasModule('presence')
    ? false
    : 'needs the roster and presence modules (ctx.use("roster"))';

const png = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489', 'hex');
const avatarId = createHash('sha1').update(png).digest('hex');
const dataPayload = () => xml('data', { xmlns: DATA }, png.toString('base64'));
const metaPayload = () =>
  xml(
    'metadata',
    { xmlns: META },
    xml('info', { bytes: String(png.length), id: avatarId, type: 'image/png', width: '1', height: '1' }),
  );

async function accessModel(c: TestClient, node: string): Promise<string | undefined> {
  const res = ok(await c.iq(pubsubIq('get', undefined, true, xml('configure', { node }))));
  return fieldValue(
    parseForm(res.getChild('pubsub', NS.pubsubOwner)!.getChild('configure')!.getChild('x', NS.dataForms)!),
    'pubsub#access_model',
  );
}

describe('XEP-0084 user avatar over PEP', { skip: NO_ROSTER }, () => {
  let server: TestServer;
  let juliet: TestClient;
  let romeo: TestClient;
  let stranger: TestClient;
  before(async () => {
    server = await startTestServer({ modules: BASE_MODULES });
    for (const u of ['juliet', 'romeo', 'stranger', 'paris']) await server.addUser(u, PW);
    juliet = await TestClient.login(server, 'juliet', PW, { resource: 'balcony', presence: true });
    romeo = await TestClient.login(server, 'romeo', PW, { resource: 'orchard' });
    stranger = await TestClient.login(server, 'stranger', PW, { resource: 's', presence: true });
    await presenceWithCaps(romeo, [META, `${META}+notify`]);
    await subscribeTo(romeo, juliet);
  });
  after(async () => {
    for (const c of [juliet, romeo, stranger]) await c.close();
    await server.destroy();
  });

  test('XEP-0084 §4.1-§4.2: data then metadata published; a contact with metadata+notify gets the metadata only', async () => {
    const res = ok(await publish(juliet, undefined, DATA, avatarId, dataPayload()));
    assert.equal(res.getChild('pubsub')!.getChild('publish')!.getChild('item')!.attrs.id, avatarId);
    ok(await publish(juliet, undefined, META, avatarId, metaPayload()));
    const ev = await event(romeo, about(META));
    assert.equal(ev.getChild('items')!.getChild('item')!.attrs.id, avatarId);
    assert.equal(itemPayload(ev)?.getChild('info')?.attrs.id, avatarId);
    await noEvent(romeo, DATA);
  });

  test('XEP-0084 §4.3: the contact retrieves the data by item id', async () => {
    const res = ok(
      await romeo.iq(
        pubsubIq(
          'get',
          'juliet@localhost',
          false,
          xml('items', { node: DATA }, xml('item', { id: avatarId })),
        ),
      ),
    );
    const data = res.getChild('pubsub')!.getChild('items')!.getChild('item')!.getChild('data', DATA)!;
    assert.deepEqual(Buffer.from(data.text(), 'base64'), png);
    fails(
      await stranger.iq(pubsubIq('get', 'juliet@localhost', false, xml('items', { node: DATA }))),
      'not-authorized',
      'presence-subscription-required',
    );
  });

  test('XEP-0084 §6: the data node access model follows the metadata node', async () => {
    ok(
      await juliet.iq(
        pubsubIq(
          'set',
          undefined,
          true,
          xml('configure', { node: META }, submitForm(NODE_CONFIG, { 'pubsub#access_model': 'open' })),
        ),
      ),
    );
    assert.equal(await accessModel(juliet, DATA), 'open');
    ok(await stranger.iq(pubsubIq('get', 'juliet@localhost', false, xml('items', { node: DATA }))));
  });

  test('XEP-0084 §6: a data node created after an open metadata node starts open', async () => {
    const paris = await TestClient.login(server, 'paris', PW, { resource: 'p' });
    ok(await publish(paris, undefined, META, avatarId, metaPayload(), { 'pubsub#access_model': 'open' }));
    ok(await publish(paris, undefined, DATA, avatarId, dataPayload()));
    assert.equal(await accessModel(paris, DATA), 'open');
    await paris.close();
  });
});
