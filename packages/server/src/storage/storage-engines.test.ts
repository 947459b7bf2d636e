// The same storage contract on every engine: SQLite (default) and PostgreSQL.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Database } from './database.js';
import { AccountStore, accountMigrations, AccountExistsError } from '../accounts/account-store.js';
import { createServerMechanism, createClientMechanism, deriveScramCredentials } from '@natter/protocol';
import { createTestDatabase } from '../../test/support/postgres.js';

interface Engine {
  name: string;
  open(): Promise<{ db: Database; cleanup(): Promise<void> } | undefined>;
}

const engines: Engine[] = [
  {
    name: 'sqlite',
    async open() {
      const dir = mkdtempSync(join(tmpdir(), 'natter-storage-'));
      const db = Database.open({ engine: 'sqlite', path: join(dir, 'x.sqlite') });
      return { db, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
    },
  },
  {
    name: 'postgres',
    async open() {
      const t = await createTestDatabase();
      if (!t) return undefined;
      const db = Database.open({ engine: 'postgres', url: t.url });
      return { db, cleanup: () => t.drop() };
    },
  },
];

for (const engine of engines) {
  describe(`storage on ${engine.name}`, () => {
    test('accounts migration 0003 keeps every row; imported keys of one hash; completeKeys fills the other', async (t) => {
      const opened = await engine.open();
      if (!opened) return t.skip('PostgreSQL is not reachable');
      const { db, cleanup } = opened;
      try {
        // The schema as it was before 0003 (the migrations named before it).
        const before = Object.fromEntries(
          Object.entries(accountMigrations).filter(([name]) => name < '0003'),
        );
        await db.migrate('accounts', before);
        const old = new AccountStore(db.db, { iterations: 4096 });
        await old.create('dora', 'example.com', 'pw-dora');
        await old.setDisabled('dora', 'example.com', { reason: 'test' });
        await db.migrate('accounts', accountMigrations);
        const store = new AccountStore(db.db, { iterations: 4096 });
        assert.equal((await store.info('dora', 'example.com'))?.disabled?.reason, 'test');
        assert.ok((await store.scram('dora', 'example.com', 'SHA-256'))?.disabled);

        const sha1 = await deriveScramCredentials('SHA-1', 'pw-eve', { iterations: 4096 });
        await store.importAccount('eve', 'example.com', { keys: { 'SHA-1': sha1 } });
        await assert.rejects(
          store.importAccount('EVE', 'example.com', { keys: { 'SHA-1': sha1 } }),
          AccountExistsError,
        );
        assert.equal(await store.scram('eve', 'example.com', 'SHA-256'), null);
        assert.deepEqual((await store.scram('eve', 'example.com', 'SHA-1'))?.storedKey, sha1.storedKey);
        assert.deepEqual(await store.countIncomplete('example.com'), { withoutSha1: 0, withoutSha256: 1 });
        assert.equal(await store.completeKeys('eve', 'example.com', 'pw-eve'), true);
        assert.equal(await store.completeKeys('eve', 'example.com', 'pw-eve'), false);
        assert.ok(await store.scram('eve', 'example.com', 'SHA-256'));
        assert.deepEqual(await store.countIncomplete('example.com'), { withoutSha1: 0, withoutSha256: 0 });
        await assert.rejects(
          store.importAccount('frank', 'example.com', { keys: {} }),
          /SCRAM keys or a password/,
        );
      } finally {
        await db.close();
        await cleanup();
      }
    });

    test('accounts: create, refuse duplicates (case-insensitively), list, count, passwd, remove', async (t) => {
      const opened = await engine.open();
      if (!opened) return t.skip('PostgreSQL is not reachable');
      const { db, cleanup } = opened;
      try {
        await db.migrate('accounts', accountMigrations);
        await db.migrate('accounts', accountMigrations); // idempotent
        const store = new AccountStore(db.db, { iterations: 4096 });
        const alice = await store.create('Alice', 'example.com', 'pw-one');
        assert.equal(alice.toString(), 'alice@example.com');
        await assert.rejects(store.create('ALICE', 'example.com', 'x'), AccountExistsError);
        await store.create('bob', 'example.com', 'pw-two');
        await store.create('carol', 'other.example', 'pw-three');
        assert.deepEqual(await store.list('example.com'), ['alice', 'bob']);
        assert.equal(await store.count('example.com'), 2);
        assert.equal(await store.exists('bob', 'example.com'), true);
        assert.equal(await store.exists('bob', 'other.example'), false);

        const login = async (
          user: string,
          password: string,
          mech: 'SCRAM-SHA-256' | 'SCRAM-SHA-1' | 'PLAIN',
        ) => {
          const server = createServerMechanism(mech, { scram: (u, h) => store.scram(u, 'example.com', h) });
          const client = createClientMechanism(mech, { username: user, password });
          let r = await server.step(await client.initial());
          while (!r.done) r = await server.step(await client.challenge(r.challenge));
          return r.result.username;
        };
        for (const m of ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'] as const)
          assert.equal(await login('alice', 'pw-one', m), 'alice');
        await assert.rejects(login('alice', 'wrong', 'SCRAM-SHA-256'));

        assert.equal(await store.setPassword('alice', 'example.com', 'pw-new'), true);
        await assert.rejects(login('alice', 'pw-one', 'PLAIN'));
        assert.equal(await login('alice', 'pw-new', 'SCRAM-SHA-1'), 'alice');

        // only salted keys are stored, never the password
        const rows = await db.db.selectFrom('accounts').selectAll().execute();
        for (const row of rows) assert.ok(!JSON.stringify(row).includes('pw-'));

        assert.equal(await store.remove('bob', 'example.com'), true);
        assert.equal(await store.remove('bob', 'example.com'), false);
        assert.deepEqual(await store.list('example.com'), ['alice']);
      } finally {
        await db.close();
        await cleanup();
      }
    });
  });
}
