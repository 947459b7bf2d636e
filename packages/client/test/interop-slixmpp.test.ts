// Interop of the SDK's messaging modules with slixmpp 1.8 (Debian python3-slixmpp), a client
// nobody here wrote, run as a real process against an in-process Natter server: what the SDK sends
// is parsed by slixmpp's own plugins (xep_0085, xep_0333, xep_0308, xep_0424, xep_0444), and what
// those plugins send reaches the SDK's typed events. Carbons (xep_0280) between slixmpp and SDK
// resources of one account, through Natter and Prosody 0.12.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  carbons,
  chatStates,
  corrections,
  createClient,
  mam,
  markers,
  reactions,
  retractions,
  type Client,
  type NoPlugins,
  type PluginMap,
} from '../src/index.node.js';
import { ensureDebianPackages, startManaged, type Managed } from '../../server/test/interop/third-party.js';
import { available } from './helpers.js';
import { startNatter } from './natter.js';
import { startProsody } from './prosody.js';
import type { Target } from './target.js';

const script = join(fileURLToPath(new URL('.', import.meta.url)), 'interop', 'slixmpp-messaging.py');
const carbonsScript = join(fileURLToPath(new URL('.', import.meta.url)), 'interop', 'slixmpp-carbons.py');
const WAIT = 10_000;
const BOUND = { timeout: 60_000 };
const NS_RETRACT = 'urn:xmpp:message-retract:1';

interface Line {
  kind: string;
  [key: string]: unknown;
}

const plugins = () => ({
  chatStates: chatStates(),
  markers: markers(),
  corrections: corrections(),
  retractions: retractions(),
  reactions: reactions(),
});
type Sdk = Client<ReturnType<typeof plugins>>;

/** A slixmpp-messaging.py (or `file`) scenario as a running process, online once it resolves. */
async function slixmpp(
  target: Target,
  account: { jid: string; password: string },
  scenario: 'receive' | 'send' | 'watch',
  file = script,
): Promise<{ jid: string; proc: Managed; finished(): Promise<Line[]> }> {
  const port = new URL(target.service.tcp).port;
  const proc = startManaged('/usr/bin/python3', [
    '-u',
    file,
    `${account.jid}/slix`,
    account.password,
    '127.0.0.1',
    port,
    scenario,
  ]);
  const lines = (): Line[] =>
    proc
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Line);
  try {
    await proc.waitForOutput(/^\{"(kind": "ready"|error)/m, WAIT);
    const ready = lines().find((l) => l.kind === 'ready');
    assert.ok(ready, proc.output());
    return {
      jid: ready.jid as string,
      proc,
      async finished() {
        try {
          await proc.waitForOutput(/^(done|\{"error".*)$/m, WAIT);
        } finally {
          await proc.stop();
        }
        const all = lines();
        assert.equal(
          all.find((l) => 'error' in l),
          undefined,
          proc.output(),
        );
        return all;
      },
    };
  } catch (err) {
    await proc.stop();
    throw err;
  }
}

