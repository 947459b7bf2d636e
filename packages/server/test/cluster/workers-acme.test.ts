// `natter serve --workers 2` with tls.acme against Pebble: one worker (the leader) orders, the
// other is told (or finds it at its own check) and reloads too, so every TLS handshake, whichever
// worker node:cluster hands it to, gets the issued certificate, and after a renewal the renewed
// one; Pebble's HTTP-01 requests reach either worker, which answer from storage.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import Database from 'better-sqlite3';
import { ServeProcess, type LogLine } from '../support/natter-process.js';
import { freePort } from '../support/federation-peers.js';
import { ensurePebble, startPebble, type Pebble } from '../support/pebble.js';

/** The serial of what a TLS client trusting only `root` gets for `servername`; undefined if untrusted. */
function trustedSerial(port: number, servername: string, root: string): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, servername, ca: [root], rejectUnauthorized: false }, () => {
      resolve(s.authorized ? s.getPeerX509Certificate()!.serialNumber : undefined);
      s.destroy();
    });
    s.on('error', reject);
  });
}

/**
 * Waits until eight handshakes in a row, over new connections (each handed to a worker in turn),
 * are trusted and present `serial` (any trusted one when undefined); returns that serial.
 */
async function allWorkersServe(port: number, root: string, serial?: string): Promise<string> {
  const end = Date.now() + 30_000;
  for (;;) {
    const got: (string | undefined)[] = [];
    for (let i = 0; i < 8; i++) got.push(await trustedSerial(port, 'chat.example', root));
    const want = serial ?? got[0];
    if (want !== undefined && got.every((g) => g === want)) return want;
    assert.ok(Date.now() < end, `not every worker serves it: ${got.map((g) => g ?? 'untrusted').join(' ')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('natter serve --workers 2 with tls.acme: every worker serves the issued and the renewed certificate', () => {
  let skip: string | undefined;
  let dir: string;
  let pebble: Pebble;
  let server: ServeProcess;

  before(async () => {
    skip = await ensurePebble();
    if (skip) return;
    dir = mkdtempSync(join(tmpdir(), 'natter-workers-acme-'));
    const httpPort = await freePort();
    pebble = await startPebble(dir, httpPort);
    const configFile = join(dir, 'natter.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        hosts: ['chat.example'],
        dataDir: join(dir, 'data'),
        listeners: [
          { type: 'c2s-tls', port: 0, host: '127.0.0.1' },
          { type: 'http', port: httpPort, host: '127.0.0.1' },
        ],
        s2s: { enabled: false },
        modules: { upload: false, ping: { idleMs: 0 } },
        tls: {
          acme: {
            directory: pebble.directory,
            caFile: pebble.caFile,
            agreeToTerms: true,
            domains: ['chat.example'],
            // Every 3.6 s, so that the renewal below happens within the test.
            checkHours: 0.001,
          },
        },
        log: { level: 'info' },
      }),
    );
    server = await ServeProcess.start(configFile, ['--workers', '2'], 'natter started with workers');
  });

  after(async () => {
    const code = await server?.stop();
    await pebble?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (server) assert.equal(code, 0, server.text.slice(-3000));
  });

  const issuedLines = () =>
    server.lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('acme: certificate issued'));

  test('one worker orders; both serve it; a renewal reaches both, without a restart', async (t) => {
    if (skip) return t.skip(skip);
    await server.waitFor(
      (l) => typeof l.msg === 'string' && l.msg.startsWith('acme: certificate issued'),
      0,
      60_000,
    );
    assert.equal(issuedLines().length, 1, 'one order for the machine');
    const root = await pebble.issuingRoot();
    const port = (
      server.lines.find((l) => l.msg === 'worker ready') as LogLine & { ports: { 'c2s-tls': number } }
    ).ports['c2s-tls'];
    const first = await allWorkersServe(port, root);

    // As if it expired in 10 days: the leader's next check renews it.
    const db = new Database(join(dir, 'data', 'natter.sqlite'));
    try {
      db.prepare('update acme_certificates set not_after = ? where name = ?').run(
        Date.now() + 10 * 24 * 3600_000,
        'chat.example',
      );
    } finally {
      db.close();
    }
    const mark = server.mark();
    await server.waitFor(
      (l) => typeof l.msg === 'string' && l.msg.startsWith('acme: certificate issued'),
      mark,
      60_000,
    );
    // Stored before the line is logged (the files are written after it).
    const store = new Database(join(dir, 'data', 'natter.sqlite'), { readonly: true });
    let renewed: string;
    try {
      renewed = (
        store.prepare('select cert_pem from acme_certificates where name = ?').get('chat.example') as {
          cert_pem: string;
        }
      ).cert_pem;
    } finally {
      store.close();
    }
    const serial = new X509Certificate(renewed).serialNumber;
    assert.notEqual(serial, first);
    assert.equal(await allWorkersServe(port, root, serial), serial);
    assert.equal(issuedLines().length, 2, 'one renewal for the machine');
  });
});
