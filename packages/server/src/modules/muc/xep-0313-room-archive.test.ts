import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { xml } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import type { TestClient } from '../../../test/support/test-client.js';
import {
  SERVICE,
  adminItems,
  createRoom,
  enter,
  errorCondition,
  isGroupchat,
  isPresenceFrom,
  join,
  login,
  ownerSet,
  submitForm,
  users,
  roomArchive,
  stanzaIdOf,
  occupantIdOf,
} from '../../../test/support/muc.js';

const NS_OID = 'urn:xmpp:occupant-id:0';

describe('MUC archives (XEP-0313 on rooms) and occupant ids (XEP-0421)', () => {
  let server: TestServer;
  const dataDir = mkdtempSync(joinPath(tmpdir(), 'natter-muc-mam-'));
  const clients: TestClient[] = [];
  const client = async (user: string, resource: string) => {
    const c = await login(server, user, resource);
    clients.push(c);
    return c;
  };
  before(async () => {
    server = await startTestServer({ modules: { ping: { idleMs: 0 } } }, { dataDir });
    await users(server, 'romeo', 'juliet', 'nurse', 'tybalt');
  });
  after(async () => {
    for (const c of clients) c.kill();
    await server.destroy();
  });

  test('XEP-0313 §5 / XEP-0359: every message gets the room’s stanza-id, which is its id in the room’s archive; results come from the room', async () => {
    const room = `hall@${SERVICE}`;
    const romeo = await client('romeo', 'a1');
    const juliet = await client('juliet', 'a1');
    await createRoom(romeo, room, 'Romeo');
    await enter(juliet, room, 'Juliet');
    await romeo.receive(isPresenceFrom(`${room}/Juliet`));

    const info = await romeo.iq(xml('iq', { type: 'get', to: room }, xml('query', { xmlns: NS.discoInfo })));
    const features = info
      .getChild('query')!
      .getChildren('feature')
      .map((f) => f.attrs.var);
    for (const f of [NS.mam, NS.sid, NS_OID, 'urn:xmpp:message-moderate:1'])
      assert.ok(features.includes(f), `room advertises ${f}`);

    const sent: string[] = [];
    for (const [c, body] of [
      [romeo, 'one'],
      [juliet, 'two'],
      [romeo, 'three'],
    ] as const) {
      c.send(xml('message', { to: room, type: 'groupchat' }, xml('body', null, body)));
      const nick = c === romeo ? 'Romeo' : 'Juliet';
      const got = await juliet.receive(isGroupchat(`${room}/${nick}`, body));
      const id = stanzaIdOf(got, room);
      assert.ok(id, `the room names "${body}": ${got.toString()}`);
      sent.push(id);
    }
    // A chat state is relayed, but neither named nor archived.
    juliet.send(
      xml(
        'message',
        { to: room, type: 'groupchat' },
        xml('composing', { xmlns: 'http://jabber.org/protocol/chatstates' }),
      ),
    );
    const cs = await romeo.receive((e) => e.name === 'message' && e.getChild('composing') !== undefined);
    assert.equal(stanzaIdOf(cs, room), undefined);
    // Neither is a message its sender marks no-store.
    romeo.send(
      xml(
        'message',
        { to: room, type: 'groupchat' },
        xml('body', null, 'off the record'),
        xml('no-store', { xmlns: NS.hints }),
      ),
    );
    await juliet.receive(isGroupchat(`${room}/Romeo`, 'off the record'));

    // An outsider may read an open room's archive (anyone may enter it).
    const nurse = await client('nurse', 'a1');
    const { iq, results } = await roomArchive(nurse, room);
    assert.equal(iq.attrs.type, 'result', iq.toString());
    assert.equal(iq.getChild('fin', NS.mam)?.attrs.complete, 'true');
    assert.deepEqual(
      results.map((r) => r.message.getChildText('body')),
      ['one', 'two', 'three'],
    );
    assert.deepEqual(
      results.map((r) => r.id),
      sent,
    );
    for (const r of results) {
      assert.equal(r.from, room, 'results come from the room’s bare JID');
      assert.equal(r.message.attrs.type, 'groupchat');
      assert.ok(occupantIdOf(r.message), 'archived with the author’s occupant id');
    }
    assert.deepEqual(
      results.map((r) => r.message.attrs.from),
      [`${room}/Romeo`, `${room}/Juliet`, `${room}/Romeo`],
    );
    // `with` an occupant JID; RSM paging.
    const juliets = await roomArchive(nurse, room, { with: `${room}/Juliet` });
    assert.deepEqual(
      juliets.results.map((r) => r.message.getChildText('body')),
      ['two'],
    );
    const page = await roomArchive(nurse, room, {}, 2);
    assert.equal(page.results.length, 2);
    assert.equal(page.iq.getChild('fin', NS.mam)?.attrs.complete, undefined);
    // Metadata: the first and last message.
    const meta = await nurse.iq(xml('iq', { type: 'get', to: room }, xml('metadata', { xmlns: NS.mam })));
    assert.equal(meta.getChild('metadata', NS.mam)?.getChild('start')?.attrs.id, sent[0]);
    assert.equal(meta.getChild('metadata', NS.mam)?.getChild('end')?.attrs.id, sent[2]);
  });

  test('XEP-0421 / XEP-0359: an occupant cannot forge the room’s stanza-id or anyone’s occupant id', async () => {
    const room = `forge@${SERVICE}`;
    const romeo = await client('romeo', 'f1');
    const tybalt = await client('tybalt', 'f1');
    await createRoom(romeo, room, 'Romeo');
    const self = await join(tybalt, room, 'Tybalt');
    const tybaltId = occupantIdOf(self);
    const romeoPresence = await tybalt.receive(isPresenceFrom(`${room}/Romeo`));
    const romeoId = occupantIdOf(romeoPresence);
    assert.ok(tybaltId && romeoId && tybaltId !== romeoId);
    tybalt.send(
      xml(
        'message',
        { to: room, type: 'groupchat' },
        xml('body', null, 'I am Romeo'),
        xml('occupant-id', { xmlns: NS_OID, id: romeoId }),
        xml('stanza-id', { xmlns: NS.sid, by: room, id: 'forged' }),
      ),
    );
    const got = await romeo.receive(isGroupchat(`${room}/Tybalt`, 'I am Romeo'));
    assert.deepEqual(
      got.getChildren('occupant-id', NS_OID).map((e) => e.attrs.id),
      [tybaltId],
    );
    const ids = got.getChildren('stanza-id', NS.sid).filter((s) => s.attrs.by === room);
    assert.equal(ids.length, 1);
    assert.notEqual(ids[0]!.attrs.id, 'forged');
    // Presence: a client's own occupant-id is dropped too.
    tybalt.send(
      xml(
        'presence',
        { to: `${room}/Tybalt` },
        xml('show', null, 'away'),
        xml('occupant-id', { xmlns: NS_OID, id: romeoId }),
      ),
    );
    const p = await romeo.receive(
      (e) => isPresenceFrom(`${room}/Tybalt`)(e) && e.getChildText('show') === 'away',
    );
    assert.deepEqual(
      p.getChildren('occupant-id', NS_OID).map((e) => e.attrs.id),
      [tybaltId],
    );
  });

  test('XEP-0421: one id per user and room, whatever the nickname or session; another room, another id; private messages carry it', async () => {
    const a = `oid-a@${SERVICE}`;
    const b = `oid-b@${SERVICE}`;
    const romeo = await client('romeo', 'o1');
    const juliet = await client('juliet', 'o1');
    const juliet2 = await client('juliet', 'o2');
    await createRoom(romeo, a, 'Romeo');
    await createRoom(romeo, b, 'Romeo');
    const inA = occupantIdOf(await join(juliet, a, 'Juliet'));
    const seen = await romeo.receive(isPresenceFrom(`${a}/Juliet`));
    assert.equal(occupantIdOf(seen), inA, 'others see the same id');
    const inA2 = occupantIdOf(await join(juliet2, a, 'Jules'));
    assert.equal(inA2, inA, 'another session and nickname of the same user');
    const inB = occupantIdOf(await join(juliet, b, 'Juliet'));
    assert.ok(inA && inB && inA !== inB, 'another room, another id');
    juliet.send(xml('message', { to: `${a}/Romeo`, type: 'chat' }, xml('body', null, 'psst')));
    const pm = await romeo.receive((e) => e.name === 'message' && e.getChildText('body') === 'psst');
    assert.equal(occupantIdOf(pm), inA);
  });

  test('XEP-0313 on rooms: members-only rooms show their archive to members only, nobody shows it to outcasts', async () => {
    const room = `club@${SERVICE}`;
    const romeo = await client('romeo', 'm1');
    await createRoom(romeo, room, 'Romeo', { 'muc#roomconfig_membersonly': '1' });
    romeo.send(xml('message', { to: room, type: 'groupchat' }, xml('body', null, 'members only')));
    await romeo.receive(isGroupchat(`${room}/Romeo`, 'members only'));
    const nurse = await client('nurse', 'm1');
    const refused = await roomArchive(nurse, room);
    assert.equal(refused.iq.attrs.type, 'error');
    assert.equal(errorCondition(refused.iq), 'forbidden');
    assert.equal(refused.results.length, 0);
    const r = await adminItems(romeo, room, 'set', [
      xml('item', { jid: 'nurse@localhost', affiliation: 'member' }),
    ]);
    assert.equal(r.attrs.type, 'result');
    const allowed = await roomArchive(nurse, room);
    assert.equal(allowed.iq.attrs.type, 'result', allowed.iq.toString());
    assert.deepEqual(
      allowed.results.map((x) => x.message.getChildText('body')),
      ['members only'],
    );
    // An outcast of an open room.
    const open = `open@${SERVICE}`;
    await createRoom(romeo, open, 'Romeo');
    await adminItems(romeo, open, 'set', [xml('item', { jid: 'tybalt@localhost', affiliation: 'outcast' })]);
    const tybalt = await client('tybalt', 'm1');
    const out = await roomArchive(tybalt, open);
    assert.equal(errorCondition(out.iq), 'forbidden');
  });

  test('muc#roomconfig_enablearchiving: an owner turns the archive off; later messages are not kept, and the room stops advertising it', async () => {
    const room = `quiet@${SERVICE}`;
    const romeo = await client('romeo', 'q1');
    await createRoom(romeo, room, 'Romeo');
    const form = await romeo.iq(xml('iq', { type: 'get', to: room }, xml('query', { xmlns: NS.mucOwner })));
    const field = form
      .getChild('query')!
      .getChild('x', NS.dataForms)!
      .getChildren('field')
      .find((f) => f.attrs.var === 'muc#roomconfig_enablearchiving');
    assert.equal(field?.getChildText('value'), '1', 'on by default');
    romeo.send(xml('message', { to: room, type: 'groupchat' }, xml('body', null, 'kept')));
    await romeo.receive(isGroupchat(`${room}/Romeo`, 'kept'));
    const res = await ownerSet(romeo, room, submitForm({ 'muc#roomconfig_enablearchiving': '0' }));
    assert.equal(res.attrs.type, 'result');
    romeo.send(xml('message', { to: room, type: 'groupchat' }, xml('body', null, 'not kept')));
    const got = await romeo.receive(isGroupchat(`${room}/Romeo`, 'not kept'));
    assert.ok(stanzaIdOf(got, room), 'still named, so that it can be moderated');
    const { results } = await roomArchive(romeo, room);
    assert.deepEqual(
      results.map((r) => r.message.getChildText('body')),
      ['kept'],
    );
    const info = await romeo.iq(xml('iq', { type: 'get', to: room }, xml('query', { xmlns: NS.discoInfo })));
    assert.ok(
      !info
        .getChild('query')!
        .getChildren('feature')
        .some((f) => f.attrs.var === NS.mam),
    );
  });

  test('a destroyed room takes its archive with it; a persistent room’s archive and occupant ids survive a restart', async () => {
    const gone = `gone@${SERVICE}`;
    const romeo = await client('romeo', 'd1');
    await createRoom(romeo, gone, 'Romeo');
    romeo.send(xml('message', { to: gone, type: 'groupchat' }, xml('body', null, 'before destruction')));
    await romeo.receive(isGroupchat(`${gone}/Romeo`, 'before destruction'));
    const d = await ownerSet(romeo, gone, xml('destroy'));
    assert.equal(d.attrs.type, 'result');
    await createRoom(romeo, gone, 'Romeo');
    assert.deepEqual((await roomArchive(romeo, gone)).results, []);

    const kept = `kept@${SERVICE}`;
    await createRoom(romeo, kept, 'Romeo', { 'muc#roomconfig_persistentroom': '1' });
    romeo.send(xml('message', { to: kept, type: 'groupchat' }, xml('body', null, 'remember me')));
    const before = await romeo.receive(isGroupchat(`${kept}/Romeo`, 'remember me'));
    romeo.kill();
    await server.stop();
    server = await startTestServer({ modules: { ping: { idleMs: 0 } } }, { dataDir });
    const again = await client('romeo', 'd2');
    const self = await join(again, kept, 'Romeo');
    assert.equal(occupantIdOf(self), occupantIdOf(before), 'the occupant id survives a restart');
    const { results } = await roomArchive(again, kept);
    assert.deepEqual(
      results.map((r) => [r.id, r.message.getChildText('body')]),
      [[stanzaIdOf(before, kept), 'remember me']],
    );
  });
});

