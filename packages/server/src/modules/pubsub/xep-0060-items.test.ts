import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml } from '@natter/xml';
import { NS } from '@natter/protocol';
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
  noEvent,
} from '../../../test/support/pubsub.js';

const PW = 'secret-password';
const PS = 'pubsub.localhost';
const entry = (text: string) => xml('entry', { xmlns: 'urn:example:blog' }, text);

describe('XEP-0060 pubsub service: items and subscriptions', () => {
  let server: TestServer;
  let owner: TestClient;
  let sub: TestClient;
  let third: TestClient;
  before(async () => {
    server = await startTestServer({ modules: { ...BASE_MODULES, pubsub: { maxPayloadBytes: 1024 } } });
    for (const u of ['owner', 'sub', 'third']) await server.addUser(u, PW);
    owner = await TestClient.login(server, 'owner', PW, { resource: 'a', presence: true });
    sub = await TestClient.login(server, 'sub', PW, { resource: 'b', presence: true });
    third = await TestClient.login(server, 'third', PW, { resource: 'c', presence: true });
    ok(
      await owner.iq(
        pubsubIq(
          'set',
          PS,
          false,
          xml('create', { node: 'blog' }),
          xml(
            'configure',
            null,
            submitForm(NODE_CONFIG, { 'pubsub#max_items': '5', 'pubsub#send_last_published_item': 'never' }),
          ),
        ),
      ),
    );
  });
  after(async () => {
    for (const c of [owner, sub, third]) await c.close();
    await server.destroy();
  });

  test('XEP-0060 §6.1: subscribe returns the subscription with a subid; a foreign JID is bad-request + invalid-jid', async () => {
    const res = ok(
      await sub.iq(pubsubIq('set', PS, false, xml('subscribe', { node: 'blog', jid: 'sub@localhost' }))),
    );
    const s = res.getChild('pubsub', NS.pubsub)!.getChild('subscription')!;
    assert.equal(s.attrs.subscription, 'subscribed');
    assert.equal(s.attrs.jid, 'sub@localhost');
    assert.ok(s.attrs.subid);
    fails(
      await sub.iq(pubsubIq('set', PS, false, xml('subscribe', { node: 'blog', jid: 'owner@localhost' }))),
      'bad-request',
      'invalid-jid',
    );
    fails(
      await sub.iq(pubsubIq('set', PS, false, xml('subscribe', { node: 'nope', jid: 'sub@localhost' }))),
      'item-not-found',
    );
  });

  test('XEP-0060 §7.1.2: publish with an item id notifies subscribers with the payload', async () => {
    const res = ok(await publish(owner, PS, 'blog', 'post-1', entry('hello')));
    assert.equal(res.getChild('pubsub')!.getChild('publish')!.getChild('item')!.attrs.id, 'post-1');
    const ev = await event(sub, about('blog'));
    const item = ev.getChild('items')!.getChild('item')!;
    assert.equal(item.attrs.id, 'post-1');
    assert.equal(item.getChild('entry', 'urn:example:blog')?.text(), 'hello');
    await noEvent(third, 'blog');
  });

  test('XEP-0060 §7.1.2: an item without id gets a generated one, returned in the result', async () => {
    const res = ok(await publish(owner, PS, 'blog', undefined, entry('anonymous')));
    const id = res.getChild('pubsub')!.getChild('publish')!.getChild('item')!.attrs.id;
    assert.ok(id && id.length >= 8);
    const ev = await event(sub, about('blog'));
    assert.equal(ev.getChild('items')!.getChild('item')!.attrs.id, id);
  });

  test('XEP-0060 §7.1.2.2: with deliver_payloads off the notification carries only the item id', async () => {
    ok(
      await owner.iq(
        pubsubIq(
          'set',
          PS,
          true,
          xml('configure', { node: 'blog' }, submitForm(NODE_CONFIG, { 'pubsub#deliver_payloads': '0' })),
        ),
      ),
    );
    ok(await publish(owner, PS, 'blog', 'post-2', entry('quiet')));
    const item = (await event(sub, about('blog'))).getChild('items')!.getChild('item')!;
    assert.equal(item.attrs.id, 'post-2');
    assert.equal(item.elements().length, 0);
    ok(
      await owner.iq(
        pubsubIq(
          'set',
          PS,
          true,
          xml('configure', { node: 'blog' }, submitForm(NODE_CONFIG, { 'pubsub#deliver_payloads': '1' })),
        ),
      ),
    );
  });

  test('XEP-0060 §6.5.2/§6.5.7/§6.5.8: retrieve all items, the newest max_items, and items by id', async () => {
    ok(await publish(owner, PS, 'blog', 'post-3', entry('three')));
    await event(sub, about('blog'));
    const all = ok(await third.iq(pubsubIq('get', PS, false, xml('items', { node: 'blog' }))));
    const ids = all
      .getChild('pubsub')!
      .getChild('items')!
      .getChildren('item')
      .map((i) => i.attrs.id);
    assert.equal(ids.length, 4);
    assert.deepEqual([ids[0], ids[2], ids[3]], ['post-1', 'post-2', 'post-3']);
    const newest = ok(
      await third.iq(pubsubIq('get', PS, false, xml('items', { node: 'blog', max_items: '2' }))),
    );
    assert.deepEqual(
      newest
        .getChild('pubsub')!
        .getChild('items')!
        .getChildren('item')
        .map((i) => i.attrs.id),
      [ids[2], 'post-3'],
    );
    const byId = ok(
      await third.iq(
        pubsubIq('get', PS, false, xml('items', { node: 'blog' }, xml('item', { id: 'post-1' }))),
      ),
    );
    const items = byId.getChild('pubsub')!.getChild('items')!.getChildren('item');
    assert.equal(items.length, 1);
    assert.equal(items[0]!.getChild('entry', 'urn:example:blog')?.text(), 'hello');
  });

  test('XEP-0060 §7.1.2 + pubsub#max_items: the oldest items are dropped past max_items', async () => {
    for (let i = 4; i <= 7; i++) {
      ok(await publish(owner, PS, 'blog', `post-${i}`, entry(String(i))));
      await event(sub, about('blog'));
    }
    const all = ok(await third.iq(pubsubIq('get', PS, false, xml('items', { node: 'blog' }))));
    assert.deepEqual(
      all
        .getChild('pubsub')!
        .getChild('items')!
        .getChildren('item')
        .map((i) => i.attrs.id),
      ['post-3', 'post-4', 'post-5', 'post-6', 'post-7'],
    );
  });

  test('XEP-0060 §7.2: retract with notify sends <retract/> to subscribers; a missing item is item-not-found', async () => {
    ok(
      await owner.iq(
        pubsubIq(
          'set',
          PS,
          false,
          xml('retract', { node: 'blog', notify: 'true' }, xml('item', { id: 'post-7' })),
        ),
      ),
    );
    const ev = await event(sub, about('blog'));
    assert.equal(ev.getChild('items')!.getChild('retract')!.attrs.id, 'post-7');
    fails(
      await owner.iq(
        pubsubIq('set', PS, false, xml('retract', { node: 'blog' }, xml('item', { id: 'post-7' }))),
      ),
      'item-not-found',
    );
    fails(
      await third.iq(
        pubsubIq('set', PS, false, xml('retract', { node: 'blog' }, xml('item', { id: 'post-6' }))),
      ),
      'forbidden',
    );
  });

  test('XEP-0060 §7.1.3.1: a non-publisher cannot publish (forbidden)', async () => {
    fails(
      await third.iq(
        pubsubIq('set', PS, false, xml('publish', { node: 'blog' }, xml('item', { id: 'x' }, entry('spam')))),
      ),
      'forbidden',
    );
  });

  test('XEP-0060 §7.1.3.4: an oversized payload gets not-acceptable + payload-too-big', async () => {
    fails(
      await publish(owner, PS, 'blog', 'big', entry('x'.repeat(2000))),
      'not-acceptable',
      'payload-too-big',
    );
  });

  test('XEP-0060 §7.1.5: publish-options that do not match the node get conflict + precondition-not-met', async () => {
    fails(
      await publish(owner, PS, 'blog', 'p', entry('x'), { 'pubsub#access_model': 'whitelist' }),
      'conflict',
      'precondition-not-met',
    );
    ok(
      await publish(owner, PS, 'blog', 'p', entry('x'), {
        'pubsub#access_model': 'open',
        'pubsub#max_items': '5',
      }),
    );
    await event(sub, about('blog'));
  });

  test('XEP-0060 §5.6/§5.7: the user lists its subscriptions and affiliations', async () => {
    const subs = ok(await sub.iq(pubsubIq('get', PS, false, xml('subscriptions'))));
    const s = subs.getChild('pubsub')!.getChild('subscriptions')!.getChildren('subscription');
    assert.deepEqual(
      s.map((x) => [x.attrs.node, x.attrs.subscription]),
      [['blog', 'subscribed']],
    );
    const affs = ok(await owner.iq(pubsubIq('get', PS, false, xml('affiliations'))));
    const a = affs.getChild('pubsub')!.getChild('affiliations')!.getChildren('affiliation');
    assert.deepEqual(
      a.map((x) => [x.attrs.node, x.attrs.affiliation]),
      [['blog', 'owner']],
    );
  });

  test('XEP-0060 §6.3: subscription options: pubsub#deliver=0 stops delivery; a wrong subid is not-acceptable + invalid-subid', async () => {
    const opts = ok(
      await sub.iq(pubsubIq('get', PS, false, xml('options', { node: 'blog', jid: 'sub@localhost' }))),
    );
    assert.ok(opts.getChild('pubsub')!.getChild('options')!.getChild('x', NS.dataForms));
    ok(
      await sub.iq(
        pubsubIq(
          'set',
          PS,
          false,
          xml(
            'options',
            { node: 'blog', jid: 'sub@localhost' },
            submitForm('http://jabber.org/protocol/pubsub#subscribe_options', { 'pubsub#deliver': '0' }),
          ),
        ),
      ),
    );
    ok(await publish(owner, PS, 'blog', 'muted', entry('muted')));
    await noEvent(sub, 'blog');
    ok(
      await sub.iq(
        pubsubIq(
          'set',
          PS,
          false,
          xml(
            'options',
            { node: 'blog', jid: 'sub@localhost' },
            submitForm('http://jabber.org/protocol/pubsub#subscribe_options', { 'pubsub#deliver': '1' }),
          ),
        ),
      ),
    );
    fails(
      await sub.iq(
        pubsubIq(
          'set',
          PS,
          false,
          xml('unsubscribe', { node: 'blog', jid: 'sub@localhost', subid: 'wrong' }),
        ),
      ),
      'not-acceptable',
      'invalid-subid',
    );
  });

  test('XEP-0060 §8.8/§8.9: the owner lists and changes subscriptions and affiliations', async () => {
    const subs = ok(await owner.iq(pubsubIq('get', PS, true, xml('subscriptions', { node: 'blog' }))));
    assert.deepEqual(
      subs
        .getChild('pubsub', NS.pubsubOwner)!
        .getChild('subscriptions')!
        .getChildren('subscription')
        .map((s) => s.attrs.jid),
      ['sub@localhost'],
    );
    ok(
      await owner.iq(
        pubsubIq(
          'set',
          PS,
          true,
          xml(
            'affiliations',
            { node: 'blog' },
            xml('affiliation', { jid: 'third@localhost', affiliation: 'publisher' }),
          ),
        ),
      ),
    );
    const affs = ok(await owner.iq(pubsubIq('get', PS, true, xml('affiliations', { node: 'blog' }))));
    const list = affs
      .getChild('pubsub', NS.pubsubOwner)!
      .getChild('affiliations')!
      .getChildren('affiliation')
      .map((a) => `${a.attrs.jid}=${a.attrs.affiliation}`);
    assert.deepEqual(list.sort(), ['owner@localhost=owner', 'third@localhost=publisher']);
    ok(await publish(third, PS, 'blog', 'by-third', entry('guest post')));
    await event(sub, about('blog'));
    fails(await sub.iq(pubsubIq('get', PS, true, xml('affiliations', { node: 'blog' }))), 'forbidden');
    fails(
      await owner.iq(
        pubsubIq(
          'set',
          PS,
          true,
          xml(
            'affiliations',
            { node: 'blog' },
            xml('affiliation', { jid: 'owner@localhost', affiliation: 'none' }),
          ),
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
          xml(
            'subscriptions',
            { node: 'blog' },
            xml('subscription', { jid: 'sub@localhost', subscription: 'none' }),
          ),
        ),
      ),
    );
    const cancelled = await event(sub, (e) => !!e.getChild('subscription'));
    assert.equal(cancelled.getChild('subscription')!.attrs.subscription, 'none');
    ok(await publish(owner, PS, 'blog', 'after', entry('after')));
    await noEvent(sub, 'blog');
  });

  test('XEP-0060 §6.2: unsubscribe; unsubscribing again is unexpected-request + not-subscribed', async () => {
    ok(await third.iq(pubsubIq('set', PS, false, xml('subscribe', { node: 'blog', jid: third.jid }))));
    ok(await third.iq(pubsubIq('set', PS, false, xml('unsubscribe', { node: 'blog', jid: third.jid }))));
    fails(
      await third.iq(pubsubIq('set', PS, false, xml('unsubscribe', { node: 'blog', jid: third.jid }))),
      'unexpected-request',
      'not-subscribed',
    );
  });

  test('XEP-0060 §6.1.4: a full-JID subscription gets notifications at that resource; send_last_published_item on_sub', async () => {
    ok(await owner.iq(pubsubIq('set', PS, false, xml('create', { node: 'status' }))));
    ok(await publish(owner, PS, 'status', 'now', entry('busy')));
    ok(await third.iq(pubsubIq('set', PS, false, xml('subscribe', { node: 'status', jid: third.jid }))));
    const last = await third.receive((e) => e.name === 'message' && !!e.getChild('event', NS.pubsubEvent));
    assert.equal(last.attrs.to, third.jid);
    assert.ok(last.getChild('delay', NS.delay), 'the last item carries a delay');
    assert.equal(
      last.getChild('event', NS.pubsubEvent)!.getChild('items')!.getChild('item')!.attrs.id,
      'now',
    );
  });

  test('XEP-0060 §6.1.2 authorize access model: the subscription is pending until an owner approves', async () => {
    ok(
      await owner.iq(
        pubsubIq(
          'set',
          PS,
          false,
          xml('create', { node: 'club' }),
          xml('configure', null, submitForm(NODE_CONFIG, { 'pubsub#access_model': 'authorize' })),
        ),
      ),
    );
    const res = ok(
      await sub.iq(pubsubIq('set', PS, false, xml('subscribe', { node: 'club', jid: 'sub@localhost' }))),
    );
    assert.equal(res.getChild('pubsub')!.getChild('subscription')!.attrs.subscription, 'pending');
    const ask = await owner.receive((e) => e.name === 'message' && !!e.getChild('x', NS.dataForms));
    assert.equal(ask.attrs.from, PS);
    fails(
      await sub.iq(pubsubIq('get', PS, false, xml('items', { node: 'club' }))),
      'not-authorized',
      'not-subscribed',
    );
    ok(
      await owner.iq(
        pubsubIq(
          'set',
          PS,
          true,
          xml(
            'subscriptions',
            { node: 'club' },
            xml('subscription', { jid: 'sub@localhost', subscription: 'subscribed' }),
          ),
        ),
      ),
    );
    const approved = await sub.receive(
      (e) => e.name === 'message' && !!e.getChild('event', NS.pubsubEvent)?.getChild('subscription'),
    );
    assert.equal(
      approved.getChild('event', NS.pubsubEvent)!.getChild('subscription')!.attrs.subscription,
      'subscribed',
    );
    ok(await sub.iq(pubsubIq('get', PS, false, xml('items', { node: 'club' }))));
  });

  test('XEP-0060 §8.6.2: an owner approves a pending subscription by submitting the authorization form', async () => {
    const res = ok(
      await third.iq(pubsubIq('set', PS, false, xml('subscribe', { node: 'club', jid: 'third@localhost' }))),
    );
    assert.equal(res.getChild('pubsub')!.getChild('subscription')!.attrs.subscription, 'pending');
    const ask = await owner.receive((e) => e.name === 'message' && !!e.getChild('x', NS.dataForms));
    const form = ask.getChild('x', NS.dataForms)!;
    const value = (v: string) =>
      form
        .getChildren('field')
        .find((f) => f.attrs.var === v)
        ?.getChildText('value');
    assert.equal(value('pubsub#subscriber_jid'), 'third@localhost');
    owner.send(
      xml(
        'message',
        { to: PS, id: 'approve-1' },
        submitForm('http://jabber.org/protocol/pubsub#subscribe_authorization', {
          'pubsub#node': 'club',
          'pubsub#subscriber_jid': 'third@localhost',
          'pubsub#allow': 'true',
        }),
      ),
    );
    const approved = await third.receive(
      (e) => e.name === 'message' && !!e.getChild('event', NS.pubsubEvent)?.getChild('subscription'),
    );
    assert.equal(
      approved.getChild('event', NS.pubsubEvent)!.getChild('subscription')!.attrs.subscription,
      'subscribed',
    );
    ok(await third.iq(pubsubIq('get', PS, false, xml('items', { node: 'club' }))));
  });

  test('XEP-0060 §7.1.3.6: publish without payload on a payload node is bad-request + payload-required', async () => {
    fails(
      await owner.iq(
        pubsubIq('set', PS, false, xml('publish', { node: 'status' }, xml('item', { id: 'e' }))),
      ),
      'bad-request',
      'payload-required',
    );
  });
});

