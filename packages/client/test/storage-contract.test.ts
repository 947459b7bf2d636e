// The same contract for every storage engine (memory, SQLite), like the server's storage tests.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  closeSqlite,
  memoryRosterStorage,
  memoryVCardStorage,
  sqliteRosterStorage,
  sqliteVCardStorage,
  type RosterStorage,
  type VCardStorage,
} from '../src/index.node.js';

const dir = await mkdtemp(join(tmpdir(), 'natter-storage-'));
after(async () => {
  await closeSqlite(join(dir, 'c.db'));
  await rm(dir, { recursive: true, force: true });
});

const engines: [string, () => RosterStorage][] = [
  ['memory', () => memoryRosterStorage()],
  ['sqlite', () => sqliteRosterStorage(join(dir, 'c.db'))],
];

for (const [name, make] of engines) {
  describe(`roster storage contract (${name})`, () => {
    test('an unknown account has no stored roster', async () => {
      assert.equal(await make().load(`nobody-${name}@x`), undefined);
    });
    test('replace, apply and clear are kept per account', async () => {
      const s = make();
      const a = `a-${name}@x`;
      const b = `b-${name}@x`;
      await s.replace(a, { version: '1', items: [{ jid: 'c@x', subscription: 'both', groups: ['g'] }] });
      await s.replace(b, { version: '9', items: [] });
      await s.apply(
        a,
        '2',
        { jid: 'd@x', name: 'D', subscription: 'none', ask: 'subscribe', groups: [] },
        false,
      );
      let r = await s.load(a);
      assert.equal(r?.version, '2');
      assert.deepEqual(r?.items.map((i) => i.jid).sort(), ['c@x', 'd@x']);
      assert.equal(r?.items.find((i) => i.jid === 'd@x')?.ask, 'subscribe');
      await s.apply(a, '3', { jid: 'c@x', subscription: 'none', groups: [] }, true);
      r = await s.load(a);
      assert.deepEqual(
        r?.items.map((i) => i.jid),
        ['d@x'],
      );
      assert.equal((await s.load(b))?.version, '9');
      await s.clear(a);
      assert.equal(await s.load(a), undefined);
    });
  });
}

const vcardEngines: [string, () => VCardStorage][] = [
  ['memory', () => memoryVCardStorage()],
  ['sqlite', () => sqliteVCardStorage(join(dir, 'c.db'))],
];

for (const [name, make] of vcardEngines) {
  describe(`vCard storage contract (${name})`, () => {
    test('vCards are stored per account and contact, replaced and removed', async () => {
      const s = make();
      const a = `a-${name}@x`;
      assert.equal(await s.get(a, 'c@x'), undefined);
      await s.set(a, 'c@x', { xml: '<vCard xmlns="vcard-temp"><FN>C</FN></vCard>', fetchedAt: 1 });
      await s.set(`b-${name}@x`, 'c@x', { xml: '<vCard xmlns="vcard-temp"/>', fetchedAt: 2 });
      assert.deepEqual(await s.get(a, 'c@x'), {
        xml: '<vCard xmlns="vcard-temp"><FN>C</FN></vCard>',
        fetchedAt: 1,
      });
      await s.set(a, 'c@x', { xml: '<vCard xmlns="vcard-temp"><FN>D</FN></vCard>', fetchedAt: 3 });
      assert.equal((await s.get(a, 'c@x'))?.fetchedAt, 3);
      await s.remove(a, 'c@x');
      assert.equal(await s.get(a, 'c@x'), undefined);
      assert.equal((await s.get(`b-${name}@x`, 'c@x'))?.fetchedAt, 2);
    });
  });
}
