import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  chatStates,
  chatStateOf,
  corrections,
  markers,
  reactions,
  retractions,
  xml,
} from '../../src/index.node.js';
import type { SuiteContext } from '../helpers.js';

const all = () => ({
  chatStates: chatStates(),
  markers: markers(),
  corrections: corrections(),
  retractions: retractions(),
  reactions: reactions(),
});

export function messagingSuite(ctx: SuiteContext): void {
  test('XEP-0085: chat state notifications round-trip with typed events', async () => {
    const a = await ctx.online({ plugins: all() });
    const b = await ctx.online({ plugins: all() });
    const states: string[] = [];
    b.plugins.chatStates.on('state', (s) => {
      assert.equal(s.from, a.jid!.toString());
      assert.equal(s.origin, 'direct');
      states.push(s.state);
    });
    const paused = b.plugins.chatStates.waitFor('state', {
      filter: (s) => s.state === 'paused',
      timeout: 5000,
    });
    await a.plugins.chatStates.send(b.jid!.toString(), 'composing');
    await a.plugins.chatStates.send(b.jid!.toString(), 'paused');
    await paused;
    assert.deepEqual(states, ['composing', 'paused']);
  });

  test('XEP-0085 §5.1: activeWithMessages adds <active/> to chat messages with a body', async () => {
    const a = await ctx.online({ plugins: { chatStates: chatStates({ activeWithMessages: true }) } });
    const b = await ctx.online({ plugins: { chatStates: chatStates() } });
    const state = b.plugins.chatStates.waitFor('state', { timeout: 5000 });
    await a.sendMessage({ to: b.jid!, body: 'hello' });
    const s = await state;
    assert.equal(s.state, 'active');
    assert.equal(s.element.getChildText('body'), 'hello');
    assert.equal(chatStateOf(s.element), 'active');
  });

  test('XEP-0333: markable messages, then received/displayed/acknowledged markers back to the sender', async () => {
    const a = await ctx.online({ plugins: all() });
    const b = await ctx.online({ plugins: all() });
    const markable = b.plugins.markers.waitFor('markable', { timeout: 5000 });
    const id = await a.sendMessage({ to: b.jid!, body: 'read me' });
    const m = await markable;
    assert.equal(m.id, id);
    assert.equal(m.from, a.jid!.toString());

    const got: string[] = [];
    a.plugins.markers.on('marker', (e) => got.push(`${e.marker}:${e.id}`));
    const acked = a.plugins.markers.waitFor('acknowledged', { timeout: 5000 });
    assert.equal(await b.plugins.markers.mark(m.element, 'received'), true);
    assert.equal(await b.plugins.markers.mark(m.element, 'displayed'), true);
    assert.equal(await b.plugins.markers.mark(m.element, 'acknowledged'), true);
    const last = await acked;
    assert.equal(last.from, b.jid!.toString());
    assert.deepEqual(got, [`received:${id}`, `displayed:${id}`, `acknowledged:${id}`]);
  });

  test('XEP-0333 §4.1: a message without <markable/> is not marked', async () => {
    const a = await ctx.online({ plugins: { markers: markers({ markable: false }) } });
    const b = await ctx.online({ plugins: { markers: markers() } });
    const got = b.waitFor('message', { timeout: 5000 });
    await a.sendMessage({ to: b.jid!, body: 'not markable' });
    const msg = await got;
    assert.equal(msg.getChild('markable', 'urn:xmpp:chat-markers:0'), undefined);
    assert.equal(await b.plugins.markers.mark(msg, 'displayed'), false);
  });

  test('XEP-0308: a correction names the original message and carries the new text', async () => {
    const a = await ctx.online({ plugins: all() });
    const b = await ctx.online({ plugins: all() });
    const first = b.waitFor('message', { timeout: 5000 });
    const id = await a.sendMessage({ to: b.jid!, body: 'helo' });
    await first;
    const corrected = b.plugins.corrections.waitFor('corrected', { timeout: 5000 });
    const newId = await a.plugins.corrections.correct(b.jid!.toString(), id, 'hello');
    const c = await corrected;
    assert.deepEqual(
      { replaces: c.replaces, id: c.id, body: c.body, from: c.from, origin: c.origin },
      { replaces: id, id: newId, body: 'hello', from: a.jid!.toString(), origin: 'direct' },
    );
  });

  test('XEP-0424: a retraction names the retracted message and has a fallback body', async () => {
    const a = await ctx.online({ plugins: all() });
    const b = await ctx.online({ plugins: all() });
    const first = b.waitFor('message', { timeout: 5000 });
    const id = await a.sendMessage({ to: b.jid!, body: 'oops, wrong chat' });
    await first;
    const retracted = b.plugins.retractions.waitFor('retracted', { timeout: 5000 });
    await a.plugins.retractions.retract(b.jid!.toString(), id);
    const r = await retracted;
    assert.equal(r.id, id);
    assert.equal(r.from, a.jid!.toString());
    assert.ok(r.element.getChildText('body'), 'fallback body for clients without XEP-0424');
    assert.ok(r.element.getChild('fallback', 'urn:xmpp:fallback:0'));
  });

  test('XEP-0424: the pre-0.4 form (XEP-0422 apply-to) is understood', async () => {
    const a = await ctx.online();
    const b = await ctx.online({ plugins: { retractions: retractions() } });
    const retracted = b.plugins.retractions.waitFor('retracted', { timeout: 5000 });
    await a.send(
      xml(
        'message',
        { to: b.jid!.toString(), type: 'chat' },
        xml(
          'apply-to',
          { xmlns: 'urn:xmpp:fasten:0', id: 'old-1' },
          xml('retract', { xmlns: 'urn:xmpp:message-retract:0' }),
        ),
      ),
    );
    assert.equal((await retracted).id, 'old-1');
  });

  test('XEP-0444: reactions replace the sender’s previous set; an empty set removes them', async () => {
    const a = await ctx.online({ plugins: all() });
    const b = await ctx.online({ plugins: all() });
    const first = b.waitFor('message', { timeout: 5000 });
    const id = await a.sendMessage({ to: b.jid!, body: 'party tonight?' });
    await first;
    const reacted = a.plugins.reactions.waitFor('reactions', { timeout: 5000 });
    await b.plugins.reactions.react(a.jid!.toString(), id, ['👍', '🎉', '👍']);
    const r = await reacted;
    assert.deepEqual(
      { id: r.id, from: r.from, reactions: r.reactions },
      { id, from: b.jid!.toString(), reactions: ['👍', '🎉'] },
    );
    const removed = a.plugins.reactions.waitFor('reactions', { timeout: 5000 });
    await b.plugins.reactions.react(a.jid!.toString(), id, []);
    assert.deepEqual((await removed).reactions, []);
  });

  test('the messaging plugins advertise their features (XEP-0030/XEP-0115)', async () => {
    const a = await ctx.online({ plugins: all() });
    for (const f of [
      'http://jabber.org/protocol/chatstates',
      'urn:xmpp:chat-markers:0',
      'urn:xmpp:message-correct:0',
      'urn:xmpp:message-retract:1',
      'urn:xmpp:reactions:0',
    ])
      assert.ok(a.features.includes(f), f);
  });
}
