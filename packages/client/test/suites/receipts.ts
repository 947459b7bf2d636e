import assert from 'node:assert/strict';
import { test } from 'node:test';
import { receipts } from '../../src/index.node.js';
import { sleep, type SuiteContext } from '../helpers.js';

export function receiptsSuite(ctx: SuiteContext): void {
  test('XEP-0184 §5.1-5.3: outgoing messages request receipts; the peer answers automatically; delivered fires', async () => {
    const a = await ctx.online({ plugins: { receipts: receipts() } });
    const b = await ctx.online({ plugins: { receipts: receipts() } });
    const requested = b.plugins.receipts.waitFor('requested', { timeout: 5000 });
    const id = await a.sendMessage({ to: b.jid!, body: 'did you get this?' });
    assert.deepEqual(a.plugins.receipts.pending(), [id]);
    const delivered = await a.plugins.receipts.waitForDelivery(id, 5000);
    assert.equal(delivered.from, b.jid!.toString());
    assert.equal((await requested).id, id);
    assert.deepEqual(a.plugins.receipts.pending(), []);
  });

  test('XEP-0184: with autoAnswer off no receipt is sent until markReceived', async () => {
    const a = await ctx.online({ plugins: { receipts: receipts() } });
    const b = await ctx.online({ plugins: { receipts: receipts({ autoAnswer: false }) } });
    const requested = b.plugins.receipts.waitFor('requested', { timeout: 5000 });
    const id = await a.sendMessage({ to: b.jid!, body: 'manual' });
    let delivered = false;
    a.plugins.receipts.on('delivered', () => (delivered = true));
    const req = await requested;
    await sleep(300);
    assert.equal(delivered, false);
    const d = a.plugins.receipts.waitForDelivery(id, 5000);
    await b.plugins.receipts.markReceived(req.element);
    assert.equal((await d).id, id);
  });

  test('XEP-0184 §5.4: receipts are not requested on groupchat messages or when disabled', async () => {
    const a = await ctx.online({ plugins: { receipts: receipts({ request: false }) } });
    const b = await ctx.online();
    const got = b.waitFor('message', { timeout: 5000 });
    await a.sendMessage({ to: b.jid!, body: 'no receipt please' });
    assert.equal((await got).getChild('request', 'urn:xmpp:receipts'), undefined);
  });
}
