import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { randomBytes } from 'node:crypto';
import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer } from '../support/test-server.js';
import { TestClient } from '../support/test-client.js';
import { createTestDatabase } from '../support/postgres.js';
import {
  codes,
  createRoom,
  enter,
  isGroupchat,
  isPresenceFrom,
  isSubject,
  join,
  SERVICE,
} from '../support/muc.js';
import { NodeProcess, clusterNodeConfig, removeRedisKeys } from '../support/cluster-node.js';
import { rendezvousOwner } from '../../src/core/cluster/rendezvous.js';

// Rooms placed one by one on the nodes of a cluster (modules/muc/cluster-rooms.ts): a node that
// joins takes its share of the rooms with their occupants, history and subject, without anyone
// leaving; a node that dies takes only its own rooms with it.

const PW = 'cluster-rooms-pw';
const REDIS = process.env.NATTER_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/0';
const PREFIX = `natter-test-${randomBytes(4).toString('hex')}`;
/** Enough rooms that the joining node owns some of them (each with chance 1/3: all miss with 6e-5). */
const ROOMS = Array.from({ length: 24 }, (_, i) => `hall${i}@${SERVICE}`);
const persistent = (i: number) => i % 2 === 0;

const db = await createTestDatabase();
const dirs: string[] = [];

async function online(node: NodeProcess, user: string): Promise<TestClient> {
  const c = await TestClient.login(node.target, user, PW, { resource: 'r' });
  c.send(xml('presence'));
  await c.receive((e) => e.name === 'presence' && e.attrs.from === `${user}@localhost/r`);
  return c;
}

const unavailableFromRoom = (e: Element) =>
  e.name === 'presence' && e.attrs.type === 'unavailable' && (e.attrs.from ?? '').includes(`@${SERVICE}/`);

