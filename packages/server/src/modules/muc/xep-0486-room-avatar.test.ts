import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import type { TestClient } from '../../../test/support/test-client.js';
import {
  SERVICE,
  adminItems,
  createRoom,
  enter,
  errorCondition,
  isPresenceFrom,
  join,
  login,
  users,
} from '../../../test/support/muc.js';

const photoVcard = (bytes: Buffer, type = 'image/png') =>
  xml(
    'vCard',
    { xmlns: NS.vcard },
    xml('FN', null, 'The Hall'),
    xml('PHOTO', null, xml('TYPE', null, type), xml('BINVAL', null, bytes.toString('base64'))),
  );
const setVcard = (c: TestClient, room: string, vcard: Element) =>
  c.iq(xml('iq', { type: 'set', to: room }, vcard));
const getVcard = (c: TestClient, room: string) =>
  c.iq(xml('iq', { type: 'get', to: room }, xml('vCard', { xmlns: NS.vcard })));
const isAvatarPresence = (room: string, hash?: string) => (e: Element) =>
  e.name === 'presence' &&
  e.attrs.from === room &&
  e.getChild('x', NS.vcardUpdate) !== undefined &&
  (hash === undefined || e.getChild('x', NS.vcardUpdate)!.getChildText('photo') === hash);
async function roomInfo(c: TestClient, room: string): Promise<{ features: string[]; hashes: string[] }> {
  const q = (
    await c.iq(xml('iq', { type: 'get', to: room }, xml('query', { xmlns: NS.discoInfo })))
  ).getChild('query')!;
  const field = q
    .getChild('x', NS.dataForms)
    ?.getChildren('field')
    .find((f) => f.attrs.var === 'muc#roominfo_avatarhash');
  return {
    features: q.getChildren('feature').map((f) => f.attrs.var!),
    hashes: field ? field.getChildren('value').map((v) => v.text()) : [],
  };
}

describe('MUC room avatars (XEP-0486)', () => {
  let server: TestServer;
  const dataDir = mkdtempSync(joinPath(tmpdir(), 'natter-muc-avatar-'));
  const clients: TestClient[] = [];
  const client = async (user: string, resource: string) => {
    const c = await login(server, user, resource);
    clients.push(c);
    return c;
  };
  before(async () => {
    server = await startTestServer(
      { modules: { ping: { idleMs: 0 }, muc: { maxRoomVcardBytes: 4096 } } },
      { dataDir },
    );
    await users(server, 'romeo', 'juliet', 'nurse', 'tybalt');
  });
  after(async () => {
    for (const c of clients) c.kill();
    await server.destroy();
  });

  test('an owner sets the room’s avatar: occupants hear the hash from the room, disco shows it, anyone reads the vCard, newcomers learn it, it survives a restart', async () => {
    const room = `hall@${SERVICE}`;
    const romeo = await client('romeo', 'a');
    const juliet = await client('juliet', 'a');
    await createRoom(romeo, room, 'Romeo', { 'muc#roomconfig_persistentroom': '1' });
    await enter(juliet, room, 'Juliet');
    assert.ok((await roomInfo(juliet, room)).features.includes(NS.vcard));
    assert.deepEqual((await roomInfo(juliet, room)).hashes, []);

    const png = randomBytes(600);
    const hash = createHash('sha1').update(png).digest('hex');
    const res = await setVcard(romeo, room, photoVcard(png));
    assert.equal(res.attrs.type, 'result', res.toString());
    await juliet.receive(isAvatarPresence(room, hash));
    await romeo.receive(isAvatarPresence(room, hash));
    assert.deepEqual((await roomInfo(juliet, room)).hashes, [hash]);

    const nurse = await client('nurse', 'a');
    const got = await getVcard(nurse, room);
    assert.equal(got.attrs.type, 'result');
    const binval = got.getChild('vCard', NS.vcard)?.getChild('PHOTO')?.getChildText('BINVAL');
    assert.equal(Buffer.from(binval ?? '', 'base64').toString('hex'), png.toString('hex'));

    const self = join(nurse, room, 'Nurse');
    await nurse.receive(isAvatarPresence(room, hash));
    await self;

    for (const c of [romeo, juliet, nurse]) c.kill();
    await server.stop();
    server = await startTestServer(
      { modules: { ping: { idleMs: 0 }, muc: { maxRoomVcardBytes: 4096 } } },
      { dataDir },
    );
    const tybalt = await client('tybalt', 'a');
    assert.deepEqual((await roomInfo(tybalt, room)).hashes, [hash], 'the hash after a restart');
    const again = await getVcard(tybalt, room);
    assert.equal(again.getChild('vCard', NS.vcard)?.getChildText('FN'), 'The Hall');
  });

  test('only owners set it; bad photos and oversized vCards are refused and change nothing; outcasts cannot read it; an empty vCard removes the avatar', async () => {
    const room = `rules@${SERVICE}`;
    const romeo = await client('romeo', 'b');
    const juliet = await client('juliet', 'b');
    await createRoom(romeo, room, 'Romeo');
    await enter(juliet, room, 'Juliet');
    await romeo.receive(isPresenceFrom(`${room}/Juliet`));
    const png = randomBytes(300);
    const hash = createHash('sha1').update(png).digest('hex');

    assert.equal(errorCondition(await setVcard(juliet, room, photoVcard(png))), 'forbidden');
    const bad = xml('vCard', { xmlns: NS.vcard }, xml('PHOTO', null, xml('BINVAL', null, 'not*base64!')));
    assert.equal(errorCondition(await setVcard(romeo, room, bad)), 'bad-request');
    assert.equal(
      errorCondition(await setVcard(romeo, room, photoVcard(randomBytes(8000)))),
      'not-acceptable',
    );
    await juliet.nothing(isAvatarPresence(room));
    assert.deepEqual((await roomInfo(juliet, room)).hashes, []);

    assert.equal((await setVcard(romeo, room, photoVcard(png))).attrs.type, 'result');
    await juliet.receive(isAvatarPresence(room, hash));
    // Setting the same photo again announces nothing.
    assert.equal((await setVcard(romeo, room, photoVcard(png))).attrs.type, 'result');
    await juliet.nothing(isAvatarPresence(room));

    await adminItems(romeo, room, 'set', [xml('item', { jid: 'tybalt@localhost', affiliation: 'outcast' })]);
    const tybalt = await client('tybalt', 'b');
    assert.equal(errorCondition(await getVcard(tybalt, room)), 'forbidden');

    assert.equal((await setVcard(romeo, room, xml('vCard', { xmlns: NS.vcard }))).attrs.type, 'result');
    await juliet.receive(isAvatarPresence(room, ''));
    assert.deepEqual((await roomInfo(juliet, room)).hashes, []);
    assert.equal((await getVcard(juliet, room)).getChild('vCard', NS.vcard)?.elements().length, 0);
  });
});
