import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml } from '@natter/xml';
import { NS, parseForm } from '@natter/protocol';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import { TestClient } from '../../../test/support/test-client.js';
import {
  SERVICE,
  codes,
  createRoom,
  enter,
  errorCondition,
  groupchat,
  isGroupchat,
  isPresenceFrom,
  isSubject,
  item,
  join,
  login,
  ownerSet,
  submitForm,
  users,
} from '../../../test/support/muc.js';

describe('MUC: creating, entering and leaving rooms (XEP-0045)', () => {
  let server: TestServer;
  const clients: TestClient[] = [];
  const client = async (user: string, resource = 'r') => {
    const c = await login(server, user, resource);
    clients.push(c);
    return c;
  };
  before(async () => {
    server = await startTestServer({ modules: { ping: { idleMs: 0 } } });
    await users(server, 'romeo', 'juliet', 'nurse', 'tybalt', 'mercutio');
  });
  after(async () => {
    for (const c of clients) c.kill();
    await server.destroy();
  });

  test('XEP-0045 §10.1.2: an instant room is created locked (201), entry refused until the owner accepts the defaults', async () => {
    const romeo = await client('romeo');
    const juliet = await client('juliet');
    const room = `instant@${SERVICE}`;
    const self = await join(romeo, room, 'Romeo');
    assert.deepEqual(codes(self), [110, 201]);
    assert.equal(item(self)?.attrs.affiliation, 'owner');
    assert.equal(item(self)?.attrs.role, 'moderator');
    await romeo.receive(isSubject(room));
    const refused = await join(juliet, room, 'Juliet');
    assert.equal(refused.attrs.type, 'error');
    assert.equal(errorCondition(refused), 'item-not-found');
    const res = await ownerSet(romeo, room, xml('x', { xmlns: NS.dataForms, type: 'submit' }));
    assert.equal(res.attrs.type, 'result');
    const ok = await join(juliet, room, 'Juliet');
    assert.deepEqual(codes(ok), [110]);
    assert.equal(item(ok)?.attrs.role, 'participant');
    assert.equal(item(ok)?.attrs.affiliation, 'none');
  });

  test('XEP-0045 §10.1.3: a reserved room: the owner gets the muc#roomconfig form, submits it, the room takes the values', async () => {
    const romeo = await client('romeo', 'reserved');
    const room = `reserved@${SERVICE}`;
    const self = await join(romeo, room, 'Romeo');
    assert.deepEqual(codes(self), [110, 201]);
    const formRes = await romeo.iq(
      xml('iq', { type: 'get', to: room }, xml('query', { xmlns: NS.mucOwner })),
    );
    assert.equal(formRes.attrs.type, 'result');
    const form = parseForm(formRes.getChild('query', NS.mucOwner)!.getChild('x', NS.dataForms)!);
    assert.equal(form.type, 'form');
    const vars = form.fields.map((f) => f.var);
    for (const v of [
      'FORM_TYPE',
      'muc#roomconfig_roomname',
      'muc#roomconfig_roomdesc',
      'muc#roomconfig_persistentroom',
      'muc#roomconfig_publicroom',
      'muc#roomconfig_membersonly',
      'muc#roomconfig_moderatedroom',
      'muc#roomconfig_passwordprotectedroom',
      'muc#roomconfig_roomsecret',
      'muc#roomconfig_maxusers',
      'muc#roomconfig_whois',
      'muc#roomconfig_changesubject',
      'muc#roomconfig_allowinvites',
      'muc#roomconfig_allowpm',
    ]) {
      assert.ok(vars.includes(v), `form lacks ${v}`);
    }
    const res = await ownerSet(
      romeo,
      room,
      submitForm({
        'muc#roomconfig_roomname': 'The Balcony',
        'muc#roomconfig_roomdesc': 'Where it happens',
        'muc#roomconfig_publicroom': '0',
        'muc#roomconfig_moderatedroom': '1',
        'muc#roomconfig_whois': 'anyone',
        'muc#roomconfig_maxusers': '10',
        'muc#roomconfig_enablelogging': '0',
        'muc#roomconfig_pubsub': '',
      }),
    );
    assert.equal(res.attrs.type, 'result', res.toString());
    const info = await romeo.iq(xml('iq', { type: 'get', to: room }, xml('query', { xmlns: NS.discoInfo })));
    const q = info.getChild('query', NS.discoInfo)!;
    assert.equal(q.getChild('identity')?.attrs.name, 'The Balcony');
    const features = q.getChildren('feature').map((f) => f.attrs.var);
    for (const f of [
      'muc_hidden',
      'muc_moderated',
      'muc_nonanonymous',
      'muc_temporary',
      'muc_open',
      'muc_unsecured',
    ])
      assert.ok(features.includes(f), `missing ${f}`);
    const roominfo = parseForm(q.getChild('x', NS.dataForms)!);
    assert.equal(
      roominfo.fields.find((f) => f.var === 'muc#roominfo_description')?.values[0],
      'Where it happens',
    );
    assert.equal(roominfo.fields.find((f) => f.var === 'muc#roominfo_occupants')?.values[0], '1');
  });

  test('XEP-0045 §10.1.3: cancelling the initial configuration destroys the room', async () => {
    const romeo = await client('romeo', 'cancel');
    const room = `cancelled@${SERVICE}`;
    await join(romeo, room, 'Romeo');
    await romeo.receive(isSubject(room));
    const res = await ownerSet(romeo, room, xml('x', { xmlns: NS.dataForms, type: 'cancel' }));
    assert.equal(res.attrs.type, 'result');
    const gone = await romeo.receive(isPresenceFrom(`${room}/Romeo`, 'unavailable'));
    assert.ok(gone.getChild('x', NS.mucUser)?.getChild('destroy'));
    const info = await romeo.iq(xml('iq', { type: 'get', to: room }, xml('query', { xmlns: NS.discoInfo })));
    assert.equal(errorCondition(info), 'item-not-found');
  });

  test('XEP-0045 §10.2: a configuration form with bad values is refused with not-acceptable and changes nothing', async () => {
    const romeo = await client('romeo', 'badform');
    const room = `badform@${SERVICE}`;
    await createRoom(romeo, room, 'Romeo');
    for (const fields of <Record<string, string>[]>[
      { 'muc#roomconfig_persistentroom': 'maybe' },
      { 'muc#roomconfig_whois': 'everybody' },
      { 'muc#roomconfig_maxusers': 'lots' },
      { 'muc#roomconfig_maxusers': '100000' },
      { 'muc#roomconfig_roomname': 'x'.repeat(300) },
      { 'muc#roomconfig_passwordprotectedroom': '1' },
    ]) {
      const res = await ownerSet(
        romeo,
        room,
        submitForm({ 'muc#roomconfig_roomname': 'changed', ...fields }),
      );
      assert.equal(errorCondition(res), 'not-acceptable', JSON.stringify(fields));
    }
    const info = await romeo.iq(xml('iq', { type: 'get', to: room }, xml('query', { xmlns: NS.discoInfo })));
    assert.equal(info.getChild('query', NS.discoInfo)?.getChild('identity')?.attrs.name, 'badform');
    const juliet = await client('juliet', 'badform');
    const notOwner = await ownerSet(juliet, room, submitForm({ 'muc#roomconfig_roomname': 'mine' }));
    assert.equal(errorCondition(notOwner), 'forbidden');
  });

  test('XEP-0045 §7.2 Entering a Room (presence broadcast) and Exiting a Room: entering sends existing occupants first, then self-presence (110); leaving is seen by all', async () => {
    const romeo = await client('romeo', 'codes');
    const juliet = await client('juliet', 'codes');
    const room = `codes@${SERVICE}`;
    await createRoom(romeo, room, 'Romeo');
    const seenByRomeo = romeo.receive(isPresenceFrom(`${room}/Juliet`));
    const self = await join(juliet, room, 'Juliet');
    const before = juliet.received.findIndex(isPresenceFrom(`${room}/Romeo`));
    assert.ok(before >= 0, 'the existing occupant was announced before the self-presence');
    const romeoSeen = juliet.received[before]!;
    assert.equal(item(romeoSeen)?.attrs.role, 'moderator');
    assert.equal(
      item(romeoSeen)?.attrs.jid,
      undefined,
      'semi-anonymous: a participant does not see real JIDs',
    );
    assert.deepEqual(codes(self), [110]);
    assert.equal(item(self)?.attrs.jid, juliet.jid, 'the occupant sees its own real JID');
    const other = await seenByRomeo;
    assert.deepEqual(codes(other), []);
    assert.equal(item(other)?.attrs.jid, juliet.jid, 'a moderator sees real JIDs');
    await juliet.receive(isSubject(room));
    juliet.send(xml('presence', { to: `${room}/Juliet`, type: 'unavailable' }, xml('status', null, 'bye')));
    const selfOut = await juliet.receive(isPresenceFrom(`${room}/Juliet`, 'unavailable'));
    assert.deepEqual(codes(selfOut), [110]);
    const out = await romeo.receive(isPresenceFrom(`${room}/Juliet`, 'unavailable'));
    assert.equal(out.getChildText('status'), 'bye');
    assert.equal(item(out)?.attrs.role, 'none');
  });

  test('XEP-0045 §7.2 Entering a Room (groupchat 1.0 / nickname conflict): entering without a nickname is jid-malformed; a nickname in use is a conflict', async () => {
    const romeo = await client('romeo', 'nick');
    const juliet = await client('juliet', 'nick');
    const room = `nicks@${SERVICE}`;
    await createRoom(romeo, room, 'Romeo');
    const noNick = juliet.receive((e) => e.name === 'presence' && e.attrs.type === 'error');
    juliet.send(xml('presence', { to: room }, xml('x', { xmlns: NS.muc })));
    assert.equal(errorCondition(await noNick), 'jid-malformed');
    const taken = await join(juliet, room, 'Romeo');
    assert.equal(taken.attrs.type, 'error');
    assert.equal(errorCondition(taken), 'conflict');
  });

  test('XEP-0045 §7.2 Entering a Room (password-protected rooms): a password-protected room refuses a missing or wrong password (not-authorized)', async () => {
    const romeo = await client('romeo', 'pw');
    const juliet = await client('juliet', 'pw');
    const room = `secret@${SERVICE}`;
    await createRoom(romeo, room, 'Romeo', {
      'muc#roomconfig_passwordprotectedroom': '1',
      'muc#roomconfig_roomsecret': 'capulet',
    });
    assert.equal(errorCondition(await join(juliet, room, 'Juliet')), 'not-authorized');
    assert.equal(
      errorCondition(await join(juliet, room, 'Juliet', { password: 'montague' })),
      'not-authorized',
    );
    const ok = await join(juliet, room, 'Juliet', { password: 'capulet' });
    assert.deepEqual(codes(ok), [110]);
  });

  test('XEP-0045 §7.2 Entering a Room (members-only rooms, max users): members-only refuses non-members (registration-required); a full room is service-unavailable', async () => {
    const romeo = await client('romeo', 'mo');
    const juliet = await client('juliet', 'mo');
    const nurse = await client('nurse', 'mo');
    const room = `members@${SERVICE}`;
    await createRoom(romeo, room, 'Romeo', {
      'muc#roomconfig_membersonly': '1',
      'muc#roomconfig_maxusers': '2',
    });
    assert.equal(errorCondition(await join(juliet, room, 'Juliet')), 'registration-required');
    for (const u of ['juliet', 'nurse']) {
      const r = await romeo.iq(
        xml(
          'iq',
          { type: 'set', to: room },
          xml('query', { xmlns: NS.mucAdmin }, xml('item', { affiliation: 'member', jid: `${u}@localhost` })),
        ),
      );
      assert.equal(r.attrs.type, 'result');
    }
    const ok = await join(juliet, room, 'Juliet');
    assert.equal(item(ok)?.attrs.affiliation, 'member');
    assert.equal(errorCondition(await join(nurse, room, 'Nurse')), 'service-unavailable');
  });

  test('XEP-0045 §9.1 Banning a User / §7.2 Entering a Room (banned users): a banned user cannot enter (forbidden)', async () => {
    const romeo = await client('romeo', 'ban0');
    const tybalt = await client('tybalt', 'ban0');
    const room = `noentry@${SERVICE}`;
    await createRoom(romeo, room, 'Romeo');
    await romeo.iq(
      xml(
        'iq',
        { type: 'set', to: room },
        xml(
          'query',
          { xmlns: NS.mucAdmin },
          xml('item', { affiliation: 'outcast', jid: 'tybalt@localhost' }),
        ),
      ),
    );
    assert.equal(errorCondition(await join(tybalt, room, 'Tybalt')), 'forbidden');
  });

  test('XEP-0045 §7.2 Entering a Room (non-anonymous rooms): a non-anonymous room sends 100 on entry, and real JIDs to everyone', async () => {
    const romeo = await client('romeo', 'nonanon');
    const juliet = await client('juliet', 'nonanon');
    const room = `open-book@${SERVICE}`;
    await createRoom(romeo, room, 'Romeo', { 'muc#roomconfig_whois': 'anyone' });
    const self = await join(juliet, room, 'Juliet');
    assert.deepEqual(codes(self), [100, 110]);
    const romeoSeen = juliet.received.find(isPresenceFrom(`${room}/Romeo`));
    assert.equal(item(romeoSeen!)?.attrs.jid, romeo.jid);
  });

  test('XEP-0045 §7.2 Entering a Room (discussion history, room subject): history honours maxstanzas, carries delay stamps from the room; the subject follows it', async () => {
    const romeo = await client('romeo', 'hist');
    const juliet = await client('juliet', 'hist');
    const nurse = await client('nurse', 'hist');
    const room = `history@${SERVICE}`;
    await createRoom(romeo, room, 'Romeo');
    romeo.send(xml('message', { to: room, type: 'groupchat' }, xml('subject', null, 'Fair Verona')));
    await romeo.receive(isSubject(room));
    for (let i = 1; i <= 5; i++) {
      groupchat(romeo, room, `line ${i}`);
      await romeo.receive(isGroupchat(`${room}/Romeo`, `line ${i}`));
    }
    await join(juliet, room, 'Juliet', { history: { maxstanzas: '3' } });
    const subject = await juliet.receive(isSubject(room));
    assert.equal(subject.getChildText('subject'), 'Fair Verona');
    assert.equal(subject.attrs.from, `${room}/Romeo`);
    const history = juliet.received.filter((e) => e.name === 'message' && e.getChild('body'));
    assert.deepEqual(
      history.map((m) => m.getChildText('body')),
      ['line 3', 'line 4', 'line 5'],
    );
    for (const m of history) {
      const delay = m.getChild('delay', NS.delay);
      assert.equal(delay?.attrs.from, room);
      assert.ok(delay?.attrs.stamp);
      assert.equal(m.attrs.from, `${room}/Romeo`);
    }
    const order = juliet.received.map((e) => e.name);
    assert.ok(order.lastIndexOf('presence') < order.indexOf('message'), 'presences come before history');
    juliet.received.length = 0;
    await join(nurse, room, 'Nurse', { history: { maxchars: '0' } });
    await nurse.receive(isSubject(room));
    assert.equal(nurse.received.filter((e) => e.name === 'message' && e.getChild('body')).length, 0);
  });

  test('XEP-0045 §7.2 Entering a Room (room subject): the subject is sent after entering even when none is set (empty)', async () => {
    const romeo = await client('romeo', 'nosubject');
    const room = `blank@${SERVICE}`;
    await join(romeo, room, 'Romeo');
    const subject = await romeo.receive(isSubject(room));
    assert.equal(subject.getChildText('subject'), '');
    assert.equal(subject.attrs.type, 'groupchat');
  });

  test('XEP-0045 Exiting a Room / RFC 6121 §4.6: an occupant whose session ends without leaving is removed from the room', async () => {
    const romeo = await client('romeo', 'crash');
    const mercutio = await login(server, 'mercutio', 'crash');
    const room = `crash@${SERVICE}`;
    await createRoom(romeo, room, 'Romeo');
    await enter(mercutio, room, 'Mercutio');
    await romeo.receive(isPresenceFrom(`${room}/Mercutio`));
    mercutio.kill();
    const gone = await romeo.receive(isPresenceFrom(`${room}/Mercutio`, 'unavailable'));
    assert.equal(item(gone)?.attrs.role, 'none');
    const again = await login(server, 'mercutio', 'crash2');
    clients.push(again);
    const ok = await join(again, room, 'Mercutio');
    assert.deepEqual(codes(ok), [110], 'the nickname is free again');
  });

  test('XEP-0045 §7.2 Entering a Room (nickname conflict, same bare JID): a second resource may share its nickname; others see one occupant', async () => {
    const romeo = await client('romeo', 'ms-a');
    const juliet = await client('juliet', 'ms');
    const romeo2 = await client('romeo', 'ms-b');
    const room = `multisession@${SERVICE}`;
    await createRoom(romeo, room, 'Romeo');
    await enter(juliet, room, 'Juliet');
    await romeo.receive(isPresenceFrom(`${room}/Juliet`));
    juliet.received.length = 0;
    const second = await join(romeo2, room, 'Romeo');
    assert.deepEqual(codes(second), [110]);
    assert.equal(item(second)?.attrs.jid, romeo2.jid);
    await juliet.nothing(isPresenceFrom(`${room}/Romeo`), 200);
    groupchat(juliet, room, 'both of you');
    await romeo.receive(isGroupchat(`${room}/Juliet`, 'both of you'));
    await romeo2.receive(isGroupchat(`${room}/Juliet`, 'both of you'));
    romeo2.send(xml('presence', { to: `${room}/Romeo`, type: 'unavailable' }));
    const out = await romeo2.receive(isPresenceFrom(`${room}/Romeo`, 'unavailable'));
    assert.deepEqual(codes(out), [110]);
    await juliet.nothing(isPresenceFrom(`${room}/Romeo`, 'unavailable'), 200);
    groupchat(romeo, room, 'still here');
    await juliet.receive(isGroupchat(`${room}/Romeo`, 'still here'));
    const tybalt = await client('tybalt', 'ms');
    assert.equal(
      errorCondition(await join(tybalt, room, 'Romeo')),
      'conflict',
      'another user still conflicts',
    );
  });

  test('XEP-0045 §10.1.1: only local accounts may create rooms by default; a groupchat 1.0 join creates an unlocked room', async () => {
    const romeo = await client('romeo', 'gc10');
    const room = `legacy@${SERVICE}`;
    const self = await join(romeo, room, 'Romeo', { mucX: false });
    assert.deepEqual(codes(self), [110, 201]);
    const juliet = await client('juliet', 'gc10');
    const ok = await join(juliet, room, 'Juliet');
    assert.deepEqual(codes(ok), [110], 'not locked');
  });
});