describe('XEP-0060 pubsub service: persistence', () => {
  test('XEP-0060 §7.1 persistent-items: nodes, items, subscriptions and affiliations survive a restart', async () => {
    const server = await startTestServer({ modules: BASE_MODULES });
    await server.addUser('owner', PW);
    await server.addUser('sub', PW);
    let owner = await TestClient.login(server, 'owner', PW, { resource: 'a' });
    let sub = await TestClient.login(server, 'sub', PW, { resource: 'b' });
    ok(
      await owner.iq(
        pubsubIq(
          'set',
          PS,
          false,
          xml('create', { node: 'kept' }),
          xml(
            'configure',
            null,
            submitForm(NODE_CONFIG, { 'pubsub#title': 'Kept', 'pubsub#max_items': '10' }),
          ),
        ),
      ),
    );
    ok(await sub.iq(pubsubIq('set', PS, false, xml('subscribe', { node: 'kept', jid: 'sub@localhost' }))));
    ok(await publish(owner, PS, 'kept', 'i1', entry('first')));
    ok(await publish(owner, PS, 'kept', 'i2', entry('second')));
    await owner.close();
    await sub.close();
    await server.stop();
    const again = await startTestServer({ modules: BASE_MODULES }, { dataDir: server.dataDir });
    try {
      owner = await TestClient.login(again, 'owner', PW, { resource: 'a' });
      sub = await TestClient.login(again, 'sub', PW, { resource: 'b', presence: true });
      const items = ok(await sub.iq(pubsubIq('get', PS, false, xml('items', { node: 'kept' }))));
      assert.deepEqual(
        items
          .getChild('pubsub')!
          .getChild('items')!
          .getChildren('item')
          .map((i) => i.getChild('entry')?.text()),
        ['first', 'second'],
      );
      // still the owner, subscriber still subscribed, new items ordered after the old ones
      ok(await publish(owner, PS, 'kept', 'i3', entry('third')));
      const ev = await event(sub, about('kept'));
      assert.equal(ev.getChild('items')!.getChild('item')!.attrs.id, 'i3');
      const newest = ok(
        await sub.iq(pubsubIq('get', PS, false, xml('items', { node: 'kept', max_items: '1' }))),
      );
      assert.equal(newest.getChild('pubsub')!.getChild('items')!.getChild('item')!.attrs.id, 'i3');
      await owner.close();
      await sub.close();
    } finally {
      await again.destroy();
    }
  });
});
