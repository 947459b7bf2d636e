import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { promises as nodeDns } from 'node:dns';
import { DnsServer, type SrvData } from '../../../../../test/support/dns-server.js';
import { ConfigError, parseConfig } from '../../config.js';
import {
  MAX_CANDIDATES,
  orderSrv,
  parseRoute,
  resolveCandidates,
  resolveDomain,
  type ResolveOptions,
} from './resolve.js';

const srv = (priority: number, weight: number, port: number, target: string): SrvData => ({
  priority,
  weight,
  port,
  target,
});

describe('s2s resolution against a real DNS server (RFC 6120 §3.2, RFC 2782, XEP-0368)', () => {
  let dns: DnsServer;
  let opts: ResolveOptions;
  before(async () => {
    dns = await DnsServer.start();
    opts = { dnsServers: [dns.address] };
  });
  after(() => dns.close());

  test('RFC 2782: targets are tried lowest priority first', async () => {
    dns.zone.set('_xmpp-server._tcp.prio.test', [
      srv(20, 0, 5269, 'b.prio.test'),
      srv(10, 0, 5269, 'a.prio.test'),
      srv(30, 0, 5300, 'c.prio.test'),
    ]);
    const r = await resolveDomain('prio.test', opts);
    assert.equal(r.source, 'srv');
    assert.deepEqual(r.candidates, [
      { host: 'a.prio.test', port: 5269, directTls: false },
      { host: 'b.prio.test', port: 5269, directTls: false },
      { host: 'c.prio.test', port: 5300, directTls: false },
    ]);
  });

  test('RFC 2782: within a priority, targets are picked at random in proportion to their weight', async () => {
    dns.zone.set('_xmpp-server._tcp.weight.test', [
      srv(10, 60, 5269, 'a.weight.test'),
      srv(10, 30, 5269, 'b.weight.test'),
      srv(10, 10, 5269, 'c.weight.test'),
      srv(10, 0, 5269, 'zero.weight.test'),
    ]);
    const draws = 2000;
    const first = new Map<string, number>();
    let zeroLast = 0;
    // Batches of 50 lookups at a time: quick, without flooding the loopback socket buffers.
    for (let done = 0; done < draws; done += 50) {
      const batch = await Promise.all(
        Array.from({ length: 50 }, () => resolveCandidates('weight.test', opts)),
      );
      for (const candidates of batch) {
        assert.deepEqual(candidates.map((c) => c.host).sort(), [
          'a.weight.test',
          'b.weight.test',
          'c.weight.test',
          'zero.weight.test',
        ]);
        const head = candidates[0]!.host;
        first.set(head, (first.get(head) ?? 0) + 1);
        if (candidates[3]!.host === 'zero.weight.test') zeroLast++;
      }
    }
    // A draw in 0..100 picks the weight-0 record on 0, a on 1..60, b on 61..90, c on 91..100: expected
    // about 1188, 594, 198 and 20 first picks. Each bound is at least 5.5 standard deviations away.
    const count = (host: string) => first.get(host) ?? 0;
    assert.ok(
      count('a.weight.test') > 1060 && count('a.weight.test') < 1310,
      `a first ${count('a.weight.test')}`,
    );
    assert.ok(
      count('b.weight.test') > 480 && count('b.weight.test') < 710,
      `b first ${count('b.weight.test')}`,
    );
    assert.ok(
      count('c.weight.test') > 120 && count('c.weight.test') < 280,
      `c first ${count('c.weight.test')}`,
    );
    assert.ok(count('zero.weight.test') < 60, `weight-0 first ${count('zero.weight.test')}`);
    // A weight-0 record is picked before others only on a draw of exactly 0: it is nearly always last.
    assert.ok(zeroLast > draws * 0.8, `weight-0 last ${zeroLast} of ${draws}`);
  });

  test('XEP-0368: _xmpps-server records are merged by priority, direct TLS first at equal priority', async () => {
    dns.zone.set('_xmpps-server._tcp.mixed.test', [
      srv(10, 0, 5270, 'tls1.mixed.test'),
      srv(20, 0, 443, 'tls2.mixed.test'),
    ]);
    dns.zone.set('_xmpp-server._tcp.mixed.test', [
      srv(10, 0, 5269, 'plain1.mixed.test'),
      srv(5, 0, 5269, 'plain0.mixed.test'),
    ]);
    assert.deepEqual(await resolveCandidates('mixed.test', opts), [
      { host: 'plain0.mixed.test', port: 5269, directTls: false },
      { host: 'tls1.mixed.test', port: 5270, directTls: true },
      { host: 'plain1.mixed.test', port: 5269, directTls: false },
      { host: 'tls2.mixed.test', port: 443, directTls: true },
    ]);
    assert.ok(dns.queries.includes('_xmpps-server._tcp.mixed.test'));
    assert.ok(dns.queries.includes('_xmpp-server._tcp.mixed.test'));
  });

  test('XEP-0368: a domain publishing only _xmpps-server gets direct TLS candidates only', async () => {
    dns.zone.set('_xmpps-server._tcp.tlsonly.test', [srv(0, 5, 5223, 'xmpp.tlsonly.test')]);
    assert.deepEqual(await resolveCandidates('tlsonly.test', opts), [
      { host: 'xmpp.tlsonly.test', port: 5223, directTls: true },
    ]);
  });

  test('RFC 2782: a lone "." target means no XMPP service: no candidates (remote-server-not-found)', async () => {
    dns.zone.set('_xmpp-server._tcp.noservice.test', [srv(0, 0, 0, '.')]);
    const r = await resolveDomain('noservice.test', opts);
    assert.deepEqual(r, { candidates: [], source: 'no-service' });
  });

  test('RFC 2782: "." under one name does not hide the records of the other', async () => {
    dns.zone.set('_xmpp-server._tcp.halfservice.test', [srv(0, 0, 0, '.')]);
    dns.zone.set('_xmpps-server._tcp.halfservice.test', [srv(0, 0, 5270, 'xmpp.halfservice.test')]);
    assert.deepEqual(await resolveCandidates('halfservice.test', opts), [
      { host: 'xmpp.halfservice.test', port: 5270, directTls: true },
    ]);
  });

  test('RFC 6120 §3.2.2: without SRV records (NXDOMAIN or NODATA) the domain itself on 5269', async () => {
    assert.deepEqual(await resolveDomain('nosrv.test', opts), {
      candidates: [{ host: 'nosrv.test', port: 5269, directTls: false }],
      source: 'fallback',
      reason: 'no-srv',
    });
    // The name exists but has no SRV records.
    dns.zone.set('_xmpp-server._tcp.nodata.test', []);
    dns.zone.set('_xmpps-server._tcp.nodata.test', []);
    assert.deepEqual(await resolveDomain('nodata.test', opts), {
      candidates: [{ host: 'nodata.test', port: 5269, directTls: false }],
      source: 'fallback',
      reason: 'no-srv',
    });
  });

  test('RFC 6120 §3.2: a static route wins over DNS, and DNS is not asked', async () => {
    dns.zone.set('_xmpp-server._tcp.routed.test', [srv(0, 0, 5269, 'xmpp.routed.test')]);
    const r = await resolveDomain('routed.test', { ...opts, routes: { 'routed.test': 'tls://[::1]:5270' } });
    assert.deepEqual(r, { candidates: [{ host: '::1', port: 5270, directTls: true }], source: 'route' });
    assert.ok(!dns.queries.some((q) => q.endsWith('routed.test')), 'no query for a routed domain');
  });

  test('RFC 6120 §3.2.1: an internationalised domain is queried by its A-labels', async () => {
    dns.zone.set('_xmpp-server._tcp.xn--mnchen-3ya.test', [srv(0, 0, 5269, 'xmpp.xn--mnchen-3ya.test')]);
    assert.deepEqual(await resolveCandidates('münchen.test', opts), [
      { host: 'xmpp.xn--mnchen-3ya.test', port: 5269, directTls: false },
    ]);
    assert.ok(dns.queries.includes('_xmpps-server._tcp.xn--mnchen-3ya.test'));
    // The fallback connects to the A-label too: getaddrinfo is not asked to do IDNA.
    assert.deepEqual(await resolveCandidates('bücher.test', opts), [
      { host: 'xn--bcher-kva.test', port: 5269, directTls: false },
    ]);
  });

  test(`a zone listing many targets yields at most ${MAX_CANDIDATES} candidates, lowest priorities first`, async () => {
    // 40 records do not fit a 512-byte UDP answer: the server truncates and the resolver uses TCP.
    dns.zone.set(
      '_xmpp-server._tcp.many.test',
      Array.from({ length: 40 }, (_, i) => srv(i, 1, 5269, `h${i}.many.test`)),
    );
    const candidates = await resolveCandidates('many.test', opts);
    assert.deepEqual(
      candidates.map((c) => c.host),
      Array.from({ length: MAX_CANDIDATES }, (_, i) => `h${i}.many.test`),
    );
  });
});

