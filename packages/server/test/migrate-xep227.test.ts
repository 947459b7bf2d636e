import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { xml, type Element } from '@natter/xml';
import { NS, deriveScramCredentials, toBase64, type ScramCredentials } from '@natter/protocol';
import { startTestServer, type TestServer } from './support/test-server.js';
import { TestClient } from './support/test-client.js';
import { migrateCommand } from '../src/admin/migrate.js';

const silent = { update() {}, end() {} };
const KEEP_ARCHIVES = { modules: { mam: { retentionDays: 0 } } };

/** Runs `natter import|export …` in this process against `server`'s configuration and storage. */
async function natter(server: TestServer, ...argv: string[]): Promise<{ code: number; out: string[] }> {
  const out: string[] = [];
  const code = await migrateCommand(argv, () => server.config, { out: (l) => out.push(l), progress: silent });
  return { code, out };
}

function scram(hash: 'SHA-1' | 'SHA-256', k: ScramCredentials): string {
  return (
    `<scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-${hash}'>` +
    `<iter-count>${k.iterations}</iter-count><salt>${toBase64(k.salt)}</salt>` +
    `<server-key>${toBase64(k.serverKey)}</server-key><stored-key>${toBase64(k.storedKey)}</stored-key>` +
    `</scram-credentials>`
  );
}

async function rosterOf(c: TestClient): Promise<Element[]> {
  const res = await c.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS.roster })));
  return res.getChild('query', NS.roster)!.getChildren('item');
}

async function vcardOf(c: TestClient, to?: string): Promise<Element | undefined> {
  const res = await c.iq(xml('iq', { type: 'get', to }, xml('vCard', { xmlns: NS.vcard })));
  return res.getChild('vCard', NS.vcard);
}

/** The account's own archive (XEP-0313), oldest first: each message with the time it was archived. */
async function archiveOf(
  c: TestClient,
  fields: Record<string, string> = {},
): Promise<{ id: string; stamp: number; message: Element }[]> {
  const queryid = `q${Math.random().toString(36).slice(2)}`;
  const form = xml(
    'x',
    { xmlns: NS.dataForms, type: 'submit' },
    xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', null, NS.mam)),
    Object.entries(fields).map(([k, v]) => xml('field', { var: k }, xml('value', null, v))),
  );
  const res = await c.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: NS.mam, queryid }, form)));
  assert.equal(res.attrs.type, 'result', res.toString());
  return c.received
    .filter((e) => e.getChild('result', NS.mam)?.attrs.queryid === queryid)
    .map((e) => {
      const r = e.getChild('result', NS.mam)!;
      const fwd = r.getChild('forwarded', NS.forward)!;
      return {
        id: r.attrs.id!,
        stamp: Date.parse(fwd.getChild('delay', 'urn:xmpp:delay')!.attrs.stamp!),
        message: fwd.getChild('message')!,
      };
    });
}

/** The items of a PEP node of `owner` as `c` may read them, or the error condition. */
async function pepItems(c: TestClient, owner: string, node: string): Promise<Element[] | string> {
  const res = await c.iq(
    xml('iq', { type: 'get', to: owner }, xml('pubsub', { xmlns: NS.pubsub }, xml('items', { node }))),
  );
  if (res.attrs.type === 'error') return res.getChild('error')!.elements()[0]!.name;
  return res.getChild('pubsub', NS.pubsub)!.getChild('items')!.getChildren('item');
}

