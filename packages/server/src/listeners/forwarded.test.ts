import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { clientAddress, forwardedFor, forwardedSecure, TrustedProxies, xForwardedFor } from './forwarded.js';

const proxies = new TrustedProxies(['10.0.0.0/8', '192.0.2.7', '2001:db8:ffff::/48']);

describe('trustedProxies', () => {
  test('addresses and CIDR ranges of both families; IPv4-mapped IPv6 peers match IPv4 entries', () => {
    assert.ok(proxies.trusts('10.1.2.3'));
    assert.ok(proxies.trusts('::ffff:10.1.2.3'));
    assert.ok(proxies.trusts('192.0.2.7'));
    assert.ok(!proxies.trusts('192.0.2.8'));
    assert.ok(proxies.trusts('2001:db8:ffff:1::9'));
    assert.ok(!proxies.trusts('2001:db8:fffe::9'));
    assert.ok(!proxies.trusts(''));
    assert.ok(!new TrustedProxies([]).trusts('127.0.0.1'));
  });

  test('bad entries are named', () => {
    assert.match(TrustedProxies.check('10.0.0.0/33') ?? '', /prefix length must be 0\.\.32/);
    assert.match(TrustedProxies.check('proxy.example') ?? '', /not an IP address/);
    assert.equal(TrustedProxies.check('::1/128'), undefined);
    assert.throws(() => new TrustedProxies(['10.0.0.1/8/1']), /not an IP address/);
  });
});

describe('RFC 7239 Forwarded', () => {
  test('for= with ports, quoted IPv6, obfuscated and unknown nodes, other parameters', () => {
    assert.deepEqual(
      forwardedFor(
        'for=192.0.2.43:47011;proto=https, For="[2001:db8:cafe::17]:4711", for=unknown;by=10.0.0.1, for=_hidden, by=10.0.0.2',
      ),
      ['192.0.2.43', '2001:db8:cafe::17', '', '', ''],
    );
    assert.deepEqual(forwardedFor('for="198.51.100.17";host="a,b;c"'), ['198.51.100.17']);
    assert.deepEqual(forwardedFor('for="[2001:db8::1]"'), ['2001:db8::1']);
  });

  test('X-Forwarded-For lists addresses, with or without ports', () => {
    assert.deepEqual(xForwardedFor('203.0.113.9, 10.0.0.5:8080,junk, ::1'), [
      '203.0.113.9',
      '10.0.0.5',
      '',
      '::1',
    ]);
  });
});

describe('client address', () => {
  test('an untrusted peer: its headers are ignored', () => {
    assert.equal(
      clientAddress('198.51.100.1', { 'x-forwarded-for': '203.0.113.9' }, proxies),
      '198.51.100.1',
    );
    assert.equal(clientAddress('198.51.100.1', { forwarded: 'for=203.0.113.9' }, proxies), '198.51.100.1');
  });

  test('a trusted peer: walk from the right past trusted proxies; the first untrusted hop is the client', () => {
    // The client forged the leftmost entry; the proxies appended the real one.
    assert.equal(
      clientAddress('10.0.0.1', { 'x-forwarded-for': '1.2.3.4, 203.0.113.9, 10.0.0.5' }, proxies),
      '203.0.113.9',
    );
    assert.equal(
      clientAddress('::ffff:10.0.0.1', { 'x-forwarded-for': '203.0.113.9' }, proxies),
      '203.0.113.9',
    );
    // Only the configured header counts: a proxy appending to X-Forwarded-For passes a client's own
    // Forwarded header through, which must not choose the address (and the other way round).
    const both = { forwarded: 'for="[2001:db8::1]:4711", for=10.0.0.5', 'x-forwarded-for': '203.0.113.9' };
    assert.equal(clientAddress('10.0.0.1', both, proxies), '203.0.113.9');
    assert.equal(clientAddress('10.0.0.1', both, proxies, 'forwarded'), '2001:db8::1');
    assert.equal(clientAddress('10.0.0.1', { forwarded: 'for=198.51.100.7' }, proxies), '10.0.0.1');
    // No header: the proxy itself.
    assert.equal(clientAddress('10.0.0.1', {}, proxies), '10.0.0.1');
    // A hop without an address stops the walk at the last trusted hop.
    assert.equal(
      clientAddress('10.0.0.1', { forwarded: 'for=_hidden, for=10.0.0.5' }, proxies, 'forwarded'),
      '10.0.0.5',
    );
    // Every hop trusted: the leftmost.
    assert.equal(clientAddress('10.0.0.1', { 'x-forwarded-for': '10.9.9.9, 10.0.0.5' }, proxies), '10.9.9.9');
  });
});

test('TLS at the proxy: proto=https / X-Forwarded-Proto from a trusted proxy only', () => {
  assert.ok(
    forwardedSecure(
      '10.0.0.1',
      { forwarded: 'for=1.2.3.4;proto=http, for=5.6.7.8;proto=https' },
      proxies,
      'forwarded',
    ),
  );
  assert.ok(!forwardedSecure('10.0.0.1', { forwarded: 'for=5.6.7.8;proto=http' }, proxies, 'forwarded'));
  // With X-Forwarded-For configured, a client's own Forwarded proto= is not believed.
  assert.ok(!forwardedSecure('10.0.0.1', { forwarded: 'for=5.6.7.8;proto=https' }, proxies));
  assert.ok(forwardedSecure('10.0.0.1', { 'x-forwarded-proto': 'https' }, proxies));
  assert.ok(!forwardedSecure('198.51.100.1', { 'x-forwarded-proto': 'https' }, proxies));
  assert.ok(!forwardedSecure('10.0.0.1', {}, proxies));
});
