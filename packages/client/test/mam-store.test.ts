// The message stores of the mam module against one contract (IndexedDB: see browser.test.ts).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { closeSqlite, memoryMessageStore, sqliteMessageStore } from '../src/index.node.js';
import { messageStoreContract } from './message-store-contract.js';

const dir = await mkdtemp(join(tmpdir(), 'natter-mam-store-'));
after(async () => {
  await closeSqlite(join(dir, 'm.db'));
  await rm(dir, { recursive: true, force: true });
});

messageStoreContract('memory', () => memoryMessageStore());
messageStoreContract('sqlite', () => sqliteMessageStore(join(dir, 'm.db')));
