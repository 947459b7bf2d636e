import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer } from '../../../test/support/test-server.js';
import { createTestDatabase, type TestDatabase } from '../../../test/support/postgres.js';
import { TestClient, type Target } from '../../../test/support/test-client.js';
import { enableSm } from '../../../test/hostile/support/sm-client.js';

const PW = 'crash-pw';
const ROOT = fileURLToPath(new URL('../../../../../', import.meta.url));
const CLI = join(ROOT, 'packages/server/src/cli.ts');
const COUNT = 20;

let qn = 0;
async function archivedBodies(c: TestClient): Promise<string[]> {
  const queryid = `c${++qn}`;
  const iq = await c.iq(
    xml(
      'iq',
      { type: 'set' },
      xml('query', { xmlns: NS.mam, queryid }, xml('set', { xmlns: NS.rsm }, xml('max', null, '100'))),
    ),
  );
  assert.equal(iq.attrs.type, 'result', iq.toString());
  return c.received
    .filter((e) => e.name === 'message' && e.getChild('result', NS.mam)?.attrs.queryid === queryid)
    .map(
      (e) =>
        e
          .getChild('result', NS.mam)!
          .getChild('forwarded', NS.forward)!
          .getChild('message', NS.client)!
          .getChildText('body') ?? '',
    );
}

describe('archive durability', () => {
  test('XEP-0198 + XEP-0313: every message acknowledged with <a/> is in both archives after kill -9', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'natter-mam-crash-'));
    let pg: TestDatabase | undefined;
    if (process.env.NATTER_TEST_STORAGE === 'postgres') {
      pg = await createTestDatabase();
      if (!pg) throw new Error('NATTER_TEST_STORAGE=postgres but PostgreSQL is not reachable');
    }
    const storage = pg ? { storage: { engine: 'postgres' as const, url: pg.url } } : {};
    try {
      const setup = await startTestServer({ ...storage }, { dataDir });
      for (const u of ['romeo', 'juliet']) await setup.addUser(u, PW);
      await setup.stop();
      const configFile = join(dataDir, 'natter.json');
      writeFileSync(
        configFile,
        JSON.stringify({
          hosts: ['localhost'],
          dataDir,
          ...storage,
          listeners: [{ type: 'c2s', port: 0, host: '127.0.0.1' }],
          // The batch timer never fires before the kill: only the acknowledgement can write.
          modules: { ping: { idleMs: 0 }, mam: { flushIntervalMs: 10_000 } },
          log: { level: 'info' },
        }),
      );
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', '--conditions=source', CLI, 'serve', '--config', configFile],
        { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
      let log = '';
      const port = await new Promise<number>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          log += d.toString();
          const m = /"listeners":\["c2s:(\d+)"/.exec(log);
          if (m && log.includes('natter started')) resolve(Number(m[1]));
        });
        child.stderr.on('data', (d: Buffer) => (log += d.toString()));
        void exited.then(() => reject(new Error(`server exited: ${log}`)));
      });
      const target: Target = { domain: 'localhost', port: () => port };
      const juliet = await TestClient.login(target, 'juliet', PW, { resource: 'phone', presence: true });
      const romeo = await TestClient.login(target, 'romeo', PW, { resource: 'pc', presence: true });
      await enableSm(romeo);
      for (let i = 0; i < COUNT; i++)
        romeo.send(
          xml(
            'message',
            { to: i % 2 === 0 ? 'juliet@localhost/phone' : 'juliet@localhost', type: 'chat' },
            xml('body', null, `msg ${i}`),
          ),
        );
      romeo.send(xml('r', { xmlns: NS.sm }));
      const a: Element = await romeo.receive((e) => e.xmlns === NS.sm && e.name === 'a', 10_000);
      assert.equal(a.attrs.h, String(COUNT));
      child.kill('SIGKILL');
      await exited;
      juliet.kill();
      romeo.kill();

      const again = await startTestServer({ modules: { ping: { idleMs: 0 } }, ...storage }, { dataDir });
      try {
        const sent = Array.from({ length: COUNT }, (_, i) => `msg ${i}`);
        const r = await TestClient.login(again, 'romeo', PW, { resource: 'back' });
        assert.deepEqual(await archivedBodies(r), sent, 'the sender’s archive');
        const j = await TestClient.login(again, 'juliet', PW, { resource: 'back' });
        assert.deepEqual(await archivedBodies(j), sent, 'the recipient’s archive');
        await Promise.all([r.close(), j.close()]);
      } finally {
        await again.stop();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
      await pg?.drop();
    }
  });
});