describe('interop: the messaging modules with slixmpp 1.8', () => {
  let target: Target;
  let next = 0;
  const clients: Sdk[] = [];
  const account = () => target.users[next++]!;
  const online = async (): Promise<Sdk> => {
    const c = createClient({
      service: target.service.tcp,
      tls: target.tls,
      ...account(),
      plugins: plugins(),
    });
    clients.push(c);
    await c.connect();
    return c;
  };

  before(async () => {
    await ensureDebianPackages('/usr/lib/python3/dist-packages/slixmpp/plugins/xep_0444/reactions.py', [
      'python3-slixmpp',
    ]);
    target = await startNatter({ users: 4 });
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.disconnect().catch(() => undefined)));
    await target?.stop();
  });

  test('SDK → slixmpp: its plugins parse each extension the SDK sends', BOUND, async () => {
    const sdk = await online();
    const me = sdk.jid!.toString();
    const slix = await slixmpp(target, account(), 'receive');
    const to = slix.jid;
    const p = sdk.plugins;

    await p.chatStates.send(to, 'composing');
    await p.chatStates.send(to, 'paused');
    const original = await sdk.sendMessage({ to, body: 'helo' });
    for (const marker of ['received', 'displayed', 'acknowledged'] as const)
      await p.markers.send(to, 'their-message', marker);
    const correction = await p.corrections.correct(to, original, 'hello');
    await p.reactions.react(to, original, ['👍', '🎉']);
    await p.reactions.react(to, original, []);
    await p.retractions.retract(to, original);
    await sdk.sendMessage({ to, body: 'end' });
    const lines = await slix.finished();
    const of = (kind: string) => lines.filter((l) => l.kind === kind).map(({ kind: _, ...rest }) => rest);

    // xep_0085: the "chatstate" event with the state.
    assert.deepEqual(of('chatstate'), [
      { state: 'composing', sender: me, type: 'chat' },
      { state: 'paused', sender: me, type: 'chat' },
    ]);
    // xep_0333: <markable/> on the message with a body, then the "marker" event for each marker.
    const first = of('message').find((m) => m.id === original);
    assert.deepEqual(
      { body: first?.body, markable: first?.markable, type: first?.type },
      { body: 'helo', markable: true, type: 'chat' },
    );
    assert.deepEqual(of('marker'), [
      { marker: 'received', id: 'their-message', sender: me },
      { marker: 'displayed', id: 'their-message', sender: me },
      { marker: 'acknowledged', id: 'their-message', sender: me },
    ]);
    // xep_0308: the "message_correction" event, naming the original.
    assert.deepEqual(of('correction'), [{ replaces: original, id: correction, body: 'hello' }]);
    // xep_0444: the "reactions" event with the set, then with the empty set (reactions removed).
    assert.deepEqual(of('reactions'), [
      { id: original, values: ['🎉', '👍'] },
      { id: original, values: [] },
    ]);
    // xep_0424: slixmpp 1.8 implements XEP-0424 0.3 (<apply-to xmlns='urn:xmpp:fasten:0'> around
    // <retract xmlns='urn:xmpp:message-retract:0'/>) and does not know the current form the SDK
    // sends (<retract xmlns='urn:xmpp:message-retract:1' id/>): no "message_retract" event. Such a
    // client shows the XEP-0428 fallback body instead, which is what the fallback is for.
    assert.deepEqual(of('retract'), []);
    const retraction = of('message').find((m) => (m.children as string[]).includes(`{${NS_RETRACT}}retract`));
    assert.ok(retraction, JSON.stringify(lines));
    assert.match(retraction.body as string, /retract/);
    assert.ok((retraction.children as string[]).includes('{urn:xmpp:fallback:0}fallback'));
  });

  test('slixmpp → SDK: the SDK’s typed events for what slixmpp’s plugins send', BOUND, async () => {
    const sdk = await online();
    const p = sdk.plugins;
    const slix = await slixmpp(target, account(), 'send');
    const from = slix.jid;
    const states: unknown[] = [];
    const markables: unknown[] = [];
    const marks: unknown[] = [];
    const corrected: unknown[] = [];
    const reacted: unknown[] = [];
    const retracted: unknown[] = [];
    p.chatStates.on('state', (e) => states.push({ state: e.state, from: e.from, origin: e.origin }));
    p.markers.on('markable', (e) => markables.push({ id: e.id, from: e.from, origin: e.origin }));
    p.markers.on('marker', (e) => marks.push({ marker: e.marker, id: e.id, from: e.from, origin: e.origin }));
    p.corrections.on('corrected', (e) =>
      corrected.push({ replaces: e.replaces, id: e.id, body: e.body, from: e.from, origin: e.origin }),
    );
    p.reactions.on('reactions', (e) =>
      reacted.push({ id: e.id, reactions: e.reactions, from: e.from, origin: e.origin }),
    );
    p.retractions.on('retracted', (e) => retracted.push({ id: e.id, from: e.from, origin: e.origin }));
    const end = sdk.waitFor('message', { filter: (m) => m.getChildText('body') === 'end', timeout: WAIT });

    const go = await sdk.sendMessage({ to: from, body: 'go' });
    await end;
    const lines = await slix.finished();
    assert.ok(lines.some((l) => l.kind === 'sent' && l.target === go));

    const direct = { from, origin: 'direct' };
    assert.deepEqual(states, [
      { state: 'composing', ...direct },
      { state: 'paused', ...direct },
    ]);
    assert.deepEqual(markables, [{ id: 'slix-original', ...direct }]);
    // slixmpp's send_marker() sends markers without a type (a "normal" message): read all the same.
    assert.deepEqual(marks, [
      { marker: 'received', id: go, ...direct },
      { marker: 'displayed', id: go, ...direct },
      { marker: 'acknowledged', id: go, ...direct },
    ]);
    assert.deepEqual(corrected, [
      { replaces: 'slix-original', id: 'slix-correction', body: 'hello from slixmpp', ...direct },
    ]);
    assert.deepEqual(reacted, [
      { id: go, reactions: ['👍', '🎉'], ...direct },
      { id: go, reactions: [], ...direct },
    ]);
    // slixmpp 1.8 sends the XEP-0424 0.3 form (XEP-0422 <apply-to/>), which the SDK still reads.
    assert.deepEqual(retracted, [{ id: 'slix-original', ...direct }]);
  });
});

