import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import { TestClient } from '../../../test/support/test-client.js';
import {
  BASE_MODULES,
  ok,
  fails,
  publish,
  noEvent,
  pubsubIq,
  submitForm,
  NODE_CONFIG,
} from '../../../test/support/pubsub.js';
import { presenceWithCaps, subscribeTo, settle, itemPayload } from '../../../test/support/pep.js';
import { sniffImage } from './image.js';
import { NS_CONVERSION } from './avatar-conversion.js';

const PW = 'secret-password';
const DATA = 'urn:xmpp:avatar:data';
const META = 'urn:xmpp:avatar:metadata';
const OPEN = { 'pubsub#access_model': 'open' };

/** A PNG's signature and IHDR chunk (3×2): all the server reads of it. */
const png = (tag: string) =>
  Buffer.concat([
    Buffer.from('89504e470d0a1a0a0000000d49484452000000030000000208060000', 'hex'),
    Buffer.from(tag),
  ]);
/** A JPEG's SOI, a JFIF APP0 segment, then a baseline SOF0 of 40×30. */
const JPEG = Buffer.from(
  'ffd8ffe000104a46494600010100000100010000' + 'ffc0001108001e002803012200021101031101',
  'hex',
);
const GIF = Buffer.from('GIF89a\x07\x00\x05\x00\x80\x00\x00', 'latin1');
const WEBP = Buffer.from('RIFF\x24\x00\x00\x00WEBPVP8 ', 'latin1');
const BMP = Buffer.from('BM\x3a\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00', 'latin1');
const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex');

const metadata = (bytes: Buffer, extra: Record<string, string> = {}) =>
  xml(
    'metadata',
    { xmlns: META },
    xml('info', { bytes: String(bytes.length), id: sha1(bytes), type: 'image/png', ...extra }),
  );
const data = (bytes: Buffer) => xml('data', { xmlns: DATA }, bytes.toString('base64'));

async function getVcard(c: TestClient, of: string): Promise<Element> {
  const res = ok(await c.iq(xml('iq', { type: 'get', to: of }, xml('vCard', { xmlns: NS.vcard }))));
  return res.getChild('vCard', NS.vcard)!;
}
const setVcard = (c: TestClient, ...children: Element[]) =>
  c.iq(xml('iq', { type: 'set' }, xml('vCard', { xmlns: NS.vcard }, children)));
const photo = (type: string | undefined, b64: string) =>
  xml('PHOTO', null, type !== undefined && xml('TYPE', null, type), xml('BINVAL', null, b64));

/** The next metadata notification `c` gets from `owner`'s PEP service. */
async function metadataEvent(c: TestClient, owner: string): Promise<Element> {
  const msg = await c.receive(
    (e) =>
      e.name === 'message' &&
      e.attrs.from === owner &&
      e.getChild('event', NS.pubsubEvent)?.getChild('items')?.attrs.node === META,
  );
  return msg.getChild('event', NS.pubsubEvent)!;
}

/** The account's current metadata item (own request). */
/** True when the account has no XEP-0084 avatar: no metadata node, or no item in it. */
async function hasNoAvatar(c: TestClient): Promise<boolean> {
  const res = await c.iq(pubsubIq('get', undefined, false, xml('items', { node: META })));
  if (res.attrs.type === 'error') return res.getChild('error')?.getChild('item-not-found') !== undefined;
  return res.getChild('pubsub')!.getChild('items')!.getChild('item') === undefined;
}

async function ownMetadata(c: TestClient): Promise<Element | undefined> {
  const res = ok(await c.iq(pubsubIq('get', undefined, false, xml('items', { node: META }))));
  return res.getChild('pubsub')!.getChild('items')!.getChild('item')?.getChild('metadata', META);
}

describe('sniffing avatar images (XEP-0398 conversions)', () => {
  test('PNG, JPEG and GIF give their type and size; WebP its type; anything else nothing', () => {
    assert.deepEqual(sniffImage(png('x')), { type: 'image/png', width: 3, height: 2 });
    assert.deepEqual(sniffImage(JPEG), { type: 'image/jpeg', width: 40, height: 30 });
    assert.deepEqual(sniffImage(GIF), { type: 'image/gif', width: 7, height: 5 });
    assert.deepEqual(sniffImage(WEBP), { type: 'image/webp' });
    assert.deepEqual(sniffImage(JPEG.subarray(0, 12)), { type: 'image/jpeg' });
    assert.equal(sniffImage(BMP), undefined);
    assert.equal(sniffImage(Buffer.alloc(0)), undefined);
  });
});

