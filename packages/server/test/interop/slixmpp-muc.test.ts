// Group chat history and moderation with a client nobody here wrote: slixmpp 1.8 (Debian
// python3-slixmpp) joins a room, reads the history's stanza-ids (XEP-0359) and occupant ids
// (XEP-0421), retracts a message as a moderator with its XEP-0425 plugin (the Message Fastening
// form it speaks), takes its own message back with its XEP-0424 plugin, and reads the room's
// archive with its XEP-0313 plugin.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { xml, type Element } from '@natter/xml';
import { startTestServer, type TestServer } from '../support/test-server.js';
import type { TestClient } from '../support/test-client.js';
import {
  PW,
  SERVICE,
  adminItems,
  createRoom,
  enter,
  isGroupchat,
  login,
  occupantIdOf,
  roomArchive,
  stanzaIdOf,
  users,
} from '../support/muc.js';
import { ensureDebianPackages, runScriptedClient } from './third-party.js';

const here = dirname(fileURLToPath(import.meta.url));
const BOUND = { timeout: 90_000 };

interface Seen {
  from: string;
  body: string;
  stanza_id: string | null;
  stanza_id_by: string | null;
  occupant_id: string;
  retracted: boolean;
  retracts: string | null;
  id?: string;
  from_archive?: string;
}

describe('slixmpp in a Natter room: archive, occupant ids, retraction, moderation (XEP-0313, 0359, 0421, 0424, 0425)', () => {
  let server: TestServer;
  const clients: TestClient[] = [];
  before(async () => {
    await ensureDebianPackages('/usr/lib/python3/dist-packages/slixmpp/plugins/xep_0425/moderation.py', [
      'python3-slixmpp',
    ]);
    server = await startTestServer({ modules: { ping: { idleMs: 0 } } });
    await users(server, 'romeo', 'juliet', 'slix');
  });
  after(async () => {
    for (const c of clients) c.kill();
    await server.destroy();
  });

  test(
    'slixmpp moderates a message it found in the history; occupants hear it, the archive slixmpp reads has the tombstone',
    BOUND,
    async () => {
      const room = `slixroom@${SERVICE}`;
      const romeo = await login(server, 'romeo', 'owner');
      const juliet = await login(server, 'juliet', 'j');
      clients.push(romeo, juliet);
      await createRoom(romeo, room, 'Romeo');
      // slix is an admin, hence a moderator when it enters.
      const granted = await adminItems(romeo, room, 'set', [
        xml('item', { jid: 'slix@localhost', affiliation: 'admin' }),
      ]);
      assert.equal(granted.attrs.type, 'result');
      await enter(juliet, room, 'Juliet');
      juliet.send(xml('message', { to: room, type: 'groupchat' }, xml('body', null, 'buy cheap potions')));
      const spam = await romeo.receive(isGroupchat(`${room}/Juliet`, 'buy cheap potions'));
      const spamId = stanzaIdOf(spam, room)!;

      const { lines, output } = await runScriptedClient(join(here, 'slixmpp-muc-moderator.py'), [
        'slix@localhost',
        PW,
        '127.0.0.1',
        String(server.port('c2s')),
        room,
        'Slix',
        'buy cheap potions',
      ]);
      const get = <T>(key: string): T => {
        const line = lines.find((l) => key in l);
        assert.ok(line, `slixmpp printed ${key}:\n${output}`);
        return line[key] as T;
      };

      // What slixmpp saw in the history: the room's stanza-id and Juliet's occupant id.
      const history = get<Seen[]>('history');
      const seen = history.find((m) => m.body === 'buy cheap potions');
      assert.ok(seen, JSON.stringify(history));
      assert.equal(seen.stanza_id, spamId);
      assert.equal(seen.stanza_id_by, room);
      assert.equal(seen.occupant_id, occupantIdOf(spam));
      assert.equal(get<string>('moderated'), spamId);

      // Every occupant heard the moderation from the room itself.
      const heard: Element = await juliet.receive(
        (e) =>
          e.name === 'message' &&
          e.attrs.from === room &&
          e.getChild('retract', 'urn:xmpp:message-retract:1')?.attrs.id === spamId,
      );
      assert.equal(
        heard
          .getChild('retract', 'urn:xmpp:message-retract:1')
          ?.getChild('moderated', 'urn:xmpp:message-moderate:1')?.attrs.by,
        `${room}/Slix`,
      );

      // slixmpp's own message came back named and tagged.
      const own = get<Seen>('own');
      assert.ok(own.stanza_id);
      assert.ok(own.occupant_id && own.occupant_id !== seen.occupant_id);

      // The archive as slixmpp read it: the tombstone in place of the spam, its own message, and
      // the same thing as a Natter client reads.
      const archive = get<Seen[]>('archive');
      const tomb = archive.find((m) => m.id === spamId);
      assert.ok(tomb, JSON.stringify(archive));
      assert.equal(tomb.body, '');
      assert.equal(tomb.retracted, true);
      assert.equal(tomb.occupant_id, seen.occupant_id);
      assert.ok(
        archive.some((m) => m.retracts === spamId),
        'the announcement is in the archive',
      );
      // Its own message, retracted with its XEP-0424 plugin: a tombstone, still by the same author.
      assert.equal(get<string>('retracted'), own.stanza_id);
      const ownTomb = archive.find((m) => m.id === own.stanza_id);
      assert.ok(ownTomb, JSON.stringify(archive));
      assert.equal(ownTomb.body, '');
      assert.equal(ownTomb.retracted, true);
      assert.equal(ownTomb.occupant_id, own.occupant_id);
      for (const m of archive) assert.equal(m.from_archive, room);
      const ours = await roomArchive(romeo, room);
      assert.deepEqual(
        ours.results.map((r) => r.id),
        archive.map((m) => m.id),
      );
      assert.equal(ours.results.find((r) => r.id === spamId)?.message.getChild('body'), undefined);
    },
  );
});
