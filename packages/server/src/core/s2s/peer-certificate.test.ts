import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { makeTestCa, selfSigned, type CertFiles, type TestCa } from '../../../test/support/test-ca.js';
import { certificateAuthenticates } from './peer-certificate.js';

/** What the accepting side of a real TLS handshake learnt about the client's certificate. */
interface PeerSeen {
  cert: X509Certificate | undefined;
  authorized: boolean;
  authorizationError: string | undefined;
}

/**
 * A real TLS handshake over loopback: a server that asks for a client certificate (and verifies it
 * against `ca` without refusing the connection, as the s2s listener does) and a client that
 * presents `client` (or nothing). Resolves with what the server side saw.
 */
async function handshake(server: CertFiles, ca: string, client: CertFiles | undefined): Promise<PeerSeen> {
  const srv = createServer({
    key: readFileSync(server.key),
    cert: readFileSync(server.cert),
    ca: [ca],
    requestCert: true,
    rejectUnauthorized: false,
  });
  const sockets: TLSSocket[] = [];
  try {
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    const seen = new Promise<PeerSeen>((resolve, reject) => {
      srv.once('secureConnection', (socket: TLSSocket) => {
        sockets.push(socket);
        socket.on('error', () => {});
        const err = socket.authorizationError as unknown;
        resolve({
          cert: socket.getPeerX509Certificate() ?? undefined,
          authorized: socket.authorized,
          authorizationError: err == null ? undefined : String(err),
        });
      });
      srv.once('tlsClientError', reject);
    });
    const sock = connect({
      host: '127.0.0.1',
      port: (srv.address() as AddressInfo).port,
      servername: 'server.test',
      rejectUnauthorized: false,
      ...(client ? { key: readFileSync(client.key), cert: readFileSync(client.cert) } : {}),
    });
    sockets.push(sock);
    const failed = once(sock, 'error').then(([e]) => Promise.reject(e as Error));
    return await Promise.race([seen, failed]);
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => srv.close(() => resolve()));
  }
}

describe('certificateAuthenticates on certificates from a real TLS handshake (RFC 6120 §13.7.1.2, RFC 6125)', () => {
  let dir: string;
  let ca: TestCa;
  let caPem: string;
  let server: CertFiles;
  const check = async (client: CertFiles | undefined, domain: string) => {
    const seen = await handshake(server, caPem, client);
    return {
      seen,
      verdict: certificateAuthenticates(seen.cert, seen.authorized, seen.authorizationError, domain),
    };
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'natter-peer-cert-'));
    ca = await makeTestCa(dir, ['server.test', 'a.test', 'b.test', 'old.test', '*.example.test'], {
      expired: ['old.test'],
    });
    caPem = readFileSync(ca.caCert, 'utf8');
    server = ca.certs['server.test']!;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('a CA-signed certificate for the domain authenticates it', async () => {
    const { seen, verdict } = await check(ca.certs['a.test'], 'a.test');
    assert.equal(seen.authorized, true, `handshake: ${seen.authorizationError}`);
    assert.deepEqual(verdict, { ok: true });
  });

  test('domain names compare case-insensitively', async () => {
    const { verdict } = await check(ca.certs['a.test'], 'A.Test');
    assert.deepEqual(verdict, { ok: true });
  });

  test('a trusted certificate for another domain does not authenticate this one', async () => {
    const { seen, verdict } = await check(ca.certs['a.test'], 'b.test');
    assert.equal(seen.authorized, true);
    assert.equal(verdict.ok, false);
    assert.match(verdict.ok ? '' : verdict.reason, /b\.test/);
  });

  test('a self-signed certificate is not trusted, even for the right name', async () => {
    const self = await selfSigned(dir, 'a.test');
    const { seen, verdict } = await check(self, 'a.test');
    assert.equal(seen.authorized, false);
    assert.ok(seen.cert, 'the server saw the certificate');
    assert.equal(verdict.ok, false);
    assert.match(verdict.ok ? '' : verdict.reason, /not trusted/);
  });

  test('an expired certificate does not authenticate', async () => {
    const { seen, verdict } = await check(ca.certs['old.test'], 'old.test');
    assert.equal(seen.authorized, false);
    assert.equal(seen.authorizationError, 'CERT_HAS_EXPIRED');
    assert.equal(verdict.ok, false);
    assert.match(verdict.ok ? '' : verdict.reason, /expired/i);
    // The validity check holds on its own too, should the chain be reported as verified.
    const own = certificateAuthenticates(seen.cert, true, undefined, 'old.test');
    assert.deepEqual(own, { ok: false, reason: 'certificate expired or not yet valid' });
  });

  test('no certificate presented does not authenticate', async () => {
    const { seen, verdict } = await check(undefined, 'a.test');
    assert.equal(seen.cert, undefined);
    assert.deepEqual(verdict, { ok: false, reason: 'no certificate presented' });
  });

  test('a wildcard name covers exactly one leading label', async () => {
    const { seen } = await check(ca.certs['*.example.test'], 'a.example.test');
    assert.equal(seen.authorized, true, `handshake: ${seen.authorizationError}`);
    const verdict = (domain: string) =>
      certificateAuthenticates(seen.cert, seen.authorized, seen.authorizationError, domain);
    assert.deepEqual(verdict('a.example.test'), { ok: true });
    assert.equal(verdict('example.test').ok, false);
    assert.equal(verdict('a.b.example.test').ok, false);
  });
});
