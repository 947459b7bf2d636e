import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml, parseElement } from '@natter/xml';
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
import { presenceWithCaps, subscribeTo, itemPayload, settle } from '../../../test/support/pep.js';
import { capsVer } from './xep-0115-caps.js';
import type { PepApi } from './pep.js';
import { parseJid } from '@natter/jid';

const PW = 'secret-password';
const TUNE = 'http://jabber.org/protocol/tune';
const tune = (title: string) => xml('tune', { xmlns: TUNE }, xml('title', null, title));
const NO_ROSTER =
  hasModule('roster') && hasModule('presence')
    ? false
    : 'needs the roster and presence modules (ctx.use("roster"))';

describe('XEP-0115 §5.1: verification string', () => {
  test('XEP-0115 §5.2: the simple example hashes to QgayPKawpkPSDYmwT/WM94uAlu0=', () => {
    const q = parseElement(
      `<query xmlns='${NS.discoInfo}'><identity category='client' name='Exodus 0.9.1' type='pc'/>` +
        `<feature var='http://jabber.org/protocol/caps'/><feature var='http://jabber.org/protocol/disco#info'/>` +
        `<feature var='http://jabber.org/protocol/disco#items'/><feature var='http://jabber.org/protocol/muc'/></query>`,
    );
    assert.equal(capsVer(q, 'sha-1'), 'QgayPKawpkPSDYmwT/WM94uAlu0=');
  });
});

