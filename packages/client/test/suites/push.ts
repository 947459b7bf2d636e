import assert from 'node:assert/strict';
import { test } from 'node:test';
import { push, PushError, type Element } from '../../src/index.node.js';
import { available, type SuiteContext } from '../helpers.js';

const NS_PUBSUB = 'http://jabber.org/protocol/pubsub';

/** A second account's client acting as the XEP-0357 app server: it takes every pubsub publish it gets. */
async function appServer(ctx: SuiteContext) {
  const c = ctx.client(ctx.account(), { resource: 'app-server' });
  const publishes: Element[] = [];
  const waiters: ((iq: Element) => void)[] = [];
  c.handleIq('set', 'pubsub', NS_PUBSUB, (iq) => {
    publishes.push(iq);
    waiters.shift()?.(iq);
  });
  await c.connect();
  return {
    client: c,
    /** The next publish (one already received and not yet taken first); 5 s at most. */
    next(): Promise<Element> {
      const got = publishes.shift();
      if (got) return Promise.resolve(got);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no push notification within 5 s')), 5000);
        waiters.push((iq) => {
          clearTimeout(t);
          publishes.splice(publishes.indexOf(iq), 1);
          resolve(iq);
        });
      });
    },
  };
}

function fieldsOf(x: Element | undefined): Map<string | undefined, string | undefined> {
  return new Map((x?.getChildren('field') ?? []).map((f) => [f.attr('var'), f.getChildText('value')]));
}

export function pushSuite(ctx: SuiteContext): void {
  test('XEP-0357 §5/§6: enable and disable are accepted; the account announces urn:xmpp:push:0', async (t) => {
    // Prosody 0.12 has no XEP-0357 module (mod_cloud_notify is a community module): Natter only.
    if (!ctx.target.push) return t.skip(`${ctx.target.name} has no XEP-0357 push`);
    const c = await ctx.online({ plugins: { push: push() } });
    assert.equal(await c.plugins.push.supported(), true);
    await c.plugins.push.enable({ jid: 'push.example.net', node: 'device-a', secret: 'tok' });
    await c.plugins.push.enable({ jid: 'push.example.net', node: 'device-b', form: { endpoint: 'x' } });
    await c.plugins.push.disable({ jid: 'push.example.net', node: 'device-a' });
    await c.plugins.push.disable({ jid: 'push.example.net' });
  });

  test('XEP-0357 §7: with the client gone, a message to the account notifies the app server; disable stops it', async (t) => {
    if (!ctx.target.push) return t.skip(`${ctx.target.name} has no XEP-0357 push`);
    const app = await appServer(ctx);
    const acct = ctx.account();
    // No stream management: once disconnected, messages go to offline storage, which triggers the push.
    const phone = ctx.client(acct, { resource: 'phone', plugins: { push: push() } });
    await phone.connect();
    await available(phone);
    const appJid = app.client.jid!.toString();
    await phone.plugins.push.enable({ jid: appJid, node: 'device-1', secret: 'eruio234vzxc2kla-91' });
    await phone.disconnect();

    const sender = await ctx.online();
    await sender.sendMessage({ to: acct.jid, body: 'are you there?' });
    const iq = await app.next();
    assert.equal(iq.attr('from'), acct.jid);
    const pubsub = iq.getChild('pubsub', NS_PUBSUB)!;
    const publish = pubsub.getChild('publish')!;
    assert.equal(publish.attr('node'), 'device-1');
    const summary = fieldsOf(
      publish.getChild('item')?.getChild('notification', 'urn:xmpp:push:0')?.getChild('x'),
    );
    assert.equal(summary.get('FORM_TYPE'), 'urn:xmpp:push:summary');
    assert.equal(summary.get('message-count'), '1');
    assert.equal(summary.get('last-message-sender'), sender.jid!.toString());
    const options = fieldsOf(pubsub.getChild('publish-options')?.getChild('x'));
    assert.equal(options.get('secret'), 'eruio234vzxc2kla-91');

    // Disabled: the next missed message notifies only the registration made since (no waiting for an absence).
    await phone.connect();
    await phone.plugins.push.disable({ jid: appJid, node: 'device-1' });
    await phone.plugins.push.enable({ jid: appJid, node: 'device-2' });
    await phone.disconnect();
    await sender.sendMessage({ to: acct.jid, body: 'still there?' });
    const next = await app.next();
    assert.equal(next.getChild('pubsub', NS_PUBSUB)?.getChild('publish')?.attr('node'), 'device-2');
  });

  test('XEP-0357 §4: without urn:xmpp:push:0 on the account, enable fails with PushError unsupported', async (t) => {
    if (ctx.target.push) return t.skip(`${ctx.target.name} supports XEP-0357`);
    const c = await ctx.online({ plugins: { push: push() } });
    assert.equal(await c.plugins.push.supported(), false);
    await assert.rejects(
      c.plugins.push.enable({ jid: 'push.example.net', node: 'n' }),
      (e: unknown) => e instanceof PushError && e.code === 'unsupported',
    );
  });
}
