import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  bookmarks,
  BookmarksError,
  muc,
  NS_BOOKMARKS,
  StanzaError,
  xml,
  type Client,
  type Element,
  type PluginMap,
} from '../../src/index.node.js';
import { available, type SuiteContext } from '../helpers.js';

const NS_PUBSUB = 'http://jabber.org/protocol/pubsub';
const ping = (c: Client<PluginMap>) =>
  c.iq(xml('iq', { type: 'get', to: c.domain }, xml('ping', { xmlns: 'urn:xmpp:ping' })), { timeout: 5000 });

/**
 * Available presence, and the server knows our `+notify` features (XEP-0163 §4): if it asks for
 * our disco#info (a caps hash it has not seen), wait until we answered, then one more round trip
 * on the same stream so the answer was processed. No fixed delays.
 */
async function pepReady(c: Client<PluginMap>): Promise<void> {
  let answered: Promise<unknown> | undefined;
  const onIq = (iq: Element) => {
    if (iq.attr('type') !== 'get' || iq.firstElement()?.xmlns !== 'http://jabber.org/protocol/disco#info')
      return;
    const id = iq.attr('id');
    answered = c.waitFor('sent', {
      filter: (s) => s.attr('id') === id && s.attr('type') === 'result',
      timeout: 5000,
    });
  };
  c.on('iq', onIq);
  try {
    await available(c);
    if (answered) {
      await answered;
      await ping(c);
    }
  } finally {
    c.off('iq', onIq);
  }
}

const room = (ctx: SuiteContext, name: string) =>
  `${name}-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6)}@${ctx.target.mucDomain}`;

