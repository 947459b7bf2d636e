import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml } from '@natter/xml';
import { NS, parseForm, fieldValue } from '@natter/protocol';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import { TestClient } from '../../../test/support/test-client.js';
import {
  BASE_MODULES,
  pubsubIq,
  submitForm,
  NODE_CONFIG,
  ok,
  fails,
  publish,
  event,
  about,
} from '../../../test/support/pubsub.js';

const PW = 'secret-password';
const PS = 'pubsub.localhost';

describe('XEP-0060 pubsub service: nodes', () => {
  let server: TestServer;
  let owner: TestClient;
  let other: TestClient;
  before(async () => {
    server = await startTestServer({
      modules: { ...BASE_MODULES, pubsub: { maxNodesPerOwner: 5, maxItemsPerNode: 50 } },
    });
    for (const u of ['owner', 'other', 'greedy']) await server.addUser(u, PW);
    owner = await TestClient.login(server, 'owner', PW, { resource: 'a', presence: true });
    other = await TestClient.login(server, 'other', PW, { resource: 'b', presence: true });
  });
  after(async () => {
    await owner.close();
    await other.close();
    await server.destroy();
  });

  test('XEP-0060 §5.1: the service identifies as pubsub/service and lists its features', async () => {
    const res = ok(await owner.iq(xml('iq', { type: 'get', to: PS }, xml('query', { xmlns: NS.discoInfo }))));
    const q = res.getChild('query', NS.discoInfo)!;
    const id = q.getChild('identity')!;
    assert.equal(id.attrs.category, 'pubsub');
    assert.equal(id.attrs.type, 'service');
    const features = q.getChildren('feature').map((f) => f.attrs.var);
    for (const f of [
      'create-nodes',
      'publish',
      'subscribe',
      'retrieve-items',
      'retract-items',
      'purge-nodes',
      'delete-nodes',
      'config-node',
      'access-open',
      'access-presence',
      'access-roster',
      'access-whitelist',
      'publish-options',
      'item-ids',
      'persistent-items',
      'instant-nodes',
      'meta-data',
    ]) {
      assert.ok(features.includes(`${NS.pubsub}#${f}`), `feature ${f}`);
    }
    const items = ok(
      await owner.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: NS.discoItems }))),
    );
    assert.ok(
      items
        .getChild('query')!
        .getChildren('item')
        .some((i) => i.attrs.jid === PS),
      'the server lists the service',
    );
  });

  test('XEP-0060 §8.1.3: create a node with a configuration form', async () => {
    const res = ok(
      await owner.iq(
        pubsubIq(
          'set',
          PS,
          false,
          xml('create', { node: 'news' }),
          xml(
            'configure',
            null,
            submitForm(NODE_CONFIG, {
              'pubsub#title': 'News',
              'pubsub#max_items': '3',
              'pubsub#access_model': 'open',
            }),
          ),
        ),
      ),
    );
    assert.equal(res.getChild('pubsub', NS.pubsub)?.getChild('create')?.attrs.node, 'news');
    const cfg = ok(await owner.iq(pubsubIq('get', PS, true, xml('configure', { node: 'news' }))));
    const form = parseForm(
      cfg.getChild('pubsub', NS.pubsubOwner)!.getChild('configure')!.getChild('x', NS.dataForms)!,
    );
    assert.equal(fieldValue(form, 'FORM_TYPE'), NODE_CONFIG);
    assert.equal(fieldValue(form, 'pubsub#title'), 'News');
    assert.equal(fieldValue(form, 'pubsub#max_items'), '3');
    assert.equal(fieldValue(form, 'pubsub#access_model'), 'open');
  });

  test('XEP-0060 §8.1.1: creating an existing node gets conflict', async () => {
    fails(await other.iq(pubsubIq('set', PS, false, xml('create', { node: 'news' }))), 'conflict');
  });

  test('XEP-0060 §8.1.2: an instant node gets a generated name', async () => {
    const res = ok(await owner.iq(pubsubIq('set', PS, false, xml('create'))));
    const node = res.getChild('pubsub', NS.pubsub)!.getChild('create')!.attrs.node;
    assert.ok(node && node.length >= 8);
    ok(await owner.iq(pubsubIq('set', PS, true, xml('delete', { node }))));
  });

  test('XEP-0060 §8.2.4: the owner submits a new configuration; a bad value is not-acceptable', async () => {
    ok(
      await owner.iq(
        pubsubIq(
          'set',
          PS,
          true,
          xml(
            'configure',
            { node: 'news' },
            submitForm(NODE_CONFIG, { 'pubsub#title': 'Daily news', 'pubsub#deliver_payloads': '0' }),
          ),
        ),
      ),
    );
    const cfg = ok(await owner.iq(pubsubIq('get', PS, true, xml('configure', { node: 'news' }))));
    const form = parseForm(
      cfg.getChild('pubsub', NS.pubsubOwner)!.getChild('configure')!.getChild('x', NS.dataForms)!,
    );
    assert.equal(fieldValue(form, 'pubsub#title'), 'Daily news');
    assert.equal(fieldValue(form, 'pubsub#deliver_payloads'), '0');
    fails(
      await owner.iq(
        pubsubIq(
          'set',
          PS,
          true,
          xml('configure', { node: 'news' }, submitForm(NODE_CONFIG, { 'pubsub#access_model': 'everyone' })),
        ),
      ),
      'not-acceptable',
    );
    // max_items is bounded by the service (maxItemsPerNode = 50)
    fails(
      await owner.iq(
        pubsubIq(
          'set',
          PS,
          true,
          xml('configure', { node: 'news' }, submitForm(NODE_CONFIG, { 'pubsub#max_items': '51' })),
        ),
      ),
      'not-acceptable',
    );
    ok(
      await owner.iq(
        pubsubIq(
          'set',
          PS,
          true,
          xml('configure', { node: 'news' }, submitForm(NODE_CONFIG, { 'pubsub#deliver_payloads': '1' })),
        ),
      ),
    );
  });

  test('XEP-0060 §8.2.1/§8.4.1: non-owners can neither configure nor delete (forbidden)', async () => {
    fails(await other.iq(pubsubIq('get', PS, true, xml('configure', { node: 'news' }))), 'forbidden');
    fails(
      await other.iq(
        pubsubIq(
          'set',
          PS,
          true,
          xml('configure', { node: 'news' }, submitForm(NODE_CONFIG, { 'pubsub#title': 'x' })),
        ),
      ),
      'forbidden',
    );
    fails(await other.iq(pubsubIq('set', PS, true, xml('delete', { node: 'news' }))), 'forbidden');
    fails(await other.iq(pubsubIq('set', PS, true, xml('purge', { node: 'news' }))), 'forbidden');
  });

  test('XEP-0060 §5.3/§5.4: disco#items lists nodes; node disco#info has pubsub#meta-data', async () => {
    const items = ok(
      await other.iq(xml('iq', { type: 'get', to: PS }, xml('query', { xmlns: NS.discoItems }))),
    );
    const news = items
      .getChild('query')!
      .getChildren('item')
      .find((i) => i.attrs.node === 'news');
    assert.equal(news?.attrs.jid, PS);
    const info = ok(
      await other.iq(xml('iq', { type: 'get', to: PS }, xml('query', { xmlns: NS.discoInfo, node: 'news' }))),
    );
    const q = info.getChild('query')!;
    assert.equal(q.getChild('identity')!.attrs.type, 'leaf');
    const meta = parseForm(q.getChild('x', NS.dataForms)!);
    assert.equal(fieldValue(meta, 'FORM_TYPE'), 'http://jabber.org/protocol/pubsub#meta-data');
    assert.equal(fieldValue(meta, 'pubsub#title'), 'Daily news');
    assert.equal(fieldValue(meta, 'pubsub#owner'), 'owner@localhost');
    fails(
      await other.iq(xml('iq', { type: 'get', to: PS }, xml('query', { xmlns: NS.discoInfo, node: 'nope' }))),
      'item-not-found',
    );
  });

  test('XEP-0060 §8.5: purge removes every item and notifies subscribers', async () => {
    ok(
      await other.iq(pubsubIq('set', PS, false, xml('subscribe', { node: 'news', jid: 'other@localhost' }))),
    );
    ok(await publish(owner, PS, 'news', 'n1', xml('entry', { xmlns: 'urn:example:news' }, 'one')));
    await event(other, about('news'));
    ok(await owner.iq(pubsubIq('set', PS, true, xml('purge', { node: 'news' }))));
    const ev = await event(other, (e) => !!e.getChild('purge'));
    assert.equal(ev.getChild('purge')!.attrs.node, 'news');
    const items = ok(await other.iq(pubsubIq('get', PS, false, xml('items', { node: 'news' }))));
    assert.equal(items.getChild('pubsub')!.getChild('items')!.getChildren('item').length, 0);
  });

  test('XEP-0060 §8.4: delete notifies subscribers with the redirect URI', async () => {
    ok(
      await owner.iq(
        pubsubIq(
          'set',
          PS,
          true,
          xml('delete', { node: 'news' }, xml('redirect', { uri: 'xmpp:pubsub.localhost?;node=news2' })),
        ),
      ),
    );
    const ev = await event(other, (e) => !!e.getChild('delete'));
    assert.equal(ev.getChild('delete')!.attrs.node, 'news');
    assert.equal(ev.getChild('delete')!.getChild('redirect')!.attrs.uri, 'xmpp:pubsub.localhost?;node=news2');
    fails(await owner.iq(pubsubIq('get', PS, false, xml('items', { node: 'news' }))), 'item-not-found');
  });

  test('XEP-0060 §7.1.3.3: a publish to a missing node gets item-not-found; no node is bad-request + nodeid-required', async () => {
    fails(await publish(owner, PS, 'missing', 'x', xml('p', { xmlns: 'urn:x' })), 'item-not-found');
    fails(
      await owner.iq(
        pubsubIq('set', PS, false, xml('publish', null, xml('item', null, xml('p', { xmlns: 'urn:x' })))),
      ),
      'bad-request',
      'nodeid-required',
    );
  });

  test('policy: a user may create at most maxNodesPerOwner nodes (policy-violation with text)', async () => {
    const greedy = await TestClient.login(server, 'greedy', PW, { resource: 'g' });
    for (let i = 0; i < 5; i++)
      ok(await greedy.iq(pubsubIq('set', PS, false, xml('create', { node: `g${i}` }))));
    const err = fails(
      await greedy.iq(pubsubIq('set', PS, false, xml('create', { node: 'g5' }))),
      'policy-violation',
    );
    assert.match(err.getChildText('text', NS.stanzas) ?? '', /at most 5/);
    await greedy.close();
  });
});
