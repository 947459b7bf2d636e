import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type NatterServer } from '../../src/server.js';
import type { ConfigInput } from '../../src/config.js';
import type { ModuleDefinition } from '../../src/core/module.js';
import type { Logger } from '../../src/core/logger.js';
import type { NodeBus } from '../../src/core/cluster/node-bus.js';
import { createTestDatabase, type TestDatabase } from './postgres.js';

/**
 * Storage engine of test servers: SQLite by default; NATTER_TEST_STORAGE=postgres runs the same
 * tests against a fresh PostgreSQL database per server (kept across restarts on the same dataDir).
 */
const ENGINE = process.env.NATTER_TEST_STORAGE === 'postgres' ? 'postgres' : 'sqlite';
const databases = new Map<string, TestDatabase>();

export interface TestServer extends NatterServer {
  dataDir: string;
  domain: string;
  /** Stops and removes the data directory. */
  destroy(): Promise<void>;
}

/**
 * A real server on ephemeral loopback ports with its own data directory. `dataDir` may be
 * passed to restart a server over the same storage. With
 * `startTestServer({ components: { 'gw.localhost': { secret: 's3cret' } } })` it also listens for
 * XEP-0114 components on `server.port('component')` (see support/component-client.ts).
 */
export async function startTestServer(
  config: Partial<ConfigInput> = {},
  opts: {
    dataDir?: string;
    modules?: ModuleDefinition[];
    logger?: Logger;
    /** Federation on, with `s2s` and `s2s-tls` listeners: `server.port('s2s')`. */
    s2s?: boolean;
    /** A node of a cluster over this bus (support/test-cluster.ts). */
    bus?: NodeBus;
    s2sSecret?: string;
  } = {},
): Promise<TestServer> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'natter-test-'));
  let storage: ConfigInput['storage'];
  if (ENGINE === 'postgres' && config.storage === undefined) {
    let db = databases.get(dataDir);
    if (!db) {
      db = await createTestDatabase();
      if (!db) throw new Error('NATTER_TEST_STORAGE=postgres but PostgreSQL is not reachable');
      databases.set(dataDir, db);
    }
    storage = { engine: 'postgres', url: db.url };
  }
  const server = await startServer(
    {
      ...(storage ? { storage } : {}),
      hosts: ['localhost'],
      dataDir,
      listeners: [
        { type: 'c2s', port: 0, host: '127.0.0.1' },
        { type: 'c2s-tls', port: 0, host: '127.0.0.1' },
        { type: 'http', port: 0, host: '127.0.0.1' },
        { type: 'admin', port: 0, host: '127.0.0.1' },
        // With `components` configured, an XEP-0114 listener too: `server.port('component')`.
        ...(config.components ? [{ type: 'component' as const, port: 0, host: '127.0.0.1' }] : []),
        ...(opts.s2s
          ? [
              { type: 's2s' as const, port: 0, host: '127.0.0.1' },
              { type: 's2s-tls' as const, port: 0, host: '127.0.0.1' },
            ]
          : []),
      ],
      log: { level: (process.env.NATTER_TEST_LOG as 'info' | undefined) ?? 'silent' },
      // Federation is off unless a test turns it on: no test reaches out to a real domain's DNS.
      s2s: { enabled: opts.s2s === true },
      ...config,
    },
    { modules: opts.modules, logger: opts.logger, bus: opts.bus, s2sSecret: opts.s2sSecret },
  );
  return Object.assign(server, {
    dataDir,
    domain: server.config.hosts[0]!,
    async destroy() {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
      const db = databases.get(dataDir);
      databases.delete(dataDir);
      await db?.drop();
    },
  });
}
