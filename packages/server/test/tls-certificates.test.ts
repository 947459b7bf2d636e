import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from './support/test-server.js';
import { makeTestCa } from './support/test-ca.js';
import { RawS2SPeer } from './support/s2s-peer.js';

/** Resolves once the TLS handshake is done, with the socket (the caller ends it). */
function handshake(opts: ConnectionOptions): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect(opts);
    s.once('secureConnect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Opens a client stream to `domain` on the STARTTLS port and upgrades; resolves with the TLS socket. */
function startTls(port: number, domain: string, ca: string): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const raw = netConnect({ host: '127.0.0.1', port });
    raw.once('error', reject);
    let seen = '';
    const onData = (d: Buffer) => {
      seen += d.toString();
      if (seen.includes('</stream:features>') && !seen.includes('proceed')) {
        raw.write(`<starttls xmlns='${NS.tls}'/>`);
      } else if (seen.includes('<proceed')) {
        raw.off('data', onData);
        handshake({ socket: raw, servername: domain, ca }).then(resolve, reject);
      }
    };
    raw.on('data', onData);
    raw.write(
      `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='${NS.stream}' to='${domain}' version='1.0'>`,
    );
  });
}

describe('tls.certificates: each hosted domain gets its own certificate (SNI) on client listeners', () => {
  let server: TestServer;
  let dir: string;
  let ca: string;
  let bCert: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'natter-sni-'));
    const made = await makeTestCa(dir, ['b.test']);
    ca = readFileSync(made.caCert, 'utf8');
    bCert = made.certs['b.test']!.cert;
    server = await startTestServer(
      {
        hosts: ['localhost', 'b.test'],
        tls: { certificates: [made.certs['b.test']!] },
      },
      { s2s: true },
    );
  });
  after(async () => {
    await server?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  test('direct TLS (5223): a client asking for b.test gets the certificate for b.test', async () => {
    const s = await handshake({ host: '127.0.0.1', port: server.port('c2s-tls'), servername: 'b.test', ca });
    assert.equal(s.authorized, true, String(s.authorizationError));
    assert.ok(s.getPeerX509Certificate()?.checkHost('b.test'));
    s.destroy();
  });

  test('STARTTLS (5222): the same, chosen by the name in the TLS handshake', async () => {
    const s = await startTls(server.port('c2s'), 'b.test', ca);
    assert.equal(s.authorized, true, String(s.authorizationError));
    assert.ok(s.getPeerX509Certificate()?.checkHost('b.test'));
    s.destroy();
  });

  test('s2s STARTTLS without SNI (as Prosody sends it): the certificate of the domain in the stream header', async () => {
    const peer = await RawS2SPeer.connect(server.port('s2s'));
    await peer.open('peer.test', 'b.test');
    await peer.receive((e) => e.name === 'features');
    await peer.startTls('peer.test', 'b.test', undefined, '', ca);
    assert.equal(
      peer.tlsCertificate?.fingerprint256,
      new X509Certificate(readFileSync(bCert)).fingerprint256,
      "b.test's CA-issued certificate, not the default",
    );
    peer.destroy();
  });

  test('another name (or none) gets the default certificate', async () => {
    const s = await handshake({
      host: '127.0.0.1',
      port: server.port('c2s-tls'),
      servername: 'localhost',
      rejectUnauthorized: false,
    });
    const cert = s.getPeerX509Certificate();
    assert.ok(cert?.checkHost('localhost'));
    // The generated default, not the CA-issued certificate of b.test.
    assert.notEqual(cert?.fingerprint256, new X509Certificate(readFileSync(bCert)).fingerprint256);
    s.destroy();
  });
});
