import assert from 'node:assert/strict';
import { test } from 'node:test';
import { avatar, capsVerification, disco, ping, receipts } from '../../src/index.node.js';
import { available, type SuiteContext } from '../helpers.js';

export function discoSuite(ctx: SuiteContext): void {
  test('XEP-0030 §3/§4: disco#info and disco#items of the server', async () => {
    const c = await ctx.online({ plugins: { disco: disco() } });
    const info = await c.plugins.disco.info(ctx.target.domain);
    assert.ok(info.identities.some((i) => i.category === 'server'));
    assert.ok(info.features.includes('http://jabber.org/protocol/disco#info'));
    const items = await c.plugins.disco.items(ctx.target.domain);
    assert.ok(
      items.some((i) => i.jid === ctx.target.mucDomain),
      `items: ${items.map((i) => i.jid).join(', ')}`,
    );
    assert.equal(
      await c.plugins.disco.supports(ctx.target.mucDomain, 'http://jabber.org/protocol/muc'),
      true,
    );
  });

  test('XEP-0115 §5: our features come from the active modules and hash to the advertised ver', async () => {
    const a = await ctx.online({
      plugins: { disco: disco(), ping: ping(), receipts: receipts(), avatar: avatar() },
    });
    const feats = a.plugins.disco.ownFeatures;
    for (const f of [
      'urn:xmpp:ping',
      'urn:xmpp:receipts',
      'urn:xmpp:avatar:metadata+notify',
      'http://jabber.org/protocol/caps',
    ])
      assert.ok(feats.includes(f), f);
    assert.equal(await a.capsVer(), await capsVerification([a.plugins.disco.ownIdentity], feats));
    const plain = await ctx.online({ plugins: { disco: disco() } });
    assert.ok(!plain.plugins.disco.ownFeatures.includes('urn:xmpp:ping'));
    assert.notEqual(await plain.capsVer(), await a.capsVer());
  });

  test('XEP-0115 §6: a contact learns our capabilities from presence and verifies them', async () => {
    const acct = ctx.account();
    const a = ctx.client(acct, { resource: 'one', plugins: { disco: disco(), ping: ping() } });
    const b = ctx.client(acct, { resource: 'two', plugins: { disco: disco() } });
    await a.connect();
    await b.connect();
    const caps = b.plugins.disco.waitFor('caps', {
      filter: (c) => c.jid === a.jid!.toString(),
      timeout: 5000,
    });
    await available(b);
    await available(a);
    const got = await caps;
    assert.equal(got.ver, await a.capsVer());
    assert.ok(got.info.features.includes('urn:xmpp:ping'));
    assert.ok(b.plugins.disco.capsOf(a.jid!)?.features.includes('urn:xmpp:ping'));
  });
}
