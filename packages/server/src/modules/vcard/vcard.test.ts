import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import { TestClient } from '../../../test/support/test-client.js';
import { builtinModules } from '../index.js';

const PW = 'secret-password';
/** Only the modules under test (other modules' hooks would change what the clients see). */
const MINE = new Set(['disco', 'ping', 'version', 'register', 'vcard']);
const others = Object.fromEntries(
  builtinModules.filter((m) => !MINE.has(m.name)).map((m) => [m.name, false as const]),
);
const config = { modules: { ...others, ping: { idleMs: 0 }, vcard: { maxBytes: 2048 } } };

const IMAGE = Buffer.from('not really a png, but bytes all the same');
const IMAGE_HASH = createHash('sha1').update(IMAGE).digest('hex');
const b64 = IMAGE.toString('base64');
const wrapped = b64.replace(/(.{16})/g, '$1\n'); // XEP-0153 §4.5: whitespace in BINVAL is ignored

const card = (fn: string, photo = false) =>
  xml(
    'vCard',
    { xmlns: NS.vcard },
    xml('FN', null, fn),
    xml('NICKNAME', null, fn.toLowerCase()),
    photo && xml('PHOTO', null, xml('TYPE', null, 'image/png'), xml('BINVAL', null, wrapped)),
  );