describe('XEP-0163 personal eventing', { skip: NO_ROSTER }, () => {
  let server: TestServer;
  let juliet: TestClient;
  let romeo: TestClient;
  let nurse: TestClient;
  let benvolio: TestClient;
  before(async () => {
    server = await startTestServer({
      modules: { ...BASE_MODULES, pubsub: { maxNodesPerOwner: 6, maxPayloadBytes: 4096 } },
    });
    for (const u of ['juliet', 'romeo', 'nurse', 'benvolio', 'mercutio', 'hoarder'])
      await server.addUser(u, PW);
    juliet = await TestClient.login(server, 'juliet', PW, { resource: 'balcony' });
    romeo = await TestClient.login(server, 'romeo', PW, { resource: 'orchard' });
    nurse = await TestClient.login(server, 'nurse', PW, { resource: 'chamber' });
    benvolio = await TestClient.login(server, 'benvolio', PW, { resource: 'street' });
    await presenceWithCaps(juliet, [`${TUNE}+notify`]);
    await presenceWithCaps(romeo, [TUNE, `${TUNE}+notify`]);
    await presenceWithCaps(nurse, [TUNE]);
    await presenceWithCaps(benvolio, [`${TUNE}+notify`]);
    await subscribeTo(romeo, juliet);
    await subscribeTo(nurse, juliet);
  });
  after(async () => {
    for (const c of [juliet, romeo, nurse, benvolio]) await c.close();
    await server.destroy();
  });

  test('XEP-0163 §6.1: the account is a pubsub/pep service with the PEP features', async () => {
    const res = ok(
      await juliet.iq(
        xml('iq', { type: 'get', to: 'juliet@localhost' }, xml('query', { xmlns: NS.discoInfo })),
      ),
    );
    const q = res.getChild('query', NS.discoInfo)!;
    assert.ok(q.getChildren('identity').some((i) => i.attrs.category === 'pubsub' && i.attrs.type === 'pep'));
    const features = q.getChildren('feature').map((f) => f.attrs.var);
    for (const f of [
      'auto-create',
      'auto-subscribe',
      'filtered-notifications',
      'publish-options',
      'access-presence',
      'access-whitelist',
      'persistent-items',
    ]) {
      assert.ok(features.includes(`${NS.pubsub}#${f}`), f);
    }
  });

  test('XEP-0163 §3 + §4.3: the first publish creates the node; contacts with +notify and the owner are notified', async () => {
    ok(await publish(juliet, undefined, TUNE, 'current', tune('Introduction')));
    for (const c of [romeo, juliet]) {
      const msg = await c.receive((e) => e.name === 'message' && !!e.getChild('event', NS.pubsubEvent));
      assert.equal(msg.attrs.from, 'juliet@localhost', '§4.3.1: from the bare JID');
      assert.equal(msg.attrs.to, c.jid, '§4.3.2: to the full JID of the interested resource');
      assert.equal(
        itemPayload(msg.getChild('event', NS.pubsubEvent)!)?.getChildText('title'),
        'Introduction',
      );
    }
    await noEvent(nurse, TUNE); // §4.2: no +notify, no notification
    await noEvent(benvolio, TUNE); // no presence subscription
  });

  test('XEP-0163 §5: the auto-created node has the presence access model', async () => {
    const res = ok(await juliet.iq(pubsubIq('get', undefined, true, xml('configure', { node: TUNE }))));
    const form = parseForm(
      res.getChild('pubsub', NS.pubsubOwner)!.getChild('configure')!.getChild('x', NS.dataForms)!,
    );
    assert.equal(fieldValue(form, 'pubsub#access_model'), 'presence');
  });

  test('XEP-0060 §6.5.9.2 on PEP: a non-contact retrieving a presence node gets not-authorized + presence-subscription-required', async () => {
    fails(
      await benvolio.iq(pubsubIq('get', 'juliet@localhost', false, xml('items', { node: TUNE }))),
      'not-authorized',
      'presence-subscription-required',
    );
    const res = ok(await nurse.iq(pubsubIq('get', 'juliet@localhost', false, xml('items', { node: TUNE }))));
    assert.equal(res.getChild('pubsub')!.getChild('items')!.getChild('item')!.attrs.id, 'current');
  });

  test('XEP-0163 §2.2: only the owner publishes, configures or deletes', async () => {
    fails(await publish(romeo, 'juliet@localhost', TUNE, 'x', tune('forged')), 'forbidden');
    fails(
      await publish(
        romeo,
        'juliet@localhost',
        'urn:example:new',
        'x',
        xml('x', { xmlns: 'urn:example:new' }),
      ),
      'forbidden',
    );
    fails(
      await romeo.iq(pubsubIq('get', 'juliet@localhost', true, xml('configure', { node: TUNE }))),
      'forbidden',
    );
    fails(
      await romeo.iq(pubsubIq('set', 'juliet@localhost', true, xml('delete', { node: TUNE }))),
      'forbidden',
    );
    fails(
      await romeo.iq(pubsubIq('set', 'juliet@localhost', true, xml('purge', { node: TUNE }))),
      'forbidden',
    );
  });

  test('XEP-0163 §4.3.3/§4.3.4: a newly available resource advertising +notify gets the last item (with delay)', async () => {
    const second = await TestClient.login(server, 'romeo', PW, { resource: 'garden' });
    await presenceWithCaps(second, [`${TUNE}+notify`]);
    const msg = await second.receive((e) => e.name === 'message' && !!e.getChild('event', NS.pubsubEvent));
    assert.equal(msg.attrs.from, 'juliet@localhost');
    assert.ok(msg.getChild('delay', NS.delay));
    assert.equal(itemPayload(msg.getChild('event', NS.pubsubEvent)!)?.getChildText('title'), 'Introduction');
    await second.close();
  });

  test('XEP-0163 §4.3.3: after unavailable, the next initial presence brings the last item again; a status change does not', async () => {
    const c = await TestClient.login(server, 'romeo', PW, { resource: 'again' });
    const features = [`${TUNE}+notify`, 'urn:natter:test:again'];
    await presenceWithCaps(c, features, { marker: false });
    await event(c, about(TUNE));
    await presenceWithCaps(c, features, { marker: false, expectQuery: false }); // same caps, still available
    await noEvent(c, TUNE, 200);
    c.send(xml('presence', { type: 'unavailable' }));
    await settle(c);
    await presenceWithCaps(c, features, { marker: false, expectQuery: false });
    await event(c, about(TUNE));
    await c.close();
  });

  test('XEP-0115 §6.3: features are cached by verification string (no second disco#info query)', async () => {
    const features = [`${TUNE}+notify`, 'urn:natter:test:cache'];
    const a = await TestClient.login(server, 'romeo', PW, { resource: 'cache-a' });
    await presenceWithCaps(a, features, { marker: false });
    await a.receive((e) => e.name === 'message' && !!e.getChild('event', NS.pubsubEvent)); // last item
    const b = await TestClient.login(server, 'romeo', PW, { resource: 'cache-b' });
    await presenceWithCaps(b, features, { marker: false, expectQuery: false });
    await b.nothing((e) => e.name === 'iq' && e.attrs.type === 'get', 200);
    await b.receive((e) => e.name === 'message' && !!e.getChild('event', NS.pubsubEvent)); // still gets the last item
    await a.close();
    await b.close();
  });

  test('XEP-0163 §4.3.4: a contact whose subscription was just approved gets the last item', async () => {
    const mercutio = await TestClient.login(server, 'mercutio', PW, { resource: 'm' });
    await presenceWithCaps(mercutio, [`${TUNE}+notify`]);
    await noEvent(mercutio, TUNE, 100);
    await subscribeTo(mercutio, juliet);
    const ev = await event(mercutio, about(TUNE));
    assert.equal(itemPayload(ev)?.getChildText('title'), 'Introduction');
    await mercutio.close();
  });

  test('XEP-0060 §7.2 on PEP: retract notifies interested contacts', async () => {
    ok(
      await juliet.iq(
        pubsubIq(
          'set',
          undefined,
          false,
          xml('retract', { node: TUNE, notify: '1' }, xml('item', { id: 'current' })),
        ),
      ),
    );
    const ev = await event(romeo, about(TUNE));
    assert.equal(ev.getChild('items')!.getChild('retract')!.attrs.id, 'current');
    await event(juliet, about(TUNE));
  });

  test('XEP-0060 §6.1 on PEP: an open node accepts explicit subscriptions from non-contacts', async () => {
    ok(
      await publish(
        juliet,
        undefined,
        'urn:example:status',
        's1',
        xml('s', { xmlns: 'urn:example:status' }, 'hi'),
        { 'pubsub#access_model': 'open' },
      ),
    );
    ok(
      await benvolio.iq(
        pubsubIq(
          'set',
          'juliet@localhost',
          false,
          xml('subscribe', { node: 'urn:example:status', jid: 'benvolio@localhost' }),
        ),
      ),
    );
    await event(benvolio, about('urn:example:status')); // last item on subscription
    ok(
      await publish(
        juliet,
        undefined,
        'urn:example:status',
        's2',
        xml('s', { xmlns: 'urn:example:status' }, 'again'),
      ),
    );
    const ev = await event(benvolio, about('urn:example:status'));
    assert.equal(ev.getChild('items')!.getChild('item')!.attrs.id, 's2');
  });

  test('XEP-0163 §6.2: the PEP disco API lists only the nodes the requester may access', async () => {
    const pep = server.core.hosts.get('localhost')!.provided.get('pep') as PepApi;
    const names = async (who: string) =>
      (await pep.discoItems(parseJid('juliet@localhost'), parseJid(who)))
        .getChildren('item')
        .map((i) => i.attrs.node)
        .sort();
    assert.deepEqual(await names('romeo@localhost/orchard'), [TUNE, 'urn:example:status']);
    assert.deepEqual(await names('benvolio@localhost/street'), ['urn:example:status']);
    const info = await pep.discoInfo(parseJid('juliet@localhost'), parseJid('romeo@localhost/orchard'), TUNE);
    assert.equal(info.getChild('identity')!.attrs.type, 'leaf');
    await assert.rejects(
      pep.discoInfo(parseJid('juliet@localhost'), parseJid('benvolio@localhost/street'), TUNE),
      /item-not-found/,
    );
  });

  test('XEP-0060 §7.1.3.4 on PEP: an oversized payload gets not-acceptable + payload-too-big', async () => {
    fails(
      await publish(juliet, undefined, TUNE, 'big', tune('x'.repeat(5000))),
      'not-acceptable',
      'payload-too-big',
    );
  });

  test('policy: at most maxNodesPerOwner PEP nodes per account (policy-violation with text)', async () => {
    const hoarder = await TestClient.login(server, 'hoarder', PW, { resource: 'h' });
    for (let i = 0; i < 6; i++)
      ok(await publish(hoarder, undefined, `urn:example:n${i}`, 'a', xml('x', { xmlns: 'urn:example' })));
    const err = fails(
      await publish(hoarder, undefined, 'urn:example:n6', 'a', xml('x', { xmlns: 'urn:example' })),
      'policy-violation',
    );
    assert.match(err.getChildText('text', NS.stanzas) ?? '', /at most 6/);
    await settle(hoarder);
    await hoarder.close();
  });
});
