// Interop of the SDK's messaging modules with xmpp.js (@xmpp/client 0.14), a client nobody here
// wrote, over real sockets against an in-process Natter server. xmpp.js has no plugins for these
// XEPs, so on its side the raw elements are checked against each XEP's examples: what the SDK
// sends must have the names, namespaces and attributes the XEPs define, and stanzas built as in
// the XEPs' examples, sent by xmpp.js, must produce the SDK's typed events.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { client as xmppjsClient, xml as xjs, type LtxElement, type XmppClient } from '@xmpp/client';
import {
  chatStates,
  corrections,
  createClient,
  markers,
  reactions,
  retractions,
  type Client,
} from '../src/index.node.js';
import { startNatter } from './natter.js';
import type { Target } from './target.js';

// The server's certificate is self-signed and xmpp.js checks against the system store only (it
// takes no CA option for STARTTLS).
process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';

const WAIT = 10_000;
const BOUND = { timeout: 60_000 };
const NS_CHAT_STATES = 'http://jabber.org/protocol/chatstates';
const NS_MARKERS = 'urn:xmpp:chat-markers:0';
const NS_CORRECT = 'urn:xmpp:message-correct:0';
const NS_RETRACT = 'urn:xmpp:message-retract:1';
const NS_FALLBACK = 'urn:xmpp:fallback:0';
const NS_REACTIONS = 'urn:xmpp:reactions:0';
const NS_HINTS = 'urn:xmpp:hints';

const plugins = () => ({
  chatStates: chatStates(),
  markers: markers(),
  corrections: corrections(),
  retractions: retractions(),
  reactions: reactions(),
});
type Sdk = Client<ReturnType<typeof plugins>>;

/** Child elements (not text) of an ltx element. */
const elements = (el: LtxElement): LtxElement[] =>
  el.children.filter((c): c is LtxElement => typeof c !== 'string');

