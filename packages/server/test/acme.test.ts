// Certificates from ACME (tls.acme) against a real ACME server: Pebble, Let's Encrypt's test CA,
// validating HTTP-01 challenges over HTTP on Natter's http listener, with names resolved by
// pebble-challtestsrv. What a client sees: after the order, a TLS client that trusts only the
// CA's root connects to the hosted domain and to its rooms service without a warning; a renewal
// changes the certificate for new connections while a logged-in session stays; a domain the CA
// cannot validate is reported in the log, and the others are served all the same.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { xml } from '@natter/xml';
import { startTestServer, type TestServer } from './support/test-server.js';
import { TestClient } from './support/test-client.js';
import { captureLog } from './support/log-capture.js';
import { ensurePebble, startPebble, type Pebble } from './support/pebble.js';

const PW = 'acme-test-password';

/** The certificate a TLS client gets for `servername`, verified against `root` (or why not). */
function handshake(
  port: number,
  servername: string,
  root: string,
): Promise<{ authorized: boolean; error?: string; cert: X509Certificate }> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, servername, ca: [root], rejectUnauthorized: false }, () => {
      const cert = new X509Certificate(s.getPeerX509Certificate()!.raw);
      resolve({
        authorized: s.authorized,
        ...(s.authorizationError ? { error: String(s.authorizationError) } : {}),
        cert,
      });
      s.destroy();
    });
    s.on('error', reject);
  });
}

