import assert from 'node:assert/strict';
import { test } from 'node:test';
import { memoryVCardStorage, vcard } from '../../src/index.node.js';
import type { SuiteContext } from '../helpers.js';

export function vcardSuite(ctx: SuiteContext): void {
  test('XEP-0054 §3.2/§3.1: update our vCard, then a contact fetches it', async () => {
    const a = await ctx.online({ plugins: { vcard: vcard() } });
    const b = await ctx.online({ plugins: { vcard: vcard() } });
    await a.plugins.vcard.update({
      fullName: 'Alice Example',
      nickname: 'ali',
      emails: ['alice@example.org'],
      description: 'hello',
    });
    const v = await b.plugins.vcard.fetch(a.account);
    assert.equal(v?.fullName, 'Alice Example');
    assert.equal(v?.nickname, 'ali');
    assert.deepEqual(v?.emails, ['alice@example.org']);
    const own = await a.plugins.vcard.fetch(undefined, { ignoreStorage: true });
    assert.equal(own?.nickname, 'ali');
  });

  test('XEP-0054: fetch uses storage unless ignoreStorage; vCardFor with shouldFetch fetches in the background', async () => {
    const storage = memoryVCardStorage();
    const a = await ctx.online({ plugins: { vcard: vcard() } });
    const b = await ctx.online({ plugins: { vcard: vcard({ storage }) } });
    await a.plugins.vcard.update({ fullName: 'First' });
    assert.equal(await b.plugins.vcard.vCardFor(a.account), undefined, 'nothing stored yet');
    const arrived = b.plugins.vcard.waitFor('vcard', { timeout: 5000 });
    assert.equal(await b.plugins.vcard.vCardFor(a.account, { shouldFetch: true }), undefined);
    assert.equal((await arrived).vcard.fullName, 'First');
    assert.equal((await b.plugins.vcard.vCardFor(a.account))?.fullName, 'First', 'stored now');
    await a.plugins.vcard.update({ fullName: 'Second' });
    assert.equal((await b.plugins.vcard.fetch(a.account))?.fullName, 'First', 'served from storage');
    assert.equal((await b.plugins.vcard.fetch(a.account, { ignoreStorage: true }))?.fullName, 'Second');
  });

  test('XEP-0054: a photo round-trips as bytes', async () => {
    const a = await ctx.online({ plugins: { vcard: vcard() } });
    // A whole PNG signature: a server converting vCard photos to avatars (XEP-0398) may take images only.
    const data = new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10, 1, 2, 3, 4, 5]);
    await a.plugins.vcard.update({ fullName: 'P', photo: { type: 'image/png', data } });
    const v = await a.plugins.vcard.fetch(undefined, { ignoreStorage: true });
    assert.deepEqual(v?.photo?.data, data);
    assert.equal(v?.photo?.type, 'image/png');
  });
}
