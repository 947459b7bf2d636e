import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import type { TestClient } from '../../../test/support/test-client.js';
import {
  SERVICE,
  adminItems,
  codes,
  createRoom,
  enter,
  errorCondition,
  groupchat,
  isGroupchat,
  isPresenceFrom,
  item,
  join,
  login,
  users,
} from '../../../test/support/muc.js';

describe('MUC: messages, nicknames, invitations (XEP-0045 §7)', () => {
  let server: TestServer;
  const clients: TestClient[] = [];
  const client = async (user: string, resource: string) => {
    const c = await login(server, user, resource);
    clients.push(c);
    return c;
  };
  /** A room with romeo (owner), juliet and nurse inside. */
  const trio = async (name: string, fields: Record<string, string> = {}) => {
    const room = `${name}@${SERVICE}`;
    const romeo = await client('romeo', name);
    const juliet = await client('juliet', name);
    const nurse = await client('nurse', name);
    await createRoom(romeo, room, 'Romeo', fields);
    await enter(juliet, room, 'Juliet');
    await enter(nurse, room, 'Nurse');
    await romeo.receive(isPresenceFrom(`${room}/Nurse`));
    await juliet.receive(isPresenceFrom(`${room}/Nurse`));
    for (const c of [romeo, juliet, nurse]) c.received.length = 0;
    return { room, romeo, juliet, nurse };
  };
  before(async () => {
    server = await startTestServer({ modules: { ping: { idleMs: 0 } } });
    await users(server, 'romeo', 'juliet', 'nurse', 'tybalt');
  });
  after(async () => {
    for (const c of clients) c.kill();
    await server.destroy();
  });

  test('XEP-0045 §7 Sending a Message to All Occupants: a groupchat message reaches all 3 occupants (sender included) from the occupant JID', async () => {
    const { room, romeo, juliet, nurse } = await trio('fanout');
    juliet.send(xml('message', { to: room, type: 'groupchat', id: 'm1' }, xml('body', null, 'O Romeo')));
    for (const c of [romeo, juliet, nurse]) {
      const m = await c.receive(isGroupchat(`${room}/Juliet`, 'O Romeo'));
      assert.equal(m.attrs.to, c.jid);
      assert.equal(m.attrs.id, 'm1');
      if (c !== juliet)
        assert.equal(
          m.toString().includes('juliet@localhost'),
          false,
          'no real JID in a semi-anonymous room',
        );
    }
  });

  test('XEP-0045 §7 Sending a Message to All Occupants: a non-occupant cannot send to the room (not-acceptable) and receives nothing from it', async () => {
    const { room, romeo } = await trio('outsider');
    const tybalt = await client('tybalt', 'outsider');
    tybalt.send(xml('message', { to: room, type: 'groupchat', id: 'x' }, xml('body', null, 'I am not here')));
    const err = await tybalt.receive((e) => e.name === 'message' && e.attrs.type === 'error');
    assert.equal(errorCondition(err), 'not-acceptable');
    await romeo.nothing(isGroupchat(`${room}/Tybalt`), 200);
    groupchat(romeo, room, 'secret');
    await tybalt.nothing((e) => e.name === 'message' && e.attrs.type === 'groupchat', 300);
    const pm = await tybalt.iq(
      xml('iq', { type: 'get', to: `${room}/Romeo` }, xml('ping', { xmlns: NS.ping })),
    );
    assert.equal(errorCondition(pm), 'not-acceptable');
  });

  test('XEP-0045 §7 Sending a Message to All Occupants / §8.3 Granting Voice: in a moderated room a visitor may not speak (forbidden) until given voice', async () => {
    const { room, romeo, nurse } = await trio('moderated', { 'muc#roomconfig_moderatedroom': '1' });
    groupchat(nurse, room, 'may I?');
    const err = await nurse.receive((e) => e.name === 'message' && e.attrs.type === 'error');
    assert.equal(errorCondition(err), 'forbidden');
    const r = await adminItems(romeo, room, 'set', [xml('item', { nick: 'Nurse', role: 'participant' })]);
    assert.equal(r.attrs.type, 'result');
    const voiced = await nurse.receive(isPresenceFrom(`${room}/Nurse`));
    assert.equal(item(voiced)?.attrs.role, 'participant');
    groupchat(nurse, room, 'now I may');
    await romeo.receive(isGroupchat(`${room}/Nurse`, 'now I may'));
  });

  test("XEP-0045 §7 Sending a Private Message: a message to an occupant JID arrives from the sender's occupant JID, real JID hidden", async () => {
    const { room, juliet, nurse } = await trio('pm');
    nurse.send(
      xml('message', { to: `${room}/Juliet`, type: 'chat' }, xml('body', null, 'your mother calls')),
    );
    const pm = await juliet.receive((e) => e.name === 'message' && e.attrs.type === 'chat');
    assert.equal(pm.attrs.from, `${room}/Nurse`);
    assert.equal(pm.getChildText('body'), 'your mother calls');
    assert.ok(pm.getChild('x', NS.mucUser));
    assert.equal(pm.toString().includes('nurse@localhost'), false);
    nurse.send(xml('message', { to: `${room}/Juliet`, type: 'groupchat' }, xml('body', null, 'wrong type')));
    assert.equal(
      errorCondition(await nurse.receive((e) => e.name === 'message' && e.attrs.type === 'error')),
      'bad-request',
    );
    nurse.send(xml('message', { to: `${room}/Nobody`, type: 'chat' }, xml('body', null, 'hello?')));
    assert.equal(
      errorCondition(await nurse.receive((e) => e.name === 'message' && e.attrs.type === 'error')),
      'item-not-found',
    );
  });

  test('XEP-0045 §7 Changing Nickname: unavailable with 303 and the new nick, then available from the new nick; conflicts refused', async () => {
    const { room, romeo, juliet } = await trio('rename');
    juliet.send(xml('presence', { to: `${room}/Jules` }));
    const old = await romeo.receive(isPresenceFrom(`${room}/Juliet`, 'unavailable'));
    assert.deepEqual(codes(old), [303]);
    assert.equal(item(old)?.attrs.nick, 'Jules');
    const now = await romeo.receive(isPresenceFrom(`${room}/Jules`));
    assert.equal(item(now)?.attrs.role, 'participant');
    const selfOld = await juliet.receive(isPresenceFrom(`${room}/Juliet`, 'unavailable'));
    assert.deepEqual(codes(selfOld), [110, 303]);
    const selfNew = await juliet.receive(isPresenceFrom(`${room}/Jules`));
    assert.deepEqual(codes(selfNew), [110]);
    juliet.send(xml('presence', { to: `${room}/Romeo` }));
    const err = await juliet.receive((e) => e.name === 'presence' && e.attrs.type === 'error');
    assert.equal(errorCondition(err), 'conflict');
    groupchat(juliet, room, 'renamed');
    await romeo.receive(isGroupchat(`${room}/Jules`, 'renamed'));
  });

  test('XEP-0045 §7 Changing Availability Status: show and status are broadcast to every occupant', async () => {
    const { room, romeo, juliet, nurse } = await trio('status');
    nurse.send(
      xml(
        'presence',
        { to: `${room}/Nurse` },
        xml('show', null, 'away'),
        xml('status', null, 'fetching cords'),
      ),
    );
    for (const c of [romeo, juliet]) {
      const p = await c.receive(isPresenceFrom(`${room}/Nurse`));
      assert.equal(p.getChildText('show'), 'away');
      assert.equal(p.getChildText('status'), 'fetching cords');
    }
    const self = await nurse.receive(isPresenceFrom(`${room}/Nurse`));
    assert.deepEqual(codes(self), [110]);
  });

  test('XEP-0045 §8.1 Modifying the Room Subject: participants may not by default (forbidden); moderators may; everyone sees it', async () => {
    const { room, romeo, juliet, nurse } = await trio('topic');
    juliet.send(xml('message', { to: room, type: 'groupchat' }, xml('subject', null, 'mine')));
    assert.equal(
      errorCondition(await juliet.receive((e) => e.name === 'message' && e.attrs.type === 'error')),
      'forbidden',
    );
    romeo.send(xml('message', { to: room, type: 'groupchat' }, xml('subject', null, 'Two households')));
    for (const c of [romeo, juliet, nurse]) {
      const m = await c.receive(
        (e) => e.name === 'message' && e.getChildText('subject') === 'Two households',
      );
      assert.equal(m.attrs.from, `${room}/Romeo`);
    }
  });

  test('XEP-0045 §7 Inviting Another User to a Room (mediated invitation): the room forwards the invitation (with the password); the decline goes back to the inviter', async () => {
    const room = `party@${SERVICE}`;
    const romeo = await client('romeo', 'invite');
    const tybalt = await client('tybalt', 'invite');
    await createRoom(romeo, room, 'Romeo', {
      'muc#roomconfig_passwordprotectedroom': '1',
      'muc#roomconfig_roomsecret': 'masks',
    });
    romeo.send(
      xml(
        'message',
        { to: room },
        xml(
          'x',
          { xmlns: NS.mucUser },
          xml('invite', { to: 'tybalt@localhost' }, xml('reason', null, 'come to the feast')),
        ),
      ),
    );
    const inv = await tybalt.receive(
      (e) => e.name === 'message' && e.getChild('x', NS.mucUser)?.getChild('invite') !== undefined,
    );
    assert.equal(inv.attrs.from, room);
    const x = inv.getChild('x', NS.mucUser)!;
    assert.equal(x.getChild('invite')?.attrs.from, 'romeo@localhost');
    assert.equal(x.getChild('invite')?.getChildText('reason'), 'come to the feast');
    assert.equal(x.getChildText('password'), 'masks');
    tybalt.send(
      xml(
        'message',
        { to: room },
        xml(
          'x',
          { xmlns: NS.mucUser },
          xml('decline', { to: 'romeo@localhost' }, xml('reason', null, 'never')),
        ),
      ),
    );
    const dec = await romeo.receive(
      (e) => e.name === 'message' && e.getChild('x', NS.mucUser)?.getChild('decline') !== undefined,
    );
    assert.equal(dec.attrs.from, room);
    assert.equal(dec.getChild('x', NS.mucUser)?.getChild('decline')?.attrs.from, 'tybalt@localhost');
    assert.equal(dec.getChild('x', NS.mucUser)?.getChild('decline')?.getChildText('reason'), 'never');
  });

  test("XEP-0045 §7 Inviting Another User to a Room (members-only): an admin's invitation to a members-only room makes the invitee a member; participants may not invite unless allowed", async () => {
    const { room, romeo, juliet } = await trio('club');
    const tybalt = await client('tybalt', 'club');
    juliet.send(
      xml(
        'message',
        { to: room },
        xml('x', { xmlns: NS.mucUser }, xml('invite', { to: 'tybalt@localhost' })),
      ),
    );
    assert.equal(
      errorCondition(await juliet.receive((e) => e.name === 'message' && e.attrs.type === 'error')),
      'forbidden',
    );
    const mo = `club-mo@${SERVICE}`;
    await createRoom(romeo, mo, 'Romeo', { 'muc#roomconfig_membersonly': '1' });
    romeo.send(
      xml('message', { to: mo }, xml('x', { xmlns: NS.mucUser }, xml('invite', { to: 'tybalt@localhost' }))),
    );
    await tybalt.receive((e) => e.name === 'message' && e.attrs.from === mo);
    const ok = await join(tybalt, mo, 'Tybalt');
    assert.equal(item(ok)?.attrs.affiliation, 'member');
  });

  test('XEP-0249: a direct invitation is an ordinary message between users and passes through untouched', async () => {
    const romeo = await client('romeo', 'direct');
    const juliet = await client('juliet', 'direct');
    romeo.send(
      xml(
        'message',
        { to: juliet.jid },
        xml('x', { xmlns: NS.conference, jid: `direct@${SERVICE}`, reason: 'join us' }),
      ),
    );
    const m = await juliet.receive(
      (e) => e.name === 'message' && e.getChild('x', NS.conference) !== undefined,
    );
    assert.equal(m.getChild('x', NS.conference)?.attrs.jid, `direct@${SERVICE}`);
  });

  test('XEP-0045 §7 Sending a Message to All Occupants: an oversized body is refused (policy-violation) and not broadcast', async () => {
    const { room, romeo, juliet } = await trio('big');
    groupchat(juliet, room, 'x'.repeat(20_000));
    assert.equal(
      errorCondition(await juliet.receive((e) => e.name === 'message' && e.attrs.type === 'error')),
      'policy-violation',
    );
    await romeo.nothing((e) => e.name === 'message' && e.attrs.type === 'groupchat', 200);
  });

  test('XEP-0045 §6 Querying a Room Occupant: an IQ to an occupant JID is relayed with the real JIDs hidden, and so is the answer', async () => {
    const { room, juliet, nurse } = await trio('iqrelay');
    const request = juliet.iq(
      xml('iq', { type: 'get', to: `${room}/Nurse` }, xml('vCard', { xmlns: NS.vcard })),
    );
    const relayed = await nurse.receive((e) => e.name === 'iq' && e.attrs.type === 'get');
    assert.equal(relayed.attrs.from, `${room}/Juliet`);
    assert.ok(relayed.getChild('vCard', NS.vcard));
    nurse.send(
      xml(
        'iq',
        { type: 'result', id: relayed.attrs.id, to: relayed.attrs.from },
        xml('vCard', { xmlns: NS.vcard }, xml('FN', null, 'Angelica')),
      ),
    );
    const answer = await request;
    assert.equal(answer.attrs.type, 'result');
    assert.equal(answer.attrs.from, `${room}/Nurse`);
    assert.equal(answer.getChild('vCard', NS.vcard)?.getChildText('FN'), 'Angelica');
    assert.equal(answer.toString().includes('nurse@localhost'), false);
  });

  test('XEP-0045 §7 Requesting Voice, §8.6 Approving Voice Requests: the request reaches moderators; their approval gives voice', async () => {
    const { room, romeo, nurse } = await trio('voicereq', { 'muc#roomconfig_moderatedroom': '1' });
    const form = (type: string, fields: Record<string, string>) =>
      xml(
        'x',
        { xmlns: NS.dataForms, type },
        xml('field', { var: 'FORM_TYPE' }, xml('value', null, 'http://jabber.org/protocol/muc#request')),
        Object.entries(fields).map(([k, v]) => xml('field', { var: k }, xml('value', null, v))),
      );
    nurse.send(xml('message', { to: room }, form('submit', { 'muc#role': 'participant' })));
    const req = await romeo.receive(
      (e) => e.name === 'message' && e.getChild('x', NS.dataForms) !== undefined,
    );
    assert.equal(req.attrs.from, room);
    romeo.send(
      xml(
        'message',
        { to: room },
        form('submit', { 'muc#role': 'participant', 'muc#roomnick': 'Nurse', 'muc#request_allow': 'true' }),
      ),
    );
    const voiced = await nurse.receive(isPresenceFrom(`${room}/Nurse`));
    assert.equal(item(voiced)?.attrs.role, 'participant');
  });

  test('XEP-0045 §7.2 Entering a Room, §7 Sending a Message to All Occupants: forged muc#user payloads are dropped: nobody can claim an affiliation or role', async () => {
    const { room, romeo, juliet } = await trio('forgery');
    juliet.send(
      xml(
        'presence',
        { to: `${room}/Juliet` },
        xml(
          'x',
          { xmlns: NS.mucUser },
          xml('item', { affiliation: 'owner', role: 'moderator' }),
          xml('status', { code: '110' }),
        ),
      ),
    );
    const p = await romeo.receive(isPresenceFrom(`${room}/Juliet`));
    assert.equal(p.getChildren('x', NS.mucUser).length, 1);
    assert.equal(item(p)?.attrs.affiliation, 'none');
    assert.equal(item(p)?.attrs.role, 'participant');
    assert.deepEqual(codes(p), []);
    juliet.send(
      xml(
        'message',
        { to: room, type: 'groupchat' },
        xml('body', null, 'I own this'),
        xml('x', { xmlns: NS.mucUser }, xml('status', { code: '104' })),
      ),
    );
    const m = await romeo.receive(isGroupchat(`${room}/Juliet`, 'I own this'));
    assert.equal(m.getChild('x', NS.mucUser), undefined);
  });

  test('XEP-0410: an occupant pinging its own occupant JID gets a result from the room', async () => {
    const { room, juliet } = await trio('selfping');
    const r = await juliet.iq(
      xml('iq', { type: 'get', to: `${room}/Juliet` }, xml('ping', { xmlns: NS.ping })),
    );
    assert.equal(r.attrs.type, 'result');
    assert.equal(r.attrs.from, `${room}/Juliet`);
  });
});
