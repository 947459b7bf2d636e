// Bind2 (XEP-0386) in the SASL2 exchange (XEP-0388), with stream management (XEP-0198 §6: resume
// in <authenticate/>, enable in <bind/>), carbons (XEP-0280) and CSI (XEP-0352) inline. The wire
// is watched: against Natter a login binds without <iq><bind/>, and stream management, carbons and
// CSI travel inside the login; against Prosody 0.12 (no SASL2) the same options take the RFC 6120
// path with nonzas and IQs, as before.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import {
  carbons,
  createClient,
  csi,
  memoryCredentials,
  streamManagement,
  xml,
  type ClientState,
  type CredentialStore,
  type Client,
  type PluginContext,
  type PluginMap,
} from '../src/index.node.js';
import { available, describeTargets, sleep } from './helpers.js';
import { startNatter } from './natter.js';
import type { Target } from './target.js';
import { recordTraffic } from './traffic.js';

const BIND2 = '<bind xmlns="urn:xmpp:bind:0">';
const RFC6120_BIND = 'urn:ietf:params:xml:ns:xmpp-bind';
const SM_ENABLE = '<enable xmlns="urn:xmpp:sm:3"';
const SM_RESUME = '<resume xmlns="urn:xmpp:sm:3"';
const CARBONS_ENABLE = '<enable xmlns="urn:xmpp:carbons:2"/>';

/** The `<authenticate/>` elements written, and everything else. */
function split(sent: string[]): { logins: string[]; others: string[] } {
  const logins = sent.filter((s) => s.startsWith('<authenticate '));
  return { logins, others: sent.filter((s) => !s.startsWith('<authenticate ')) };
}

/** Waits until `received` has `n` entries, then a little longer (to see duplicates). */
async function settle(received: string[], n: number): Promise<void> {
  for (let i = 0; i < 60 && received.length < n; i++) await sleep(50);
  await sleep(300);
}

function bodies(c: Client<PluginMap>): string[] {
  const out: string[] = [];
  c.on('message', (m) => {
    const body = m.getChildText('body');
    if (body) out.push(body);
  });
  return out;
}