describe('MUC archives off: modules.muc.archive = never', () => {
  let server: TestServer;
  const clients: TestClient[] = [];
  before(async () => {
    server = await startTestServer({ modules: { ping: { idleMs: 0 }, muc: { archive: 'never' } } });
    await users(server, 'romeo');
  });
  after(async () => {
    for (const c of clients) c.kill();
    await server.destroy();
  });

  test('no room offers or keeps an archive; a query is answered feature-not-implemented; owners cannot turn it on', async () => {
    const room = `plain@${SERVICE}`;
    const romeo = await login(server, 'romeo');
    clients.push(romeo);
    await createRoom(romeo, room, 'Romeo');
    const form = await romeo.iq(xml('iq', { type: 'get', to: room }, xml('query', { xmlns: NS.mucOwner })));
    assert.ok(
      !form
        .getChild('query')!
        .getChild('x', NS.dataForms)!
        .getChildren('field')
        .some((f) => f.attrs.var === 'muc#roomconfig_enablearchiving'),
    );
    const refused = await ownerSet(romeo, room, submitForm({ 'muc#roomconfig_enablearchiving': '1' }));
    assert.equal(errorCondition(refused), 'not-acceptable');
    const { iq } = await roomArchive(romeo, room);
    assert.equal(errorCondition(iq), 'feature-not-implemented');
  });
});
