import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  csi,
  documentVisibility,
  reconnect,
  xml,
  type ClientState,
  type Element,
  type VisibilitySource,
} from '../../src/index.node.js';
import { available, sleep, type SuiteContext } from '../helpers.js';

/** A visibility source the test drives (what `documentVisibility()` or React Native's AppState would be). */
function fakeVisibility(initial: ClientState): VisibilitySource & { set(s: ClientState): void } {
  let state = initial;
  const listeners = new Set<(s: ClientState) => void>();
  return {
    current: () => state,
    subscribe(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    set(s) {
      state = s;
      for (const fn of listeners) fn(s);
    },
  };
}

export function csiSuite(ctx: SuiteContext): void {
  test('XEP-0352 §2/§3: the server advertises CSI and accepts inactive and active', async () => {
    const c = await ctx.online({ plugins: { csi: csi() } });
    assert.equal(c.plugins.csi.supported, true);
    const states: ClientState[] = [];
    c.plugins.csi.on('state', (s) => states.push(s));
    assert.equal(c.plugins.csi.inactive(), true);
    assert.equal(c.plugins.csi.inactive(), true); // same state: nothing sent again
    assert.equal(c.plugins.csi.active(), true);
    assert.deepEqual(states, ['inactive', 'active']);
    // A server that disliked the nonzas would have closed the stream: a round trip shows it did not.
    await c.iq(xml('iq', { type: 'get', to: c.domain }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    assert.equal(c.status, 'online');
  });

  test('XEP-0352: while inactive, presence updates are held back and delivered on active', async (t) => {
    // Prosody's mod_csi_simple holds too, but it flushes on any traffic from the client (the round
    // trip below, which tells us <inactive/> was handled, included) and then waits a grace period
    // before holding again: when that ends cannot be observed, so the effect is checked on Natter.
    if (ctx.target.name === 'prosody') return t.skip('hold not observable deterministically on Prosody');
    const acct = ctx.account();
    const quiet = ctx.client(acct, { resource: 'background', plugins: { csi: csi() } });
    const other = ctx.client(acct, { resource: 'other' });
    await quiet.connect();
    await other.connect();
    await available(quiet);
    await available(other);
    quiet.plugins.csi.inactive();
    // The round trip makes sure the server has seen <inactive/> before the update is sent.
    await quiet.iq(xml('iq', { type: 'get', to: quiet.domain }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    const isUpdate = (p: Element) =>
      p.attr('from') === other.jid!.toString() && p.getChildText('status') === 'in a meeting';
    let early = false;
    quiet.on('presence', (p) => {
      if (isUpdate(p)) early = true;
    });
    await other.sendPresence({ show: 'dnd', status: 'in a meeting' });
    // A round trip on the sender's stream (not another presence: the server keeps only the
    // latest update per sender).
    await other.iq(xml('iq', { type: 'get', to: other.domain }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    // Bounded wait to show that the update is NOT delivered while inactive.
    await sleep(300);
    assert.equal(early, false, 'presence delivered to an inactive client');
    const flushed = quiet.waitFor('presence', { filter: isUpdate, timeout: 5000 });
    quiet.plugins.csi.active();
    await flushed;
  });

  test('XEP-0352: the state follows the visibility source and is sent again after a reconnect', async () => {
    const visibility = fakeVisibility('active');
    const c = await ctx.online({
      plugins: { csi: csi({ visibility }), reconnect: reconnect({ initialDelay: 50 }) },
    });
    const hidden = c.plugins.csi.waitFor('state', { timeout: 5000 });
    visibility.set('inactive');
    assert.equal(await hidden, 'inactive');
    const again = c.plugins.csi.waitFor('state', { timeout: 5000 });
    const reconnected = c.plugins.reconnect.waitFor('reconnected', { timeout: 5000 });
    c.dropConnection();
    assert.equal((await reconnected).resumed, false);
    // A new session starts active on the server: the plugin tells it again.
    assert.equal(await again, 'inactive');
    const shown = c.plugins.csi.waitFor('state', { timeout: 5000 });
    visibility.set('active');
    assert.equal(await shown, 'active');
    c.plugins.csi.stopFollowing();
    visibility.set('inactive');
    assert.equal(c.plugins.csi.state, 'active');
  });

  test('XEP-0352: without the plugin’s feature on the stream nothing is sent (offline calls wait for a session)', async () => {
    const c = ctx.client(ctx.account(), { plugins: { csi: csi() } });
    assert.equal(c.plugins.csi.supported, false);
    assert.equal(c.plugins.csi.inactive(), false); // offline: remembered, not sent
    const sent = c.plugins.csi.waitFor('state', { timeout: 5000 });
    await c.connect();
    assert.equal(await sent, 'inactive');
  });

  test('documentVisibility follows visibilitychange (a stand-in document: Node has none)', () => {
    const listeners = new Set<() => void>();
    const doc = {
      visibilityState: 'visible',
      addEventListener: (_: 'visibilitychange', fn: () => void) => listeners.add(fn),
      removeEventListener: (_: 'visibilitychange', fn: () => void) => listeners.delete(fn),
    };
    const source = documentVisibility(doc);
    const seen: ClientState[] = [];
    const stop = source.subscribe((s) => seen.push(s));
    doc.visibilityState = 'hidden';
    for (const fn of listeners) fn();
    assert.equal(source.current(), 'inactive');
    stop();
    assert.equal(listeners.size, 0);
    assert.deepEqual(seen, ['inactive']);
    assert.equal(documentVisibility().current(), 'active'); // no global document in Node
  });
}
