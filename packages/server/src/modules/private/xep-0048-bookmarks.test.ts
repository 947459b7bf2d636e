import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml, type Element, type Child } from '@natter/xml';
import { NS, parseForm, fieldValue } from '@natter/protocol';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import { TestClient } from '../../../test/support/test-client.js';
import {
  BASE_MODULES,
  hasModule,
  pubsubIq,
  ok,
  fails,
  publish,
  event,
  about,
  noEvent,
} from '../../../test/support/pubsub.js';
import { presenceWithCaps, subscribeTo, settle } from '../../../test/support/pep.js';

const PW = 'secret-password';
const PRIVATE = 'jabber:iq:private';
const LEGACY = 'storage:bookmarks';
const BM = 'urn:xmpp:bookmarks:1';
const NO_PEP =
  hasModule('pep') && hasModule('roster') && hasModule('presence')
    ? false
    : 'needs the pep, roster and presence modules';
/** XEP-0402 §3: the publish-options of a XEP-0402 client. */
const PRIVATE_NODE = {
  'pubsub#persist_items': 'true',
  'pubsub#max_items': 'max',
  'pubsub#send_last_published_item': 'never',
  'pubsub#access_model': 'whitelist',
};

const legacySet = (...children: Child[]) =>
  xml(
    'iq',
    { type: 'set' },
    xml('query', { xmlns: PRIVATE }, xml('storage', { xmlns: LEGACY }, ...children)),
  );
const legacyGet = () =>
  xml('iq', { type: 'get' }, xml('query', { xmlns: PRIVATE }, xml('storage', { xmlns: LEGACY })));
const conference = (
  jid: string,
  name: string,
  opts: { autojoin?: string; nick?: string; password?: string } = {},
  ...extra: Child[]
) =>
  xml(
    'conference',
    { jid, name, autojoin: opts.autojoin },
    opts.nick !== undefined && xml('nick', null, opts.nick),
    opts.password !== undefined && xml('password', null, opts.password),
    ...extra,
  );
const url = (href: string, name: string) => xml('url', { url: href, name });

/** The `<storage/>` of a XEP-0048 get, as conferences by jid and urls. */
async function readLegacy(c: TestClient): Promise<{ conferences: Map<string, Element>; urls: string[] }> {
  const res = ok(await c.iq(legacyGet()));
  const storage = res.getChild('query', PRIVATE)!.getChild('storage', LEGACY)!;
  return {
    conferences: new Map(storage.getChildren('conference', LEGACY).map((e) => [e.attrs.jid!, e])),
    urls: storage.getChildren('url', LEGACY).map((e) => e.attrs.url!),
  };
}

/** The items of the account's XEP-0402 node, by id (empty when the node does not exist). */
async function readPep(c: TestClient): Promise<Map<string, Element>> {
  const res = await c.iq(pubsubIq('get', undefined, false, xml('items', { node: BM })));
  if (res.attrs.type === 'error') {
    fails(res, 'item-not-found');
    return new Map();
  }
  const items = res.getChild('pubsub', NS.pubsub)!.getChild('items')!.getChildren('item');
  return new Map(items.map((i) => [i.attrs.id!, i.getChild('conference', BM)!]));
}

/** Waits for the next bookmarks event and returns its `<items/>`. */
const nextItems = async (c: TestClient) => (await event(c, about(BM))).getChild('items')!;

