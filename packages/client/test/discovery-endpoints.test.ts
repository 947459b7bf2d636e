// Connecting with the account's JID alone (RFC 6120 §3.2, XEP-0368, XEP-0156): DNS SRV records
// served by a real DNS server on loopback (Node), host-meta served by Natter's http listener.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DnsServer } from '../../../test/support/dns-server.js';
import { createClient, hostMetaResolver, orderSrv, srvResolver } from '../src/index.node.js';
import { describeTargets } from './helpers.js';
import { startNatter } from './natter.js';
import type { Target } from './target.js';
import { freePort } from './ports.js';

const portOf = (url: string) => Number(new URL(url).port);

/** A port where nothing listens (a dead node). */
const deadPort = freePort;

describeTargets('endpoints from DNS SRV (RFC 6120 §3.2.1, XEP-0368)', (ctx) => {
  let dns: DnsServer;
  before(async () => {
    dns = await DnsServer.start();
  });
  after(async () => {
    await dns?.close();
  });

  test('with only a JID: direct TLS (_xmpps-client, better priority) is used, the certificate checked against the domain', async () => {
    const { domain, service } = ctx.target;
    if (!service.tls) return;
    dns.zone.set(`_xmpps-client._tcp.${domain}`, [
      { priority: 5, weight: 0, port: portOf(service.tls), target: '127.0.0.1' },
    ]);
    dns.zone.set(`_xmpp-client._tcp.${domain}`, [
      { priority: 10, weight: 0, port: portOf(service.tcp), target: '127.0.0.1' },
    ]);
    const c = ctx.client(ctx.account(), {
      service: undefined,
      discover: srvResolver({ servers: [dns.address] }),
    });
    await c.connect();
    assert.equal(c.service, `xmpps://127.0.0.1:${portOf(service.tls)}`);
    assert.ok(dns.queries.includes(`_xmpps-client._tcp.${domain}`));
  });

  test('an endpoint that does not answer is skipped for the next record', async () => {
    const { domain, service } = ctx.target;
    const dead = await deadPort();
    dns.zone.set(`_xmpps-client._tcp.${domain}`, []);
    dns.zone.set(`_xmpp-client._tcp.${domain}`, [
      { priority: 1, weight: 0, port: dead, target: '127.0.0.1' },
      { priority: 2, weight: 0, port: portOf(service.tcp), target: '127.0.0.1' },
    ]);
    const c = ctx.client(ctx.account(), {
      service: undefined,
      discover: srvResolver({ servers: [dns.address] }),
      connectTimeout: 5000,
    });
    await c.connect();
    assert.equal(c.service, `xmpp://127.0.0.1:${portOf(service.tcp)}`);
  });

  test('a "." target says the service is not offered: a clear error, no connection attempt', async () => {
    const { domain } = ctx.target;
    dns.zone.set(`_xmpps-client._tcp.${domain}`, []);
    dns.zone.set(`_xmpp-client._tcp.${domain}`, [{ priority: 0, weight: 0, port: 0, target: '.' }]);
    const c = ctx.client(ctx.account(), {
      service: undefined,
      discover: srvResolver({ servers: [dns.address] }),
    });
    await assert.rejects(c.connect(), /could not find the endpoints of .*offers no XMPP client service/);
  });
});

describe('SRV ordering and fallback', () => {
  test('RFC 2782: by priority, then weighted; no records: the domain on 5222', async () => {
    const records = [
      { priority: 20, weight: 0, name: 'c' },
      { priority: 10, weight: 1, name: 'b' },
      { priority: 10, weight: 9, name: 'a' },
    ];
    // random() = 0.5: 4.5 of the 10 weight units falls in a's 9 (listed second, after b's 1).
    assert.deepEqual(
      orderSrv(records, () => 0.5).map((r) => r.name),
      ['a', 'b', 'c'],
    );
    assert.deepEqual(
      orderSrv(records, () => 0.05).map((r) => r.name),
      ['b', 'a', 'c'],
    );
    const dns = await DnsServer.start();
    try {
      assert.deepEqual(await srvResolver({ servers: [dns.address] })('nothing-here.test'), [
        'xmpp://nothing-here.test:5222',
      ]);
      // Direct TLS declared not offered, no STARTTLS records: the domain itself, still.
      dns.zone.set('_xmpps-client._tcp.starttls-only.test', [
        { priority: 0, weight: 0, port: 0, target: '.' },
      ]);
      assert.deepEqual(await srvResolver({ servers: [dns.address] })('starttls-only.test'), [
        'xmpp://starttls-only.test:5222',
      ]);
    } finally {
      await dns.close();
    }
  });
});

describe('endpoints from host-meta (XEP-0156), served by Natter', () => {
  let target: Target;
  let base: string;
  before(async () => {
    target = await startNatter({ users: 2 });
    base = `http://127.0.0.1:${portOf(target.service.ws)}`;
  });
  after(async () => {
    await target?.stop();
  });

  test('the WebSocket endpoint is found and used; an unencrypted one only when allowed', async () => {
    const found = await hostMetaResolver({ base: () => base, allowInsecure: true })(target.domain);
    assert.deepEqual(found, [target.service.ws]);
    const c = createClient({
      ...target.users[0]!,
      tls: target.tls,
      discover: hostMetaResolver({ base: () => base, allowInsecure: true }),
    });
    try {
      await c.connect();
      assert.equal(c.service, target.service.ws);
    } finally {
      await c.disconnect();
    }
    const nowhere = await deadPort();
    await assert.rejects(
      hostMetaResolver({ base: () => base })(target.domain),
      /lists only unencrypted WebSocket endpoints/,
    );
    await assert.rejects(
      hostMetaResolver({ base: () => `http://127.0.0.1:${nowhere}`, timeout: 2000 })(target.domain),
      /lists no WebSocket endpoint/,
    );
  });
});
