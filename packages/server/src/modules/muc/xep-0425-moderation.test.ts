import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import type { TestClient } from '../../../test/support/test-client.js';
import {
  SERVICE,
  createRoom,
  enter,
  errorCondition,
  isGroupchat,
  isPresenceFrom,
  login,
  users,
  occupantIdOf,
  roomArchive,
  stanzaIdOf,
} from '../../../test/support/muc.js';

const RETRACT = 'urn:xmpp:message-retract:1';
const RETRACT_0 = 'urn:xmpp:message-retract:0';
const MODERATE = 'urn:xmpp:message-moderate:1';
const MODERATE_0 = 'urn:xmpp:message-moderate:0';
const FASTEN = 'urn:xmpp:fasten:0';

const moderateIq = (room: string, id: string, reason?: string) =>
  xml(
    'iq',
    { type: 'set', to: room },
    xml(
      'moderate',
      { xmlns: MODERATE, id },
      xml('retract', { xmlns: RETRACT }),
      reason !== undefined && xml('reason', null, reason),
    ),
  );

const isAnnouncement = (room: string, id: string) => (e: Element) =>
  e.name === 'message' && e.attrs.from === room && e.getChild('retract', RETRACT)?.attrs.id === id;

describe('MUC: retraction (XEP-0424) and moderation (XEP-0425)', () => {
  let server: TestServer;
  const dataDir = mkdtempSync(joinPath(tmpdir(), 'natter-muc-moderation-'));
  const clients: TestClient[] = [];
  const client = async (user: string, resource: string) => {
    const c = await login(server, user, resource);
    clients.push(c);
    return c;
  };
  /** romeo owns (moderator), juliet and nurse take part; juliet says `body`: its stanza-id. */
  const room3 = async (name: string, body: string, fields: Record<string, string> = {}) => {
    const room = `${name}@${SERVICE}`;
    const romeo = await client('romeo', name);
    const juliet = await client('juliet', name);
    const nurse = await client('nurse', name);
    await createRoom(romeo, room, 'Romeo', fields);
    await enter(juliet, room, 'Juliet');
    await enter(nurse, room, 'Nurse');
    await romeo.receive(isPresenceFrom(`${room}/Nurse`));
    juliet.send(xml('message', { to: room, type: 'groupchat', id: 'orig' }, xml('body', null, body)));
    const got = await nurse.receive(isGroupchat(`${room}/Juliet`, body));
    await romeo.receive(isGroupchat(`${room}/Juliet`, body));
    await juliet.receive(isGroupchat(`${room}/Juliet`, body));
    const id = stanzaIdOf(got, room)!;
    assert.ok(id);
    return { room, romeo, juliet, nurse, id, julietId: occupantIdOf(got)! };
  };
  before(async () => {
    server = await startTestServer({ modules: { ping: { idleMs: 0 } } }, { dataDir });
    await users(server, 'romeo', 'juliet', 'nurse', 'tybalt');
  });
  after(async () => {
    for (const c of clients) c.kill();
    await server.destroy();
  });

  test('XEP-0424: an occupant retracts its own message; everyone hears it, the archive keeps a tombstone, newcomers’ history drops it', async () => {
    const { room, juliet, nurse, id, julietId } = await room3('oops', 'wrong room, sorry');
    juliet.send(
      xml(
        'message',
        { to: room, type: 'groupchat', id: 'r1' },
        xml('retract', { xmlns: RETRACT, id }),
        xml('fallback', { xmlns: 'urn:xmpp:fallback:0', for: RETRACT }),
        xml('body', null, 'This person attempted to retract a previous message'),
        xml('store', { xmlns: NS.hints }),
      ),
    );
    const heard = await nurse.receive(
      (e) => e.name === 'message' && e.getChild('retract', RETRACT)?.attrs.id === id,
    );
    assert.equal(heard.attrs.from, `${room}/Juliet`);
    assert.equal(occupantIdOf(heard), julietId);
    const { results } = await roomArchive(nurse, room);
    const original = results.find((r) => r.id === id)!;
    assert.equal(original.message.getChild('body'), undefined, 'the text is gone from the archive');
    const mark = original.message.getChild('retracted', RETRACT);
    assert.ok(mark?.attrs.stamp, original.message.toString());
    assert.equal(mark?.attrs.id, stanzaIdOf(heard, room), 'the tombstone names the retraction');
    assert.equal(occupantIdOf(original.message), julietId, 'and still says who wrote it');
    // A newcomer's history has the retraction, not the retracted message.
    const tybalt = await client('tybalt', 'oops');
    tybalt.send(xml('presence', { to: `${room}/Tybalt` }, xml('x', { xmlns: NS.muc })));
    await tybalt.receive((e) => e.name === 'message' && e.getChild('subject') !== undefined);
    const bodies = tybalt.received.filter((e) => e.name === 'message').map((e) => e.getChildText('body'));
    assert.ok(!bodies.includes('wrong room, sorry'), bodies.join('|'));
  });

  test('XEP-0424: retracting someone else’s message is refused (forbidden) and not relayed; the message stays', async () => {
    const { room, romeo, nurse, id } = await room3('notyours', 'my words');
    nurse.send(
      xml(
        'message',
        { to: room, type: 'groupchat', id: 'r2' },
        xml('retract', { xmlns: RETRACT, id }),
        xml('body', null, 'retracted'),
      ),
    );
    const err = await nurse.receive(
      (e) => e.name === 'message' && e.attrs.type === 'error' && e.attrs.id === 'r2',
    );
    assert.equal(errorCondition(err), 'forbidden');
    await romeo.nothing((e) => e.name === 'message' && e.getChild('retract', RETRACT) !== undefined);
    // An occupant cannot pass itself off as a moderator either.
    nurse.send(
      xml(
        'message',
        { to: room, type: 'groupchat', id: 'r3' },
        xml('retract', { xmlns: RETRACT, id }, xml('moderated', { xmlns: MODERATE, by: `${room}/Romeo` })),
      ),
    );
    const err2 = await nurse.receive(
      (e) => e.name === 'message' && e.attrs.type === 'error' && e.attrs.id === 'r3',
    );
    assert.equal(errorCondition(err2), 'forbidden');
    const { results } = await roomArchive(romeo, room);
    assert.equal(results.find((r) => r.id === id)?.message.getChildText('body'), 'my words');
  });

  test('XEP-0425: a moderator retracts a message; every occupant hears it from the room (both protocol versions), the archive keeps a tombstone with who and why', async () => {
    const { room, romeo, juliet, nurse, id, julietId } = await room3('spam', 'DM me for free potions', {
      'muc#roomconfig_persistentroom': '1',
    });
    const res = await romeo.iq(moderateIq(room, id, 'Spam'));
    assert.equal(res.attrs.type, 'result', res.toString());
    for (const c of [romeo, juliet, nurse]) {
      const a = await c.receive(isAnnouncement(room, id));
      const moderated = a.getChild('retract', RETRACT)!.getChild('moderated', MODERATE)!;
      assert.equal(moderated.attrs.by, `${room}/Romeo`);
      assert.ok(occupantIdOf(moderated), 'the moderator’s occupant id');
      assert.equal(a.getChild('retract', RETRACT)!.getChildText('reason'), 'Spam');
      const legacy = a.getChild('apply-to', FASTEN);
      assert.equal(legacy?.attrs.id, id);
      assert.ok(legacy?.getChild('moderated', MODERATE_0)?.getChild('retract', RETRACT_0));
    }
    const { results } = await roomArchive(nurse, room);
    const t = results.find((r) => r.id === id)!.message;
    assert.equal(t.getChild('body'), undefined);
    assert.equal(occupantIdOf(t), julietId);
    const retracted = t.getChild('retracted', RETRACT)!;
    assert.equal(retracted.getChild('moderated', MODERATE)?.attrs.by, `${room}/Romeo`);
    assert.equal(retracted.getChildText('reason'), 'Spam');
    assert.ok(
      results.some((r) => r.message.getChild('retract', RETRACT)?.attrs.id === id),
      'the announcement is archived',
    );
    // Asking again changes nothing and announces nothing.
    const again = await romeo.iq(moderateIq(room, id));
    assert.equal(again.attrs.type, 'result');
    await nurse.nothing(isAnnouncement(room, id));
    // The persistent room's stored history lost it too: after a restart newcomers do not get it.
    for (const c of [romeo, juliet, nurse]) c.kill();
    await server.stop();
    server = await startTestServer({ modules: { ping: { idleMs: 0 } } }, { dataDir });
    const tybalt = await client('tybalt', 'spam');
    tybalt.send(xml('presence', { to: `${room}/Tybalt` }, xml('x', { xmlns: NS.muc })));
    await tybalt.receive((e) => e.name === 'message' && e.getChild('subject') !== undefined);
    const bodies = tybalt.received.filter((e) => e.name === 'message').map((e) => e.getChildText('body'));
    assert.ok(!bodies.includes('DM me for free potions'), bodies.join('|'));
  });

  test('XEP-0425: only moderators; unknown ids, other actions and long reasons get their errors; the earlier <apply-to/> form works', async () => {
    const { room, romeo, juliet, nurse, id } = await room3('rules', 'fine words');
    const bySomeone = await nurse.iq(moderateIq(room, id));
    assert.equal(errorCondition(bySomeone), 'forbidden');
    const unknown = await romeo.iq(moderateIq(room, 'no-such-id'));
    assert.equal(errorCondition(unknown), 'item-not-found');
    const other = await romeo.iq(
      xml('iq', { type: 'set', to: room }, xml('moderate', { xmlns: MODERATE, id })),
    );
    assert.equal(errorCondition(other), 'feature-not-implemented');
    const long = await romeo.iq(moderateIq(room, id, 'x'.repeat(20_000)));
    assert.equal(errorCondition(long), 'not-acceptable');
    await juliet.nothing(isAnnouncement(room, id));
    // XEP-0425 0.2 (Message Fastening), as slixmpp and older clients send it.
    const res = await romeo.iq(
      xml(
        'iq',
        { type: 'set', to: room },
        xml(
          'apply-to',
          { xmlns: FASTEN, id },
          xml(
            'moderate',
            { xmlns: MODERATE_0 },
            xml('retract', { xmlns: RETRACT_0 }),
            xml('reason', null, 'old client'),
          ),
        ),
      ),
    );
    assert.equal(res.attrs.type, 'result', res.toString());
    const a = await juliet.receive(isAnnouncement(room, id));
    assert.equal(
      a.getChild('apply-to', FASTEN)?.getChild('moderated', MODERATE_0)?.getChildText('reason'),
      'old client',
    );
  });

  test('XEP-0425 without an archive: a message still in the room’s history can be moderated', async () => {
    const { room, romeo, nurse, id } = await room3('noarchive', 'recent words', {
      'muc#roomconfig_enablearchiving': '0',
    });
    const res = await romeo.iq(moderateIq(room, id));
    assert.equal(res.attrs.type, 'result', res.toString());
    await nurse.receive(isAnnouncement(room, id));
  });
});
