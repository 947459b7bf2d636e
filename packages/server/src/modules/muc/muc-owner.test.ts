import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml } from '@natter/xml';
import { NS, parseForm } from '@natter/protocol';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import type { TestClient } from '../../../test/support/test-client.js';
import type { MucApi } from './muc.js';
import {
  SERVICE,
  adminItems,
  codes,
  createRoom,
  enter,
  errorCondition,
  isPresenceFrom,
  isSubject,
  item,
  join,
  login,
  ownerSet,
  submitForm,
  users,
} from '../../../test/support/muc.js';

/** NATTER_TEST_PG_URL=postgres://… runs these tests on an (empty) PostgreSQL database. */
const STORAGE = process.env.NATTER_TEST_PG_URL
  ? { storage: { engine: 'postgres' as const, url: process.env.NATTER_TEST_PG_URL } }
  : {};

describe('MUC: owners, disco, persistence (XEP-0045 §6, §10)', () => {
  let server: TestServer;
  const clients: TestClient[] = [];
  const client = async (user: string, resource: string) => {
    const c = await login(server, user, resource);
    clients.push(c);
    return c;
  };
  before(async () => {
    server = await startTestServer({
      ...STORAGE,
      modules: { ping: { idleMs: 0 }, muc: { maxRoomsPerUser: 8 } },
    });
    await users(server, 'romeo', 'juliet', 'tybalt', 'paris');
  });
  after(async () => {
    for (const c of clients) c.kill();
    await server.destroy();
  });

  test('XEP-0045 §10.9 Destroying a Room: every occupant gets unavailable with <destroy/>, reason and alternate venue; the room is gone', async () => {
    const room = `doomed@${SERVICE}`;
    const romeo = await client('romeo', 'destroy');
    const juliet = await client('juliet', 'destroy');
    await createRoom(romeo, room, 'Romeo', { 'muc#roomconfig_persistentroom': '1' });
    await enter(juliet, room, 'Juliet');
    const notOwner = await ownerSet(juliet, room, xml('destroy', null, xml('reason', null, 'mine now')));
    assert.equal(errorCondition(notOwner), 'forbidden');
    const res = await ownerSet(
      romeo,
      room,
      xml('destroy', { jid: `tomb@${SERVICE}` }, xml('reason', null, 'A plague on both your houses')),
    );
    assert.equal(res.attrs.type, 'result');
    for (const [c, nick] of [
      [romeo, 'Romeo'],
      [juliet, 'Juliet'],
    ] as const) {
      const p = await c.receive(isPresenceFrom(`${room}/${nick}`, 'unavailable'));
      const x = p.getChild('x', NS.mucUser)!;
      assert.equal(x.getChild('item')?.attrs.role, 'none');
      assert.equal(x.getChild('item')?.attrs.affiliation, 'none');
      assert.equal(x.getChild('destroy')?.attrs.jid, `tomb@${SERVICE}`);
      assert.equal(x.getChild('destroy')?.getChildText('reason'), 'A plague on both your houses');
    }
    const info = await juliet.iq(xml('iq', { type: 'get', to: room }, xml('query', { xmlns: NS.discoInfo })));
    assert.equal(errorCondition(info), 'item-not-found');
    const api = server.core.hosts.get('localhost')!.provided.get('muc') as MucApi;
    assert.equal(
      api.rooms().some((r) => r.jid === room),
      false,
    );
  });

  test('XEP-0045 §6.1, §6.3 Discovering Rooms: the service is conference/text and lists public rooms only', async () => {
    const romeo = await client('romeo', 'disco');
    await createRoom(romeo, `lobby@${SERVICE}`, 'Romeo', { 'muc#roomconfig_roomname': 'The Lobby' });
    await createRoom(romeo, `backstage@${SERVICE}`, 'Romeo', { 'muc#roomconfig_publicroom': '0' });
    const info = await romeo.iq(
      xml('iq', { type: 'get', to: SERVICE }, xml('query', { xmlns: NS.discoInfo })),
    );
    const q = info.getChild('query', NS.discoInfo)!;
    assert.deepEqual(
      q.getChildren('identity').map((i) => `${i.attrs.category}/${i.attrs.type}`),
      ['conference/text'],
    );
    assert.ok(q.getChildren('feature').some((f) => f.attrs.var === NS.muc));
    const items = await romeo.iq(
      xml('iq', { type: 'get', to: SERVICE }, xml('query', { xmlns: NS.discoItems })),
    );
    const listed = items.getChild('query', NS.discoItems)!.getChildren('item');
    const lobby = listed.find((i) => i.attrs.jid === `lobby@${SERVICE}`);
    assert.equal(lobby?.attrs.name, 'The Lobby');
    assert.equal(
      listed.some((i) => i.attrs.jid === `backstage@${SERVICE}`),
      false,
      'hidden rooms are not listed',
    );
    const serverItems = await romeo.iq(
      xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: NS.discoItems })),
    );
    assert.ok(
      serverItems
        .getChild('query')!
        .getChildren('item')
        .some((i) => i.attrs.jid === SERVICE),
      'the server lists its MUC service',
    );
  });

  test('XEP-0045 §6.4 Querying for Room Information, §6.5 Querying for Room Items: features, muc#roominfo, occupants hidden in semi-anonymous rooms', async () => {
    const romeo = await client('romeo', 'roominfo');
    const tybalt = await client('tybalt', 'roominfo');
    const room = `info@${SERVICE}`;
    await createRoom(romeo, room, 'Romeo', {
      'muc#roomconfig_roomdesc': 'Verona square',
      'muc#roomconfig_passwordprotectedroom': '1',
      'muc#roomconfig_roomsecret': 's',
      'muc#roomconfig_membersonly': '1',
      'muc#roomconfig_persistentroom': '1',
    });
    romeo.send(xml('message', { to: room, type: 'groupchat' }, xml('subject', null, 'Brawl')));
    await romeo.receive(isSubject(room));
    const info = await tybalt.iq(xml('iq', { type: 'get', to: room }, xml('query', { xmlns: NS.discoInfo })));
    const q = info.getChild('query', NS.discoInfo)!;
    const features = q.getChildren('feature').map((f) => f.attrs.var);
    for (const f of [
      NS.muc,
      'muc_public',
      'muc_persistent',
      'muc_membersonly',
      'muc_unmoderated',
      'muc_passwordprotected',
      'muc_semianonymous',
    ])
      assert.ok(features.includes(f), `missing ${f}`);
    const form = parseForm(q.getChild('x', NS.dataForms)!);
    const v = (name: string) => form.fields.find((f) => f.var === name)?.values[0];
    assert.equal(v('FORM_TYPE'), 'http://jabber.org/protocol/muc#roominfo');
    assert.equal(v('muc#roominfo_description'), 'Verona square');
    assert.equal(v('muc#roominfo_occupants'), '1');
    assert.equal(v('muc#roominfo_subject'), 'Brawl');
    const items = await tybalt.iq(
      xml('iq', { type: 'get', to: room }, xml('query', { xmlns: NS.discoItems })),
    );
    assert.equal(
      items.getChild('query')!.getChildren('item').length,
      0,
      'a semi-anonymous room does not list occupants to outsiders',
    );
    const open = `open-items@${SERVICE}`;
    await createRoom(romeo, open, 'Romeo', { 'muc#roomconfig_whois': 'anyone' });
    const openItems = await tybalt.iq(
      xml('iq', { type: 'get', to: open }, xml('query', { xmlns: NS.discoItems })),
    );
    assert.deepEqual(
      openItems
        .getChild('query')!
        .getChildren('item')
        .map((i) => i.attrs.jid),
      [`${open}/Romeo`],
    );
  });

  test('XEP-0045 §5.1 / §7.2: a semi-anonymous room never shows real JIDs to participants, in presences, messages or lists', async () => {
    const romeo = await client('romeo', 'semi');
    const juliet = await client('juliet', 'semi');
    const tybalt = await client('tybalt', 'semi');
    const room = `masked@${SERVICE}`;
    await createRoom(romeo, room, 'Romeo');
    await enter(juliet, room, 'Juliet');
    await enter(tybalt, room, 'Tybalt');
    const seen = await juliet.receive(isPresenceFrom(`${room}/Tybalt`));
    assert.equal(item(seen)?.attrs.jid, undefined);
    for (const el of tybalt.received)
      assert.equal(
        el.toString().includes('romeo@') || el.toString().includes('juliet@'),
        false,
        el.toString(),
      );
    const byMod = await romeo.receive(isPresenceFrom(`${room}/Tybalt`));
    assert.equal(item(byMod)?.attrs.jid, tybalt.jid);
    assert.equal(
      errorCondition(await adminItems(juliet, room, 'get', [xml('item', { role: 'participant' })])),
      'forbidden',
    );
  });

  test('XEP-0045 §10.2 Subsequent Room Configuration: occupants are told the configuration changed (104, 172); the owner and admin lists of the form apply', async () => {
    const romeo = await client('romeo', 'reconf');
    const juliet = await client('juliet', 'reconf');
    const room = `reconf@${SERVICE}`;
    await createRoom(romeo, room, 'Romeo');
    await enter(juliet, room, 'Juliet');
    const form = await romeo.iq(xml('iq', { type: 'get', to: room }, xml('query', { xmlns: NS.mucOwner })));
    assert.equal(form.attrs.type, 'result');
    await ownerSet(
      romeo,
      room,
      xml(
        'x',
        { xmlns: NS.dataForms, type: 'submit' },
        xml('field', { var: 'muc#roomconfig_whois' }, xml('value', null, 'anyone')),
      ),
    );
    const note = await juliet.receive(
      (e) => e.name === 'message' && e.attrs.from === room && codes(e).length > 0,
    );
    assert.deepEqual(codes(note), [104, 172]);
    const lists = await ownerSet(
      romeo,
      room,
      submitForm({
        'muc#roomconfig_roomowners': ['romeo@localhost', 'juliet@localhost'],
        'muc#roomconfig_roomadmins': ['paris@localhost'],
      }),
    );
    assert.equal(lists.attrs.type, 'result');
    const promoted = await juliet.receive(
      (e) => isPresenceFrom(`${room}/Juliet`)(e) && item(e)?.attrs.affiliation === 'owner',
    );
    assert.equal(item(promoted)?.attrs.role, 'moderator');
    const admins = await adminItems(romeo, room, 'get', [xml('item', { affiliation: 'admin' })]);
    assert.deepEqual(
      admins
        .getChild('query')!
        .getChildren('item')
        .map((i) => i.attrs.jid),
      ['paris@localhost'],
    );
    const empty = await ownerSet(romeo, room, submitForm({ 'muc#roomconfig_roomowners': [] }));
    assert.equal(empty.attrs.type, 'result', 'an empty owner list leaves the owners unchanged');
    const owners = await adminItems(romeo, room, 'get', [xml('item', { affiliation: 'owner' })]);
    assert.deepEqual(
      owners
        .getChild('query')!
        .getChildren('item')
        .map((i) => i.attrs.jid),
      ['juliet@localhost', 'romeo@localhost'],
    );
  });

  test('admin API: `muc` lists rooms with their occupant counts and destroys a room, telling its occupants', async () => {
    const romeo = await client('romeo', 'api');
    const room = `api-room@${SERVICE}`;
    await createRoom(romeo, room, 'Romeo', { 'muc#roomconfig_roomname': 'Admin test' });
    const api = server.core.hosts.get('localhost')!.provided.get('muc') as MucApi;
    assert.equal(api.domain, SERVICE);
    assert.deepEqual(
      api.rooms().find((r) => r.jid === room),
      { jid: room, name: 'Admin test', occupants: 1, persistent: false, public: true, locked: false },
    );
    assert.equal(await api.destroy(room, 'maintenance'), true);
    const p = await romeo.receive(isPresenceFrom(`${room}/Romeo`, 'unavailable'));
    assert.equal(p.getChild('x', NS.mucUser)?.getChild('destroy')?.getChildText('reason'), 'maintenance');
    assert.equal(await api.destroy(room), false);
  });

  test('XEP-0045 §10.1: a user may own at most maxRoomsPerUser rooms (not-allowed beyond)', async () => {
    const paris = await client('paris', 'many');
    for (let i = 0; i < 8; i++) await createRoom(paris, `paris${i}@${SERVICE}`, 'Paris');
    const refused = await join(paris, `paris8@${SERVICE}`, 'Paris');
    assert.equal(errorCondition(refused), 'not-allowed');
  });

  test('XEP-0045 §10.1.3, §9: a persistent room keeps its configuration, subject, affiliations and history across a restart; a temporary room does not', async () => {
    const room = `verona@${SERVICE}`;
    const temp = `fleeting@${SERVICE}`;
    let romeo = await login(server, 'romeo', 'persist');
    await createRoom(romeo, room, 'Romeo', {
      'muc#roomconfig_persistentroom': '1',
      'muc#roomconfig_roomname': 'Fair Verona',
      'muc#roomconfig_moderatedroom': '1',
      'muc#roomconfig_maxusers': '30',
    });
    await adminItems(romeo, room, 'set', [
      xml('item', { jid: 'juliet@localhost', affiliation: 'member' }),
      xml('item', { jid: 'tybalt@localhost', affiliation: 'outcast' }),
      xml('item', { jid: 'paris@localhost', affiliation: 'admin' }),
    ]);
    romeo.send(
      xml('message', { to: room, type: 'groupchat' }, xml('subject', null, 'Where we lay our scene')),
    );
    await romeo.receive(isSubject(room));
    for (const line of ['Two households', 'both alike in dignity']) {
      romeo.send(xml('message', { to: room, type: 'groupchat' }, xml('body', null, line)));
      await romeo.receive((e) => e.name === 'message' && e.getChildText('body') === line);
    }
    await createRoom(romeo, temp, 'Romeo');
    romeo.kill();
    for (const c of clients) c.kill();
    clients.length = 0;
    await server.stop();
    server = await startTestServer(
      { ...STORAGE, modules: { ping: { idleMs: 0 } } },
      { dataDir: server.dataDir },
    );
    romeo = await client('romeo', 'after');
    const info = await romeo.iq(xml('iq', { type: 'get', to: room }, xml('query', { xmlns: NS.discoInfo })));
    const q = info.getChild('query', NS.discoInfo)!;
    assert.equal(q.getChild('identity')?.attrs.name, 'Fair Verona');
    const features = q.getChildren('feature').map((f) => f.attrs.var);
    assert.ok(features.includes('muc_persistent') && features.includes('muc_moderated'));
    assert.equal(
      errorCondition(
        await romeo.iq(xml('iq', { type: 'get', to: temp }, xml('query', { xmlns: NS.discoInfo }))),
      ),
      'item-not-found',
    );
    const self = await join(romeo, room, 'Romeo');
    assert.equal(item(self)?.attrs.affiliation, 'owner');
    assert.deepEqual(codes(self), [110], 'no 201: the room already exists');
    assert.equal((await romeo.receive(isSubject(room))).getChildText('subject'), 'Where we lay our scene');
    const members = await adminItems(romeo, room, 'get', [xml('item', { affiliation: 'member' })]);
    assert.deepEqual(
      members
        .getChild('query')!
        .getChildren('item')
        .map((i) => i.attrs.jid),
      ['juliet@localhost'],
    );
    const admins = await adminItems(romeo, room, 'get', [xml('item', { affiliation: 'admin' })]);
    assert.deepEqual(
      admins
        .getChild('query')!
        .getChildren('item')
        .map((i) => i.attrs.jid),
      ['paris@localhost'],
    );
    const tybalt = await client('tybalt', 'after');
    assert.equal(errorCondition(await join(tybalt, room, 'Tybalt')), 'forbidden');
    const juliet = await client('juliet', 'after');
    const jSelf = await join(juliet, room, 'Juliet');
    assert.equal(item(jSelf)?.attrs.affiliation, 'member');
    assert.equal(item(jSelf)?.attrs.role, 'participant');
    await juliet.receive(isSubject(room));
    const history = juliet.received.filter((e) => e.name === 'message' && e.getChild('body'));
    assert.deepEqual(
      history.map((m) => m.getChildText('body')),
      ['Two households', 'both alike in dignity'],
      'the history of a persistent room is kept',
    );
    assert.equal(history[0]?.getChild('delay', NS.delay)?.attrs.from, room);
    const form = await romeo.iq(xml('iq', { type: 'get', to: room }, xml('query', { xmlns: NS.mucOwner })));
    const cfg = parseForm(form.getChild('query', NS.mucOwner)!.getChild('x', NS.dataForms)!);
    assert.equal(cfg.fields.find((f) => f.var === 'muc#roomconfig_maxusers')?.values[0], '30');
    const api = server.core.hosts.get('localhost')!.provided.get('muc') as MucApi;
    assert.deepEqual(
      api.rooms().find((r) => r.jid === room),
      { jid: room, name: 'Fair Verona', occupants: 2, persistent: true, public: true, locked: false },
    );
  });

  test('XEP-0045 status 332: when the server shuts down, each occupant is told it leaves the room for that reason, before the stream closes', async () => {
    const room = `lastcall@${SERVICE}`;
    const romeo = await client('romeo', 'shutdown');
    const juliet = await client('juliet', 'shutdown');
    await createRoom(romeo, room, 'Romeo');
    await enter(juliet, room, 'Juliet');
    await romeo.receive(isPresenceFrom(`${room}/Juliet`));
    const closed = Promise.all([romeo.waitClosed(5000), juliet.waitClosed(5000)]);
    await server.stop();
    await closed;
    for (const [c, nick] of [
      [romeo, 'Romeo'],
      [juliet, 'Juliet'],
    ] as const) {
      const gone = c.received.find(
        (e) => e.name === 'presence' && e.attrs.type === 'unavailable' && e.attrs.from === `${room}/${nick}`,
      );
      assert.ok(gone, `${nick} was told it left the room`);
      assert.deepEqual(codes(gone), [110, 332]);
      assert.equal(item(gone)?.attrs.role, 'none');
      assert.equal(c.streamError?.condition, 'system-shutdown', 'then the stream closed');
      // Nobody's departure is broadcast to the others: they all leave at once.
      assert.equal(
        c.received.filter((e) => e.name === 'presence' && e.attrs.type === 'unavailable').length,
        1,
      );
    }
    clients.length = 0;
    server = await startTestServer(
      { ...STORAGE, modules: { ping: { idleMs: 0 } } },
      { dataDir: server.dataDir },
    );
  });
});
