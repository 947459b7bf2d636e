import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type Server, type TLSSocket } from 'node:tls';
import { generate } from 'selfsigned';
import { makeTestCa, type CertFiles, type TestCa } from '../test/support/test-ca.js';
import { CertificateStore, certificateNames } from './tls.js';

/** A self-signed EC certificate (PEMs written into `dir`) with these SAN entries, or none. */
async function pemCert(
  dir: string,
  stem: string,
  cn: string,
  altNames?: { type: 2 | 7; value?: string; ip?: string }[],
): Promise<CertFiles> {
  const pems = await generate([{ name: 'commonName', value: cn }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: false },
      ...(altNames ? [{ name: 'subjectAltName' as const, altNames }] : []),
    ],
  });
  const files = { cert: join(dir, `${stem}.crt`), key: join(dir, `${stem}.key`) };
  writeFileSync(files.cert, pems.cert);
  writeFileSync(files.key, pems.private);
  return files;
}

describe('certificateNames', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'natter-tls-names-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('the SAN dNSName entries, lower-cased; other SAN entries and the CN are ignored', async () => {
    const files = await pemCert(dir, 'san', 'cn-only.test', [
      { type: 2, value: 'Example.TEST' },
      { type: 2, value: '*.example.test' },
      { type: 7, ip: '127.0.0.1' },
    ]);
    assert.deepEqual(certificateNames(readFileSync(files.cert)), ['example.test', '*.example.test']);
  });

  test('the subject CN when the certificate has no SAN', async () => {
    const files = await pemCert(dir, 'cn', 'Legacy.Test');
    assert.deepEqual(certificateNames(readFileSync(files.cert)), ['legacy.test']);
  });

  test('a certificate from the test CA: its one SAN name', async () => {
    const ca = await makeTestCa(join(dir, 'ca'), ['*.wild.test']);
    assert.deepEqual(certificateNames(readFileSync(ca.certs['*.wild.test']!.cert)), ['*.wild.test']);
  });
});

describe('CertificateStore picks our certificate by SNI (a real TLS handshake)', () => {
  let dir: string;
  let ca: TestCa;
  let caPem: string;
  let store: CertificateStore;
  let server: Server;
  let port: number;

  /** Connects with this SNI name (none when undefined) and returns the SAN of the server's certificate. */
  async function served(servername: string | undefined): Promise<string | undefined> {
    const sock: TLSSocket = connect({
      host: '127.0.0.1',
      port,
      servername: servername ?? '',
      rejectUnauthorized: false,
    });
    try {
      await once(sock, 'secureConnect');
      return sock.getPeerX509Certificate()?.subjectAltName;
    } finally {
      sock.destroy();
    }
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'natter-tls-store-'));
    ca = await makeTestCa(dir, ['a.test', 'b.test', '*.wild.test', 'base.test']);
    caPem = readFileSync(ca.caCert, 'utf8');
    // The default one also names a.test: the explicit a.test certificate must win that name.
    const def = await pemCert(dir, 'default', 'default.test', [
      { type: 2, value: 'default.test' },
      { type: 2, value: 'a.test' },
    ]);
    store = new CertificateStore({ ...def, generated: false }, [
      ca.certs['a.test']!,
      ca.certs['b.test']!,
      ca.certs['*.wild.test']!,
    ]);
    // The server's own certificate (base.test) is what a handshake without SNI gets, so a
    // callback answering "no context" would show as base.test, not as the store's default.
    const base = ca.certs['base.test']!;
    server = createServer({
      key: readFileSync(base.key),
      cert: readFileSync(base.cert),
      SNICallback: store.sni,
    });
    server.on('secureConnection', (s: TLSSocket) => s.on('error', () => {}));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  test('each name gets its own certificate', async () => {
    assert.equal(await served('b.test'), 'DNS:b.test');
    assert.equal(await served('a.test'), 'DNS:a.test');
  });

  test("the chosen certificate verifies for the name against the CA (a client's full check)", async () => {
    const sock = connect({ host: '127.0.0.1', port, servername: 'b.test', ca: [caPem] });
    try {
      await once(sock, 'secureConnect');
      assert.equal(sock.authorized, true);
    } finally {
      sock.destroy();
    }
  });

  test('a later, explicit certificate wins a name the default one also holds', async () => {
    assert.equal(await served('a.test'), 'DNS:a.test');
    assert.equal(store.contextFor('a.test') === store.default, false);
  });

  test('an unknown name gets the default certificate', async () => {
    assert.equal(await served('unknown.test'), 'DNS:default.test, DNS:a.test');
    assert.equal(store.contextFor('unknown.test'), store.default);
    assert.equal(store.contextFor(undefined), store.default);
    assert.equal(store.contextFor(''), store.default);
  });

  test('names compare case-insensitively', async () => {
    assert.equal(await served('B.Test'), 'DNS:b.test');
    assert.equal(store.contextFor('B.TEST'), store.contextFor('b.test'));
  });

  test('a wildcard entry covers one label below its domain, and nothing else', async () => {
    assert.equal(await served('host.wild.test'), 'DNS:*.wild.test');
    assert.equal(await served('wild.test'), 'DNS:default.test, DNS:a.test');
    assert.equal(await served('a.b.wild.test'), 'DNS:default.test, DNS:a.test');
    assert.equal(store.contextFor('Other.Wild.Test'), store.contextFor('host.wild.test'));
    // An exact name does not stand for its subdomains.
    assert.equal(store.contextFor('x.b.test'), store.default);
  });

  test('a handshake without SNI never reaches the store', async () => {
    assert.equal(await served(undefined), 'DNS:base.test');
  });

  test('a missing certificate file is refused at construction', () => {
    assert.throws(
      () =>
        new CertificateStore({ ...ca.certs['a.test']!, generated: false }, [
          { cert: join(dir, 'missing.crt'), key: ca.certs['b.test']!.key },
        ]),
      /missing\.crt does not exist/,
    );
  });
});