describe('s2s resolution when DNS does not answer (RFC 6120 §3.2.2)', () => {
  test('a DNS server nobody listens on: the domain itself on 5269', async () => {
    // A port that was just free: nothing listens there once the socket is closed.
    const probe = createSocket('udp4');
    probe.bind(0, '127.0.0.1');
    await once(probe, 'listening');
    const { port } = probe.address();
    probe.close();
    const r = await resolveDomain('down.test', { dnsServers: [`127.0.0.1:${port}`], timeoutMs: 2000 });
    assert.deepEqual(r.candidates, [{ host: 'down.test', port: 5269, directTls: false }]);
    assert.equal(r.source, 'fallback');
    assert.notEqual(r.reason, 'no-srv');
  });

  test('a DNS server that never answers: the domain itself on 5269 once the time bound passes', async () => {
    const silent = createSocket('udp4');
    let asked = 0;
    silent.on('message', () => asked++);
    silent.bind(0, '127.0.0.1');
    await once(silent, 'listening');
    try {
      const r = await resolveDomain('silent.test', {
        dnsServers: [`127.0.0.1:${silent.address().port}`],
        timeoutMs: 300,
      });
      assert.deepEqual(r, {
        candidates: [{ host: 'silent.test', port: 5269, directTls: false }],
        source: 'fallback',
        reason: 'ETIMEOUT',
      });
      assert.ok(asked > 0, 'the silent server was asked');
    } finally {
      silent.close();
    }
  });
});