describe('User Avatar to vCard-Based Avatars Conversion (XEP-0398)', () => {
  let server: TestServer;
  let juliet: TestClient;
  let romeo: TestClient;
  before(async () => {
    server = await startTestServer({
      modules: { ...BASE_MODULES, pubsub: { maxPayloadBytes: 2048 } },
    });
    for (const u of ['juliet', 'romeo', 'paris', 'nurse', 'tybalt', 'mercutio', 'benvolio', 'rosaline'])
      await server.addUser(u, PW);
    juliet = await TestClient.login(server, 'juliet', PW, { resource: 'balcony', presence: true });
    romeo = await TestClient.login(server, 'romeo', PW, { resource: 'orchard' });
    await presenceWithCaps(romeo, [META, `${META}+notify`]);
    await subscribeTo(romeo, juliet);
  });
  after(async () => {
    for (const c of [juliet, romeo]) await c.close();
    await server.destroy();
  });

  test('XEP-0398 §2: the account advertises urn:xmpp:pep-vcard-conversion:0', async () => {
    const res = ok(
      await juliet.iq(
        xml('iq', { type: 'get', to: 'juliet@localhost' }, xml('query', { xmlns: NS.discoInfo })),
      ),
    );
    const features = res
      .getChild('query', NS.discoInfo)!
      .getChildren('feature')
      .map((f) => f.attrs.var);
    assert.ok(features.includes(NS_CONVERSION), features.join(' '));
  });

  test('XEP-0398 §3.1: an open PEP avatar becomes the vCard PHOTO (other fields kept), once; the next presence carries its hash', async () => {
    ok(await setVcard(juliet, xml('FN', null, 'Juliet Capulet')));
    const image = png('juliet');
    ok(await publish(juliet, undefined, DATA, sha1(image), data(image), OPEN));
    ok(await publish(juliet, undefined, META, sha1(image), metadata(image), OPEN));
    // The contact is notified of the client's publication only: the conversion publishes nothing back.
    const ev = await metadataEvent(romeo, 'juliet@localhost');
    assert.equal(itemPayload(ev)?.getChild('info')?.attrs.id, sha1(image));
    await noEvent(romeo, META);

    const card = await getVcard(romeo, 'juliet@localhost');
    assert.equal(card.getChildText('FN'), 'Juliet Capulet');
    assert.equal(card.getChild('PHOTO')!.getChildText('TYPE'), 'image/png');
    assert.deepEqual(Buffer.from(card.getChild('PHOTO')!.getChildText('BINVAL')!, 'base64'), image);
    assert.equal((await ownMetadata(juliet))?.getChild('info')?.attrs.id, sha1(image));

    juliet.send(xml('presence'));
    // (earlier presences of hers, without the photo, may wait in the buffer)
    await romeo.receive(
      (e) =>
        e.name === 'presence' &&
        e.attrs.from === juliet.jid &&
        e.getChild('x', NS.vcardUpdate)?.getChildText('photo') === sha1(image),
    );
  });

  test('XEP-0084 §4.5 → XEP-0398: empty metadata removes the vCard PHOTO and keeps the rest', async () => {
    ok(await publish(juliet, undefined, META, 'current', xml('metadata', { xmlns: META })));
    assert.equal(itemPayload(await metadataEvent(romeo, 'juliet@localhost'))?.getChildren('info').length, 0);
    const card = await getVcard(romeo, 'juliet@localhost');
    assert.equal(card.getChild('PHOTO'), undefined);
    assert.equal(card.getChildText('FN'), 'Juliet Capulet');
  });

  test('XEP-0398 §6: an avatar for contacts only (presence access model) is not copied to the world-readable vCard', async () => {
    const paris = await TestClient.login(server, 'paris', PW, { resource: 'p' });
    const image = png('paris');
    ok(await publish(paris, undefined, DATA, sha1(image), data(image)));
    ok(await publish(paris, undefined, META, sha1(image), metadata(image)));
    assert.equal((await getVcard(romeo, 'paris@localhost')).getChild('PHOTO'), undefined);
    await paris.close();
  });

  test('XEP-0398 §3.1: an info with a URL is skipped; a data item whose SHA-1 is not its id, or no data item, is not converted', async () => {
    const tybalt = await TestClient.login(server, 'tybalt', PW, { resource: 't' });
    const image = png('tybalt');
    const wrongId = sha1(png('someone else'));
    ok(await publish(tybalt, undefined, DATA, wrongId, data(image), OPEN));
    const meta = xml(
      'metadata',
      { xmlns: META },
      xml('info', { bytes: '10', id: sha1(GIF), type: 'image/gif', url: 'https://example.com/a.gif' }),
      xml('info', { bytes: String(image.length), id: wrongId, type: 'image/png' }),
    );
    ok(await publish(tybalt, undefined, META, wrongId, meta, OPEN));
    assert.equal((await getVcard(romeo, 'tybalt@localhost')).getChild('PHOTO'), undefined);
    // Metadata naming a data item that does not exist: published, not converted.
    const missing = png('never published');
    ok(await publish(tybalt, undefined, META, sha1(missing), metadata(missing), OPEN));
    assert.equal((await getVcard(romeo, 'tybalt@localhost')).getChild('PHOTO'), undefined);
    await tybalt.close();
  });

  test('XEP-0398 §3.2: a vCard PHOTO is published as data then metadata (id, type from the bytes, size), open; the vCard is kept as sent', async () => {
    const nurse = await TestClient.login(server, 'nurse', PW, { resource: 'n', presence: true });
    await subscribeTo(romeo, nurse);
    const b64 = JPEG.toString('base64');
    ok(await setVcard(nurse, xml('FN', null, 'Angelica'), photo('image/jpg', b64)));
    const ev = await metadataEvent(romeo, 'nurse@localhost');
    const info = itemPayload(ev)!.getChild('info')!;
    assert.deepEqual(
      { ...info.attrs, xmlns: undefined },
      {
        xmlns: undefined,
        id: sha1(JPEG),
        type: 'image/jpeg',
        bytes: String(JPEG.length),
        width: '40',
        height: '30',
      },
    );
    await noEvent(romeo, META);
    // Anyone may read the avatar: it was public in the vCard already.
    const got = ok(
      await romeo.iq(
        pubsubIq(
          'get',
          'nurse@localhost',
          false,
          xml('items', { node: DATA }, xml('item', { id: sha1(JPEG) })),
        ),
      ),
    );
    const item = got.getChild('pubsub')!.getChild('items')!.getChild('item')!;
    assert.deepEqual(Buffer.from(item.getChildText('data', DATA)!, 'base64'), JPEG);
    // No conversion back: the vCard is what the client sent.
    const card = await getVcard(romeo, 'nurse@localhost');
    assert.equal(card.getChild('PHOTO')!.getChildText('TYPE'), 'image/jpg');

    // The same photo again (another field changed): nothing is published.
    ok(await setVcard(nurse, xml('FN', null, 'Angelica, nurse'), photo('image/jpeg', b64)));
    await noEvent(romeo, META);

    // The photo removed: the avatar it was is disabled (empty metadata).
    ok(await setVcard(nurse, xml('FN', null, 'Angelica')));
    const off = await metadataEvent(romeo, 'nurse@localhost');
    assert.equal(itemPayload(off)?.getChildren('info').length, 0);
    await nurse.close();
  });

  test('XEP-0398 §3.2: a vCard without a photo leaves an avatar it never had alone', async () => {
    const mercutio = await TestClient.login(server, 'mercutio', PW, { resource: 'm' });
    const image = png('mercutio');
    // Contacts only: not in the vCard.
    ok(await publish(mercutio, undefined, DATA, sha1(image), data(image)));
    ok(await publish(mercutio, undefined, META, sha1(image), metadata(image)));
    ok(await setVcard(mercutio, xml('FN', null, 'Mercutio')));
    assert.equal((await ownMetadata(mercutio))?.getChild('info')?.attrs.id, sha1(image));
    await mercutio.close();
  });

  test('XEP-0398 §6: a vCard photo of its own (not the avatar of contacts-only nodes) is kept when that avatar is disabled', async () => {
    const c = await TestClient.login(server, 'benvolio', PW, { resource: 'b' });
    ok(await setVcard(c, xml('FN', null, 'Benvolio'), photo('image/gif', GIF.toString('base64'))));
    assert.equal((await ownMetadata(c))?.getChild('info')?.attrs.id, sha1(GIF));
    // The avatar nodes become contacts-only; a new avatar there stays out of the public vCard.
    ok(
      await c.iq(
        pubsubIq(
          'set',
          undefined,
          true,
          xml('configure', { node: META }, submitForm(NODE_CONFIG, { 'pubsub#access_model': 'presence' })),
        ),
      ),
    );
    const image = png('benvolio');
    ok(await publish(c, undefined, DATA, sha1(image), data(image)));
    ok(await publish(c, undefined, META, sha1(image), metadata(image)));
    const card = () => getVcard(c, 'benvolio@localhost');
    assert.deepEqual(Buffer.from((await card()).getChild('PHOTO')!.getChildText('BINVAL')!, 'base64'), GIF);
    // Disabling that avatar leaves the vCard's photo, which was not it.
    ok(await publish(c, undefined, META, 'current', xml('metadata', { xmlns: META })));
    assert.deepEqual(Buffer.from((await card()).getChild('PHOTO')!.getChildText('BINVAL')!, 'base64'), GIF);
    await c.close();
  });

  test('a GIF and a WebP photo are converted; width and height only where the header says them', async () => {
    const c = await TestClient.login(server, 'mercutio', PW, { resource: 'formats' });
    ok(await setVcard(c, photo('image/gif', GIF.toString('base64'))));
    let info = (await ownMetadata(c))!.getChild('info')!;
    assert.equal(info.attrs.type, 'image/gif');
    assert.equal(info.attrs.width, '7');
    ok(await setVcard(c, photo(undefined, WEBP.toString('base64'))));
    info = (await ownMetadata(c))!.getChild('info')!;
    assert.equal(info.attrs.type, 'image/webp');
    assert.equal(info.attrs.id, sha1(WEBP));
    assert.equal(info.attrs.width, undefined);
    await c.close();
  });

  test('a vCard photo that cannot be an avatar is stored but not converted; one that is not base64 is refused', async () => {
    const c = await TestClient.login(server, 'rosaline', PW, { resource: 'bad' });
    ok(await setVcard(c, xml('FN', null, 'Rosaline')));
    fails(await setVcard(c, xml('FN', null, 'X'), photo('image/png', 'not*base64!')), 'bad-request');
    let card = await getVcard(c, 'rosaline@localhost');
    assert.equal(card.getChildText('FN'), 'Rosaline', 'the refused vCard changed nothing');
    // A BMP (not an avatar type) and a PNG too large for a PEP item: vCard-only clients still see
    // them; no XEP-0084 avatar is made of them.
    ok(await setVcard(c, xml('FN', null, 'Bitmap'), photo('image/bmp', BMP.toString('base64'))));
    card = await getVcard(c, 'rosaline@localhost');
    assert.equal(card.getChildText('FN'), 'Bitmap');
    assert.equal(card.getChild('PHOTO')?.getChildText('BINVAL'), BMP.toString('base64'));
    assert.ok(await hasNoAvatar(c), 'no avatar from a BMP');
    const big = Buffer.concat([png('big'), Buffer.alloc(2000, 7)]);
    ok(await setVcard(c, xml('FN', null, 'Big'), photo('image/png', big.toString('base64'))));
    card = await getVcard(c, 'rosaline@localhost');
    assert.equal(card.getChild('PHOTO')?.getChildText('BINVAL'), big.toString('base64'));
    assert.ok(await hasNoAvatar(c), 'no avatar larger than a PEP item');
    await c.close();
  });

  test('XEP-0084 §4.1: a data item that is not base64 image data is refused (bad-request, invalid-payload)', async () => {
    const c = await TestClient.login(server, 'paris', PW, { resource: 'data' });
    fails(
      await publish(c, undefined, DATA, 'x', xml('data', { xmlns: DATA }, '%%%')),
      'bad-request',
      'invalid-payload',
    );
    fails(
      await publish(c, undefined, DATA, 'x', xml('data', { xmlns: DATA })),
      'bad-request',
      'invalid-payload',
    );
    fails(
      await publish(c, undefined, DATA, 'x', xml('other', { xmlns: 'urn:example' })),
      'bad-request',
      'invalid-payload',
    );
    await settle(c);
    await c.close();
  });
});

