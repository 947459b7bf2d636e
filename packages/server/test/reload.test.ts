import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { xml } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer } from './support/test-server.js';
import { TestClient, type Target } from './support/test-client.js';
import {
  DAY_MS,
  ServeProcess,
  datedCertificate,
  servedFingerprint,
  startTlsFingerprint,
  type LogLine,
} from './support/natter-process.js';

const PW = 'reload-pw';
const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;
const isReloaded = (l: LogLine) =>
  l.msg === 'configuration reloaded' || l.msg === 'certificates reloaded; configuration unchanged';

describe('SIGHUP on natter serve: configuration and certificates reload without dropping sessions', () => {
  let dir: string;
  let configFile: string;
  let live: { cert: string; key: string };
  let a: { certPem: string; keyPem: string };
  let b: { certPem: string; keyPem: string };
  let server: ServeProcess;
  let romeo: TestClient;
  let config: Record<string, unknown>;

  /** Sends SIGHUP and resolves with the lines the reload wrote, once it is done. */
  async function hup(): Promise<LogLine[]> {
    const from = server.mark();
    server.signal('SIGHUP');
    await server.waitFor(isReloaded, from, 20_000, 'the reload to finish');
    return server.lines.slice(from);
  }

  /** The session opened before the reloads still answers. */
  async function stillAlive(): Promise<void> {
    const pong = await romeo.iq(
      xml('iq', { type: 'get', id: `p${Date.now()}`, to: 'localhost' }, xml('ping', { xmlns: NS.ping })),
    );
    assert.equal(pong.attrs.type, 'result');
    assert.equal(romeo.closed, false);
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'natter-reload-'));
    const dataDir = join(dir, 'data');
    const setup = await startTestServer({}, { dataDir });
    await setup.addUser('romeo', PW);
    await setup.stop();
    const now = Date.now();
    a = await datedCertificate(
      join(dir, 'a'),
      'a',
      ['localhost'],
      new Date(now - DAY_MS),
      new Date(now + 90 * DAY_MS),
    );
    b = await datedCertificate(
      join(dir, 'b'),
      'b',
      ['localhost'],
      new Date(now - DAY_MS),
      new Date(now + 60 * DAY_MS),
    );
    // The files the configuration names, renewed in place as certbot does.
    live = { cert: join(dir, 'live.crt'), key: join(dir, 'live.key') };
    writeFileSync(live.cert, a.certPem);
    writeFileSync(live.key, a.keyPem, { mode: 0o600 });
    config = {
      hosts: ['localhost'],
      dataDir,
      listeners: [
        { type: 'c2s', port: 0, host: '127.0.0.1' },
        { type: 'c2s-tls', port: 0, host: '127.0.0.1' },
        { type: 'https', port: 0, host: '127.0.0.1' },
        { type: 's2s-tls', port: 0, host: '127.0.0.1' },
        { type: 's2s', port: 0, host: '127.0.0.1' },
      ],
      // Federation on for the s2s-tls listener; no test sends anything to a remote domain.
      s2s: { enabled: true },
      tls: { cert: live.cert, key: live.key },
      modules: { ping: { idleMs: 0 } },
      log: { level: 'info' },
    };
    configFile = join(dir, 'natter.json');
    writeFileSync(configFile, JSON.stringify(config));
    server = await ServeProcess.start(configFile);
    const target: Target = { domain: 'localhost', port: (kind) => server.port(kind) };
    romeo = await TestClient.login(target, 'romeo', PW, { transport: 'tls', resource: 'before' });
  });

  after(async () => {
    romeo?.kill();
    if (server) assert.equal(await server.stop(), 0, server.text.slice(-2000));
    rmSync(dir, { recursive: true, force: true });
  });

  test('before the reload, every TLS port presents certificate A', async () => {
    assert.equal(await servedFingerprint(server.port('c2s-tls')), fingerprint(a.certPem));
    assert.equal(await servedFingerprint(server.port('https')), fingerprint(a.certPem));
    assert.equal(await servedFingerprint(server.port('s2s-tls'), 'localhost'), fingerprint(a.certPem));
    assert.equal(
      await startTlsFingerprint(server.port('s2s'), 'localhost', 'jabber:server', false),
      fingerprint(a.certPem),
    );
    assert.equal(await startTlsFingerprint(server.port('c2s'), 'localhost'), fingerprint(a.certPem));
  });

  test('certificate files renewed in place + SIGHUP: new handshakes get B; the open session goes on', async () => {
    writeFileSync(live.key, b.keyPem);
    writeFileSync(live.cert, b.certPem);
    const lines = await hup();
    assert.ok(
      lines.some(
        (l) =>
          l.msg ===
          `reload: certificate ${live.cert} renewed (localhost; valid until ${new X509Certificate(b.certPem).validTo})`,
      ),
      JSON.stringify(lines),
    );
    const want = fingerprint(b.certPem);
    // Direct TLS without SNI (the server's own context), with SNI (the store), and STARTTLS.
    assert.equal(await servedFingerprint(server.port('c2s-tls')), want);
    assert.equal(await servedFingerprint(server.port('c2s-tls'), 'localhost'), want);
    assert.equal(await startTlsFingerprint(server.port('c2s'), 'localhost'), want);
    assert.equal(await servedFingerprint(server.port('https')), want);
    assert.equal(await servedFingerprint(server.port('s2s-tls')), want);
    assert.equal(await servedFingerprint(server.port('s2s-tls'), 'localhost'), want);
    // Server-to-server STARTTLS, with SNI and without (the certificate of the stream's domain).
    assert.equal(await startTlsFingerprint(server.port('s2s'), 'localhost', 'jabber:server'), want);
    assert.equal(await startTlsFingerprint(server.port('s2s'), 'localhost', 'jabber:server', false), want);
    await stillAlive();
  });

  test('a key that does not match its certificate + SIGHUP: an error is logged and B is still served', async () => {
    writeFileSync(live.key, a.keyPem); // B's certificate with A's key
    const lines = await hup();
    const error = lines.find((l) => l.level === 50 && String(l.msg).includes('not loaded'));
    assert.ok(error, JSON.stringify(lines));
    assert.match(String(error.msg), /does not match the certificate/);
    assert.match(String(error.msg), /still serving the previous one/);
    assert.equal(await servedFingerprint(server.port('c2s-tls')), fingerprint(b.certPem));
    assert.equal(await startTlsFingerprint(server.port('c2s'), 'localhost'), fingerprint(b.certPem));
    // An unreadable certificate file: the same.
    writeFileSync(live.key, b.keyPem);
    writeFileSync(live.cert, 'not a certificate');
    const again = await hup();
    assert.ok(
      again.some((l) => l.level === 50 && /holds no PEM certificate/.test(String(l.msg))),
      JSON.stringify(again),
    );
    assert.equal(await servedFingerprint(server.port('c2s-tls')), fingerprint(b.certPem));
    writeFileSync(live.cert, b.certPem);
    await stillAlive();
  });

  test('log.level and a limit change in the file + SIGHUP: one line each; a listener change waits for a restart', async () => {
    writeFileSync(
      configFile,
      JSON.stringify({
        ...config,
        log: { level: 'debug' },
        limits: { maxAuthFailures: 5 },
        modules: { ping: { idleMs: 0 }, blocking: { maxItems: 50 }, mam: { purgeIntervalMs: 60_000 } },
        listeners: [...(config.listeners as object[]), { type: 'http', port: 0, host: '127.0.0.1' }],
      }),
    );
    const lines = await hup();
    const msgs = lines.map((l) => String(l.msg));
    assert.ok(msgs.includes('reload: log.level: info → debug'), msgs.join('\n'));
    assert.ok(msgs.includes('reload: limits.maxAuthFailures: 3 → 5'), msgs.join('\n'));
    assert.ok(msgs.includes('reload: modules.blocking.maxItems: 1000 → 50'), msgs.join('\n'));
    const restart = lines.find((l) => String(l.msg).startsWith('reload: these changes need a restart'));
    assert.deepEqual(restart?.restartNeeded, ['listeners', 'modules.mam.purgeIntervalMs']);
    // The new level is in force: the next reload's debug lines show.
    const next = await hup();
    assert.ok(
      next.some((l) => l.level === 20),
      JSON.stringify(next),
    );
    await stillAlive();
  });

  test('an invalid file + SIGHUP: an error says why, the running configuration stays, certificates are re-read', async () => {
    writeFileSync(configFile, '{"hosts": ["localhost"], "limits": {"maxAuthFailures": 0}}');
    const lines = await hup();
    const error = lines.find((l) => l.level === 50);
    assert.match(String(error?.msg), /the configuration is not applied .*limits\.maxAuthFailures/s);
    assert.ok(lines.some((l) => l.msg === 'certificates reloaded; configuration unchanged'));
    // Invalid module options: the same.
    writeFileSync(configFile, JSON.stringify({ ...config, modules: { blocking: { maxItems: 'many' } } }));
    const again = await hup();
    assert.match(
      String(again.find((l) => l.level === 50)?.msg),
      /the configuration is not applied .*modules\.blocking\.maxItems/s,
    );
    assert.ok(again.some((l) => l.msg === 'certificates reloaded; configuration unchanged'));
    await stillAlive();
  });
});