describe('SRV ordering and static routes', () => {
  test('RFC 2782: weight-0 targets of one priority are all kept, duplicates once', () => {
    const target = (host: string, weight: number) => ({
      host,
      port: 5269,
      priority: 0,
      weight,
      directTls: false,
    });
    const out = orderSrv([target('a', 0), target('b', 0), target('a', 0), target('c', 0)], 16);
    assert.deepEqual(out.map((c) => c.host).sort(), ['a', 'b', 'c']);
  });

  test('parseRoute reads host:port, tls://host:port and bracketed IPv6', () => {
    assert.deepEqual(parseRoute('xmpp.example.net:5269'), {
      host: 'xmpp.example.net',
      port: 5269,
      directTls: false,
    });
    assert.deepEqual(parseRoute('tls://xmpp.example.net:5270'), {
      host: 'xmpp.example.net',
      port: 5270,
      directTls: true,
    });
    assert.deepEqual(parseRoute('[::1]:5269'), { host: '::1', port: 5269, directTls: false });
    assert.deepEqual(parseRoute('tls://[2001:db8::1]:5270'), {
      host: '2001:db8::1',
      port: 5270,
      directTls: true,
    });
    assert.deepEqual(parseRoute('127.0.0.1:15269'), { host: '127.0.0.1', port: 15269, directTls: false });
  });

  test('s2s.dnsServers: what the configuration accepts the resolver takes; anything else stops the start', () => {
    const good = ['192.0.2.53', '192.0.2.53:5353', '2001:db8::53', '[2001:db8::53]:5353', '::1'];
    const config = parseConfig({ s2s: { dnsServers: good } });
    assert.deepEqual(config.s2s.dnsServers, good);
    assert.doesNotThrow(() => new nodeDns.Resolver().setServers(good));
    for (const bad of [
      'dns.example.net',
      '192.0.2.53:0',
      '2001:db8::53:5353x',
      '[192.0.2.53]:53',
      '1.2.3:53',
    ])
      assert.throws(() => parseConfig({ s2s: { dnsServers: [bad] } }), ConfigError, bad);
  });
});