describe('MUC rooms spread over a cluster', { skip: db ? false : 'PostgreSQL is not reachable' }, () => {
  before(async () => {
    const dataDir = mkdtempSync(joinPath(tmpdir(), 'natter-rooms-setup-'));
    dirs.push(dataDir);
    const setup = await startTestServer({ storage: { engine: 'postgres', url: db!.url } }, { dataDir });
    for (const u of ['alice', 'bob', 'carol']) await setup.addUser(u, PW);
    await setup.stop();
  });

  after(async () => {
    await removeRedisKeys(REDIS, PREFIX);
    await db?.drop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test('a joining node takes its rooms with occupants, history and subject; a killed node only its own', async () => {
    const nodes = ['a1', 'a2', 'a3'].map(
      (name) =>
        new NodeProcess(clusterNodeConfig(dirs, { name, redis: REDIS, prefix: PREFIX, postgres: db!.url })),
    );
    const [a1, a2, a3] = nodes as [NodeProcess, NodeProcess, NodeProcess];
    try {
      await a1.start();
      await a2.start();
      const alice = await online(a1, 'alice');
      const bob = await online(a2, 'bob');

      // Two nodes: every room made by alice (on a1), bob (on a2) in it, a subject and a message each.
      for (const [i, room] of ROOMS.entries()) {
        await createRoom(alice, room, 'alice', persistent(i) ? { 'muc#roomconfig_persistentroom': '1' } : {});
        await enter(bob, room, 'bob');
        alice.send(xml('message', { to: room, type: 'groupchat' }, xml('subject', null, `topic ${i}`)));
        await bob.receive((e) => isSubject(room)(e) && e.getChildText('subject') === `topic ${i}`);
        bob.send(xml('message', { to: room, type: 'groupchat' }, xml('body', null, `before ${i}`)));
        for (const c of [alice, bob]) await c.receive(isGroupchat(`${room}/bob`, `before ${i}`));
      }

      // A third node joins while alice keeps writing to every room (chat states: without a body,
      // so the rooms' history keeps what was said before): the rooms it owns now move to it, while
      // everyone stays in them and no message is lost.
      let writing = true;
      let rounds = 0;
      const traffic = (async () => {
        while (writing) {
          for (const [i, room] of ROOMS.entries())
            alice.send(
              xml(
                'message',
                { to: room, type: 'groupchat', id: `during-${rounds}-${i}` },
                xml('active', { xmlns: 'http://jabber.org/protocol/chatstates' }),
              ),
            );
          rounds++;
          await new Promise((r) => setTimeout(r, 200));
        }
      })();
      await a3.start();
      const members = [a1.node, a2.node, a3.node];
      const moved = ROOMS.filter((r) => rendezvousOwner(members, r) === a3.node);
      const stayed = ROOMS.filter((r) => !moved.includes(r));
      assert.ok(moved.length > 0 && stayed.length > 0, `rooms on the new node: ${moved.length}`);
      const handed = () => a1.count('room handed to the node') + a2.count('room handed to the node');
      await a1.until(() => handed() >= moved.length, `${moved.length} rooms to be handed over`);
      // Two more rounds once every room has moved, then every message of every round arrives.
      const target = rounds + 2;
      await a1.until(() => rounds >= target, 'two more rounds of messages');
      writing = false;
      await traffic;
      for (let k = 0; k < rounds; k++)
        for (const [i, room] of ROOMS.entries())
          for (const c of [alice, bob])
            await c.receive(
              (e) => e.attrs.id === `during-${k}-${i}` && e.attrs.from === `${room}/alice`,
              10_000,
            );

      // Every room goes on: messages reach both occupants, wherever the room runs now.
      for (const [i, room] of ROOMS.entries()) {
        alice.send(xml('message', { to: room, type: 'groupchat' }, xml('body', null, `after ${i}`)));
        for (const c of [alice, bob]) await c.receive(isGroupchat(`${room}/alice`, `after ${i}`));
      }
      // A newcomer on the new node finds each moved room as it was: its occupants, history, subject.
      const carol = await online(a3, 'carol');
      for (const room of moved) {
        const i = ROOMS.indexOf(room);
        const seen = carol.receive((e) => e.name === 'presence' && e.attrs.from === `${room}/alice`);
        const seenBob = carol.receive((e) => e.name === 'presence' && e.attrs.from === `${room}/bob`);
        const history = carol.receive(isGroupchat(`${room}/bob`, `before ${i}`));
        const self = await join(carol, room, 'carol');
        assert.deepEqual(codes(self), [110], 'an existing room, not a new one');
        await Promise.all([seen, seenBob, history]);
        const subject = await carol.receive(isSubject(room));
        assert.equal(subject.getChildText('subject'), `topic ${i}`);
        for (const c of [alice, bob])
          await c.receive((e) => e.name === 'presence' && e.attrs.from === `${room}/carol`);
      }
      assert.equal(alice.received.filter(unavailableFromRoom).length, 0, 'nobody left a room');
      assert.equal(bob.received.filter(unavailableFromRoom).length, 0, 'nobody left a room');

      // The service lists the public rooms of every node (§6.3), asked on any node.
      const items = await bob.iq(
        xml('iq', { type: 'get', to: SERVICE }, xml('query', { xmlns: NS.discoItems })),
      );
      const listed = items
        .getChild('query')!
        .getChildren('item')
        .map((e) => e.attrs.jid);
      assert.deepEqual(listed.sort(), [...ROOMS].sort());

      // kill -9 the new node: occupants of its rooms are told they left (332), the others not.
      await carol.close();
      await a3.kill9();
      for (const c of [alice, bob]) {
        const nick = c === alice ? 'alice' : 'bob';
        for (const room of moved) {
          const left = await c.receive(
            (e) => unavailableFromRoom(e) && e.attrs.from === `${room}/${nick}`,
            10_000,
          );
          assert.deepEqual(codes(left), [110, 332]);
        }
      }
      // The rooms of the live nodes went on: a message still reaches both, and nobody left them.
      for (const [i, room] of ROOMS.entries()) {
        if (!stayed.includes(room)) continue;
        bob.send(xml('message', { to: room, type: 'groupchat' }, xml('body', null, `still ${i}`)));
        for (const c of [alice, bob]) await c.receive(isGroupchat(`${room}/bob`, `still ${i}`));
      }
      for (const c of [alice, bob]) {
        const own = c === alice ? 'alice' : 'bob';
        const extra = c.received.filter(
          (e) => unavailableFromRoom(e) && stayed.some((r) => e.attrs.from === `${r}/${own}`),
        );
        assert.deepEqual(extra, [], 'rooms on live nodes keep their occupants');
      }
      // A persistent room lost with its node is loaded from storage by its next owner; a temporary
      // one is gone, and made anew.
      for (const room of moved) {
        const i = ROOMS.indexOf(room);
        const self = await enter(alice, room, 'alice');
        assert.deepEqual(codes(self), persistent(i) ? [110] : [110, 201], room);
      }
      for (const c of [alice, bob]) await c.close();
    } catch (err) {
      // The nodes' logs tell where each room was when the test failed.
      for (const n of nodes) console.error(`--- ${n.node} ---\n${n.log.slice(-3000)}`);
      throw err;
    } finally {
      const exits = await Promise.all(nodes.map((n) => n.stop()));
      assert.equal(exits[0], 0, `a1 exits cleanly\n${a1.log.slice(-3000)}`);
      assert.equal(exits[1], 0, `a2 exits cleanly\n${a2.log.slice(-3000)}`);
    }
  });

  test('a rolling restart: a node stopped with SIGTERM hands its rooms over, nobody leaves them, and takes them back when it returns', async () => {
    const prefix = `${PREFIX}-drain`;
    const nodes = ['b1', 'b2'].map(
      (name) => new NodeProcess(clusterNodeConfig(dirs, { name, redis: REDIS, prefix, postgres: db!.url })),
    );
    const [b1, b2] = nodes as [NodeProcess, NodeProcess];
    try {
      await b1.start();
      await b2.start();
      // Rooms of both nodes (chosen by where they hash), half of them temporary.
      const names = Array.from({ length: 200 }, (_, i) => `court${i}@${SERVICE}`);
      const onB2 = names.filter((r) => rendezvousOwner([b1.node, b2.node], r) === b2.node).slice(0, 4);
      const onB1 = names.filter((r) => rendezvousOwner([b1.node, b2.node], r) === b1.node).slice(0, 2);
      const rooms = [...onB2, ...onB1];
      const alice = await online(b1, 'alice');
      const bob = await online(b2, 'bob');
      for (const [i, room] of rooms.entries()) {
        await createRoom(alice, room, 'alice', persistent(i) ? { 'muc#roomconfig_persistentroom': '1' } : {});
        await enter(bob, room, 'bob');
        bob.send(xml('message', { to: room, type: 'groupchat' }, xml('body', null, `before ${i}`)));
        for (const c of [alice, bob]) await c.receive(isGroupchat(`${room}/bob`, `before ${i}`));
      }

      // b2 stops gracefully: its rooms go to b1 first, then bob's session ends (he leaves them).
      assert.equal(await b2.stop(), 0, b2.log.slice(-3000));
      assert.equal(b2.count('room handed to the node'), onB2.length, b2.log.slice(-3000));
      for (const room of rooms) await alice.receive(isPresenceFrom(`${room}/bob`, 'unavailable'), 10_000);
      await bob.waitClosed(5000);
      // Every room goes on, temporary ones included; alice never left any.
      const carol = await online(b1, 'carol');
      for (const [i, room] of rooms.entries()) {
        const history = carol.receive(isGroupchat(`${room}/bob`, `before ${i}`));
        const self = await enter(carol, room, 'carol');
        assert.deepEqual(codes(self), [110], room);
        await history;
        alice.send(xml('message', { to: room, type: 'groupchat' }, xml('body', null, `after ${i}`)));
        for (const c of [alice, carol]) await c.receive(isGroupchat(`${room}/alice`, `after ${i}`));
      }
      assert.deepEqual(alice.received.filter(unavailableFromRoom), [], 'alice stayed in every room');

      // b2 comes back (a new node name): the rooms that hash to it now move there, occupants and all.
      await b2.start();
      const back = rooms.filter((r) => rendezvousOwner([b1.node, b2.node], r) === b2.node);
      await b1.until(() => b1.count('room handed to the node') >= back.length, 'the rooms to move back');
      for (const [i, room] of rooms.entries()) {
        carol.send(xml('message', { to: room, type: 'groupchat' }, xml('body', null, `again ${i}`)));
        for (const c of [alice, carol]) await c.receive(isGroupchat(`${room}/carol`, `again ${i}`));
      }
      for (const c of [alice, carol]) assert.deepEqual(c.received.filter(unavailableFromRoom), []);
      for (const c of [alice, carol]) await c.close();
    } catch (err) {
      for (const n of nodes) console.error(`--- ${n.node} ---\n${n.log.slice(-3000)}`);
      throw err;
    } finally {
      await Promise.all(nodes.map((n) => n.stop()));
      await removeRedisKeys(REDIS, prefix);
    }
  });
});