export function bookmarksSuite(ctx: SuiteContext): void {
  test('XEP-0402 §4: a bookmark added on one resource reaches another by notification; update; remove', async () => {
    const acct = ctx.account();
    const a = ctx.client(acct, { resource: 'a', plugins: { bookmarks: bookmarks() } });
    const b = ctx.client(acct, { resource: 'b', plugins: { bookmarks: bookmarks() } });
    await a.connect();
    await b.connect();
    assert.ok(b.features.includes(`${NS_BOOKMARKS}+notify`));
    await pepReady(b);
    assert.deepEqual(await a.plugins.bookmarks.list(), []);
    const jid = room(ctx, 'play');

    const added = b.plugins.bookmarks.waitFor('update', {
      filter: (e) => e.bookmark.jid === jid,
      timeout: 5000,
    });
    await a.plugins.bookmarks.add({
      jid,
      name: "The Play's the Thing",
      nick: 'JC',
      password: 'cauldron',
      extensions: [xml('state', { xmlns: 'urn:example:client-state' }, 'pinned')],
    });
    const seen = (await added).bookmark;
    assert.equal(seen.name, "The Play's the Thing");
    assert.equal(seen.autojoin, false);
    assert.equal(seen.nick, 'JC');
    assert.equal(seen.password, 'cauldron');
    assert.equal(seen.extensions?.[0]?.xmlns, 'urn:example:client-state');
    assert.equal(seen.extensions?.[0]?.text(), 'pinned');
    const listed = await b.plugins.bookmarks.list();
    assert.equal(listed.length, 1);
    assert.equal(listed[0]!.jid, jid);
    assert.equal(listed[0]!.nick, 'JC');

    const updated = b.plugins.bookmarks.waitFor('update', {
      filter: (e) => e.bookmark.jid === jid && e.bookmark.name === 'Renamed',
      timeout: 5000,
    });
    await a.plugins.bookmarks.add({ jid, name: 'Renamed', autojoin: true });
    const u = (await updated).bookmark;
    assert.equal(u.autojoin, true);
    assert.equal(u.nick, undefined);
    const after = await a.plugins.bookmarks.list();
    assert.deepEqual(
      after.map((x) => [x.jid, x.name, x.autojoin]),
      [[jid, 'Renamed', true]],
    );

    const removed = b.plugins.bookmarks.waitFor('remove', { filter: (e) => e.jid === jid, timeout: 5000 });
    await a.plugins.bookmarks.remove(jid);
    await removed;
    assert.deepEqual(await a.plugins.bookmarks.list(), []);
    await a.plugins.bookmarks.remove(jid); // removing again is not an error
    await assert.rejects(
      a.plugins.bookmarks.add({ jid: 'not a room' }),
      (e: unknown) => e instanceof BookmarksError && e.code === 'invalid-jid',
    );
  });

  test('XEP-0402 §5: the node is persistent and private (whitelist); another user cannot read it', async () => {
    const acct = ctx.account();
    const a = ctx.client(acct, { plugins: { bookmarks: bookmarks() } });
    await a.connect();
    await a.plugins.bookmarks.add({ jid: room(ctx, 'secret'), name: 'Secret', password: 'pw' });
    const config = await a.request(
      'get',
      undefined,
      xml('pubsub', { xmlns: `${NS_PUBSUB}#owner` }, xml('configure', { node: NS_BOOKMARKS })),
    );
    const fields = new Map(
      (config?.getChild('configure')?.getChild('x', 'jabber:x:data')?.getChildren('field') ?? []).map((f) => [
        f.attr('var'),
        f.getChildText('value'),
      ]),
    );
    assert.equal(fields.get('pubsub#access_model'), 'whitelist');
    assert.ok(['1', 'true'].includes(fields.get('pubsub#persist_items') ?? ''), 'persist_items');
    assert.equal(fields.get('pubsub#send_last_published_item'), 'never');

    const other = await ctx.online();
    await assert.rejects(
      other.request(
        'get',
        acct.jid,
        xml('pubsub', { xmlns: NS_PUBSUB }, xml('items', { node: NS_BOOKMARKS })),
        { timeout: 5000 },
      ),
      (e: unknown) => e instanceof StanzaError,
    );
  });

  test('XEP-0402 §3 autojoin: rooms are joined through the muc plugin after login and when a notification marks one', async () => {
    const creator = await ctx.online({ plugins: { muc: muc() } });
    const first = room(ctx, 'auto');
    const second = room(ctx, 'later');
    await creator.plugins.muc.createInstant(first, 'owner');
    await creator.plugins.muc.createInstant(second, 'owner');
    const acct = ctx.account();
    const setup = ctx.client(acct, { resource: 'setup', plugins: { bookmarks: bookmarks() } });
    await setup.connect();
    await setup.plugins.bookmarks.add({ jid: first, autojoin: true, nick: 'auto-nick' });
    await setup.plugins.bookmarks.add({ jid: room(ctx, 'manual'), autojoin: false });

    const phone = ctx.client(acct, {
      resource: 'phone',
      plugins: { bookmarks: bookmarks({ autojoin: true, joinTimeout: 5000 }), muc: muc() },
    });
    const auto = phone.plugins.bookmarks.waitFor('autojoin', { timeout: 5000 });
    await phone.connect();
    const ev = await auto;
    assert.deepEqual(
      ev.rooms.map((r) => r.jid),
      [first],
    );
    assert.deepEqual(ev.joined, [first]);
    assert.deepEqual(ev.failed, []);
    assert.ok(phone.plugins.muc.rooms().includes(first));
    assert.equal(phone.plugins.muc.nick(first), 'auto-nick');

    // Without the muc plugin, the rooms come as an event for the application to join.
    const bare = ctx.client(acct, {
      resource: 'bare',
      plugins: { bookmarks: bookmarks({ autojoin: true }) },
    });
    const told = bare.plugins.bookmarks.waitFor('autojoin', { timeout: 5000 });
    await bare.connect();
    const t = await told;
    assert.deepEqual(
      t.rooms.map((r) => r.jid),
      [first],
    );
    assert.deepEqual(t.joined, []);

    // A bookmark marked autojoin on another resource is joined live.
    await pepReady(phone);
    const live = phone.plugins.bookmarks.waitFor('autojoin', {
      filter: (e) => e.rooms.some((r) => r.jid === second),
      timeout: 5000,
    });
    await setup.plugins.bookmarks.add({ jid: second, autojoin: true, nick: 'live' });
    assert.deepEqual((await live).joined, [second]);
    assert.ok(phone.plugins.muc.rooms().includes(second));
  });

  test('XEP-0402 §5 / XEP-0060 §7.1.5: a node with another configuration makes add fail with a clear error', async () => {
    const a = await ctx.online({ plugins: { bookmarks: bookmarks() } });
    const jid = room(ctx, 'legacy');
    // As an older client would: the node created with presence access (no whitelist).
    await a.request(
      'set',
      undefined,
      xml(
        'pubsub',
        { xmlns: NS_PUBSUB },
        xml(
          'publish',
          { node: NS_BOOKMARKS },
          xml('item', { id: jid }, xml('conference', { xmlns: NS_BOOKMARKS })),
        ),
        xml(
          'publish-options',
          null,
          xml(
            'x',
            { xmlns: 'jabber:x:data', type: 'submit' },
            xml(
              'field',
              { var: 'FORM_TYPE', type: 'hidden' },
              xml('value', null, `${NS_PUBSUB}#publish-options`),
            ),
            xml('field', { var: 'pubsub#access_model' }, xml('value', null, 'presence')),
          ),
        ),
      ),
    );
    await assert.rejects(a.plugins.bookmarks.add({ jid, name: 'Again' }), (e: unknown) => {
      assert.ok(e instanceof BookmarksError, String(e));
      assert.equal(e.code, 'publish-options-rejected');
      assert.ok(e.cause instanceof StanzaError);
      assert.match(e.message, /precondition-not-met/);
      return true;
    });
  });
}
