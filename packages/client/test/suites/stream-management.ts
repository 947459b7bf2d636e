import assert from 'node:assert/strict';
import { test } from 'node:test';
import { autoPing, reconnect, streamManagement, xml } from '../../src/index.node.js';
import { available, sleep, type SuiteContext } from '../helpers.js';

export function streamManagementSuite(ctx: SuiteContext): void {
  test('XEP-0198 §3/§4: enables stream management and gets acknowledgements', async () => {
    const a = await ctx.online({ plugins: { sm: streamManagement({ requestDelay: 20 }) } });
    const b = await ctx.online();
    assert.equal(a.plugins.sm.enabled, true);
    const acked = a.plugins.sm.waitFor('acked', { timeout: 5000 });
    await a.sendMessage({ to: b.jid!, body: 'ack me' });
    assert.equal((await acked).stanza.getChildText('body'), 'ack me');
    assert.equal(a.plugins.sm.unacked, 0);
  });

  test('XEP-0198 §5: after a dropped connection the session resumes and messages sent meanwhile are delivered exactly once', async () => {
    const a = await ctx.online({ plugins: { sm: streamManagement({ requestDelay: 20 }) } });
    const b = await ctx.online();
    const received: string[] = [];
    b.on('message', (m) => {
      const body = m.getChildText('body');
      if (body) received.push(body);
    });
    const jid = a.jid!.toString();
    await a.sendMessage({ to: b.jid!, body: 'before' });
    // Drop right after sending: the server may or may not have acknowledged 'dropped-1'.
    await a.sendMessage({ to: b.jid!, body: 'dropped-1' });
    a.dropConnection();
    assert.equal(a.resumable, true);
    await a.sendMessage({ to: b.jid!, body: 'while-offline' }); // held until resumption
    const resumed = a.plugins.sm.waitFor('resumed', { timeout: 5000 });
    const online = await a.connect();
    await resumed;
    assert.equal(online.toString(), jid, 'the same session (same full JID) continues');
    await a.sendMessage({ to: b.jid!, body: 'after' });
    for (let i = 0; i < 40 && received.length < 4; i++) await sleep(50);
    await sleep(200);
    assert.deepEqual(received, ['before', 'dropped-1', 'while-offline', 'after']);
  });

  test('XEP-0198 §5: stanzas sent to a dropped client are delivered once after it resumes (with reconnect)', async () => {
    const sender = await ctx.online();
    const b = await ctx.online({
      plugins: { sm: streamManagement(), reconnect: reconnect({ initialDelay: 300 }) },
    });
    await available(b);
    const received: string[] = [];
    b.on('message', (m) => {
      const body = m.getChildText('body');
      if (body) received.push(body);
    });
    await sender.sendMessage({ to: b.jid!, body: 'm1' });
    for (let i = 0; i < 40 && received.length < 1; i++) await sleep(25);
    const reconnected = b.plugins.reconnect.waitFor('reconnected', { timeout: 8000 });
    b.dropConnection();
    // The server has not noticed the drop yet (or holds the session): these wait in its queue.
    await sender.sendMessage({ to: b.jid!, body: 'm2' });
    await sender.sendMessage({ to: b.jid!, body: 'm3' });
    const r = await reconnected;
    assert.equal(r.resumed, true);
    for (let i = 0; i < 40 && received.length < 3; i++) await sleep(50);
    await sleep(300);
    assert.deepEqual(received, ['m1', 'm2', 'm3']);
  });

  test('XEP-0198: an IQ sent before a drop gets its answer after resumption', async () => {
    const a = await ctx.online({ plugins: { sm: streamManagement() } });
    const pending = a.iq(
      xml('iq', { type: 'get', to: ctx.target.domain }, xml('ping', { xmlns: 'urn:xmpp:ping' })),
      { timeout: 8000 },
    );
    a.dropConnection();
    await a.connect();
    assert.equal((await pending).attr('type'), 'result');
  });

  test('XEP-0198: a manual disconnect ends the session; the next connect starts a new one', async () => {
    const a = await ctx.online({ plugins: { sm: streamManagement() } });
    const first = a.jid!.toString();
    await a.disconnect();
    assert.equal(a.resumable, false);
    let resumed = false;
    a.plugins.sm.on('resumed', () => (resumed = true));
    await a.connect();
    assert.equal(resumed, false);
    assert.equal(a.plugins.sm.enabled, true);
    assert.ok(a.jid!.toString() === first || a.jid!.resource !== '', 'bound again');
  });

  test('XEP-0199 + XEP-0198: an autoPing timeout drops the connection; reconnect resumes the session', async () => {
    const stalled = await ctx.online();
    let stall = true;
    stalled.handleIq('get', 'ping', 'urn:xmpp:ping', () =>
      stall ? new Promise(() => undefined) : undefined,
    );
    const a = await ctx.online({
      plugins: {
        sm: streamManagement(),
        reconnect: reconnect({ initialDelay: 50 }),
        autoPing: autoPing({ interval: 100, timeout: 300, target: stalled.jid! }),
      },
    });
    const jid = a.jid!.toString();
    const reconnected = a.plugins.reconnect.waitFor('reconnected', { timeout: 8000 });
    await a.plugins.autoPing.waitFor('timeout', { timeout: 5000 });
    stall = false;
    const r = await reconnected;
    assert.equal(r.resumed, true);
    assert.equal(a.jid!.toString(), jid);
    await a.plugins.autoPing.waitFor('pong', { timeout: 5000 });
  });
}
