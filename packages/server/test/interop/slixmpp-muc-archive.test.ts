// One client nobody here wrote, two servers: slixmpp 1.8 (Debian python3-slixmpp) enters a room,
// talks, and reads the room's archive (XEP-0313 on a MUC, stanza-ids of XEP-0359) on Natter and on
// Prosody 0.12 (Debian, mod_muc_mam). What it sees must agree.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { PW, SERVICE, users } from '../support/muc.js';
import { ensureDebianPackages, runScriptedClient } from './third-party.js';
import { startProsody } from '../../../client/test/prosody.js';

const here = dirname(fileURLToPath(import.meta.url));
const BOUND = { timeout: 120_000 };

interface Seen {
  sent: string[];
  archive: { id: string; from: string; author: string; body: string }[];
}

async function archiveSession(jid: string, password: string, port: number, room: string): Promise<Seen> {
  const { lines, output } = await runScriptedClient(join(here, 'slixmpp-muc-archive.py'), [
    jid,
    password,
    '127.0.0.1',
    String(port),
    room,
    'Slix',
  ]);
  const sent = lines.find((l) => 'sent' in l)?.sent as string[] | undefined;
  const archive = lines.find((l) => 'archive' in l)?.archive as Seen['archive'] | undefined;
  assert.ok(sent && archive, output);
  return { sent, archive };
}

/** What a user of either server must see: each message named, and the archive listing them under those names, from the room. */
function check(seen: Seen, room: string): void {
  assert.equal(seen.sent.length, 3);
  for (const id of seen.sent) assert.ok(id, 'every message came back with the room’s stanza-id');
  const tail = seen.archive.slice(-3);
  assert.deepEqual(
    tail.map((m) => m.body),
    ['one', 'two', 'three'],
  );
  assert.deepEqual(
    tail.map((m) => m.id),
    seen.sent,
    'the archive’s ids are the stanza-ids',
  );
  for (const m of tail) {
    assert.equal(m.from, room, 'results come from the room');
    assert.equal(m.author, `${room}/Slix`);
  }
}

describe('slixmpp reads a room’s archive on Natter and on Prosody (XEP-0313, XEP-0359)', () => {
  let server: TestServer;
  let prosody: Awaited<ReturnType<typeof startProsody>> | undefined;
  before(async () => {
    await ensureDebianPackages('/usr/lib/python3/dist-packages/slixmpp/plugins/xep_0313/mam.py', [
      'python3-slixmpp',
    ]);
    server = await startTestServer({ modules: { ping: { idleMs: 0 } } });
    await users(server, 'slix');
    prosody = await startProsody({ users: 2, mucModules: ['muc_mam'] });
  });
  after(async () => {
    await prosody?.stop();
    await server.destroy();
  });

  test('Natter', BOUND, async () => {
    const room = `archive-interop@${SERVICE}`;
    check(await archiveSession('slix@localhost', PW, server.port('c2s'), room), room);
  });

  test('Prosody (the same script, the same expectations)', BOUND, async () => {
    const p = prosody!;
    const user = p.users[0]!;
    const room = `archive-interop@conference.localhost`;
    const port = Number(new URL(p.service.tcp).port);
    check(await archiveSession(user.jid, user.password, port, room), room);
  });
});
