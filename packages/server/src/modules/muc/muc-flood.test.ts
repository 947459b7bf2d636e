import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml, type Element } from '@natter/xml';
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
  item,
  join,
  login,
  users,
} from '../../../test/support/muc.js';

// Budgets so small that nothing refills while a test runs (one delivery every 1,000 s): what is
// allowed and what is refused depends only on what was sent, never on timing.
const SLOW = 0.001;

/** Sends a groupchat message with an id; resolves with the sender's reflection or the error. */
function say(c: TestClient, room: string, id: string): Promise<Element> {
  const answer = c.receive(
    (e) =>
      e.name === 'message' && e.attrs.id === id && (e.attrs.type === 'groupchat' || e.attrs.type === 'error'),
  );
  c.send(xml('message', { to: room, type: 'groupchat', id }, xml('body', null, id)));
  return answer;
}

function errorType(el: Element): string | undefined {
  return el.getChild('error')?.attrs.type;
}

describe('MUC flood control: fan-out charged to the sender', () => {
  let server: TestServer;
  const clients: TestClient[] = [];
  const client = async (user: string) => {
    const c = await login(server, user, 'flood');
    clients.push(c);
    return c;
  };
  before(async () => {
    server = await startTestServer({
      modules: {
        ping: { idleMs: 0 },
        muc: {
          floodControl: {
            // 9 deliveries: three messages in a room of three sessions.
            perSender: { deliveriesPerSecond: SLOW, burstDeliveries: 9 },
            revokeVoiceAfter: 3,
          },
        },
      },
    });
    await users(server, 'alice', 'mallory', 'bob');
  });
  after(async () => {
    for (const c of clients) c.kill();
    await server.destroy();
  });

  test('a flooder is refused beyond its budget (policy-violation, wait), others still talk, repeated floods revoke its voice', async () => {
    const alice = await client('alice');
    const mallory = await client('mallory');
    const bob = await client('bob');
    const room = `busy@${SERVICE}`;
    await createRoom(alice, room, 'Alice');
    await enter(mallory, room, 'Mallory');
    await enter(bob, room, 'Bob');

    for (const id of ['m1', 'm2', 'm3']) {
      assert.equal((await say(mallory, room, id)).attrs.type, 'groupchat', id);
      await bob.receive(isGroupchat(`${room}/Mallory`, id));
    }
    const refused = await say(mallory, room, 'm4');
    assert.equal(refused.attrs.type, 'error');
    assert.equal(errorCondition(refused), 'policy-violation');
    assert.equal(errorType(refused), 'wait');

    // Bob's own budget is untouched: everyone gets his message, and m4 went to nobody.
    assert.equal((await say(bob, room, 'hello')).attrs.type, 'groupchat');
    await alice.receive(isGroupchat(`${room}/Bob`, 'hello'));
    await mallory.receive(isGroupchat(`${room}/Bob`, 'hello'));
    assert.equal(bob.received.find(isGroupchat(`${room}/Mallory`, 'm4')), undefined);
    assert.equal(alice.received.find(isGroupchat(`${room}/Mallory`, 'm4')), undefined);

    // Third refusal: voice revoked, seen by everyone as a presence with role visitor.
    const isVisitor = (e: Element) =>
      e.name === 'presence' && e.attrs.from === `${room}/Mallory` && item(e)?.attrs.role === 'visitor';
    const seenByAlice = alice.receive(isVisitor);
    const seenByBob = bob.receive(isVisitor);
    const seenByMallory = mallory.receive(isVisitor);
    assert.equal(errorCondition(await say(mallory, room, 'm5')), 'policy-violation');
    assert.equal(errorCondition(await say(mallory, room, 'm6')), 'policy-violation');
    const p = await seenByAlice;
    assert.equal(p.attrs.type, undefined);
    assert.match(item(p)?.getChildText('reason') ?? '', /flood/i);
    await seenByBob;
    assert.deepEqual(codes(await seenByMallory), [110]);

    // A visitor has no voice.
    assert.equal(errorCondition(await say(mallory, room, 'm7')), 'forbidden');
    assert.equal((await say(alice, room, 'still here')).attrs.type, 'groupchat');
    await bob.receive(isGroupchat(`${room}/Alice`, 'still here'));
  });
});

