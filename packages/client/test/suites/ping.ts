import assert from 'node:assert/strict';
import { test } from 'node:test';
import { autoPing, ping, xml } from '../../src/index.node.js';
import type { SuiteContext } from '../helpers.js';

export function pingSuite(ctx: SuiteContext): void {
  test('XEP-0199 §4.1: ping() reaches the server and returns a round-trip time', async () => {
    const c = await ctx.online({ plugins: { ping: ping() } });
    const rtt = await c.plugins.ping.ping();
    assert.ok(rtt >= 0);
  });

  test('XEP-0199 §4.2: the ping module answers pings from another client and advertises urn:xmpp:ping', async () => {
    const a = await ctx.online({ plugins: { ping: ping() } });
    const b = await ctx.online({ plugins: { ping: ping() } });
    const res = await a.iq(
      xml('iq', { type: 'get', to: b.jid!.toString() }, xml('ping', { xmlns: 'urn:xmpp:ping' })),
    );
    assert.equal(res.attr('type'), 'result');
    assert.ok(b.features.includes('urn:xmpp:ping'));
    assert.ok((await a.plugins.ping.ping(b.jid!)) >= 0);
  });

  test('autoPing: pings the server every interval and reports pongs', async () => {
    const c = await ctx.online({ plugins: { autoPing: autoPing({ interval: 150, timeout: 2000 }) } });
    const pong = await c.plugins.autoPing.waitFor('pong', { timeout: 3000 });
    assert.equal(pong.target, ctx.target.domain);
  });

  test('autoPing: pings a target JID', async () => {
    const b = await ctx.online({ plugins: { ping: ping() } });
    const a = await ctx.online({ plugins: { autoPing: autoPing({ interval: 150, target: b.jid! }) } });
    const pong = await a.plugins.autoPing.waitFor('pong', { timeout: 3000 });
    assert.equal(pong.target, b.jid!.toString());
  });

  test('autoPing: a timeout is reported and treated as a dead connection', async () => {
    const b = await ctx.online();
    b.handleIq(
      'get',
      'ping',
      'urn:xmpp:ping',
      () => new Promise((r) => setTimeout(() => r(undefined), 3000)),
    );
    const a = await ctx.online({
      plugins: { autoPing: autoPing({ interval: 150, timeout: 300, target: b.jid! }) },
    });
    const offline = a.waitFor('offline', { timeout: 5000 });
    const t = await a.plugins.autoPing.waitFor('timeout', { timeout: 3000 });
    assert.equal(t.target, b.jid!.toString());
    const off = await offline;
    assert.equal(off.manual, false);
    assert.match(off.error?.message ?? '', /no pong/);
  });

  test('XEP-0199 §4.2: an error reply (absent full JID) still counts as a reply, not a timeout', async () => {
    const c = await ctx.online({ plugins: { ping: ping() } });
    const rtt = await c.plugins.ping.ping(`${c.account.toString()}/nothere`, { timeout: 3000 });
    assert.ok(rtt < 3000);
  });
}
