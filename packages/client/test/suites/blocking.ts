import assert from 'node:assert/strict';
import { test } from 'node:test';
import { blocking, xml, type Element } from '../../src/index.node.js';
import { available, sleep, type SuiteContext } from '../helpers.js';

export function blockingSuite(ctx: SuiteContext): void {
  test('XEP-0191 §3.3/§3.4: block and unblock from one resource, pushed to the other; blocked messages are not delivered', async () => {
    const acct = ctx.account();
    const a1 = ctx.client(acct, { resource: 'one', plugins: { blocking: blocking() } });
    const a2 = ctx.client(acct, { resource: 'two', plugins: { blocking: blocking() } });
    const b = await ctx.online();
    await a1.connect();
    await a2.connect();
    await available(a1);
    const bare = b.jid!.bare.toString();
    // §3.2: only resources that fetched the list get pushes.
    assert.deepEqual(await a1.plugins.blocking.list(), []);
    assert.deepEqual(await a2.plugins.blocking.list(), []);

    const pushed = a2.plugins.blocking.waitFor('blocked', { timeout: 5000 });
    await a1.plugins.blocking.block([bare]);
    assert.deepEqual((await pushed).jids, [bare]);
    assert.deepEqual(a2.plugins.blocking.cached, [bare]);
    assert.equal(a2.plugins.blocking.isBlocked(bare), true);
    assert.deepEqual(await a1.plugins.blocking.list(), [bare]);

    const bodies: string[] = [];
    a1.on('message', (m: Element) => bodies.push(m.getChildText('body') ?? ''));
    await b.sendMessage({ to: a1.jid!, body: 'blocked one' });
    // b's stanzas are routed in order: after this round trip on b's stream the blocked message
    // has been handled; the bounded wait covers its way to a1, should a server deliver it.
    await b.iq(xml('iq', { type: 'get', to: b.domain }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    await sleep(200);

    const unpushed = a2.plugins.blocking.waitFor('unblocked', { timeout: 5000 });
    await a1.plugins.blocking.unblock([bare]);
    const u = await unpushed;
    assert.deepEqual(u, { jids: [bare], all: false });
    assert.deepEqual(a2.plugins.blocking.cached, []);

    const arrives = a1.waitFor('message', {
      filter: (m) => m.getChildText('body') === 'welcome back',
      timeout: 5000,
    });
    await b.sendMessage({ to: a1.jid!, body: 'welcome back' });
    await arrives;
    assert.deepEqual(bodies, ['welcome back']);
  });

  test('XEP-0191 §3.5: unblockAll clears the list on every resource', async () => {
    const acct = ctx.account();
    const a1 = ctx.client(acct, { resource: 'one', plugins: { blocking: blocking() } });
    const a2 = ctx.client(acct, { resource: 'two', plugins: { blocking: blocking() } });
    await a1.connect();
    await a2.connect();
    await a2.plugins.blocking.list();
    const both = ['spam@example.org', 'bad.example'];
    const changed = a2.plugins.blocking.waitFor('changed', {
      filter: (c) => c.jids.length === 2,
      timeout: 5000,
    });
    await a1.plugins.blocking.block(both);
    await changed;
    assert.deepEqual([...a2.plugins.blocking.cached!].sort(), [...both].sort());
    const cleared = a2.plugins.blocking.waitFor('unblocked', { timeout: 5000 });
    await a1.plugins.blocking.unblockAll();
    assert.deepEqual(await cleared, { jids: [], all: true });
    assert.deepEqual(a2.plugins.blocking.cached, []);
    assert.deepEqual(await a1.plugins.blocking.list(), []);
  });
}