describe('MUC flood control: a room’s total fan-out', () => {
  let server: TestServer;
  const clients: TestClient[] = [];
  const client = async (user: string) => {
    const c = await login(server, user, 'room');
    clients.push(c);
    return c;
  };
  before(async () => {
    server = await startTestServer({
      modules: {
        ping: { idleMs: 0 },
        muc: {
          floodControl: {
            // 6 deliveries for the whole room: two messages among three sessions.
            perRoom: { deliveriesPerSecond: SLOW, burstDeliveries: 6 },
            revokeVoiceAfter: 2,
          },
        },
      },
    });
    await users(server, 'alice', 'bob', 'carol');
  });
  after(async () => {
    for (const c of clients) c.kill();
    await server.destroy();
  });

  test('a room over its budget refuses everyone with resource-constraint (wait), and nobody loses voice for it', async () => {
    const alice = await client('alice');
    const bob = await client('bob');
    const carol = await client('carol');
    const room = `crowded@${SERVICE}`;
    await createRoom(alice, room, 'Alice');
    await enter(bob, room, 'Bob');
    await enter(carol, room, 'Carol');
    assert.equal((await say(alice, room, 'a1')).attrs.type, 'groupchat');
    assert.equal((await say(carol, room, 'c1')).attrs.type, 'groupchat');
    for (const id of ['b1', 'b2', 'b3']) {
      const r = await say(bob, room, id);
      assert.equal(errorCondition(r), 'resource-constraint', id);
      assert.equal(errorType(r), 'wait');
    }
    assert.equal(errorCondition(await say(alice, room, 'a2')), 'resource-constraint');
  });
});

describe('MUC flood control: entering and leaving', () => {
  let server: TestServer;
  const clients: TestClient[] = [];
  before(async () => {
    server = await startTestServer({
      modules: {
        ping: { idleMs: 0 },
        // An entry into a room of two sessions costs 5 deliveries, a departure 3: 12 allow
        // enter, leave, and not a second entry.
        muc: { floodControl: { perSenderEntries: { deliveriesPerSecond: SLOW, burstDeliveries: 12 } } },
      },
    });
    await users(server, 'alice', 'mallory', 'bob');
  });
  after(async () => {
    for (const c of clients) c.kill();
    await server.destroy();
  });

  test('entering and leaving in a loop is refused (policy-violation, wait) once the entry budget is spent; the others are unaffected', async () => {
    const [alice, mallory, bob] = await Promise.all(
      ['alice', 'mallory', 'bob'].map((u) => login(server, u, 'loop')),
    );
    clients.push(alice!, mallory!, bob!);
    const room = `revolving@${SERVICE}`;
    await createRoom(alice!, room, 'Alice');
    await enter(bob!, room, 'Bob');
    await enter(mallory!, room, 'Mallory');
    await bob!.receive(isPresenceFrom(`${room}/Mallory`));
    mallory!.send(xml('presence', { to: `${room}/Mallory`, type: 'unavailable' }));
    await bob!.receive(isPresenceFrom(`${room}/Mallory`, 'unavailable'));
    await mallory!.receive(isPresenceFrom(`${room}/Mallory`, 'unavailable'));
    const again = await join(mallory!, room, 'Mallory');
    assert.equal(again.attrs.type, 'error');
    assert.equal(errorCondition(again), 'policy-violation');
    assert.equal(errorType(again), 'wait');
    await bob!.nothing(isPresenceFrom(`${room}/Mallory`), 300);
    // Another user still enters, and the room still talks.
    const carol = await login(server, 'bob', 'second');
    clients.push(carol);
    await enter(carol, room, 'Bob');
    const said = say(bob!, room, 'still-here');
    assert.equal((await said).attrs.type, 'groupchat');
  });
});