describeTargets('Bind2 with inline stream management, carbons and CSI', (ctx) => {
  const bind2 = () => ctx.target.name === 'natter';

  test('XEP-0386 §2.2: the resource is bound in the login, without <iq><bind/>; SM and carbons are enabled in <bind/>', async () => {
    const traffic = recordTraffic();
    const c = ctx.client(ctx.account(), {
      transports: traffic.transports,
      plugins: { sm: streamManagement(), carbons: carbons() },
    });
    const smEnabled = c.plugins.sm.waitFor('enabled', { timeout: 5000 });
    const carbonsEnabled = c.plugins.carbons.waitFor('enabled', { timeout: 5000 });
    const jid = await c.connect();
    await Promise.all([smEnabled, carbonsEnabled]);
    assert.equal(c.plugins.sm.enabled, true);
    assert.equal(c.plugins.carbons.enabled, true);
    assert.ok(jid.resource, 'a full JID');
    const { logins, others } = split(traffic.sent());
    if (bind2()) {
      assert.equal(logins.length, 1);
      const login = logins[0]!;
      assert.ok(login.includes(BIND2), login);
      assert.ok(login.includes('<tag>Natter</tag>'), 'the tag names the software');
      assert.ok(login.includes(SM_ENABLE), 'stream management enabled inline');
      assert.ok(login.includes(CARBONS_ENABLE), 'carbons enabled inline');
      assert.ok(!others.some((s) => s.includes(RFC6120_BIND)), 'no RFC 6120 binding');
      assert.ok(!others.some((s) => s.includes(SM_ENABLE)), 'no <enable/> nonza');
      assert.ok(!others.some((s) => s.includes(CARBONS_ENABLE)), 'no carbons IQ');
    } else {
      assert.deepEqual(logins, [], 'no SASL2 here');
      assert.ok(others.some((s) => s.startsWith('<iq') && s.includes(RFC6120_BIND)));
      assert.ok(others.some((s) => s.startsWith(SM_ENABLE)));
      assert.ok(others.some((s) => s.startsWith('<iq') && s.includes(CARBONS_ENABLE)));
    }
    // Acknowledgements work on the session either way.
    const acked = c.plugins.sm.waitFor('acked', { timeout: 5000 });
    await c.sendMessage({ to: c.account, body: 'ack me' });
    c.plugins.sm.requestAck();
    await acked;
  });

  test('XEP-0386 §2.2: a resource with characters a tag may not hold becomes a tag without them', async () => {
    const long = 'ü'.repeat(70);
    for (const [resource, tag] of [
      ['my/phone@home', 'myphonehome'],
      [long, 'ü'.repeat(64)],
    ] as const) {
      const jid = await ctx.client(ctx.account(), { resource }).connect();
      if (bind2()) assert.ok(jid.resource.startsWith(`${tag}.`), jid.resource);
      else assert.equal(jid.resource, resource);
    }
  });

  test('XEP-0280 via Bind2: carbons enabled in <bind/> copy messages between the account’s devices', async () => {
    const acct = ctx.account();
    const traffic = recordTraffic();
    const a1 = ctx.client(acct, {
      resource: 'one',
      transports: traffic.transports,
      plugins: { carbons: carbons() },
    });
    const a2 = ctx.client(acct, {
      resource: 'two',
      transports: traffic.transports,
      plugins: { carbons: carbons() },
    });
    const b = await ctx.online();
    for (const a of [a1, a2]) {
      const enabled = a.plugins.carbons.waitFor('enabled', { timeout: 5000 });
      await a.connect();
      await enabled;
      await available(a);
    }
    const sent = a2.plugins.carbons.waitFor('sent', { timeout: 5000 });
    await a1.sendMessage({ to: b.jid!, body: 'copied' });
    const copy = await sent;
    assert.equal(copy.message.getChildText('body'), 'copied');
    assert.equal(copy.device, a1.jid!.toString());
    const iqs = traffic.sent().filter((x) => x.startsWith('<iq') && x.includes(CARBONS_ENABLE));
    assert.equal(iqs.length, bind2() ? 0 : 2, 'an IQ only without Bind2');
  });

  test('XEP-0198 §6: a dropped session resumes inside the login; what was sent meanwhile arrives once, both ways', async () => {
    const traffic = recordTraffic();
    const a = ctx.client(ctx.account(), {
      transports: traffic.transports,
      plugins: { sm: streamManagement({ requestDelay: 20 }) },
    });
    await a.connect();
    const b = await ctx.online();
    await available(a);
    const atB = bodies(b);
    const atA = bodies(a);
    const jid = a.jid!.toString();
    await a.sendMessage({ to: b.jid!, body: 'before' });
    await a.sendMessage({ to: b.jid!, body: 'dropped-1' }); // acknowledged or not: sent once either way
    a.dropConnection();
    assert.equal(a.resumable, true);
    await a.sendMessage({ to: b.jid!, body: 'while-away' }); // held until the resumption
    await b.sendMessage({ to: jid, body: 'to-a-while-away' }); // queued by the server
    const from = traffic.mark();
    const resumed = a.plugins.sm.waitFor('resumed', { timeout: 5000 });
    const online = a.waitFor('online', { timeout: 5000 });
    assert.equal((await a.connect()).toString(), jid, 'the same session continues');
    await resumed;
    assert.equal((await online).resumed, true);
    await a.sendMessage({ to: b.jid!, body: 'after' });
    await settle(atB, 4);
    await settle(atA, 1);
    assert.deepEqual(atB, ['before', 'dropped-1', 'while-away', 'after']);
    assert.deepEqual(atA, ['to-a-while-away']);
    const { logins, others } = split(traffic.sent(from));
    if (bind2()) {
      assert.equal(logins.length, 1);
      assert.ok(logins[0]!.includes(SM_RESUME), 'resumed in <authenticate/>');
      // Bind2 rides along in case the resumption fails; the server ignores it when it succeeds.
      assert.ok(logins[0]!.includes(BIND2));
      assert.ok(!others.some((s) => s.startsWith(SM_RESUME)), 'no <resume/> nonza');
    } else {
      assert.ok(
        others.some((s) => s.startsWith(SM_RESUME)),
        '<resume/> after the features',
      );
    }
    assert.ok(!others.some((s) => s.includes(RFC6120_BIND)), 'not bound again');
  });

  test('XEP-0352 via Bind2: an app in the background starts its session inactive', async () => {
    const traffic = recordTraffic();
    let state: ClientState = 'inactive';
    const c = ctx.client(ctx.account(), {
      transports: traffic.transports,
      plugins: {
        csi: csi({ visibility: { current: () => state, subscribe: () => () => undefined } }),
      },
    });
    const sentState = c.plugins.csi.waitFor('state', { timeout: 5000 });
    await c.connect();
    assert.equal(await sentState, 'inactive');
    assert.equal(c.plugins.csi.supported, true);
    const { logins, others } = split(traffic.sent());
    const nonza = others.filter((s) => s.startsWith('<inactive xmlns="urn:xmpp:csi:0"'));
    if (bind2()) {
      assert.ok(logins[0]!.includes('<inactive xmlns="urn:xmpp:csi:0"/>'), 'inactive in <bind/>');
      assert.deepEqual(nonza, []);
    } else assert.equal(nonza.length, 1);
    // Nothing more is sent while the state does not change; a change goes as a nonza.
    state = 'active';
    assert.equal(c.plugins.csi.active(), true);
    await c.request('get', ctx.target.domain, xml('ping', { xmlns: 'urn:xmpp:ping' }));
    assert.equal(traffic.sent().filter((s) => s.startsWith('<active xmlns="urn:xmpp:csi:0"')).length, 1);
  });

  test('round trips of a login with stream management and carbons (reported)', async (t) => {
    const count = async (
      opts: { bind2?: boolean; credentials?: CredentialStore },
      account = ctx.account(),
    ) => {
      const traffic = recordTraffic();
      const c = ctx.client(account, {
        ...opts,
        transports: traffic.transports,
        plugins: { sm: streamManagement({ requestDelay: 60_000 }), carbons: carbons() },
      });
      const ready = Promise.all([
        c.plugins.sm.waitFor('enabled', { timeout: 5000 }),
        c.plugins.carbons.waitFor('enabled', { timeout: 5000 }),
      ]);
      let online = 0;
      c.once('online', () => (online = traffic.mark()));
      await c.connect();
      await ready;
      const all = traffic.roundTrips();
      await c.disconnect();
      return { online: traffic.roundTrips(0, online), ready: all };
    };
    const credentials = memoryCredentials();
    const account = ctx.account();
    const withBind2 = await count({ credentials }, account);
    const fast = await count({ credentials }, account); // the token stored by the first login
    const classic = await count({ bind2: false });
    t.diagnostic(
      `${ctx.target.name}: STARTTLS + SCRAM login, SM and carbons: ` +
        `${withBind2.online} round trips to online, ${withBind2.ready} until SM and carbons are on ` +
        `(bind2: false: ${classic.online} and ${classic.ready}; the next login, with FAST where ` +
        `offered: ${fast.online} and ${fast.ready})`,
    );
    if (bind2()) {
      // Bind2 saves the binding, <enable/> and the carbons IQ; FAST one step of SCRAM.
      assert.equal(classic.ready - withBind2.ready, 3, JSON.stringify({ withBind2, classic }));
      assert.equal(withBind2.ready - fast.ready, 1, JSON.stringify({ withBind2, fast }));
    } else {
      assert.deepEqual(withBind2, classic);
      assert.deepEqual(fast, classic);
    }
  });
});