describe('vcard-temp (XEP-0054) and vCard-based avatars (XEP-0153)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer(config);
    for (const u of ['romeo', 'juliet', 'nurse', 'tybalt']) await server.addUser(u, PW);
  });
  after(() => server?.destroy());

  test('XEP-0054 §2: the server lists vcard-temp in its disco#info', async () => {
    const c = await TestClient.login(server, 'nurse', PW, { resource: 'disco' });
    const res = await c.iq(
      xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: NS.discoInfo })),
    );
    const features = res
      .getChild('query', NS.discoInfo)!
      .getChildren('feature')
      .map((f) => f.attrs.var);
    assert.ok(features.includes(NS.vcard), features.join(' '));
    await c.close();
  });

  test('XEP-0054 §3.1: an account without a vCard gets an empty <vCard/>', async () => {
    const c = await TestClient.login(server, 'nurse', PW, { resource: 'a' });
    const res = await c.iq(
      xml('iq', { type: 'get', to: 'nurse@localhost' }, xml('vCard', { xmlns: NS.vcard })),
    );
    assert.equal(res.attrs.type, 'result');
    const v = res.getChild('vCard', NS.vcard);
    assert.ok(v);
    assert.equal(v.elements().length, 0);
    await c.close();
  });

  test('XEP-0054 §2.2/§3.1: a user sets their vCard, reads it back, and others read it at the bare JID', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'a' });
    const set = await romeo.iq(xml('iq', { type: 'set', to: 'romeo@localhost' }, card('Romeo Montague')));
    assert.equal(set.attrs.type, 'result');
    const own = await romeo.iq(
      xml('iq', { type: 'get', to: 'romeo@localhost' }, xml('vCard', { xmlns: NS.vcard })),
    );
    assert.equal(own.getChild('vCard', NS.vcard)?.getChildText('FN', NS.vcard), 'Romeo Montague');
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'b' });
    const other = await juliet.iq(
      xml('iq', { type: 'get', to: 'romeo@localhost' }, xml('vCard', { xmlns: NS.vcard })),
    );
    assert.equal(other.attrs.type, 'result');
    assert.equal(other.attrs.from, 'romeo@localhost');
    assert.equal(other.getChild('vCard', NS.vcard)?.getChildText('NICKNAME', NS.vcard), 'romeo montague');
    // replaced, not merged
    await romeo.iq(
      xml(
        'iq',
        { type: 'set', to: 'romeo@localhost' },
        xml('vCard', { xmlns: NS.vcard }, xml('FN', null, 'R.')),
      ),
    );
    const again = await juliet.iq(
      xml('iq', { type: 'get', to: 'romeo@localhost' }, xml('vCard', { xmlns: NS.vcard })),
    );
    assert.equal(again.getChild('vCard', NS.vcard)?.getChildText('FN', NS.vcard), 'R.');
    assert.equal(again.getChild('vCard', NS.vcard)?.getChild('NICKNAME', NS.vcard), undefined);
    await Promise.all([romeo.close(), juliet.close()]);
  });

  test("XEP-0054 §2.2: setting another user's vCard is forbidden", async () => {
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'c' });
    const res = await juliet.iq(xml('iq', { type: 'set', to: 'tybalt@localhost' }, card('Not Tybalt')));
    assert.equal(res.attrs.type, 'error');
    assert.ok(res.getChild('error')?.getChild('forbidden', NS.stanzas));
    const tybalt = await TestClient.login(server, 'tybalt', PW, { resource: 't' });
    const own = await tybalt.iq(
      xml('iq', { type: 'get', to: 'tybalt@localhost' }, xml('vCard', { xmlns: NS.vcard })),
    );
    assert.equal(own.getChild('vCard', NS.vcard)?.elements().length, 0);
    await Promise.all([juliet.close(), tybalt.close()]);
  });

  test('XEP-0054 §3.1: the vCard of an account that does not exist gets service-unavailable', async () => {
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'd' });
    const res = await juliet.iq(
      xml('iq', { type: 'get', to: 'ghost@localhost' }, xml('vCard', { xmlns: NS.vcard })),
    );
    assert.equal(res.attrs.type, 'error');
    assert.ok(res.getChild('error')?.getChild('service-unavailable', NS.stanzas));
    await juliet.close();
  });

  test('XEP-0054: a vCard above the size limit is refused with not-acceptable and a text', async () => {
    const nurse = await TestClient.login(server, 'nurse', PW, { resource: 'e' });
    const res = await nurse.iq(
      xml(
        'iq',
        { type: 'set', to: 'nurse@localhost' },
        xml('vCard', { xmlns: NS.vcard }, xml('DESC', null, 'x'.repeat(4000))),
      ),
    );
    assert.equal(res.attrs.type, 'error');
    const err = res.getChild('error');
    assert.ok(err?.getChild('not-acceptable', NS.stanzas));
    assert.match(err?.getChildText('text', NS.stanzas) ?? '', /2048 bytes/);
    await nurse.close();
  });

  test("XEP-0054 §2.1/§2.2: one's own vCard is set and read with no 'to'", async () => {
    const c = await TestClient.login(server, 'tybalt', PW, { resource: 'noto' });
    const set = await c.iq(xml('iq', { type: 'set' }, card('Tybalt')));
    assert.equal(set.attrs.type, 'result');
    const res = await c.iq(xml('iq', { type: 'get' }, xml('vCard', { xmlns: NS.vcard })));
    assert.equal(res.attrs.type, 'result');
    assert.equal(res.getChild('vCard', NS.vcard)?.getChildText('FN', NS.vcard), 'Tybalt');
    await c.iq(xml('iq', { type: 'set' }, xml('vCard', { xmlns: NS.vcard })));
    await c.close();
  });

  test('XEP-0030: vcard-temp is a feature of accounts', async () => {
    const nurse = await TestClient.login(server, 'nurse', PW, { resource: 'f' });
    const res = await nurse.iq(
      xml('iq', { type: 'get', to: 'nurse@localhost' }, xml('query', { xmlns: NS.discoInfo })),
    );
    const vars = res
      .getChild('query', NS.discoInfo)
      ?.getChildren('feature')
      .map((f) => f.attrs.var);
    assert.ok(vars?.includes(NS.vcard), `features: ${vars?.join(', ')}`);
    await nurse.close();
  });

  test('XEP-0153 §3.1: with a PHOTO stored, the server puts the SHA-1 of the decoded BINVAL into the user’s presence', async () => {
    const a = await TestClient.login(server, 'juliet', PW, { resource: 'phone', presence: true });
    const set = await a.iq(xml('iq', { type: 'set', to: 'juliet@localhost' }, card('Juliet Capulet', true)));
    assert.equal(set.attrs.type, 'result');
    const got = await a.iq(
      xml('iq', { type: 'get', to: 'juliet@localhost' }, xml('vCard', { xmlns: NS.vcard })),
    );
    const photo = got.getChild('vCard', NS.vcard)?.getChild('PHOTO', NS.vcard);
    assert.equal(photo?.getChildText('TYPE', NS.vcard), 'image/png');
    assert.equal(photo?.getChildText('BINVAL', NS.vcard)?.replace(/\s+/g, ''), b64);

    // A second resource observes the first one's broadcasts (RFC 6121 §4.2.2: own resources get them).
    const b = await TestClient.login(server, 'juliet', PW, { resource: 'laptop', presence: true });
    await a.receive((e) => e.name === 'presence' && e.attrs.from === 'juliet@localhost/laptop');
    const hashIn = (p: Element) => p.getChild('x', NS.vcardUpdate)?.getChild('photo', NS.vcardUpdate);

    // no update element: added
    a.send(xml('presence', null, xml('show', null, 'away')));
    let p = await b.receive(
      (e) =>
        e.name === 'presence' &&
        e.attrs.from === 'juliet@localhost/phone' &&
        e.getChildText('show') === 'away',
    );
    assert.equal(hashIn(p)?.text(), IMAGE_HASH);
    // empty update element (client not ready, §4.1): filled
    a.send(xml('presence', null, xml('show', null, 'dnd'), xml('x', { xmlns: NS.vcardUpdate })));
    p = await b.receive(
      (e) =>
        e.name === 'presence' &&
        e.attrs.from === 'juliet@localhost/phone' &&
        e.getChildText('show') === 'dnd',
    );
    assert.equal(hashIn(p)?.text(), IMAGE_HASH);
    assert.equal(p.getChildren('x', NS.vcardUpdate).length, 1);
    // stale hash: replaced
    a.send(
      xml(
        'presence',
        null,
        xml('show', null, 'xa'),
        xml('x', { xmlns: NS.vcardUpdate }, xml('photo', null, 'deadbeef')),
      ),
    );
    p = await b.receive(
      (e) =>
        e.name === 'presence' && e.attrs.from === 'juliet@localhost/phone' && e.getChildText('show') === 'xa',
    );
    assert.equal(hashIn(p)?.text(), IMAGE_HASH);

    // photo removed: the server now advertises "no image" (an empty photo element, §4.1 rule 3)
    await a.iq(xml('iq', { type: 'set', to: 'juliet@localhost' }, card('Juliet Capulet')));
    a.send(
      xml(
        'presence',
        null,
        xml('show', null, 'chat'),
        xml('x', { xmlns: NS.vcardUpdate }, xml('photo', null, IMAGE_HASH)),
      ),
    );
    p = await b.receive(
      (e) =>
        e.name === 'presence' &&
        e.attrs.from === 'juliet@localhost/phone' &&
        e.getChildText('show') === 'chat',
    );
    assert.equal(hashIn(p)?.text(), '');
    await Promise.all([a.close(), b.close()]);
  });

  test('XEP-0153: without a stored vCard, presence is left as the client sent it', async () => {
    await server.addUser('benvolio', PW);
    const a = await TestClient.login(server, 'benvolio', PW, { resource: 'a', presence: true });
    const b = await TestClient.login(server, 'benvolio', PW, { resource: 'b', presence: true });
    a.send(xml('presence', null, xml('status', null, 'plain')));
    const p = await b.receive((e) => e.name === 'presence' && e.getChildText('status') === 'plain');
    assert.equal(p.getChild('x', NS.vcardUpdate), undefined);
    await Promise.all([a.close(), b.close()]);
  });

  test('XEP-0054: vCards survive a restart; the photo hash too', async () => {
    await server.stop();
    server = await startTestServer(config, { dataDir: server.dataDir });
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'z' });
    const res = await romeo.iq(
      xml('iq', { type: 'get', to: 'juliet@localhost' }, xml('vCard', { xmlns: NS.vcard })),
    );
    assert.equal(res.getChild('vCard', NS.vcard)?.getChildText('FN', NS.vcard), 'Juliet Capulet');
    // juliet's vCard has no photo any more: her presence says so
    const a = await TestClient.login(server, 'juliet', PW, { resource: 'a', presence: true });
    const b = await TestClient.login(server, 'juliet', PW, { resource: 'b', presence: true });
    a.send(xml('presence', null, xml('status', null, 'back')));
    const p = await b.receive((e) => e.name === 'presence' && e.getChildText('status') === 'back');
    assert.equal(p.getChild('x', NS.vcardUpdate)?.getChild('photo', NS.vcardUpdate)?.text(), '');
    await Promise.all([romeo.close(), a.close(), b.close()]);
  });
});
