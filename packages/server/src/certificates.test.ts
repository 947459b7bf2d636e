import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { DAY_MS, datedCertificate } from '../test/support/natter-process.js';
import { parseConfig } from './config.js';
import { ServerCertificates } from './certificates.js';

describe('ServerCertificates: what is served, and what a reload changes', () => {
  let dir: string;
  let dataDir: string;
  type Made = Awaited<ReturnType<typeof datedCertificate>>;
  let a1: Made;
  let a2: Made;
  let b: Made;
  const fp = (m: Made) => new X509Certificate(m.certPem).fingerprint256;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'natter-certs-'));
    dataDir = join(dir, 'data');
    const from = new Date(Date.now() - DAY_MS);
    const to = new Date(Date.now() + 30 * DAY_MS);
    a1 = await datedCertificate(dir, 'a1', ['a.test'], from, to);
    a2 = await datedCertificate(dir, 'a2', ['a.test'], from, to);
    b = await datedCertificate(dir, 'b', ['b.test', '*.b.test'], from, to);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('imported certificates are served by name; tls.certificates wins a name over them', async () => {
    mkdirSync(join(dataDir, 'certs'), { recursive: true });
    copyFileSync(a1.cert, join(dataDir, 'certs', 'a.test.crt'));
    copyFileSync(a1.key, join(dataDir, 'certs', 'a.test.key'));
    const tls = parseConfig({ tls: { certificates: [{ cert: b.cert, key: b.key }] } }).tls;
    const certs = await ServerCertificates.open(dataDir, ['a.test', 'b.test'], tls, []);
    assert.equal(certs.client.filesFor('a.test').cert, join(dataDir, 'certs', 'a.test.crt'));
    assert.equal(certs.s2s.filesFor('conference.b.test').cert, b.cert);
    assert.equal(certs.client.filesFor('c.test').cert, certs.files.cert, 'the default');
    assert.equal(certs.files.generated, true);

    // The same name in tls.certificates: the configured one wins.
    const both = parseConfig({
      tls: {
        certificates: [
          { cert: b.cert, key: b.key },
          { cert: a2.cert, key: a2.key },
        ],
      },
    }).tls;
    const changes = await certs.reload(both);
    assert.deepEqual(
      changes.map((c) => [c.cert, c.change]),
      [
        [certs.files.cert, 'unchanged'],
        [join(dataDir, 'certs', 'a.test.crt'), 'unchanged'],
        [b.cert, 'unchanged'],
        [a2.cert, 'added'],
      ],
    );
    assert.equal(new X509Certificate(certs.client.filesFor('a.test').certPem).fingerprint256, fp(a2));
  });

  test('a renewed file is swapped; a broken one keeps the previous certificate; a new broken one is not served', async () => {
    const live = { cert: join(dir, 'live.crt'), key: join(dir, 'live.key') };
    writeFileSync(live.cert, a1.certPem);
    writeFileSync(live.key, a1.keyPem);
    const tls = parseConfig({ tls: { cert: live.cert, key: live.key } }).tls;
    const certs = await ServerCertificates.open(join(dir, 'empty'), ['a.test'], tls, []);
    assert.equal(new X509Certificate(certs.pem.cert).fingerprint256, fp(a1));

    writeFileSync(live.cert, a2.certPem);
    writeFileSync(live.key, a2.keyPem);
    const renewed = await certs.reload(tls);
    assert.deepEqual(
      renewed.map((c) => [c.change, c.names]),
      [['renewed', ['a.test']]],
    );
    assert.equal(new X509Certificate(certs.pem.cert).fingerprint256, fp(a2));

    writeFileSync(live.key, b.keyPem); // a key of another certificate
    const broken = await certs.reload(
      parseConfig({ tls: { ...tls, certificates: [{ cert: join(dir, 'nope.crt'), key: b.key }] } }).tls,
    );
    assert.deepEqual(
      broken.map((c) => [c.cert, c.change, c.kept]),
      [
        [live.cert, 'failed', true],
        [join(dir, 'nope.crt'), 'failed', false],
      ],
    );
    assert.match(broken[0]!.error!, /does not match/);
    assert.match(broken[1]!.error!, /does not exist/);
    assert.equal(new X509Certificate(certs.pem.cert).fingerprint256, fp(a2));
    assert.equal(certs.client.filesFor('a.test').cert, live.cert);
  });
});
