import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import type { TestClient } from '../../../test/support/test-client.js';
import {
  SERVICE,
  codes,
  createRoom,
  enter,
  errorCondition,
  isGroupchat,
  isPresenceFrom,
  join,
  login,
  users,
} from '../../../test/support/muc.js';

describe('MUC: nicknames, passwords and what an occupant may not forge', () => {
  let server: TestServer;
  const clients: TestClient[] = [];
  const client = async (user: string, resource = 'r') => {
    const c = await login(server, user, resource);
    clients.push(c);
    return c;
  };
  before(async () => {
    server = await startTestServer({ modules: { ping: { idleMs: 0 } } });
    await users(server, 'bob', 'eve', 'carol');
  });
  after(async () => {
    for (const c of clients) c.kill();
    await server.destroy();
  });

  test('RFC 8266: a nickname differing only in case or width from a present one is a conflict', async () => {
    const bob = await client('bob', 'nick');
    const eve = await client('eve', 'nick');
    const room = `nicks@${SERVICE}`;
    await createRoom(bob, room, 'bobnick');
    for (const lookalike of ['BobNick', 'BOBNICK', 'ｂｏｂｎｉｃｋ', ' bobnick ']) {
      const res = await join(eve, room, lookalike);
      assert.equal(res.attrs.type, 'error', `${lookalike} was let in`);
      assert.equal(errorCondition(res), 'conflict', lookalike);
    }
    // A nickname change to a look-alike of someone else's is refused the same way.
    await enter(eve, room, 'Eve');
    eve.send(xml('presence', { to: `${room}/BOBNICK` }));
    const refused = await eve.receive((e) => e.name === 'presence' && e.attrs.type === 'error');
    assert.equal(errorCondition(refused), 'conflict');
    // Private messages reach the occupant under any equivalent form of its nickname.
    eve.send(xml('message', { to: `${room}/BobNick`, type: 'chat' }, xml('body', null, 'psst')));
    const pm = await bob.receive((e) => e.name === 'message' && e.getChildText('body') === 'psst');
    assert.equal(pm.attrs.from, `${room}/Eve`);
  });

  test('RFC 8266 §2.3: the room enforces the nickname (width folded, spaces trimmed) and says so with 210', async () => {
    const carol = await client('carol', 'width');
    const room = `widths@${SERVICE}`;
    await createRoom(carol, room, 'Carol');
    const bob = await client('bob', 'width');
    // The self-presence comes from the nickname the room gave, not the one asked for.
    const selfP = bob.receive((e) => e.name === 'presence' && codes(e).includes(110));
    bob.send(xml('presence', { to: `${room}/Ｂｏｂ` }, xml('x', { xmlns: NS.muc })));
    const self = await selfP;
    assert.equal(self.attrs.from, `${room}/Bob`);
    assert.deepEqual(codes(self), [110, 210]);
    await carol.receive(isPresenceFrom(`${room}/Bob`));
  });

  test('XEP-0045 §7.2.6: without the password a taken and a free nickname get the same not-authorized', async () => {
    const bob = await client('bob', 'pw');
    const eve = await client('eve', 'pw');
    const room = `guarded@${SERVICE}`;
    await createRoom(bob, room, 'Bob', {
      'muc#roomconfig_passwordprotectedroom': '1',
      'muc#roomconfig_roomsecret': 'hunter2',
    });
    for (const nick of ['Bob', 'bob', 'Nobody']) {
      assert.equal(errorCondition(await join(eve, room, nick)), 'not-authorized', `no password, ${nick}`);
      assert.equal(
        errorCondition(await join(eve, room, nick, { password: 'wrong' })),
        'not-authorized',
        `wrong password, ${nick}`,
      );
    }
    // With the password, a taken nickname is a conflict as usual.
    assert.equal(errorCondition(await join(eve, room, 'Bob', { password: 'hunter2' })), 'conflict');
  });

  test('XEP-0203 / XEP-0091: an occupant cannot stamp its groupchat message with a delay; history carries only the room’s', async () => {
    const bob = await client('bob', 'delay');
    const carol = await client('carol', 'delay');
    const room = `stamps@${SERVICE}`;
    await createRoom(bob, room, 'Bob');
    await enter(carol, room, 'Carol');
    bob.send(
      xml(
        'message',
        { to: room, type: 'groupchat' },
        xml('body', null, 'from the past'),
        xml('delay', { xmlns: NS.delay, stamp: '2001-01-01T00:00:00Z', from: room }),
        xml('x', { xmlns: 'jabber:x:delay', stamp: '20010101T00:00:00' }),
      ),
    );
    const got = await carol.receive(isGroupchat(`${room}/Bob`, 'from the past'));
    assert.equal(got.getChild('delay', NS.delay), undefined, got.toString());
    assert.equal(got.getChild('x', 'jabber:x:delay'), undefined, got.toString());
    // A newcomer gets it from history with the room's own stamp, not the forged one.
    const eve = await client('eve', 'delay');
    await join(eve, room, 'Eve');
    const old = await eve.receive(isGroupchat(`${room}/Bob`, 'from the past'));
    const delays = old.getChildren('delay', NS.delay);
    assert.equal(delays.length, 1, old.toString());
    assert.equal(delays[0]!.attrs.from, room);
    assert.notEqual(delays[0]!.attrs.stamp, '2001-01-01T00:00:00Z');
    assert.equal(old.getChild('x', 'jabber:x:delay'), undefined);
  });
});