describe(
  'XEP-0048 bookmarks in private storage, unified with XEP-0402 (its Compatibility section)',
  { skip: NO_PEP },
  () => {
    let server: TestServer;
    /** Juliet's XEP-0402 client (Conversations-like: +notify in its caps). */
    let modern: TestClient;
    /** Juliet's XEP-0048 client (Gajim-like: private storage only). */
    let legacy: TestClient;
    /** A contact of Juliet's who also wants bookmarks notifications. */
    let romeo: TestClient;
    before(async () => {
      server = await startTestServer({ modules: BASE_MODULES });
      for (const u of ['juliet', 'romeo', 'nurse', 'leaver']) await server.addUser(u, PW);
      modern = await TestClient.login(server, 'juliet', PW, { resource: 'conversations' });
      legacy = await TestClient.login(server, 'juliet', PW, { resource: 'gajim' });
      romeo = await TestClient.login(server, 'romeo', PW, { resource: 'orchard' });
      await presenceWithCaps(modern, [`${BM}+notify`]);
      await presenceWithCaps(romeo, [`${BM}+notify`]);
      await subscribeTo(romeo, modern);
    });
    after(async () => {
      for (const c of [modern, legacy, romeo]) await c.close();
      await server.destroy();
    });

    test('XEP-0402 Compatibility: the account advertises urn:xmpp:bookmarks:1#compat', async () => {
      const res = ok(
        await legacy.iq(
          xml('iq', { type: 'get', to: 'juliet@localhost' }, xml('query', { xmlns: NS.discoInfo })),
        ),
      );
      const features = res
        .getChild('query', NS.discoInfo)!
        .getChildren('feature')
        .map((f) => f.attrs.var);
      assert.ok(features.includes(`${BM}#compat`), features.join(' '));
      assert.ok(features.includes(PRIVATE), features.join(' '));
    });

    test('XEP-0048 set: each conference becomes a private XEP-0402 item, notified to the XEP-0402 resource only', async () => {
      ok(
        await legacy.iq(
          legacySet(
            conference('council@conference.localhost', 'Council of Oberon', {
              autojoin: 'true',
              nick: 'Puck',
              password: 'midsummer',
            }),
            conference('orchard@conference.localhost', 'The Orchard', { autojoin: '0' }),
            url('https://example.org/play', 'The Play'),
          ),
        ),
      );
      const seen = new Map<string, Element>();
      for (let i = 0; i < 2; i++) {
        const item = (await nextItems(modern)).getChild('item')!;
        seen.set(item.attrs.id!, item.getChild('conference', BM)!);
      }
      const council = seen.get('council@conference.localhost')!;
      assert.equal(council.attrs.name, 'Council of Oberon');
      assert.equal(council.attrs.autojoin, 'true');
      assert.equal(council.getChildText('nick', BM), 'Puck');
      assert.equal(council.getChildText('password', BM), 'midsummer');
      const orchard = seen.get('orchard@conference.localhost')!;
      assert.equal(orchard.attrs.name, 'The Orchard');
      assert.notEqual(orchard.attrs.autojoin, 'true');
      assert.equal(orchard.getChild('nick', BM), undefined);
      await noEvent(romeo, BM);

      // XEP-0402 §3: the XEP-0402 client finds them in the node, which is whitelist (XEP-0223)
      const items = await readPep(modern);
      assert.deepEqual([...items.keys()].sort(), [
        'council@conference.localhost',
        'orchard@conference.localhost',
      ]);
      const cfg = ok(await modern.iq(pubsubIq('get', undefined, true, xml('configure', { node: BM }))));
      const form = parseForm(
        cfg.getChild('pubsub', NS.pubsubOwner)!.getChild('configure')!.getChild('x', NS.dataForms)!,
      );
      assert.equal(fieldValue(form, 'pubsub#access_model'), 'whitelist');
      assert.equal(fieldValue(form, 'pubsub#send_last_published_item'), 'never');
      fails(
        await romeo.iq(pubsubIq('get', 'juliet@localhost', false, xml('items', { node: BM }))),
        'not-allowed',
        'closed-node',
      );

      // XEP-0048 get: the same conferences, and the URL kept in private storage
      const back = await readLegacy(legacy);
      assert.deepEqual(back.urls, ['https://example.org/play']);
      const c = back.conferences.get('council@conference.localhost')!;
      assert.equal(c.attrs.name, 'Council of Oberon');
      assert.equal(c.attrs.autojoin, 'true');
      assert.equal(c.getChildText('nick', LEGACY), 'Puck');
      assert.equal(c.getChildText('password', LEGACY), 'midsummer');
      assert.equal(back.conferences.get('orchard@conference.localhost')?.attrs.autojoin, 'false');
    });

    test('XEP-0048 set again: new rooms published, missing ones retracted, unchanged ones not notified', async () => {
      ok(
        await legacy.iq(
          legacySet(
            // unchanged, written differently (autojoin '1' means true)
            conference('council@conference.localhost', 'Council of Oberon', {
              autojoin: '1',
              nick: 'Puck',
              password: 'midsummer',
            }),
            conference('balcony@conference.localhost', 'The Balcony', { nick: 'Jules' }),
            url('https://example.org/play', 'The Play'),
          ),
        ),
      );
      const added = (await nextItems(modern)).getChild('item')!;
      assert.equal(added.attrs.id, 'balcony@conference.localhost');
      assert.equal(added.getChild('conference', BM)?.getChildText('nick', BM), 'Jules');
      const retracted = (await nextItems(modern)).getChildren('retract').map((r) => r.attrs.id);
      assert.deepEqual(retracted, ['orchard@conference.localhost']);
      await noEvent(modern, BM);
      await noEvent(romeo, BM);
      assert.deepEqual([...(await readPep(modern)).keys()].sort(), [
        'balcony@conference.localhost',
        'council@conference.localhost',
      ]);
    });

    test('XEP-0402 publish and retract show in the XEP-0048 view', async () => {
      ok(
        await publish(
          modern,
          undefined,
          BM,
          'theplay@conference.localhost',
          xml(
            'conference',
            { xmlns: BM, name: "The Play's the Thing", autojoin: 'true' },
            xml('nick', null, 'JC'),
            xml('extensions', null, xml('state', { xmlns: 'urn:example:client-state', pinned: 'yes' })),
          ),
          PRIVATE_NODE,
        ),
      );
      await nextItems(modern);
      let view = await readLegacy(legacy);
      const play = view.conferences.get('theplay@conference.localhost')!;
      assert.equal(play.attrs.name, "The Play's the Thing");
      assert.equal(play.attrs.autojoin, 'true');
      assert.equal(play.getChildText('nick', LEGACY), 'JC');
      // XEP-0402 extensions ride along, for a legacy client that keeps unknown elements
      assert.equal(play.getChild('state', 'urn:example:client-state')?.attrs.pinned, 'yes');
      assert.deepEqual(view.urls, ['https://example.org/play']);
      assert.equal(view.conferences.size, 3);

      // a legacy client that drops unknown elements renames the room: the extensions stay
      ok(
        await legacy.iq(
          legacySet(
            ...[...view.conferences.values()]
              .filter((c) => c.attrs.jid !== 'theplay@conference.localhost')
              .map((c) => c.clone()),
            conference('theplay@conference.localhost', 'The Play', { autojoin: 'true', nick: 'JC' }),
            url('https://example.org/play', 'The Play'),
          ),
        ),
      );
      const renamed = (await nextItems(modern)).getChild('item')!;
      assert.equal(renamed.attrs.id, 'theplay@conference.localhost');
      await noEvent(modern, BM);
      const item = (await readPep(modern)).get('theplay@conference.localhost')!;
      assert.equal(item.attrs.name, 'The Play');
      assert.equal(
        item.getChild('extensions', BM)?.getChild('state', 'urn:example:client-state')?.attrs.pinned,
        'yes',
      );

      ok(
        await modern.iq(
          pubsubIq(
            'set',
            undefined,
            false,
            xml('retract', { node: BM, notify: 'true' }, xml('item', { id: 'theplay@conference.localhost' })),
          ),
        ),
      );
      await nextItems(modern);
      view = await readLegacy(legacy);
      assert.equal(view.conferences.has('theplay@conference.localhost'), false);
      assert.equal(view.conferences.size, 2);
    });

    test('XEP-0048 set without conferences retracts them all; the URLs are replaced too', async () => {
      ok(await legacy.iq(legacySet(url('https://example.org/other', 'Other'))));
      const retracted = (await nextItems(modern)).getChildren('retract').map((r) => r.attrs.id);
      assert.deepEqual(retracted.sort(), ['balcony@conference.localhost', 'council@conference.localhost']);
      assert.equal((await readPep(modern)).size, 0);
      const view = await readLegacy(legacy);
      assert.equal(view.conferences.size, 0);
      assert.deepEqual(view.urls, ['https://example.org/other']);
    });

    test('XEP-0048: a conference without a valid jid is a bad request, and nothing changes', async () => {
      fails(
        await legacy.iq(
          legacySet(conference('fine@conference.localhost', 'Fine'), xml('conference', { name: 'No JID' })),
        ),
        'bad-request',
      );
      fails(await legacy.iq(legacySet(conference('a@b@c', 'Broken'))), 'bad-request');
      await noEvent(modern, BM);
      assert.equal((await readPep(modern)).size, 0);
    });

    test('a bookmarks node a client created without the XEP-0402 options is made private before the conversion publishes', async () => {
      const nurse = await TestClient.login(server, 'nurse', PW, { resource: 'psi' });
      // default PEP node: presence access model, one item
      ok(
        await publish(
          nurse,
          undefined,
          BM,
          'kitchen@conference.localhost',
          xml('conference', { xmlns: BM, name: 'Kitchen' }),
        ),
      );
      ok(
        await nurse.iq(
          legacySet(
            conference('kitchen@conference.localhost', 'Kitchen'),
            conference('chapel@conference.localhost', 'Chapel'),
          ),
        ),
      );
      const items = await readPep(nurse);
      assert.deepEqual([...items.keys()].sort(), [
        'chapel@conference.localhost',
        'kitchen@conference.localhost',
      ]);
      const cfg = ok(await nurse.iq(pubsubIq('get', undefined, true, xml('configure', { node: BM }))));
      const form = parseForm(
        cfg.getChild('pubsub', NS.pubsubOwner)!.getChild('configure')!.getChild('x', NS.dataForms)!,
      );
      assert.equal(fieldValue(form, 'pubsub#access_model'), 'whitelist');
      await nurse.close();
    });

    test('XEP-0077 §3.2: removing an account deletes its private storage and its bookmarks', async () => {
      let leaver = await TestClient.login(server, 'leaver', PW, { resource: 'l' });
      ok(
        await leaver.iq(
          legacySet(conference('gone@conference.localhost', 'Gone'), url('https://example.org/gone', 'Gone')),
        ),
      );
      ok(
        await leaver.iq(
          xml('iq', { type: 'set', to: 'localhost' }, xml('query', { xmlns: NS.register }, xml('remove'))),
        ),
      );
      await leaver.waitClosed();
      await server.addUser('leaver', PW);
      leaver = await TestClient.login(server, 'leaver', PW, { resource: 'l' });
      const view = await readLegacy(leaver);
      assert.equal(view.conferences.size, 0);
      assert.deepEqual(view.urls, []);
      assert.equal((await readPep(leaver)).size, 0);
      await leaver.close();
    });
  },
);