for (const [name, start] of [
  ['natter', () => startNatter({ users: 6 })],
  ['prosody', () => startProsody({ users: 6 })],
] as const) {
  describe(`interop: carbons with slixmpp 1.8's xep_0280 (${name})`, () => {
    let target: Target;
    let next = 0;
    const clients: Client[] = [];
    const account = () => target.users[next++]!;
    const client = <P extends PluginMap = NoPlugins>(
      acct: { jid: string; password: string },
      opts: { resource?: string; plugins?: P } = {},
    ): Client<P> => {
      const c = createClient<P>({ service: target.service.tcp, tls: target.tls, ...acct, ...opts });
      clients.push(c as unknown as Client);
      return c;
    };

    before(async () => {
      await ensureDebianPackages('/usr/lib/python3/dist-packages/slixmpp/plugins/xep_0280/carbons.py', [
        'python3-slixmpp',
      ]);
      target = await start();
    });
    after(async () => {
      await Promise.all(clients.map((c) => c.disconnect().catch(() => undefined)));
      await target?.stop();
    });

    test(
      'slixmpp → SDK: what a slixmpp resource sends is a sent carbon at the SDK, stored as the user’s own',
      BOUND,
      async () => {
        const acct = account();
        const sdk = client(acct, {
          resource: 'sdk',
          plugins: { carbons: carbons(), mam: mam() },
        });
        const enabled = sdk.plugins.carbons.waitFor('enabled', { timeout: WAIT });
        await sdk.connect();
        await enabled;
        await available(sdk as unknown as Client);
        const peer = client(account());
        await peer.connect();
        await available(peer);
        const slix = await slixmpp(target, acct, 'send', carbonsScript);

        const sent: unknown[] = [];
        sdk.plugins.carbons.on('sent', (c) =>
          sent.push({
            id: c.message.attr('id'),
            body: c.message.getChildText('body'),
            device: c.device,
            peer: c.peer,
          }),
        );
        const end = sdk.plugins.carbons.waitFor('sent', {
          filter: (c) => c.message.getChildText('body') === 'end',
          timeout: WAIT,
        });
        const stored = sdk.plugins.mam.waitFor('stored', { filter: (m) => m.body === 'end', timeout: WAIT });
        await peer.sendMessage({ to: slix.jid, body: 'go' });
        await end;
        const lines = await slix.finished();
        assert.ok(
          lines.some((l) => l.kind === 'sent' && l.to === peer.jid!.toString()),
          JSON.stringify(lines),
        );

        const from = { device: slix.jid, peer: peer.jid!.toString() };
        assert.deepEqual(sent, [
          { id: 'slix-1', body: 'hello from slixmpp', ...from },
          { id: 'slix-end', body: 'end', ...from },
        ]);
        // In the history, the user's own messages (sent by the slixmpp device), after the peer's
        // "go" to it (a received carbon).
        await stored;
        const history = await sdk.plugins.mam.store.list(acct.jid, peer.account.toString());
        assert.deepEqual(
          history.map((m) => [m.body, m.direction, m.from]),
          [
            ['go', 'in', peer.jid!.toString()],
            ['hello from slixmpp', 'out', slix.jid],
            ['end', 'out', slix.jid],
          ],
        );
      },
    );

    test(
      'SDK → slixmpp: the SDK resource’s messages (and one it receives) are carbon-copied to a slixmpp resource',
      BOUND,
      async () => {
        const acct = account();
        const slix = await slixmpp(target, acct, 'watch', carbonsScript);
        const sdk = client(acct, { resource: 'sdk' });
        await sdk.connect();
        await available(sdk);
        const peer = client(account());
        await peer.connect();
        await available(peer);

        const atPeer = peer.waitFor('message', {
          filter: (m) => m.getChildText('body') === 'hello from the SDK',
          timeout: WAIT,
        });
        const hello = await sdk.sendMessage({ to: peer.jid!, body: 'hello from the SDK' });
        await atPeer;
        const atSdk = sdk.waitFor('message', {
          filter: (m) => m.getChildText('body') === 'to the SDK',
          timeout: WAIT,
        });
        const reply = await peer.sendMessage({ to: sdk.jid!, body: 'to the SDK' });
        await atSdk;
        const end = await sdk.sendMessage({ to: peer.jid!, body: 'end' });
        const lines = await slix.finished();

        const me = sdk.jid!.toString();
        const them = peer.jid!.toString();
        // slixmpp raises these events only for copies from the account's bare JID (XEP-0280 §11).
        assert.deepEqual(
          lines.filter((l) => l.kind.startsWith('carbon_')),
          [
            {
              kind: 'carbon_sent',
              wrapper_from: acct.jid,
              id: hello,
              sender: me,
              to: them,
              body: 'hello from the SDK',
            },
            {
              kind: 'carbon_received',
              wrapper_from: acct.jid,
              id: reply,
              sender: them,
              to: me,
              body: 'to the SDK',
            },
            { kind: 'carbon_sent', wrapper_from: acct.jid, id: end, sender: me, to: them, body: 'end' },
          ],
        );
      },
    );
  });
}