describe('SIGHUP on natter serve --workers 2: the primary forwards it to every worker', () => {
  let dir: string;
  let server: ServeProcess;

  after(async () => {
    if (server) assert.equal(await server.stop(), 0, server.text.slice(-2000));
    rmSync(dir, { recursive: true, force: true });
  });

  test('each worker reloads; every new connection gets the new certificate', async () => {
    dir = mkdtempSync(join(tmpdir(), 'natter-reload-workers-'));
    const now = Date.now();
    const a = await datedCertificate(
      dir,
      'a',
      ['localhost'],
      new Date(now - DAY_MS),
      new Date(now + 90 * DAY_MS),
    );
    const b = await datedCertificate(
      dir,
      'b',
      ['localhost'],
      new Date(now - DAY_MS),
      new Date(now + 60 * DAY_MS),
    );
    const live = { cert: join(dir, 'live.crt'), key: join(dir, 'live.key') };
    writeFileSync(live.cert, a.certPem);
    writeFileSync(live.key, a.keyPem);
    const configFile = join(dir, 'natter.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        hosts: ['localhost'],
        dataDir: join(dir, 'data'),
        listeners: [{ type: 'c2s-tls', port: 0, host: '127.0.0.1' }],
        s2s: { enabled: false },
        tls: { cert: live.cert, key: live.key },
        log: { level: 'info' },
      }),
    );
    server = await ServeProcess.start(configFile, ['--workers', '2'], 'natter started with workers');
    const ready = server.lines.find((l) => l.msg === 'worker ready') as { ports: { 'c2s-tls': number } };
    const port = ready.ports['c2s-tls'];
    assert.equal(await servedFingerprint(port), fingerprint(a.certPem));
    writeFileSync(live.key, readFileSync(b.key));
    writeFileSync(live.cert, readFileSync(b.cert));
    const from = server.mark();
    server.signal('SIGHUP');
    await server.waitFor(
      () =>
        new Set(
          server.lines
            .slice(from)
            .filter(isReloaded)
            .map((l) => l.node),
        ).size === 2,
      from,
      30_000,
      'both workers to reload',
    );
    assert.ok(
      server.lines.slice(from).some((l) => l.msg === 'signal received: telling every worker to reload'),
    );
    // Connections are handed to the workers in turn: several in a row reach both.
    for (let i = 0; i < 6; i++) assert.equal(await servedFingerprint(port), fingerprint(b.certPem));
  });
});