function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('ACME (tls.acme) with Pebble: HTTP-01 on the http listener, renewal, hot reload', () => {
  let skip: string | undefined;
  let dir: string;
  let server: TestServer;
  let pebble: Pebble;
  let root: string;
  // One log for both servers of the file (the restart test reads on from the first one's lines).
  const { logger, lines } = captureLog();

  before(async () => {
    skip = await ensurePebble();
    if (skip) return;
    dir = mkdtempSync(join(tmpdir(), 'natter-acme-'));
    // Natter first (its http port is where Pebble validates); Pebble's directory is filled in
    // once Pebble runs: the first automatic check meanwhile fails and is retried.
    server = await startTestServer(
      {
        hosts: ['chat.example', 'bad.example'],
        listeners: [
          { type: 'c2s', port: 0, host: '127.0.0.1' },
          { type: 'c2s-tls', port: 0, host: '127.0.0.1' },
          { type: 'http', port: 0, host: '127.0.0.1' },
        ],
        modules: { upload: false },
        tls: {
          acme: {
            directory: 'https://127.0.0.1:9/dir',
            agreeToTerms: true,
            email: 'ops@chat.example',
            domains: ['chat.example', 'bad.example'],
            caFile: join(dir, 'none-yet.pem'),
          },
        },
      },
      { dataDir: join(dir, 'data'), logger },
    );
    await server.addUser('alice', PW, 'chat.example');
    pebble = await startPebble(dir, server.port('http'));
    // bad.example points where nothing answers: its HTTP-01 validation fails.
    await pebble.resolve('bad.example', '127.0.0.2');
    server.config.tls.acme!.directory = pebble.directory;
    server.config.tls.acme!.caFile = pebble.caFile;
    root = await pebble.issuingRoot();
  });

  after(async () => {
    await server?.stop();
    await pebble?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('an order: the hosted domain and its services in one certificate, trusted by a client that trusts the CA; a domain the CA cannot validate is logged', async (t) => {
    if (skip) return t.skip(skip);
    const acme = server.acme!;
    let out = await acme.pass();
    for (let i = 0; i < 2 && out.find((o) => o.name === 'chat.example')?.result !== 'issued'; i++)
      out = await acme.pass();
    const chat = out.find((o) => o.name === 'chat.example');
    assert.equal(chat?.result, 'issued', JSON.stringify(out));
    const bad = out.find((o) => o.name === 'bad.example');
    assert.equal(bad?.result, 'failed');
    assert.ok(
      lines.some(
        (l) =>
          l.msg === `acme: ordering a certificate for bad.example failed: ${bad!.error}` && l.level === 50,
      ),
      'an error line names the domain and what the CA said',
    );

    const port = server.port('c2s-tls');
    for (const name of ['chat.example', 'conference.chat.example', 'pubsub.chat.example']) {
      const got = await handshake(port, name, root);
      assert.equal(got.authorized, true, `${name}: ${got.error}`);
      assert.ok(got.cert.subjectAltName?.includes(`DNS:${name}`), got.cert.subjectAltName);
    }
    // bad.example still gets a certificate (the generated one), which the CA's root does not sign.
    assert.equal((await handshake(port, 'bad.example', root)).authorized, false);
    const files = join(dir, 'data', 'certs');
    assert.equal(statSync(join(files, 'chat.example.key')).mode & 0o777, 0o600);
    assert.equal(statSync(join(files, 'chat.example.crt')).mode & 0o777, 0o644);
    // The challenges are gone once answered; unknown tokens are not found.
    assert.equal(
      (await httpGet(server.port('http'), '/.well-known/acme-challenge/abcdefghijklmnopqrst')).status,
      404,
    );
    assert.equal(
      (await server.core.database.db.selectFrom('acme_challenges').selectAll().execute()).length,
      0,
    );
    // A second check finds nothing due.
    const again = await acme.pass();
    assert.equal(again.find((o) => o.name === 'chat.example')?.result, 'current');
  });

  test('renewal when the certificate is due: new connections get the new one, a logged-in session stays', async (t) => {
    if (skip) return t.skip(skip);
    const port = server.port('c2s-tls');
    const before = (await handshake(port, 'chat.example', root)).cert;
    const alice = await TestClient.login(
      { domain: 'chat.example', port: () => server.port('c2s') },
      'alice',
      PW,
      {
        resource: 'phone',
      },
    );
    // As if it expired in 10 days (renewDays is 30).
    await server.core.database.db
      .updateTable('acme_certificates')
      .set({ not_after: Date.now() + 10 * 24 * 3600_000 })
      .where('name', '=', 'chat.example')
      .execute();
    const out = await server.acme!.pass();
    assert.equal(out.find((o) => o.name === 'chat.example')?.result, 'issued');
    const after = await handshake(port, 'chat.example', root);
    assert.equal(after.authorized, true);
    assert.notEqual(after.cert.serialNumber, before.serialNumber, 'a new certificate');
    assert.ok(lines.some((l) => l.msg === 'certificates reloaded; configuration unchanged'));
    const pong = await alice.iq(
      xml('iq', { type: 'get', to: 'chat.example' }, xml('ping', { xmlns: 'urn:xmpp:ping' })),
    );
    assert.equal(pong.attrs.type, 'result', 'the session opened before the renewal still answers');
    await alice.close();
  });

  test('two nodes that both believe they lead: one orders, the other waits for it and installs what it stored', async (t) => {
    if (skip) return t.skip(skip);
    const storage =
      server.config.storage.engine === 'sqlite'
        ? {
            engine: 'sqlite' as const,
            path: server.config.storage.path ?? join(dir, 'data', 'natter.sqlite'),
          }
        : server.config.storage;
    const other = await startTestServer(
      {
        hosts: ['chat.example'],
        storage,
        listeners: [
          { type: 'c2s', port: 0, host: '127.0.0.1' },
          { type: 'c2s-tls', port: 0, host: '127.0.0.1' },
        ],
        modules: { upload: false },
        tls: { acme: { ...server.config.tls.acme!, domains: ['chat.example'] } },
      },
      { dataDir: join(dir, 'data-other'), logger },
    );
    try {
      await other.acme!.pass(); // its check at start: the stored certificate is current
      const before = (await handshake(other.port('c2s-tls'), 'chat.example', root)).cert.serialNumber;
      await server.core.database.db
        .updateTable('acme_certificates')
        .set({ not_after: Date.now() + 10 * 24 * 3600_000 })
        .where('name', '=', 'chat.example')
        .execute();
      const mark = lines.length;
      const both = await Promise.all([server.acme!.pass(), other.acme!.pass()]);
      const results = both.map((out) => out.find((o) => o.name === 'chat.example')?.result).sort();
      // One ordered; the other found the lease taken (deferred) or, asking after the order, nothing due.
      assert.equal(results.filter((r) => r === 'issued').length, 1, JSON.stringify(both));
      assert.ok(
        results.every((r) => r === 'issued' || r === 'deferred' || r === 'current'),
        JSON.stringify(both),
      );
      assert.equal(
        lines
          .slice(mark)
          .filter((l) => String(l.msg).startsWith('acme: ordering a certificate for chat.example,')).length,
        1,
        lines
          .slice(mark)
          .map((l) => l.msg)
          .join('\n'),
      );
      // The one that waited installs the new certificate at its next look.
      const again = await other.acme!.pass();
      assert.equal(again.find((o) => o.name === 'chat.example')?.result, 'current');
      const after = await handshake(other.port('c2s-tls'), 'chat.example', root);
      assert.equal(after.authorized, true);
      assert.notEqual(after.cert.serialNumber, before);
    } finally {
      await other.stop();
    }
  });

  test('a restart serves the stored certificate at once, without ordering again', async (t) => {
    if (skip) return t.skip(skip);
    const serial = (await handshake(server.port('c2s-tls'), 'chat.example', root)).cert.serialNumber;
    const config = server.config;
    await server.stop();
    const mark = lines.length;
    server = await startTestServer(
      {
        hosts: config.hosts,
        listeners: [
          { type: 'c2s', port: 0, host: '127.0.0.1' },
          { type: 'c2s-tls', port: 0, host: '127.0.0.1' },
          { type: 'http', port: 0, host: '127.0.0.1' },
        ],
        modules: { upload: false },
        tls: { acme: { ...config.tls.acme!, domains: ['chat.example'] } },
      },
      {
        dataDir: join(dir, 'data'),
        logger,
      },
    );
    const got = await handshake(server.port('c2s-tls'), 'chat.example', root);
    assert.equal(got.authorized, true);
    assert.equal(got.cert.serialNumber, serial);
    const out = await server.acme!.pass();
    assert.deepEqual(
      out.map((o) => [o.name, o.result]),
      [['chat.example', 'current']],
    );
    assert.ok(!lines.slice(mark).some((l) => String(l.msg).startsWith('acme: ordering')));
  });
});
