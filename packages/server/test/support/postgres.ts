import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** The local PostgreSQL used by tests (trust authentication on these machines). */
export const POSTGRES_ADMIN_URL =
  process.env.NATTER_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

/**
 * A fresh, empty database for one test server. Returns undefined (the caller skips) when
 * PostgreSQL is not reachable — except in CI, where it is required and this throws.
 */
export async function createTestDatabase(): Promise<TestDatabase | undefined> {
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL, connectionTimeoutMillis: 3000 });
  try {
    await admin.connect();
  } catch (err) {
    if (process.env.CI)
      throw new Error(`PostgreSQL is required in CI and is not reachable at ${POSTGRES_ADMIN_URL}`, {
        cause: err,
      });
    return undefined;
  }
  const name = `natter_test_${randomBytes(6).toString('hex')}`;
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}