// A resumption the server cannot honour: the server behind the service restarted (a new process,
// with the same accounts) and knows nothing of the session. The login carries both <resume/> and
// Bind2's <bind/>, so the failure costs no extra round trip: a new session, stream management
// enabled again, and the messages the old session had not seen acknowledged sent again.
describe('Bind2: a failed inline resumption (natter)', () => {
  const servers: Target[] = [];
  after(async () => {
    for (const s of servers) await s.stop().catch(() => undefined);
  });

  test('XEP-0198 §6: after a server restart the inline resumption fails, Bind2 binds a new session and unacknowledged messages are sent again', async () => {
    let current = await startNatter({ users: 2 });
    servers.push(current);
    const [userA, userB] = current.users as [Target['users'][0], Target['users'][0]];
    const traffic = recordTraffic();
    // Read at each connection, so that the client follows the restarted server (and trusts its
    // new self-signed certificate).
    const tls = { ...current.tls };
    const a = createClient({
      ...userA,
      discover: () => Promise.resolve([current.service.tcp]),
      tls,
      transports: traffic.transports,
      plugins: {
        // No <r/> before the drop: what a sent is still unacknowledged.
        sm: streamManagement({ requestEvery: 100, requestDelay: 60_000 }),
        // The app sends a message once the server has answered the login, before the new
        // session is online (the stream management plugin has seen the failure by then).
        late: {
          name: 'late',
          setup: (pctx: PluginContext) => {
            pctx.hook('authenticated', () => {
              if (pctx.client.resumable)
                void pctx.client.sendMessage({ to: userB.jid, body: 'during-login' });
            });
          },
        },
      },
    });
    try {
      await a.connect();
      assert.equal(a.plugins.sm.enabled, true);
      await a.sendMessage({ to: userB.jid, body: 'unacknowledged' });
      a.dropConnection();
      assert.equal(a.resumable, true);
      await a.sendMessage({ to: userB.jid, body: 'while-away' });
      assert.equal(a.plugins.sm.unacked, 2);

      await current.stop();
      current = await startNatter({ users: 2 });
      servers.push(current);
      tls.ca = current.tls.ca;
      const b = createClient({ ...userB, service: current.service.tcp, tls: current.tls });
      await b.connect();
      await available(b);
      const atB = bodies(b);

      const from = traffic.mark();
      const failed = a.plugins.sm.waitFor('resume-failed', { timeout: 5000 });
      const enabled = a.plugins.sm.waitFor('enabled', { timeout: 5000 });
      const online = a.waitFor('online', { timeout: 5000 });
      await a.connect();
      const f = await failed;
      // The two of the lost session; the one sent during the login follows them, as new.
      assert.equal(f.resent, 2);
      assert.equal(f.condition, 'item-not-found');
      assert.equal((await online).resumed, false);
      await enabled;
      assert.equal(a.plugins.sm.enabled, true, 'stream management on for the new session');
      await settle(atB, 3);
      assert.deepEqual(atB, ['unacknowledged', 'while-away', 'during-login']);
      const { logins, others } = split(traffic.sent(from));
      // The FAST token of the old server is refused first (the new one never issued it), then
      // the password login goes through; both carry the resumption and Bind2.
      assert.equal(logins.length, 2);
      assert.match(logins[0]!, /mechanism="HT-SHA-256-/);
      for (const login of logins) {
        assert.ok(login.includes(SM_RESUME) && login.includes(BIND2), login);
        assert.ok(login.includes(SM_ENABLE), 'the new session enables SM in the same login');
      }
      assert.ok(!others.some((s) => s.includes(RFC6120_BIND) || s.startsWith(SM_ENABLE)));
      await b.disconnect();
    } finally {
      await a.disconnect();
    }
  });
});