describe('interop: the messaging modules with xmpp.js 0.14 (raw elements)', () => {
  let target: Target;
  let next = 0;
  const sdks: Sdk[] = [];
  const others: XmppClient[] = [];
  const account = () => target.users[next++]!;

  const sdkOnline = async (): Promise<Sdk> => {
    const c = createClient({
      service: target.service.tcp,
      tls: target.tls,
      ...account(),
      plugins: plugins(),
    });
    sdks.push(c);
    await c.connect();
    return c;
  };
  /** An xmpp.js client online, and every message it receives from now on. */
  const xmppjsOnline = async (): Promise<{ x: XmppClient; jid: string; received: LtxElement[] }> => {
    const { jid, password } = account();
    const x = xmppjsClient({
      service: target.service.tcp,
      domain: target.domain,
      username: jid.split('@')[0]!,
      password,
      resource: 'xmppjs',
      timeout: WAIT,
    });
    x.on('error', () => {});
    others.push(x);
    const received: LtxElement[] = [];
    x.on('stanza', (s) => {
      if (s.is('message')) received.push(s);
    });
    const online = once(x, 'online');
    await x.start();
    await online;
    return { x, jid: String(x.jid), received };
  };
  /** Resolves when xmpp.js has received a message with this body (bounded). */
  const bodyArrives = (x: XmppClient, body: string) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        x.off('stanza', check);
        reject(new Error(`xmpp.js got no message "${body}" within ${WAIT} ms`));
      }, WAIT);
      const check = (s: LtxElement) => {
        if (!s.is('message') || s.getChildText('body') !== body) return;
        clearTimeout(timer);
        x.off('stanza', check);
        resolve();
      };
      x.on('stanza', check);
    });

  before(async () => {
    target = await startNatter({ users: 4 });
  });
  after(async () => {
    await Promise.all(others.map((x) => x.stop().catch(() => undefined)));
    await Promise.all(sdks.map((c) => c.disconnect().catch(() => undefined)));
    await target?.stop();
  });

  test('SDK → xmpp.js: each extension arrives as the XEP defines it', BOUND, async () => {
    const sdk = await sdkOnline();
    const me = sdk.jid!.toString();
    const { x, jid: to, received } = await xmppjsOnline();
    const p = sdk.plugins;
    const end = bodyArrives(x, 'end');

    await p.chatStates.send(to, 'composing');
    const original = await sdk.sendMessage({ to, body: 'helo' });
    await p.markers.send(to, 'their-1', 'displayed');
    const correction = await p.corrections.correct(to, original, 'hello');
    await p.reactions.react(to, original, ['👍', '🎉']);
    await p.reactions.react(to, original, []);
    const retraction = await p.retractions.retract(to, original);
    await sdk.sendMessage({ to, body: 'end' });
    await end;
    // Nothing else arrived: one message per call, in order.
    assert.equal(received.length, 8, received.map(String).join('\n'));
    for (const m of received) assert.equal(m.attrs.from, me);
    const [state, first, marker, corrected, reacted, unreacted, retracted] = received;

    // XEP-0085: a standalone notification, no body, with a hint (XEP-0334) against storing it.
    assert.equal(state?.attrs.type, 'chat');
    assert.deepEqual(
      elements(state).map((e) => [e.name, e.attrs.xmlns]),
      [
        ['composing', NS_CHAT_STATES],
        ['no-store', NS_HINTS],
      ],
    );
    // XEP-0333: a chat message with a body and <markable/>.
    assert.equal(first?.attrs.id, original);
    assert.equal(first.attrs.type, 'chat');
    assert.equal(first.getChildText('body'), 'helo');
    assert.ok(first.getChild('markable', NS_MARKERS));
    // XEP-0333: <displayed id/> naming the marked message, no body.
    assert.equal(marker?.getChild('displayed', NS_MARKERS)?.attrs.id, 'their-1');
    assert.equal(marker.getChildText('body'), null);
    // XEP-0308: a new message (new id) with the new body and <replace id=original/>.
    assert.equal(corrected?.attrs.id, correction);
    assert.notEqual(correction, original);
    assert.equal(corrected.getChildText('body'), 'hello');
    assert.equal(corrected.getChild('replace', NS_CORRECT)?.attrs.id, original);
    // XEP-0444: <reactions id> with one <reaction/> per emoji, then an empty one (all removed).
    assert.ok(reacted);
    const set = reacted.getChild('reactions', NS_REACTIONS);
    assert.equal(set?.attrs.id, original);
    assert.deepEqual(
      set.getChildren('reaction', NS_REACTIONS).map((r) => r.getText()),
      ['👍', '🎉'],
    );
    assert.ok(reacted.getChild('store', NS_HINTS));
    const none = unreacted?.getChild('reactions', NS_REACTIONS);
    assert.equal(none?.attrs.id, original);
    assert.deepEqual(elements(none), []);
    // XEP-0424 (0.4 and later): <retract id/>, a fallback body marked by XEP-0428, a store hint.
    assert.equal(retracted?.attrs.id, retraction);
    assert.equal(retracted.attrs.type, 'chat');
    assert.equal(retracted.getChild('retract', NS_RETRACT)?.attrs.id, original);
    assert.equal(retracted.getChild('fallback', NS_FALLBACK)?.attrs.for, NS_RETRACT);
    assert.ok(retracted.getChildText('body'));
    assert.ok(retracted.getChild('store', NS_HINTS));
  });

  test(
    'xmpp.js → SDK: stanzas built as in the XEPs’ examples give the SDK’s typed events',
    BOUND,
    async () => {
      const sdk = await sdkOnline();
      const me = sdk.jid!.toString();
      const p = sdk.plugins;
      const { x, jid: from, received } = await xmppjsOnline();
      const direct = { from, origin: 'direct' };
      const msg = (attrs: Record<string, string>, ...children: LtxElement[]) =>
        x.send(xjs('message', { to: me, ...attrs }, ...children));

      // XEP-0085: composing, then paused.
      const paused = p.chatStates.waitFor('state', { filter: (e) => e.state === 'paused', timeout: WAIT });
      const states: unknown[] = [];
      p.chatStates.on('state', (e) => states.push({ state: e.state, from: e.from, origin: e.origin }));
      await msg({ type: 'chat' }, xjs('composing', { xmlns: NS_CHAT_STATES }));
      await msg({ type: 'chat' }, xjs('paused', { xmlns: NS_CHAT_STATES }));
      await paused;
      assert.deepEqual(states, [
        { state: 'composing', ...direct },
        { state: 'paused', ...direct },
      ]);

      // XEP-0333: a markable message in a thread; the SDK marks it and xmpp.js gets <displayed/>
      // in the same thread.
      const markable = p.markers.waitFor('markable', { timeout: WAIT });
      await msg(
        { type: 'chat', id: 'message-1' },
        xjs('thread', null, 'sleeping'),
        xjs('body', null, 'sleeping'),
        xjs('markable', { xmlns: NS_MARKERS }),
      );
      const m = await markable;
      assert.deepEqual({ id: m.id, from: m.from, origin: m.origin }, { id: 'message-1', ...direct });
      const back = markerArrives(x);
      assert.equal(await p.markers.mark(m.element, 'displayed'), true);
      const displayed = await back;
      assert.equal(displayed.attrs.from, me);
      assert.equal(displayed.getChild('displayed', NS_MARKERS)?.attrs.id, 'message-1');
      assert.equal(displayed.getChildText('thread'), 'sleeping');

      // XEP-0333 the other way: xmpp.js marks a message of the SDK.
      const own = await sdk.sendMessage({ to: from, body: 'read me' });
      const marked = p.markers.waitFor('displayed', { timeout: WAIT });
      await msg(
        { type: 'chat' },
        xjs('thread', null, 'sleeping'),
        xjs('displayed', { xmlns: NS_MARKERS, id: own }),
      );
      const d = await marked;
      assert.deepEqual(
        { id: d.id, marker: d.marker, from: d.from, origin: d.origin },
        {
          id: own,
          marker: 'displayed',
          ...direct,
        },
      );

      // XEP-0308: a message, then its correction.
      const corrected = p.corrections.waitFor('corrected', { timeout: WAIT });
      await msg(
        { type: 'chat', id: 'bad1' },
        xjs('body', null, 'But soft, what light through yonder airlock breaks?'),
      );
      await msg(
        { type: 'chat', id: 'good1' },
        xjs('body', null, 'But soft, what light through yonder window breaks?'),
        xjs('replace', { xmlns: NS_CORRECT, id: 'bad1' }),
      );
      const c = await corrected;
      assert.deepEqual(
        { replaces: c.replaces, id: c.id, body: c.body, from: c.from, origin: c.origin },
        {
          replaces: 'bad1',
          id: 'good1',
          body: 'But soft, what light through yonder window breaks?',
          ...direct,
        },
      );

      // XEP-0444: two reactions to the SDK's message, then all removed.
      const reacted = p.reactions.waitFor('reactions', { timeout: WAIT });
      await msg(
        { type: 'chat', id: 'reaction-1' },
        xjs(
          'reactions',
          { xmlns: NS_REACTIONS, id: own },
          xjs('reaction', null, '👋'),
          xjs('reaction', null, '🐢'),
        ),
        xjs('store', { xmlns: NS_HINTS }),
      );
      const r = await reacted;
      assert.deepEqual(
        { id: r.id, reactions: r.reactions, from: r.from, origin: r.origin },
        { id: own, reactions: ['👋', '🐢'], ...direct },
      );
      const removed = p.reactions.waitFor('reactions', { timeout: WAIT });
      await msg(
        { type: 'chat', id: 'reaction-2' },
        xjs('reactions', { xmlns: NS_REACTIONS, id: own }),
        xjs('store', { xmlns: NS_HINTS }),
      );
      assert.deepEqual((await removed).reactions, []);

      // XEP-0424 (0.4 and later): retracting bad1, with fallback body and store hint.
      const retracted = p.retractions.waitFor('retracted', { timeout: WAIT });
      await msg(
        { type: 'chat', id: 'retract-message-1' },
        xjs('retract', { xmlns: NS_RETRACT, id: 'bad1' }),
        xjs('fallback', { xmlns: NS_FALLBACK, for: NS_RETRACT }),
        xjs(
          'body',
          null,
          'This person attempted to retract a previous message, but it is unsupported by your client.',
        ),
        xjs('store', { xmlns: NS_HINTS }),
      );
      const rt = await retracted;
      assert.deepEqual({ id: rt.id, from: rt.from, origin: rt.origin }, { id: 'bad1', ...direct });
      assert.equal(received.find((r) => r.attrs.id === own)?.getChildText('body'), 'read me');
    },
  );
});

/** The next message xmpp.js receives that carries a chat marker (bounded). */
function markerArrives(x: XmppClient): Promise<LtxElement> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      x.off('stanza', check);
      reject(new Error(`xmpp.js got no chat marker within ${WAIT} ms`));
    }, WAIT);
    const check = (s: LtxElement) => {
      if (!s.is('message') || !elements(s).some((e) => e.attrs.xmlns === NS_MARKERS && e.name !== 'markable'))
        return;
      clearTimeout(timer);
      x.off('stanza', check);
      resolve(s);
    };
    x.on('stanza', check);
  });
}
