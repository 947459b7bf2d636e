import assert from 'node:assert/strict';
import { test } from 'node:test';
import { avatar, roster, sha1Hex, type Client, type PluginMap } from '../../src/index.node.js';
import { available, type SuiteContext } from '../helpers.js';

async function befriend(
  a: Client<{ roster: ReturnType<typeof roster> } & PluginMap>,
  b: Client<{ roster: ReturnType<typeof roster> } & PluginMap>,
): Promise<void> {
  // Mutual presence subscription, so each receives the other's presence and PEP notifications.
  for (const [x, y] of [
    [a, b],
    [b, a],
  ] as const) {
    const req = y.plugins.roster.waitFor('request', { timeout: 5000 });
    const ok = x.plugins.roster.waitFor('subscribed', { timeout: 5000 });
    await x.plugins.roster.subscribe(y.account);
    await req;
    await y.plugins.roster.accept(x.account);
    await ok;
  }
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

export function avatarSuite(ctx: SuiteContext): void {
  test('XEP-0084 §4 + XEP-0153 §4.1: publishing an avatar notifies contacts over PEP and in presence hashes; the data is fetched by hash', async () => {
    const a = await ctx.online({ plugins: { roster: roster(), avatar: avatar() } });
    const b = await ctx.online({ plugins: { roster: roster(), avatar: avatar() } });
    await available(b);
    await available(a);
    await befriend(a, b);
    // 64 bytes behind a PNG signature (a server converting avatars, XEP-0398, may accept images only)
    const image = new Uint8Array(Array.from({ length: 64 }, (_, i) => PNG_SIGNATURE[i] ?? i));
    const hash = await sha1Hex(image);
    const pep = b.plugins.avatar.waitFor('change', {
      filter: (c) => c.source === 'pep' && c.jid === a.account.toString() && c.hash === hash,
      timeout: 8000,
    });
    const vc = b.plugins.avatar.waitFor('change', {
      filter: (c) => c.source === 'vcard-update' && c.jid === a.account.toString() && c.hash === hash,
      timeout: 8000,
    });
    assert.equal(await a.plugins.avatar.publish(image, 'image/png', { width: 8, height: 8 }), hash);
    const change = await pep;
    assert.equal(change.info?.bytes, 64);
    assert.equal(change.info?.type, 'image/png');
    await vc;
    assert.equal(b.plugins.avatar.hashOf(a.account), hash);
    assert.deepEqual(await b.plugins.avatar.fetchData(a.account, hash), image);
    const meta = await b.plugins.avatar.metadata(a.account);
    assert.equal(meta[0]?.id, hash);
  });

  test('XEP-0084 §4.5: removing the avatar publishes empty metadata and an empty presence hash', async () => {
    const a = await ctx.online({ plugins: { roster: roster(), avatar: avatar() } });
    const b = await ctx.online({ plugins: { roster: roster(), avatar: avatar() } });
    await available(b);
    await available(a);
    await befriend(a, b);
    await a.plugins.avatar.publish(new Uint8Array([...PNG_SIGNATURE, 1, 2, 3]), 'image/png');
    const removed = b.plugins.avatar.waitFor('change', {
      filter: (c) => c.source === 'pep' && c.hash === '',
      timeout: 8000,
    });
    await a.plugins.avatar.remove();
    await removed;
    assert.equal(a.plugins.avatar.ownHash, '');
  });
}
