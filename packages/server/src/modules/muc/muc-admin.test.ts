import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml, type Element } from '@natter/xml';
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

const listOf = (res: Element) =>
  res
    .getChild('query')!
    .getChildren('item')
    .map((i) => `${i.attrs.jid ?? i.attrs.nick}:${i.attrs.affiliation ?? ''}:${i.attrs.role ?? ''}`)
    .sort();

describe('MUC: roles and affiliations (XEP-0045 §8, §9, §10)', () => {
  let server: TestServer;
  const clients: TestClient[] = [];
  const client = async (user: string, resource: string) => {
    const c = await login(server, user, resource);
    clients.push(c);
    return c;
  };
  const trio = async (name: string, fields: Record<string, string> = {}) => {
    const room = `${name}@${SERVICE}`;
    const romeo = await client('romeo', name);
    const juliet = await client('juliet', name);
    const tybalt = await client('tybalt', name);
    await createRoom(romeo, room, 'Romeo', fields);
    await enter(juliet, room, 'Juliet');
    await enter(tybalt, room, 'Tybalt');
    await romeo.receive(isPresenceFrom(`${room}/Tybalt`));
    await juliet.receive(isPresenceFrom(`${room}/Tybalt`));
    for (const c of [romeo, juliet, tybalt]) c.received.length = 0;
    return { room, romeo, juliet, tybalt };
  };
  before(async () => {
    server = await startTestServer({ modules: { ping: { idleMs: 0 } } });
    await users(server, 'romeo', 'juliet', 'tybalt', 'benvolio', 'paris');
  });
  after(async () => {
    for (const c of clients) c.kill();
    await server.destroy();
  });

  test('XEP-0045 §8.2 Kicking an Occupant: the kicked occupant gets unavailable with 110+307, the others 307 with reason and actor', async () => {
    const { room, romeo, juliet, tybalt } = await trio('kick');
    const res = await adminItems(romeo, room, 'set', [
      xml('item', { nick: 'Tybalt', role: 'none' }, xml('reason', null, 'brawling')),
    ]);
    assert.equal(res.attrs.type, 'result');
    const self = await tybalt.receive(isPresenceFrom(`${room}/Tybalt`, 'unavailable'));
    assert.deepEqual(codes(self), [110, 307]);
    assert.equal(item(self)?.getChildText('reason'), 'brawling');
    const seen = await juliet.receive(isPresenceFrom(`${room}/Tybalt`, 'unavailable'));
    assert.deepEqual(codes(seen), [307]);
    assert.equal(item(seen)?.attrs.role, 'none');
    assert.equal(item(seen)?.getChild('actor')?.attrs.nick, 'Romeo');
    groupchat(tybalt, room, 'still here?');
    assert.equal(
      errorCondition(await tybalt.receive((e) => e.name === 'message' && e.attrs.type === 'error')),
      'not-acceptable',
    );
    const back = await join(tybalt, room, 'Tybalt');
    assert.deepEqual(codes(back), [110], 'a kicked user may come back');
  });

  test('XEP-0045 §8.2: a participant cannot kick (forbidden); a moderator cannot kick an owner (not-allowed)', async () => {
    const { room, romeo, juliet } = await trio('nokick');
    const r1 = await adminItems(juliet, room, 'set', [xml('item', { nick: 'Tybalt', role: 'none' })]);
    assert.equal(errorCondition(r1), 'forbidden');
    await adminItems(romeo, room, 'set', [xml('item', { nick: 'Juliet', role: 'moderator' })]);
    const r2 = await adminItems(juliet, room, 'set', [xml('item', { nick: 'Romeo', role: 'none' })]);
    assert.equal(errorCondition(r2), 'not-allowed');
  });

  test('XEP-0045 §9.1 Banning a User: the banned occupant is removed with 301; rejoining fails with forbidden', async () => {
    const { room, romeo, juliet, tybalt } = await trio('ban');
    const res = await adminItems(romeo, room, 'set', [
      xml('item', { jid: 'tybalt@localhost', affiliation: 'outcast' }, xml('reason', null, 'Mercutio')),
    ]);
    assert.equal(res.attrs.type, 'result');
    const self = await tybalt.receive(isPresenceFrom(`${room}/Tybalt`, 'unavailable'));
    assert.deepEqual(codes(self), [110, 301]);
    assert.equal(item(self)?.attrs.affiliation, 'outcast');
    const seen = await juliet.receive(isPresenceFrom(`${room}/Tybalt`, 'unavailable'));
    assert.deepEqual(codes(seen), [301]);
    const again = await join(tybalt, room, 'Tybalt');
    assert.equal(again.attrs.type, 'error');
    assert.equal(errorCondition(again), 'forbidden');
  });

  test('XEP-0045 §8.3 Granting Voice, §8.4 Revoking Voice, §9.6 Granting Moderator Status: role changes are broadcast', async () => {
    const { room, romeo, juliet, tybalt } = await trio('voice');
    await adminItems(romeo, room, 'set', [xml('item', { nick: 'Tybalt', role: 'visitor' })]);
    const muted = await juliet.receive(isPresenceFrom(`${room}/Tybalt`));
    assert.equal(item(muted)?.attrs.role, 'visitor');
    groupchat(tybalt, room, 'hear me');
    assert.equal(
      errorCondition(await tybalt.receive((e) => e.name === 'message' && e.attrs.type === 'error')),
      'forbidden',
    );
    const r = await adminItems(romeo, room, 'set', [xml('item', { nick: 'Juliet', role: 'moderator' })]);
    assert.equal(r.attrs.type, 'result');
    const mod = await tybalt.receive(isPresenceFrom(`${room}/Juliet`));
    assert.equal(item(mod)?.attrs.role, 'moderator');
    // The new moderator of a semi-anonymous room now sees real JIDs.
    const reveal = await juliet.receive(
      (e) => isPresenceFrom(`${room}/Tybalt`)(e) && item(e)?.attrs.jid !== undefined,
    );
    assert.equal(item(reveal)?.attrs.jid, tybalt.jid);
    const notAdmin = await adminItems(juliet, room, 'set', [
      xml('item', { nick: 'Tybalt', role: 'moderator' }),
    ]);
    assert.equal(errorCondition(notAdmin), 'forbidden', 'only admins and owners grant moderator status');
    await adminItems(juliet, room, 'set', [xml('item', { nick: 'Tybalt', role: 'participant' })]);
    groupchat(tybalt, room, 'hear me now');
    await romeo.receive(isGroupchat(`${room}/Tybalt`, 'hear me now'));
  });

  test('XEP-0045 §9.2, §9.5, §8.5, §9.8, §10.5, §10.8: ban, member, participant, moderator, admin and owner lists', async () => {
    const { room, romeo, juliet } = await trio('lists');
    await adminItems(romeo, room, 'set', [
      xml('item', { jid: 'benvolio@localhost', affiliation: 'member' }),
      xml('item', { jid: 'paris@localhost', affiliation: 'outcast' }, xml('reason', null, 'rival')),
      xml('item', { jid: 'juliet@localhost', affiliation: 'admin' }),
    ]);
    const bans = await adminItems(romeo, room, 'get', [xml('item', { affiliation: 'outcast' })]);
    assert.deepEqual(listOf(bans), ['paris@localhost:outcast:']);
    assert.equal(bans.getChild('query')!.getChild('item')!.getChildText('reason'), 'rival');
    assert.deepEqual(listOf(await adminItems(romeo, room, 'get', [xml('item', { affiliation: 'member' })])), [
      'benvolio@localhost:member:',
    ]);
    assert.deepEqual(listOf(await adminItems(romeo, room, 'get', [xml('item', { affiliation: 'admin' })])), [
      'juliet@localhost:admin:',
    ]);
    assert.deepEqual(listOf(await adminItems(romeo, room, 'get', [xml('item', { affiliation: 'owner' })])), [
      'romeo@localhost:owner:',
    ]);
    const mods = await adminItems(romeo, room, 'get', [xml('item', { role: 'moderator' })]);
    assert.deepEqual(
      mods
        .getChild('query')!
        .getChildren('item')
        .map((i) => i.attrs.nick)
        .sort(),
      ['Juliet', 'Romeo'],
    );
    const voice = await adminItems(romeo, room, 'get', [xml('item', { role: 'participant' })]);
    assert.deepEqual(
      voice
        .getChild('query')!
        .getChildren('item')
        .map((i) => i.attrs.nick),
      ['Tybalt'],
    );
    const tybalt = clients.find((c) => c.jid === `tybalt@localhost/lists`)!;
    assert.equal(
      errorCondition(await adminItems(tybalt, room, 'get', [xml('item', { affiliation: 'outcast' })])),
      'forbidden',
    );
    assert.equal(
      errorCondition(await adminItems(tybalt, room, 'get', [xml('item', { role: 'moderator' })])),
      'forbidden',
    );
    assert.equal(item(await juliet.receive(isPresenceFrom(`${room}/Juliet`)))?.attrs.affiliation, 'admin');
  });

  test('XEP-0045 §7 Getting the Member List: in a non-anonymous room members may read the member, admin and owner lists, not the ban list', async () => {
    const { room, romeo, juliet } = await trio('memberlist', {
      'muc#roomconfig_whois': 'anyone',
      'muc#roomconfig_membersonly': '0',
    });
    await adminItems(romeo, room, 'set', [
      xml('item', { jid: 'juliet@localhost', affiliation: 'member' }),
      xml('item', { jid: 'paris@localhost', affiliation: 'outcast' }),
    ]);
    assert.deepEqual(
      listOf(await adminItems(juliet, room, 'get', [xml('item', { affiliation: 'member' })])),
      ['juliet@localhost:member:'],
    );
    assert.deepEqual(listOf(await adminItems(juliet, room, 'get', [xml('item', { affiliation: 'owner' })])), [
      'romeo@localhost:owner:',
    ]);
    assert.equal(
      errorCondition(await adminItems(juliet, room, 'get', [xml('item', { affiliation: 'outcast' })])),
      'forbidden',
    );
    const benvolio = await client('benvolio', 'memberlist');
    assert.equal(
      errorCondition(await adminItems(benvolio, room, 'get', [xml('item', { affiliation: 'member' })])),
      'forbidden',
      'not to outsiders',
    );
  });

  test('XEP-0045 §9.5 Modifying the Member List: a bulk change is atomic: one refused item and nothing changes', async () => {
    const { room, romeo, juliet } = await trio('bulk');
    await adminItems(romeo, room, 'set', [xml('item', { jid: 'juliet@localhost', affiliation: 'admin' })]);
    const refused = await adminItems(juliet, room, 'set', [
      xml('item', { jid: 'benvolio@localhost', affiliation: 'member' }),
      xml('item', { jid: 'romeo@localhost', affiliation: 'outcast' }),
    ]);
    assert.equal(errorCondition(refused), 'not-allowed', 'an admin may not ban an owner');
    assert.deepEqual(
      listOf(await adminItems(romeo, room, 'get', [xml('item', { affiliation: 'member' })])),
      [],
    );
    const grant = await adminItems(juliet, room, 'set', [
      xml('item', { jid: 'paris@localhost', affiliation: 'admin' }),
    ]);
    assert.equal(errorCondition(grant), 'forbidden', 'only owners grant admin status');
    const bad = await adminItems(romeo, room, 'set', [
      xml('item', { jid: 'benvolio@localhost', affiliation: 'member' }),
      xml('item', { jid: 'paris@localhost', affiliation: 'emperor' }),
    ]);
    assert.equal(errorCondition(bad), 'bad-request');
    const ok = await adminItems(juliet, room, 'set', [
      xml('item', { jid: 'benvolio@localhost', affiliation: 'member' }),
      xml('item', { jid: 'paris@localhost', affiliation: 'member' }),
      xml('item', { jid: 'tybalt@localhost', affiliation: 'member' }),
    ]);
    assert.equal(ok.attrs.type, 'result');
    assert.deepEqual(listOf(await adminItems(romeo, room, 'get', [xml('item', { affiliation: 'member' })])), [
      'benvolio@localhost:member:',
      'paris@localhost:member:',
      'tybalt@localhost:member:',
    ]);
    const selfBan = await adminItems(juliet, room, 'set', [
      xml('item', { jid: 'juliet@localhost', affiliation: 'outcast' }),
    ]);
    assert.equal(errorCondition(selfBan), 'conflict', 'nobody bans themselves');
    const lastOwner = await adminItems(romeo, room, 'set', [
      xml('item', { jid: 'romeo@localhost', affiliation: 'admin' }),
    ]);
    assert.equal(errorCondition(lastOwner), 'conflict', 'the last owner cannot step down');
  });

  test('XEP-0045 §9.4 Revoking Membership: in a members-only room the occupant is removed with 321; §10.2 making a room members-only removes non-members with 322', async () => {
    const { room, romeo, juliet, tybalt } = await trio('revoke');
    await adminItems(romeo, room, 'set', [xml('item', { jid: 'juliet@localhost', affiliation: 'member' })]);
    const member = await tybalt.receive(isPresenceFrom(`${room}/Juliet`));
    assert.equal(item(member)?.attrs.affiliation, 'member');
    const cfg = await romeo.iq(
      xml(
        'iq',
        { type: 'set', to: room },
        xml(
          'query',
          { xmlns: 'http://jabber.org/protocol/muc#owner' },
          xml(
            'x',
            { xmlns: 'jabber:x:data', type: 'submit' },
            xml('field', { var: 'muc#roomconfig_membersonly' }, xml('value', null, '1')),
          ),
        ),
      ),
    );
    assert.equal(cfg.attrs.type, 'result');
    const out = await tybalt.receive(isPresenceFrom(`${room}/Tybalt`, 'unavailable'));
    assert.deepEqual(codes(out), [110, 322]);
    await adminItems(romeo, room, 'set', [xml('item', { jid: 'juliet@localhost', affiliation: 'none' })]);
    const gone = await juliet.receive(isPresenceFrom(`${room}/Juliet`, 'unavailable'));
    assert.deepEqual(codes(gone), [110, 321]);
  });
});
