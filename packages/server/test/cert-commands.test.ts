import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import {
  DAY_MS,
  ServeProcess,
  datedCertificate,
  runNatter,
  servedFingerprint,
} from './support/natter-process.js';
import type { StatusReport } from '../src/admin/cert-commands.js';

const fingerprint = (pem: string | Buffer) => new X509Certificate(pem).fingerprint256;

describe('natter cert status: names, issuer, expiry and coverage of every certificate', () => {
  let dir: string;
  const now = Date.now();
  const configWith = (name: string, config: object): string => {
    const file = join(dir, `${name}.json`);
    writeFileSync(file, JSON.stringify({ dataDir: join(dir, 'data'), ...config }));
    return file;
  };
  let certs: Record<'ok' | 'soon' | 'old' | 'other', { cert: string; key: string }>;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'natter-cert-status-'));
    const d = (days: number) => new Date(now + days * DAY_MS);
    const files = async (stem: string, names: string[], from: number, to: number) => {
      const c = await datedCertificate(dir, stem, names, d(from), d(to));
      return { cert: c.cert, key: c.key };
    };
    certs = {
      ok: await files('ok', ['ok.test', '*.ok.test'], -10, 80),
      soon: await files('soon', ['soon.test'], -80, 5.5),
      old: await files('old', ['old.test', 'conference.old.test'], -100, -2),
      other: await files('other', ['elsewhere.test'], -1, 30),
    };
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('a hosted domain whose certificate expired, or that no certificate names: exit 1, warnings', async () => {
    const config = configWith('bad', {
      hosts: ['ok.test', 'soon.test', 'old.test', 'none.test'],
      tls: { certificates: [certs.ok, certs.soon, certs.old, certs.other] },
    });
    const r = await runNatter(['cert', 'status', '--config', config]);
    assert.equal(r.code, 1, r.out + r.err);
    assert.match(r.out, new RegExp(`${certs.soon.cert} \\(tls\\.certificates\\)`));
    assert.match(r.out, /names: {4}ok\.test, \*\.ok\.test/);
    assert.match(r.out, /WARNING: expires in 5 days/);
    assert.match(r.out, /WARNING: expired on/);
    assert.match(r.out, /covers: {3}\(no hosted domain\)/);
    assert.match(r.out, /ok\.test +OK/);
    assert.match(r.out, /conference\.ok\.test +OK/);
    assert.match(r.out, /old\.test +MISSING +expired on/);
    assert.match(r.out, /none\.test +MISSING +no certificate names it/);
    assert.match(r.out, /a hosted domain has no valid certificate/);

    const json = await runNatter(['cert', 'status', '--config', config, '--json']);
    assert.equal(json.code, 1);
    const report = JSON.parse(json.out) as StatusReport;
    assert.equal(report.ok, false);
    const soon = report.certificates.find((c) => c.cert === certs.soon.cert)!;
    assert.equal(soon.daysLeft, 5);
    assert.deepEqual(soon.covers, ['soon.test']);
    assert.equal(soon.selfSigned, true);
    assert.match(soon.issuer!, /CN=soon\.test/);
    const byDomain = new Map(report.domains.map((x) => [x.domain, x]));
    assert.deepEqual(byDomain.get('ok.test'), {
      domain: 'ok.test',
      hosted: true,
      cert: certs.ok.cert,
      ok: true,
    });
    assert.equal(byDomain.get('pubsub.ok.test')?.ok, true);
    assert.equal(byDomain.get('old.test')?.ok, false);
    assert.equal(byDomain.get('conference.old.test')?.hosted, false);
    assert.equal(byDomain.get('none.test')?.cert, null);
    assert.equal(byDomain.has('upload.ok.test'), false, 'upload is not enabled');
  });

  test('every hosted domain covered (one expiring soon): exit 0, the warning still shows; upload. when enabled', async () => {
    const config = configWith('good', {
      hosts: ['ok.test', 'soon.test'],
      tls: { certificates: [certs.ok, certs.soon] },
      modules: { upload: {} },
    });
    const r = await runNatter(['cert', 'status', '--config', config]);
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, /WARNING: expires in 5 days/);
    assert.match(r.out, /upload\.ok\.test +OK/);
    assert.match(r.out, /upload\.soon\.test +MISSING/);
  });

  test('a key that does not match its certificate: reported, the domain counts as uncovered', async () => {
    const config = configWith('mismatch', {
      hosts: ['ok.test'],
      tls: { certificates: [{ cert: certs.ok.cert, key: certs.soon.key }] },
    });
    const r = await runNatter(['cert', 'status', '--config', config]);
    assert.equal(r.code, 1, r.out + r.err);
    assert.match(r.out, /WARNING: not usable: the key in .*soon\.key does not match/);
  });
});