describe('XEP-0398 options: fromPep "always", fromVcard false', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      modules: {
        ...BASE_MODULES,
        vcard: { maxBytes: 1024 },
        'avatar-conversion': { fromPep: 'always', fromVcard: false },
      },
    });
    await server.addUser('juliet', PW);
  });
  after(() => server.destroy());

  test('a contacts-only avatar is copied to the vCard; a vCard photo is not published, and any photo is accepted', async () => {
    const c = await TestClient.login(server, 'juliet', PW, { resource: 'b' });
    const image = png('always');
    ok(await publish(c, undefined, DATA, sha1(image), data(image)));
    ok(await publish(c, undefined, META, sha1(image), metadata(image)));
    const card = await getVcard(c, 'juliet@localhost');
    assert.deepEqual(Buffer.from(card.getChild('PHOTO')!.getChildText('BINVAL')!, 'base64'), image);

    ok(await setVcard(c, photo('image/bmp', BMP.toString('base64'))));
    assert.equal((await ownMetadata(c))?.getChild('info')?.attrs.id, sha1(image));

    // An avatar too large for the vCard (vcard maxBytes) is published, and the vCard left as it was.
    const big = Buffer.concat([png('big'), Buffer.alloc(1500, 1)]);
    ok(await publish(c, undefined, DATA, sha1(big), data(big)));
    ok(await publish(c, undefined, META, sha1(big), metadata(big)));
    assert.equal((await ownMetadata(c))?.getChild('info')?.attrs.id, sha1(big));
    const kept = await getVcard(c, 'juliet@localhost');
    assert.equal(kept.getChild('PHOTO')!.getChildText('TYPE'), 'image/bmp');
    await c.close();
  });
});
