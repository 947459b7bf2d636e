import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pubsub, StanzaError, xml } from '../../src/index.node.js';
import { available, type SuiteContext } from '../helpers.js';

/** A client allowed to create nodes on the target's pubsub service. */
async function creator(ctx: SuiteContext) {
  const acct = ctx.target.pubsubCreator ?? ctx.account();
  const c = ctx.client(acct, { resource: `r${Math.random()}`, plugins: { pubsub: pubsub() } });
  await c.connect();
  return c;
}

export function pubsubSuite(ctx: SuiteContext): void {
  test('XEP-0060 §8.1/§7.1/§6.1/§6.5: create a node, subscribe, publish with notification, fetch and retract items', async () => {
    const svc = ctx.target.pubsubDomain;
    const owner = await creator(ctx);
    const sub = await ctx.online({ plugins: { pubsub: pubsub() } });
    await available(sub); // notifications to a bare JID reach available resources
    const node = `news-${Date.now()}`;
    assert.equal(await owner.plugins.pubsub.create(svc, node), node);
    const subscription = await sub.plugins.pubsub.subscribe(svc, node);
    assert.equal(subscription.state, 'subscribed');
    const notified = sub.plugins.pubsub.waitFor('item', { filter: (e) => e.node === node, timeout: 5000 });
    const id = await owner.plugins.pubsub.publish(
      svc,
      node,
      xml('entry', { xmlns: 'urn:example:news' }, 'first'),
      { id: 'item-1' },
    );
    assert.equal(id, 'item-1');
    const n = await notified;
    assert.equal(n.service, svc);
    assert.equal(n.item.id, 'item-1');
    assert.equal(n.item.payload?.text(), 'first');
    await owner.plugins.pubsub.publish(svc, node, xml('entry', { xmlns: 'urn:example:news' }, 'second'), {
      id: 'item-2',
    });
    const items = await sub.plugins.pubsub.items(svc, node);
    assert.deepEqual(items.map((i) => i.id).sort(), ['item-1', 'item-2']);
    const one = await sub.plugins.pubsub.items(svc, node, { ids: ['item-2'] });
    assert.equal(one[0]?.payload?.text(), 'second');
    const retracted = sub.plugins.pubsub.waitFor('retract', {
      filter: (e) => e.node === node,
      timeout: 5000,
    });
    await owner.plugins.pubsub.retract(svc, node, 'item-1');
    assert.equal((await retracted).id, 'item-1');
    await sub.plugins.pubsub.unsubscribe(svc, node);
    const nodes = await owner.plugins.pubsub.nodes(svc);
    assert.ok(nodes.some((x) => x.node === node));
  });

  test('XEP-0060 §8.2/§8.4: configure a node, read its configuration, delete it with a notification', async () => {
    const svc = ctx.target.pubsubDomain;
    const owner = await creator(ctx);
    const sub = await ctx.online({ plugins: { pubsub: pubsub() } });
    await available(sub); // notifications to a bare JID reach available resources
    const node = `conf-${Date.now()}`;
    await owner.plugins.pubsub.create(svc, node, { 'pubsub#title': 'Configured', 'pubsub#max_items': 5 });
    const form = await owner.plugins.pubsub.getConfig(svc, node);
    assert.equal(form.fields.find((f) => f.var === 'pubsub#title')?.values[0], 'Configured');
    await owner.plugins.pubsub.configure(svc, node, { 'pubsub#title': 'Renamed' });
    assert.equal(
      (await owner.plugins.pubsub.getConfig(svc, node)).fields.find((f) => f.var === 'pubsub#title')
        ?.values[0],
      'Renamed',
    );
    await sub.plugins.pubsub.subscribe(svc, node);
    await owner.plugins.pubsub.publish(svc, node, xml('entry', { xmlns: 'urn:example:news' }, 'x'), {
      id: 'p1',
    });
    const purged = sub.plugins.pubsub.waitFor('purge', { filter: (e) => e.node === node, timeout: 5000 });
    await owner.plugins.pubsub.purge(svc, node);
    await purged;
    assert.deepEqual(await sub.plugins.pubsub.items(svc, node), []);
    const deleted = sub.plugins.pubsub.waitFor('delete', { filter: (e) => e.node === node, timeout: 5000 });
    await owner.plugins.pubsub.delete(svc, node);
    await deleted;
    await assert.rejects(
      sub.plugins.pubsub.items(svc, node),
      (e: unknown) => e instanceof StanzaError && e.condition === 'item-not-found',
    );
  });

  test('XEP-0060 §8.1: a non-owner cannot delete a node (forbidden)', async () => {
    const svc = ctx.target.pubsubDomain;
    const owner = await creator(ctx);
    const other = await ctx.online({ plugins: { pubsub: pubsub() } });
    const node = `mine-${Date.now()}`;
    await owner.plugins.pubsub.create(svc, node);
    await assert.rejects(
      other.plugins.pubsub.delete(svc, node),
      (e: unknown) =>
        e instanceof StanzaError && ['forbidden', 'not-authorized', 'not-allowed'].includes(e.condition),
    );
  });

  test('XEP-0163: PEP publish on our account notifies our own +notify resources; items are fetched from the owner', async () => {
    const acct = ctx.account();
    const node = 'urn:example:mood-like';
    const a = ctx.client(acct, { resource: 'pub', plugins: { pubsub: pubsub() } });
    const b = ctx.client(acct, { resource: 'watch', plugins: { pubsub: pubsub({ notify: [node] }) } });
    await a.connect();
    await b.connect();
    await available(b);
    await new Promise((r) => setTimeout(r, 300)); // the server queries b's caps
    const seen = b.plugins.pubsub.waitFor('item', { filter: (e) => e.node === node, timeout: 5000 });
    await a.plugins.pubsub.pep.publish(node, xml('mood', { xmlns: node }, 'happy'), { id: 'current' });
    const ev = await seen;
    assert.equal(ev.service, acct.jid);
    assert.equal(ev.item.payload?.text(), 'happy');
    const items = await a.plugins.pubsub.pep.items(acct.jid, node);
    assert.equal(items[0]?.payload?.text(), 'happy');
  });
}
