import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml, type Element, type Child } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import { TestClient } from '../../../test/support/test-client.js';
import { ok, fails } from '../../../test/support/pubsub.js';

const PW = 'secret-password';
const PRIVATE = 'jabber:iq:private';
const config = {
  modules: {
    ping: { idleMs: 0 },
    private: { maxBytesPerItem: 2048, maxBytesPerAccount: 4096, maxNamespacesPerAccount: 5 },
  },
};

const privateIq = (type: 'get' | 'set', ...children: Child[]) =>
  xml('iq', { type }, xml('query', { xmlns: PRIVATE }, ...children));
const prefs = (nick: string) => xml('exodus', { xmlns: 'exodus:prefs' }, xml('defaultnick', null, nick));
/** The fragments of a result. */
const fragments = (res: Element) => ok(res).getChild('query', PRIVATE)!.elements();

describe('Private XML Storage (XEP-0049)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer(config);
    for (const u of ['hamlet', 'macbeth', 'quota', 'leaver']) await server.addUser(u, PW);
  });
  after(() => server?.destroy());

  test('XEP-0049 §2.3: a fragment set is read back by its namespace, and survives a restart', async () => {
    let hamlet = await TestClient.login(server, 'hamlet', PW, { resource: 'denmark' });
    ok(await hamlet.iq(privateIq('set', prefs('Hamlet'))));
    let [got] = fragments(await hamlet.iq(privateIq('get', xml('exodus', { xmlns: 'exodus:prefs' }))));
    assert.equal(got?.toString(), prefs('Hamlet').toString());
    // replaced, not merged
    ok(await hamlet.iq(privateIq('set', prefs('Prince'))));
    await hamlet.close();
    await server.stop();
    server = await startTestServer(config, { dataDir: server.dataDir });
    hamlet = await TestClient.login(server, 'hamlet', PW, { resource: 'elsinore' });
    [got] = fragments(await hamlet.iq(privateIq('get', xml('exodus', { xmlns: 'exodus:prefs' }))));
    assert.equal(got?.getChildText('defaultnick', 'exodus:prefs'), 'Prince');
    // the bare JID as `to` is the same account (XEP-0049 §2.3 example 3 is the refused case)
    const res = await hamlet.iq(
      xml(
        'iq',
        { type: 'get', to: 'hamlet@localhost' },
        xml('query', { xmlns: PRIVATE }, xml('exodus', { xmlns: 'exodus:prefs' })),
      ),
    );
    assert.equal(fragments(res)[0]?.getChildText('defaultnick', 'exodus:prefs'), 'Prince');
    await hamlet.close();
  });

  test('XEP-0049 §2.3: a set may hold several namespaces, and several elements of one namespace', async () => {
    const hamlet = await TestClient.login(server, 'hamlet', PW, { resource: 'multi' });
    ok(
      await hamlet.iq(
        privateIq(
          'set',
          xml('a', { xmlns: 'urn:example:multi' }, 'one'),
          xml('b', { xmlns: 'urn:example:multi' }, 'two'),
          xml('roster', { xmlns: 'roster:delimiter' }, '::'),
        ),
      ),
    );
    const multi = fragments(await hamlet.iq(privateIq('get', xml('a', { xmlns: 'urn:example:multi' }))));
    assert.deepEqual(
      multi.map((e) => `${e.name}=${e.text()}`),
      ['a=one', 'b=two'],
    );
    const delimiter = fragments(
      await hamlet.iq(privateIq('get', xml('roster', { xmlns: 'roster:delimiter' }))),
    );
    assert.equal(delimiter[0]?.text(), '::');
    await hamlet.close();
  });

  test('XEP-0049: a namespace never stored is answered with the empty element asked for', async () => {
    const hamlet = await TestClient.login(server, 'hamlet', PW, { resource: 'empty' });
    const [got] = fragments(
      await hamlet.iq(privateIq('get', xml('settings', { xmlns: 'urn:example:never' }, xml('junk')))),
    );
    assert.equal(got?.name, 'settings');
    assert.equal(got?.xmlns, 'urn:example:never');
    assert.equal(got?.children.length, 0);
    await hamlet.close();
  });

  test("XEP-0049 §2.3: another account's private storage is forbidden, for get and set", async () => {
    const hamlet = await TestClient.login(server, 'hamlet', PW, { resource: 'snoop' });
    const macbeth = await TestClient.login(server, 'macbeth', PW, { resource: 'castle' });
    ok(await hamlet.iq(privateIq('set', xml('secret', { xmlns: 'urn:example:secret' }, 'ghost'))));
    const steal = privateIq('get', xml('secret', { xmlns: 'urn:example:secret' }));
    steal.attrs.to = 'hamlet@localhost';
    const err = fails(await macbeth.iq(steal), 'forbidden');
    assert.equal(err.attrs.type, 'auth');
    const overwrite = privateIq('set', xml('secret', { xmlns: 'urn:example:secret' }, 'macbeth was here'));
    overwrite.attrs.to = 'hamlet@localhost';
    fails(await macbeth.iq(overwrite), 'forbidden');
    const [still] = fragments(
      await hamlet.iq(privateIq('get', xml('secret', { xmlns: 'urn:example:secret' }))),
    );
    assert.equal(still?.text(), 'ghost');
    await hamlet.close();
    await macbeth.close();
  });

  test('XEP-0049 §2.3: reserved namespaces and fragments without a namespace are not acceptable', async () => {
    const hamlet = await TestClient.login(server, 'hamlet', PW, { resource: 'reserved' });
    for (const fragment of [
      xml('vCard', { xmlns: 'vcard-temp' }, xml('FN', null, 'Hamlet')),
      xml('query', { xmlns: 'jabber:iq:roster' }),
      xml('x', { xmlns: 'jabber:client' }),
      xml('x', { xmlns: 'jabber:server' }),
      xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' }),
      // no namespace of its own: it is in jabber:iq:private
      xml('unqualified'),
    ]) {
      const err = fails(await hamlet.iq(privateIq('set', fragment)), 'not-acceptable');
      assert.equal(err.attrs.type, 'modify');
      fails(await hamlet.iq(privateIq('get', fragment.clone())), 'not-acceptable');
    }
    // one reserved fragment refuses the whole set
    fails(
      await hamlet.iq(
        privateIq('set', xml('ok', { xmlns: 'urn:example:partial' }), xml('vCard', { xmlns: 'vcard-temp' })),
      ),
      'not-acceptable',
    );
    const [partial] = fragments(
      await hamlet.iq(privateIq('get', xml('ok', { xmlns: 'urn:example:partial' }))),
    );
    assert.equal(partial?.children.length, 0);
    await hamlet.close();
  });

  test('XEP-0049 §2.3: an empty get is a bad request, an empty set is not acceptable', async () => {
    const hamlet = await TestClient.login(server, 'hamlet', PW, { resource: 'blank' });
    fails(await hamlet.iq(privateIq('get')), 'bad-request');
    fails(await hamlet.iq(privateIq('set')), 'not-acceptable');
    await hamlet.close();
  });

  test('size limits: a fragment over maxBytesPerItem is not acceptable, an account over its quota violates policy', async () => {
    const c = await TestClient.login(server, 'quota', PW, { resource: 'q' });
    const blob = (ns: string, bytes: number) => xml('blob', { xmlns: ns }, 'x'.repeat(bytes));
    let err = fails(await c.iq(privateIq('set', blob('urn:example:big', 2100))), 'not-acceptable');
    assert.match(err.getChildText('text', NS.stanzas) ?? '', /2048 bytes/);
    // several elements of one namespace count together
    fails(
      await c.iq(privateIq('set', blob('urn:example:big', 1100), blob('urn:example:big', 1100))),
      'not-acceptable',
    );
    // 4096 bytes per account: three fragments of ~1.9 KB do not fit, the third is refused
    ok(await c.iq(privateIq('set', blob('urn:example:q1', 1900))));
    ok(await c.iq(privateIq('set', blob('urn:example:q2', 1900))));
    err = fails(await c.iq(privateIq('set', blob('urn:example:q3', 1900))), 'policy-violation');
    assert.match(err.getChildText('text', NS.stanzas) ?? '', /4096 bytes/);
    const [q3] = fragments(await c.iq(privateIq('get', xml('blob', { xmlns: 'urn:example:q3' }))));
    assert.equal(q3?.children.length, 0);
    // replacing a fragment counts its new size, not both
    ok(await c.iq(privateIq('set', blob('urn:example:q2', 100))));
    ok(await c.iq(privateIq('set', blob('urn:example:q3', 1900))));
    // at most five namespaces
    ok(
      await c.iq(
        privateIq('set', xml('n', { xmlns: 'urn:example:n4' }), xml('n', { xmlns: 'urn:example:n5' })),
      ),
    );
    fails(await c.iq(privateIq('set', xml('n', { xmlns: 'urn:example:n6' }))), 'policy-violation');
    ok(await c.iq(privateIq('set', xml('n', { xmlns: 'urn:example:n5' }, 'still fine'))));
    await c.close();
  });

  test('the account advertises jabber:iq:private in the disco#info of its bare JID', async () => {
    const hamlet = await TestClient.login(server, 'hamlet', PW, { resource: 'disco' });
    const res = ok(
      await hamlet.iq(
        xml('iq', { type: 'get', to: 'hamlet@localhost' }, xml('query', { xmlns: NS.discoInfo })),
      ),
    );
    const features = res
      .getChild('query', NS.discoInfo)!
      .getChildren('feature')
      .map((f) => f.attrs.var);
    assert.ok(features.includes(PRIVATE), features.join(' '));
    await hamlet.close();
  });

  test('XEP-0077 §3.2: removing an account deletes its private storage', async () => {
    let leaver = await TestClient.login(server, 'leaver', PW, { resource: 'l' });
    ok(await leaver.iq(privateIq('set', xml('diary', { xmlns: 'urn:example:diary' }, 'dear diary'))));
    ok(
      await leaver.iq(
        xml('iq', { type: 'set', to: 'localhost' }, xml('query', { xmlns: NS.register }, xml('remove'))),
      ),
    );
    await leaver.waitClosed();
    await server.addUser('leaver', PW);
    leaver = await TestClient.login(server, 'leaver', PW, { resource: 'l' });
    const [diary] = fragments(
      await leaver.iq(privateIq('get', xml('diary', { xmlns: 'urn:example:diary' }))),
    );
    assert.equal(diary?.children.length, 0);
    await leaver.close();
  });
});