describe("natter cert import: certbot's live/ directory into dataDir/certs, served by SNI", () => {
  let dir: string;
  let live: string;
  let config: string;
  let dataDir: string;
  const lineages: Record<string, { certPem: string; keyPem: string }> = {};

  /** certbot's layout: archive/<name>/fullchain1.pem …, live/<name>/fullchain.pem → ../../archive/… */
  async function lineage(name: string, names: string[], days: number): Promise<void> {
    const archive = join(dir, 'letsencrypt', 'archive', name);
    const c = await datedCertificate(
      archive,
      'tmp',
      names,
      new Date(Date.now() - 10 * DAY_MS),
      new Date(Date.now() + days * DAY_MS),
    );
    writeFileSync(join(archive, 'fullchain1.pem'), c.certPem);
    writeFileSync(join(archive, 'privkey1.pem'), c.keyPem, { mode: 0o600 });
    rmSync(c.cert);
    rmSync(c.key);
    mkdirSync(join(live, name), { recursive: true });
    for (const f of ['fullchain', 'privkey'])
      symlinkSync(join('..', '..', 'archive', name, `${f}1.pem`), join(live, name, `${f}.pem`));
    writeFileSync(join(live, 'README'), 'certbot writes this file too');
    lineages[name] = c;
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'natter-cert-import-'));
    live = join(dir, 'letsencrypt', 'live');
    dataDir = join(dir, 'data');
    await lineage('a.test', ['a.test', 'conference.a.test', 'pubsub.a.test'], 80);
    await lineage('b.test', ['b.test'], 60);
    await lineage('b-services', ['*.b.test'], 60);
    await lineage('unrelated', ['other.test'], 60);
    await lineage('a.test-0001', ['a.test'], -1); // expired: never imported
    config = join(dir, 'natter.json');
    writeFileSync(
      config,
      JSON.stringify({
        hosts: ['a.test', 'b.test', 'c.test'],
        dataDir,
        listeners: [{ type: 'c2s-tls', port: 0, host: '127.0.0.1' }],
        s2s: { enabled: false },
        log: { level: 'info' },
      }),
    );
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('each hosted domain gets the certificate that covers it (and its services); keys are 0600', async () => {
    const r = await runNatter(['cert', 'import', live, '--config', config]);
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(
      r.out,
      new RegExp(`imported a\\.test from ${join(live, 'a.test')} \\(names a\\.test, conference`),
    );
    assert.match(r.out, new RegExp(`imported b\\.test from ${join(live, 'b.test')} `));
    assert.match(r.out, new RegExp(`imported conference\\.b\\.test from ${join(live, 'b-services')} `));
    assert.match(r.out, /covered: conference\.a\.test by the certificate of a\.test/);
    assert.match(r.out, /covered: pubsub\.b\.test by the certificate of conference\.b\.test/);
    assert.match(r.out, /not found: c\.test: no certificate/);
    assert.match(r.out, /not found: conference\.c\.test \(service\)/);
    assert.match(r.out, /a\.test-0001: expired on/);
    assert.match(r.out, /kill -HUP/);
    const certs = join(dataDir, 'certs');
    assert.equal(readFileSync(join(certs, 'a.test.crt'), 'utf8'), lineages['a.test']!.certPem);
    assert.equal(readFileSync(join(certs, 'a.test.key'), 'utf8'), lineages['a.test']!.keyPem);
    assert.equal(statSync(join(certs, 'a.test.key')).mode & 0o777, 0o600);
    assert.equal(statSync(join(certs, 'b.test.key')).mode & 0o777, 0o600);

    const again = await runNatter(['cert', 'import', live, '--config', config]);
    assert.equal(again.code, 0);
    assert.match(again.out, /up to date: a\.test/);
    assert.doesNotMatch(again.out, /^imported/m);
  });

  test('natter serve on that data directory presents the imported certificates by SNI', async () => {
    const server = await ServeProcess.start(config);
    try {
      const port = server.port('c2s-tls');
      assert.equal(await servedFingerprint(port, 'a.test'), fingerprint(lineages['a.test']!.certPem));
      assert.equal(
        await servedFingerprint(port, 'conference.a.test'),
        fingerprint(lineages['a.test']!.certPem),
      );
      assert.equal(await servedFingerprint(port, 'b.test'), fingerprint(lineages['b.test']!.certPem));
      assert.equal(
        await servedFingerprint(port, 'pubsub.b.test'),
        fingerprint(lineages['b-services']!.certPem),
      );
      // No SNI, or a name no imported certificate holds: the default (generated) certificate.
      const generated = readFileSync(join(dataDir, 'certs', 'self-signed.crt'));
      assert.equal(await servedFingerprint(port), fingerprint(generated));
      assert.equal(await servedFingerprint(port, 'c.test'), fingerprint(generated));

      // A renewal imported while it runs is served after SIGHUP.
      await lineage('b.test-renewed', ['b.test'], 90);
      rmSync(join(live, 'b.test'), { recursive: true });
      const r = await runNatter(['cert', 'import', live, '--config', config]);
      assert.match(r.out, /imported b\.test from .*b\.test-renewed/);
      const from = server.mark();
      server.signal('SIGHUP');
      await server.waitFor((l) => l.msg === 'configuration reloaded', from);
      assert.ok(
        server.lines
          .slice(from)
          .some(
            (l) =>
              l.msg ===
              `reload: certificate ${join(dataDir, 'certs', 'b.test.crt')} renewed (b.test; valid until ${new X509Certificate(lineages['b.test-renewed']!.certPem).validTo})`,
          ),
        server.text.slice(-3000),
      );
      assert.equal(await servedFingerprint(port, 'b.test'), fingerprint(lineages['b.test-renewed']!.certPem));

      const status = await runNatter(['cert', 'status', '--config', config]);
      // c.test has only the generated certificate: covered, with a warning (status checks names
      // and dates, not whom a client trusts).
      assert.equal(status.code, 0, status.out);
      assert.match(status.out, new RegExp(`${join(dataDir, 'certs', 'a.test.crt')} \\(imported\\)`));
      assert.match(status.out, /self-signed\.crt \(generated\)[^]*WARNING: self-signed/);
      assert.match(status.out, /c\.test +OK +.*self-signed\.crt/);
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });
});