describe('XEP-0048 bookmarks with the conversion off, then on', { skip: NO_PEP }, () => {
  test('stored as they are while off; moved into XEP-0402 at the first XEP-0048 get once on', async () => {
    const off = { modules: { ...BASE_MODULES, private: { bookmarksCompat: false } } };
    let server = await startTestServer(off);
    try {
      await server.addUser('juliet', PW);
      let c = await TestClient.login(server, 'juliet', PW, { resource: 'gajim' });
      const disco = ok(
        await c.iq(xml('iq', { type: 'get', to: 'juliet@localhost' }, xml('query', { xmlns: NS.discoInfo }))),
      );
      assert.ok(
        !disco
          .getChild('query', NS.discoInfo)!
          .getChildren('feature')
          .some((f) => f.attrs.var === `${BM}#compat`),
      );
      ok(
        await c.iq(
          legacySet(
            conference('old@conference.localhost', 'Old Room', { autojoin: 'true', nick: 'J' }),
            url('https://example.org/', 'Home'),
          ),
        ),
      );
      assert.equal((await readPep(c)).size, 0);
      let view = await readLegacy(c);
      assert.equal(view.conferences.get('old@conference.localhost')?.attrs.name, 'Old Room');
      await c.close();
      await server.stop();

      server = await startTestServer({ modules: BASE_MODULES }, { dataDir: server.dataDir });
      c = await TestClient.login(server, 'juliet', PW, { resource: 'conversations' });
      view = await readLegacy(c);
      assert.deepEqual([...view.conferences.keys()], ['old@conference.localhost']);
      assert.deepEqual(view.urls, ['https://example.org/']);
      const items = await readPep(c);
      assert.equal(items.get('old@conference.localhost')?.getChildText('nick', BM), 'J');
      // moved, not copied: a XEP-0402 retraction is final
      ok(
        await c.iq(
          pubsubIq(
            'set',
            undefined,
            false,
            xml('retract', { node: BM }, xml('item', { id: 'old@conference.localhost' })),
          ),
        ),
      );
      await settle(c);
      view = await readLegacy(c);
      assert.equal(view.conferences.size, 0);
      assert.deepEqual(view.urls, ['https://example.org/']);
      await c.close();
    } finally {
      await server.destroy();
    }
  });
});
