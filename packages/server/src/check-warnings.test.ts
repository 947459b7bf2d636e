// `natter check`'s warnings: one line each, naming the option and the fix; none for the defaults.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configWarnings } from './check-warnings.js';
import { parseConfig, type ConfigInput } from './config.js';

const warn = (input: ConfigInput) => configWarnings(parseConfig(input));
/** A production-like configuration that warns about nothing: a real domain with its certificate. */
const base: ConfigInput = {
  hosts: ['example.org'],
  tls: { cert: '/etc/natter/fullchain.pem', key: '/etc/natter/privkey.pem' },
  listeners: [
    { type: 'c2s', port: 5222 },
    { type: 'https', port: 5443 },
    { type: 'http', port: 5280, host: '127.0.0.1' },
    { type: 'admin', port: 5281 },
  ],
};

/** The one warning `input` gives, checked to name `option`. */
function one(input: ConfigInput, option: RegExp): string {
  const w = warn(input);
  assert.equal(w.length, 1, w.join('\n'));
  assert.match(w[0]!, option);
  assert.ok(!w[0]!.includes('\n'), 'one line');
  return w[0]!;
}

describe('natter check warnings', () => {
  test('none for the defaults, nor for a production-like configuration', () => {
    assert.deepEqual(warn({}), []);
    assert.deepEqual(warn(base), []);
  });

  test('an admin listener off loopback: plain HTTP with a bearer token (and the console when asked for)', () => {
    const w = one(
      { ...base, listeners: [{ type: 'admin', port: 5281, host: '0.0.0.0', token: 'a'.repeat(32) }] },
      /^listeners\[0\] \(admin on 0\.0\.0\.0:5281\)/,
    );
    assert.match(w, /bearer token/);
    assert.match(w, /127\.0\.0\.1|TLS proxy/);
    // Off loopback the console is off unless a console block asks for it.
    assert.doesNotMatch(w, /console/);
    const on = one(
      {
        ...base,
        listeners: [{ type: 'admin', port: 5281, host: '0.0.0.0', token: 'a'.repeat(32), console: {} }],
      },
      /^listeners\[0\] \(admin on 0\.0\.0\.0:5281\)/,
    );
    assert.match(on, /web console \(\/console\/; remove the console block to turn it off\)/);
  });

  test('an http listener off loopback without trusted proxies: logins refused; use https or a TLS proxy', () => {
    const w = one(
      { ...base, listeners: [{ type: 'http', port: 5280 }] },
      /^listeners\[0\] \(http on :::5280\)/,
    );
    assert.match(w, /cannot log in/);
    assert.match(w, /https listener|TLS proxy/);
    assert.deepEqual(
      warn({ ...base, listeners: [{ type: 'http', port: 5280 }], trustedProxies: ['10.0.0.1'] }),
      [],
    );
  });

  test('auth.allowPlaintext "always"', () => {
    one({ ...base, auth: { allowPlaintext: 'always' } }, /^auth\.allowPlaintext: .*"loopback"/);
  });

  test('auth.offerScramSha256 false (after a migration, docs/decisions/0015)', () => {
    one({ ...base, auth: { offerScramSha256: false } }, /^auth\.offerScramSha256: .*turn it back on/);
  });

  test('the generated self-signed certificate for a domain that is not localhost', () => {
    const w = one({ hosts: ['example.org'], listeners: [] }, /^tls\.cert: .*example\.org.*self-signed/);
    assert.match(w, /tls\.key/);
    assert.deepEqual(warn({ hosts: ['localhost', 'chat.localhost', '127.0.0.1'], listeners: [] }), []);
  });

  test('with tls.acme the domains it obtains certificates for are covered; without an http listener on port 80 it says so', () => {
    const acme = { agreeToTerms: true as const };
    one(
      { hosts: ['example.org'], listeners: [], tls: { acme } },
      /^tls\.acme: .*port 80.*\{ type: http, port: 80 \}/,
    );
    assert.deepEqual(
      warn({
        hosts: ['example.org'],
        listeners: [{ type: 'http', port: 80, host: '127.0.0.1' }],
        tls: { acme },
      }),
      [],
    );
    // Only the domains it is told to get: the other one gets the generated certificate.
    one(
      {
        hosts: ['example.org', 'example.net'],
        listeners: [{ type: 'http', port: 80, host: '127.0.0.1' }],
        tls: { acme: { ...acme, domains: ['example.org'] } },
      },
      /^tls\.cert: .* example\.net gets a generated self-signed/,
    );
  });

  test('a domain whose certificate was imported into dataDir/certs (natter cert import) is covered', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'natter-check-'));
    try {
      mkdirSync(join(dataDir, 'certs'));
      writeFileSync(join(dataDir, 'certs', 'example.org.crt'), '');
      assert.deepEqual(warn({ hosts: ['example.org'], dataDir, listeners: [] }), []);
      one(
        { hosts: ['example.org', 'example.net'], dataDir, listeners: [] },
        /^tls\.cert: .*example\.net get/,
      );
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('open registration without a meaningful limit', () => {
    assert.deepEqual(warn({ ...base, registration: { enabled: true } }), []);
    one(
      { ...base, registration: { enabled: true, perIpPerHour: 1000 } },
      /^registration\.perIpPerHour: 1000/,
    );
  });

  test('a component listener off loopback, and unencrypted federation', () => {
    one(
      { ...base, listeners: [{ type: 'component', port: 5347, host: '::' }] },
      /component on :::5347.*127\.0\.0\.1/,
    );
    one({ ...base, s2s: { requireEncryption: false } }, /^s2s\.requireEncryption: false/);
  });

  test('what is an error is not a warning: an admin listener off loopback without a token', () => {
    assert.throws(
      () => warn({ listeners: [{ type: 'admin', port: 5281, host: '0.0.0.0' }] }),
      /listeners\.0\.token: .*needs a token/,
    );
  });
});