/** What the import of romeo's PEP nodes and archive must show (the same after an export and import). */
async function checkPepAndArchive(target: TestServer): Promise<void> {
  const romeo = await TestClient.login(target, 'romeo', 'romeo-pw', { mechanism: 'SCRAM-SHA-1' });
  const juliet = await TestClient.login(target, 'juliet', 'juliet-pw', { presence: true });
  try {
    const bookmarks = await pepItems(romeo, 'romeo@localhost', 'urn:xmpp:bookmarks:1');
    assert.ok(Array.isArray(bookmarks), String(bookmarks));
    // pubsub#max_items=max came across: PEP's default (1) would have kept only the newest.
    assert.deepEqual(bookmarks.map((i) => i.attrs.id).sort(), [
      'mantua@conference.localhost',
      'verona@conference.localhost',
    ]);
    const verona = bookmarks.find((i) => i.attrs.id === 'verona@conference.localhost')!;
    assert.equal(verona.getChild('conference', 'urn:xmpp:bookmarks:1')?.attrs.autojoin, 'true');
    // The whitelist came across too: a contact may read romeo's nick (presence access), not his bookmarks.
    assert.equal(typeof (await pepItems(juliet, 'romeo@localhost', 'urn:xmpp:bookmarks:1')), 'string');
    const nick = await pepItems(juliet, 'romeo@localhost', 'http://jabber.org/protocol/nick');
    assert.ok(Array.isArray(nick), String(nick));
    assert.equal(nick[0]?.getChildText('nick', 'http://jabber.org/protocol/nick'), 'Romeo');

    const archive = await archiveOf(romeo);
    assert.deepEqual(
      archive.slice(0, 3).map((m) => [m.message.getChildText('body'), new Date(m.stamp).toISOString()]),
      [
        ["A plague o' both your houses", '2020-01-01T09:00:00.000Z'],
        ['Did my heart love till now?', '2020-01-01T10:00:00.000Z'],
        ['O Romeo, Romeo!', '2020-01-01T10:01:00.250Z'],
      ],
    );
    // Dated 2300 in the file: stored at the time of the import, so that the archive's order and
    // every later message's time stay right.
    assert.ok(archive.length >= 4, `${archive.length} messages`);
    assert.equal(archive[3]!.message.getChildText('body'), 'From a wrong clock');
    assert.ok(
      Math.abs(archive[3]!.stamp - Date.now()) < 10 * 60_000,
      new Date(archive[3]!.stamp).toISOString(),
    );
    // A message archived now comes after it, at its own time.
    const live = juliet.receive((e) => e.getChildText('body') === 'Good night');
    romeo.send(xml('message', { to: 'juliet@localhost', type: 'chat' }, xml('body', null, 'Good night')));
    await live;
    await romeo.iq(xml('iq', { type: 'get' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    const latest = await archiveOf(romeo, {
      with: 'juliet@localhost',
      start: new Date(Date.now() - 60_000).toISOString(),
    });
    const night = latest.find((m) => m.message.getChildText('body') === 'Good night');
    assert.ok(night, latest.map((m) => m.message.toString()).join('\n'));
    assert.ok(Math.abs(night.stamp - Date.now()) < 60_000);
    assert.equal(archive[1]!.message.attrs.to, 'juliet@localhost');
    assert.ok(
      !archive[1]!.message.getChildren('stanza-id', NS.sid).some((s) => s.attrs.id === 'old-1'),
      "the old server's stanza id is gone",
    );
    const withJuliet = await archiveOf(romeo, { with: 'juliet@localhost', end: '2020-12-31T00:00:00Z' });
    assert.deepEqual(
      withJuliet.map((m) => m.message.getChildText('body')),
      ['Did my heart love till now?', 'O Romeo, Romeo!'],
    );
    const after = await archiveOf(romeo, { start: '2020-01-01T09:30:00Z', end: '2020-12-31T00:00:00Z' });
    assert.equal(after.length, 2);
  } finally {
    await romeo.close();
    await juliet.close();
  }
}

async function fails(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return (err as { condition?: string }).condition ?? (err as Error).message;
  }
  throw new Error('expected a failure');
}

describe('natter import/export xep227 (XEP-0227)', () => {
  let server: TestServer;
  let dir: string;
  before(async () => {
    // Without retention: the archived messages of 2020 would be purged a few seconds after start.
    server = await startTestServer(KEEP_ARCHIVES);
    dir = await mkdtemp(join(tmpdir(), 'natter-xep227-'));
    const romeoKeys = await deriveScramCredentials('SHA-1', 'romeo-pw', { iterations: 4096 });
    // The layout ejabberd writes: a main file including one file per host (XEP-0227 §5).
    await writeFile(
      join(dir, 'main.xml'),
      `<?xml version='1.0' encoding='UTF-8'?>
<server-data xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude'>
  <xi:include href='localhost.xml'/>
</server-data>`,
    );
    await writeFile(
      join(dir, 'localhost.xml'),
      `<?xml version='1.0' encoding='UTF-8'?>
<host xmlns='urn:xmpp:pie:0' jid='localhost'>
  <user name='romeo'>
    ${scram('SHA-1', romeoKeys)}
    <query xmlns='jabber:iq:roster'>
      <item jid='juliet@localhost' name='Juliet' subscription='both'><group>Lovers</group><group>Capulets</group></item>
      <item jid='mercutio@example.org' subscription='none' ask='subscribe'/>
    </query>
    <presence xmlns='jabber:client' from='benvolio@example.org/x' to='romeo@localhost' type='subscribe'><status>hi</status></presence>
    <vCard xmlns='vcard-temp'><FN>Romeo Montague</FN><NICKNAME>romeo</NICKNAME></vCard>
    <query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'><color>red</color></prefs></query>
    <offline-messages>
      <message xmlns='jabber:client' from='juliet@localhost/balcony' to='romeo@localhost' type='chat'>
        <body>Wherefore art thou?</body>
        <delay xmlns='urn:xmpp:delay' from='localhost' stamp='2020-01-02T03:04:05Z'>Offline Storage</delay>
      </message>
    </offline-messages>
    <query xmlns='jabber:iq:privacy'><list name='l'/></query>
    <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>
      <configure node='urn:xmpp:bookmarks:1'>
        <x xmlns='jabber:x:data' type='submit'>
          <field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#node_config</value></field>
          <field var='pubsub#access_model'><value>whitelist</value></field>
          <field var='pubsub#max_items'><value>max</value></field>
          <field var='pubsub#send_last_published_item'><value>never</value></field>
          <field var='pubsub#notify_retract'><value>sometimes</value></field>
        </x>
      </configure>
      <configure node='http://jabber.org/protocol/nick'/>
    </pubsub>
    <pubsub xmlns='http://jabber.org/protocol/pubsub'>
      <items node='urn:xmpp:bookmarks:1'>
        <item id='verona@conference.localhost'><conference xmlns='urn:xmpp:bookmarks:1' name='Verona' autojoin='true'><nick>romeo</nick></conference></item>
        <item id='mantua@conference.localhost'><conference xmlns='urn:xmpp:bookmarks:1' name='Mantua'/></item>
      </items>
      <items node='http://jabber.org/protocol/nick'>
        <item id='current'><nick xmlns='http://jabber.org/protocol/nick'>Romeo</nick></item>
      </items>
    </pubsub>
    <archive xmlns='urn:xmpp:pie:0#mam'>
      <result xmlns='urn:xmpp:mam:2' id='old-1'><forwarded xmlns='urn:xmpp:forward:0'>
        <delay xmlns='urn:xmpp:delay' stamp='2020-01-01T10:00:00Z'/>
        <message xmlns='jabber:client' from='romeo@localhost/phone' to='juliet@localhost' type='chat' id='m1'><body>Did my heart love till now?</body><stanza-id xmlns='urn:xmpp:sid:0' by='romeo@localhost' id='old-1'/></message>
      </forwarded></result>
      <result xmlns='urn:xmpp:mam:2' id='old-2'><forwarded xmlns='urn:xmpp:forward:0'>
        <delay xmlns='urn:xmpp:delay' stamp='2020-01-01T10:01:00.250Z'/>
        <message from='juliet@localhost/balcony' to='romeo@localhost/phone' type='chat' id='m2'><body>O Romeo, Romeo!</body></message>
      </forwarded></result>
      <result xmlns='urn:xmpp:mam:2' id='old-0'><forwarded xmlns='urn:xmpp:forward:0'>
        <delay xmlns='urn:xmpp:delay' stamp='2020-01-01T09:00:00Z'/>
        <message xmlns='jabber:client' from='mercutio@example.org/x' to='romeo@localhost' type='chat'><body>A plague o' both your houses</body></message>
      </forwarded></result>
      <result xmlns='urn:xmpp:mam:2' id='future'><forwarded xmlns='urn:xmpp:forward:0'>
        <delay xmlns='urn:xmpp:delay' stamp='2300-01-01T00:00:00Z'/>
        <message xmlns='jabber:client' from='juliet@localhost/balcony' to='romeo@localhost' type='chat'><body>From a wrong clock</body></message>
      </forwarded></result>
      <result xmlns='urn:xmpp:mam:2' id='no-time'><forwarded xmlns='urn:xmpp:forward:0'>
        <message xmlns='jabber:client' from='juliet@localhost/balcony' to='romeo@localhost' type='chat'><body>when?</body></message>
      </forwarded></result>
    </archive>
  </user>
  <user name='juliet' password='juliet-pw'>
    <query xmlns='jabber:iq:roster'><item jid='romeo@localhost' subscription='both'/></query>
  </user>
  <user name='Nurse' password='nurse-pw'/>
  <user name='nokeys'/>
</host>`,
    );
  });
  after(async () => {
    await server?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('--dry-run reads everything and writes nothing', async () => {
    const r = await natter(server, 'import', 'xep227', join(dir, 'main.xml'), '--dry-run');
    assert.match(r.out[0]!, /would import 3 of 4 accounts on localhost/);
    assert.equal(r.code, 1, 'an account without credentials fails');
    assert.equal(await server.core.accounts.exists('romeo', 'localhost'), false);
  });

  test('imports accounts, SCRAM keys, rosters, vCards, private XML and offline messages', async () => {
    const r = await natter(server, 'import', 'xep227', join(dir, 'main.xml'));
    const text = r.out.join('\n');
    assert.match(
      r.out[0]!,
      /imported 3 of 4 accounts on localhost \(0 existed, 1 failed\): 3 roster items, 1 vCards, 1 private XML fragments, 1 offline messages, 2 PEP nodes with 3 items, 4 archived messages/,
    );
    assert.match(
      text,
      /romeo@localhost: not imported: 1 archive entries without a forwarded message and its time/,
    );
    assert.match(text, /PEP node urn:xmpp:bookmarks:1: setting pubsub#notify_retract=sometimes/);
    assert.match(text, /1 accounts have SCRAM-SHA-1 keys only/);
    assert.match(text, /nokeys@localhost: not imported: no password and no SCRAM keys/);
    assert.match(text, /romeo@localhost: not imported: privacy lists/);
  });

  test('an account imported with SCRAM-SHA-1 keys logs in with SCRAM-SHA-1 and its roster, vCard and messages are there', async () => {
    const c = await TestClient.login(server, 'romeo', 'romeo-pw', {
      mechanism: 'SCRAM-SHA-1',
      presence: true,
    });
    const offline = await c.receive((e) => e.name === 'message');
    assert.equal(offline.getChildText('body'), 'Wherefore art thou?');
    // The time ejabberd stored it, not the time of the import.
    assert.equal(
      Date.parse(offline.getChild('delay', 'urn:xmpp:delay')?.attrs.stamp ?? ''),
      Date.parse('2020-01-02T03:04:05Z'),
    );
    const items = await rosterOf(c);
    const juliet = items.find((i) => i.attrs.jid === 'juliet@localhost')!;
    assert.equal(juliet.attrs.name, 'Juliet');
    assert.equal(juliet.attrs.subscription, 'both');
    assert.deepEqual(
      juliet
        .getChildren('group')
        .map((g) => g.text())
        .sort(),
      ['Capulets', 'Lovers'],
    );
    const mercutio = items.find((i) => i.attrs.jid === 'mercutio@example.org')!;
    assert.equal(mercutio.attrs.ask, 'subscribe');
    assert.equal((await vcardOf(c))?.getChildText('FN'), 'Romeo Montague');
    const priv = await c.iq(
      xml(
        'iq',
        { type: 'get' },
        xml('query', { xmlns: 'jabber:iq:private' }, xml('prefs', { xmlns: 'urn:example:prefs' })),
      ),
    );
    assert.equal(
      priv
        .getChild('query', 'jabber:iq:private')
        ?.getChild('prefs', 'urn:example:prefs')
        ?.getChildText('color'),
      'red',
    );
    await c.close();
  });

  test('PEP nodes keep their items and settings; the archive keeps its messages at their times', async () => {
    await checkPepAndArchive(server);
  });

  test('with the default retention (365 days), the summary says which archived messages the server will delete', async () => {
    const fresh = await startTestServer();
    try {
      const r = await natter(fresh, 'import', 'xep227', join(dir, 'main.xml'), '--dry-run');
      assert.match(
        r.out.join('\n'),
        /3 archived messages are older than modules\.mam\.retentionDays: the server deletes them at its next purge/,
      );
    } finally {
      await fresh.destroy();
    }
  });

  test('decision 0015: SCRAM-SHA-256 fails like a wrong password until a PLAIN login adds its keys', async () => {
    assert.equal(
      await fails(TestClient.login(server, 'romeo', 'romeo-pw', { mechanism: 'SCRAM-SHA-256' })),
      'not-authorized',
    );
    assert.equal(
      await fails(TestClient.login(server, 'romeo', 'wrong', { mechanism: 'PLAIN' })),
      'not-authorized',
    );
    const plain = await TestClient.login(server, 'romeo', 'romeo-pw', { mechanism: 'PLAIN' });
    await plain.close();
    const keys = await server.core.accounts.exportKeys('romeo', 'localhost');
    assert.ok(keys?.['SHA-256'], 'the SHA-256 keys were derived at the PLAIN login');
    const c = await TestClient.login(server, 'romeo', 'romeo-pw', { mechanism: 'SCRAM-SHA-256' });
    await c.close();
  });

  test('decision 0015: auth.offerScramSha256 false withholds SCRAM-SHA-256 on SASL and SASL2, so clients pick SCRAM-SHA-1', async () => {
    const other = await startTestServer({ auth: { offerScramSha256: false } });
    try {
      const c = await TestClient.open(other, 'starttls');
      const sasl = c
        .features!.getChild('mechanisms', NS.sasl)!
        .getChildren('mechanism')
        .map((m) => m.text());
      assert.ok(!sasl.some((m) => m.startsWith('SCRAM-SHA-256')), sasl.join(' '));
      assert.ok(sasl.includes('SCRAM-SHA-1') && sasl.includes('PLAIN'), sasl.join(' '));
      const sasl2 = c
        .features!.getChild('authentication', NS.sasl2)
        ?.getChildren('mechanism')
        .map((m) => m.text());
      if (sasl2) assert.ok(!sasl2.some((m) => m.startsWith('SCRAM-SHA-256')), sasl2.join(' '));
      await assert.rejects(c.authenticate('nobody', 'x', 'SCRAM-SHA-256'), /invalid-mechanism/);
    } finally {
      await other.destroy();
    }
  });

  test('a plaintext password becomes SCRAM keys for both hashes; usernames are normalised', async () => {
    const keys = await server.core.accounts.exportKeys('nurse', 'localhost');
    assert.ok(keys?.['SHA-1'] && keys['SHA-256']);
    const c = await TestClient.login(server, 'nurse', 'nurse-pw', { mechanism: 'SCRAM-SHA-256' });
    await c.close();
  });

  test('existing accounts are skipped with a report line, or replaced with --replace', async () => {
    const again = await natter(server, 'import', 'xep227', join(dir, 'main.xml'));
    assert.match(again.out[0]!, /imported 0 of 4 accounts on localhost \(3 existed, 1 failed\)/);
    assert.match(again.out.join('\n'), /juliet@localhost: skipped, the account exists/);
    await server.core.accounts.setPassword('juliet', 'localhost', 'changed');
    const replaced = await natter(server, 'import', 'xep227', join(dir, 'main.xml'), '--replace');
    assert.match(replaced.out[0]!, /imported 3 of 4/);
    const c = await TestClient.login(server, 'juliet', 'juliet-pw');
    await c.close();
    // The archive and the nodes were replaced, not added to.
    await checkPepAndArchive(server);
  });

  test('an xi:include that leaves the directory of the file is refused', async () => {
    const evil = join(dir, 'evil');
    await mkdir(evil);
    await writeFile(
      join(evil, 'main.xml'),
      `<server-data xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude'><xi:include href='../localhost.xml'/></server-data>`,
    );
    await assert.rejects(natter(server, 'import', 'xep227', join(evil, 'main.xml')), /leaves the directory/);
    await writeFile(
      join(evil, 'dtd.xml'),
      `<!DOCTYPE x [<!ENTITY a "aaaa">]><server-data xmlns='urn:xmpp:pie:0'/>`,
    );
    await assert.rejects(natter(server, 'import', 'xep227', join(evil, 'dtd.xml')), /DTD/);
  });

  test('export writes XEP-0227 v1.1 with SCRAM keys and no password, and imports into another server unchanged', async () => {
    // Over an existing world-readable file: the keys must not stay readable by others.
    const file = join(dir, 'export.xml');
    await writeFile(file, 'an older export', { mode: 0o644 });
    const r = await natter(server, 'export', 'xep227', file);
    assert.match(r.out[0]!, /exported 3 accounts of localhost/);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const text = await readFile(file, 'utf8');
    assert.match(text, /<server-data xmlns='urn:xmpp:pie:0'>/);
    assert.match(text, /mechanism="SCRAM-SHA-1"/);
    assert.doesNotMatch(text, /password=/);
    assert.match(r.out[0]!, /with \d+ archived messages/);
    assert.match(text, /<archive xmlns="urn:xmpp:pie:0#mam"><result xmlns="urn:xmpp:mam:2"/);
    assert.match(text, /<pubsub xmlns="http:\/\/jabber.org\/protocol\/pubsub#owner"><configure node=/);
    const other = await startTestServer(KEEP_ARCHIVES);
    try {
      const imported = await natter(other, 'import', 'xep227', file);
      assert.match(imported.out[0]!, /imported 3 of 3 accounts/);
      // romeo's keys are SHA-1 only again (--replace above put the file's keys back); nurse has both.
      const nurse = await TestClient.login(other, 'nurse', 'nurse-pw', { mechanism: 'SCRAM-SHA-256' });
      await nurse.close();
      const c = await TestClient.login(other, 'romeo', 'romeo-pw', { mechanism: 'SCRAM-SHA-1' });
      const items = await rosterOf(c);
      assert.equal(items.length, 2);
      assert.equal((await vcardOf(c))?.getChildText('FN'), 'Romeo Montague');
      await c.close();
      await checkPepAndArchive(other);
    } finally {
      await other.destroy();
    }
  });
});
