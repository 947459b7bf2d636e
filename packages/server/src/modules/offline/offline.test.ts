import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml, type Element } from '@natter/xml';
import { NS, parseDateTime } from '@natter/protocol';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import { TestClient } from '../../../test/support/test-client.js';
import type { OfflineApi } from './offline.js';
import { shouldStore } from './xep-0160-policy.js';
import { parseElement } from '@natter/xml';
import { builtinModules } from '../index.js';
import { sql } from 'kysely';

const PW = 'secret-password';
/** Only the modules under test (other modules' hooks would change what the clients see). */
const MINE = new Set(['disco', 'ping', 'version', 'register', 'offline']);
const others = Object.fromEntries(
  builtinModules.filter((m) => !MINE.has(m.name)).map((m) => [m.name, false as const]),
);
const config = { modules: { ...others, ping: { idleMs: 0 }, offline: { quota: 3 } } };

const msg = (to: string, body: string | undefined, type: string | undefined = 'chat', ...extra: Element[]) =>
  xml(
    'message',
    { to, type, id: `m-${Math.random().toString(36).slice(2)}` },
    body !== undefined && xml('body', null, body),
    ...extra,
  );

describe('offline messages (XEP-0160, XEP-0203)', () => {
  let server: TestServer;
  let users = 0;
  const fresh = async () => {
    const name = `u${++users}`;
    await server.addUser(name, PW);
    return name;
  };
  before(async () => {
    server = await startTestServer(config);
    await server.addUser('romeo', PW);
  });
  after(() => server?.destroy());

  const api = () => server.core.hosts.get('localhost')!.provided.get('offline') as OfflineApi;

  test('XEP-0160 §2: messages to an offline account are stored, then delivered in order with XEP-0203 delay stamps at the next initial presence', async () => {
    const juliet = await fresh();
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'a', presence: true });
    const before = Date.now();
    romeo.send(msg(`${juliet}@localhost`, 'one'));
    // RFC 6121 §8.5.3.2.1: a chat message to a resource that is gone is handled as if sent to the bare JID
    romeo.send(msg(`${juliet}@localhost/gone`, 'two', 'chat'));
    romeo.send(msg(`${juliet}@localhost`, 'three', undefined));
    await romeo.nothing((e) => e.name === 'message', 300);
    assert.equal(await api().count(`${juliet}@localhost`), 3);

    const j = await TestClient.login(server, juliet, PW, { resource: 'r' });
    await j.nothing('message', 200); // nothing before initial presence
    j.send(xml('presence'));
    const got = [await j.receive('message'), await j.receive('message'), await j.receive('message')];
    assert.deepEqual(
      got.map((m) => m.getChildText('body')),
      ['one', 'two', 'three'],
    );
    for (const m of got) {
      assert.equal(m.attrs.from, 'romeo@localhost/a');
      const delay = m.getChild('delay', NS.delay);
      assert.ok(delay, 'delay element');
      assert.equal(delay.attrs.from, 'localhost');
      const stamp = parseDateTime(delay.attrs.stamp);
      assert.ok(stamp && stamp.getTime() >= before - 1000 && stamp.getTime() <= Date.now());
    }
    assert.equal(got[1]!.attrs.type, 'chat');
    assert.equal(await api().count(`${juliet}@localhost`), 0);
    // delivered once: a second resource coming online gets nothing
    const j2 = await TestClient.login(server, juliet, PW, { resource: 'r2', presence: true });
    await j2.nothing('message', 300);
    await Promise.all([romeo.close(), j.close(), j2.close()]);
  });

  test('XEP-0160 §3: receipt requests (XEP-0184) and other payloads stay in the stored stanza', async () => {
    const juliet = await fresh();
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'b', presence: true });
    romeo.send(
      xml(
        'message',
        { to: `${juliet}@localhost`, type: 'chat', id: 'rcpt-1' },
        xml('body', null, 'ack me'),
        xml('request', { xmlns: NS.receipts }),
        xml('thread', null, 't1'),
        xml('custom', { xmlns: 'urn:example:x', a: '1' }, 'payload'),
      ),
    );
    await new Promise((r) => setTimeout(r, 150));
    const j = await TestClient.login(server, juliet, PW, { resource: 'r', presence: true });
    const m = await j.receive('message');
    assert.equal(m.attrs.id, 'rcpt-1');
    assert.ok(m.getChild('request', NS.receipts));
    assert.equal(m.getChildText('thread'), 't1');
    assert.equal(m.getChild('custom', 'urn:example:x')?.text(), 'payload');
    assert.equal(m.getChild('custom', 'urn:example:x')?.attrs.a, '1');
    await Promise.all([romeo.close(), j.close()]);
  });

  test('XEP-0160 §3: when the offline store is full the sender gets service-unavailable saying so', async () => {
    const juliet = await fresh();
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'c', presence: true });
    for (let i = 0; i < 3; i++) romeo.send(msg(`${juliet}@localhost`, `m${i}`));
    await romeo.nothing('message', 200);
    romeo.send(
      xml(
        'message',
        { to: `${juliet}@localhost`, type: 'chat', id: 'over' },
        xml('body', null, 'one too many'),
      ),
    );
    const err = await romeo.receive((e) => e.name === 'message' && e.attrs.type === 'error');
    assert.equal(err.attrs.id, 'over');
    assert.equal(err.attrs.from, `${juliet}@localhost`);
    const error = err.getChild('error');
    assert.ok(error?.getChild('service-unavailable', NS.stanzas));
    assert.match(error?.getChildText('text', NS.stanzas) ?? '', /full/);
    assert.equal(await api().count(`${juliet}@localhost`), 3);
    await romeo.close();
  });

  test('XEP-0160: when storage fails the sender gets internal-server-error, not silence; later messages are stored again', async () => {
    const juliet = await fresh();
    const owner = `${juliet}@localhost`;
    const db = server.core.database.db;
    // A storage that refuses this account's rows, as a full disk or a broken table would.
    if (server.core.database.engine === 'postgres') {
      await sql`create function natter_test_refuse() returns trigger language plpgsql as $$
        begin raise exception 'disk full (test)'; end $$`.execute(db);
      await sql`create trigger natter_test_refuse before insert on offline_messages for each row
        when (new.owner = ${sql.lit(owner)}) execute function natter_test_refuse()`.execute(db);
    } else
      await sql`create trigger natter_test_refuse before insert on offline_messages
        when new.owner = ${sql.lit(owner)} begin select raise(fail, 'disk full (test)'); end`.execute(db);
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'f', presence: true });
    try {
      romeo.send(xml('message', { to: owner, type: 'chat', id: 'lost?' }, xml('body', null, 'keep me')));
      const err = await romeo.receive((e) => e.name === 'message' && e.attrs.type === 'error');
      assert.equal(err.attrs.id, 'lost?');
      assert.equal(err.attrs.from, owner);
      assert.ok(err.getChild('error')?.getChild('internal-server-error', NS.stanzas));
      assert.match(err.getChild('error')?.getChildText('text', NS.stanzas) ?? '', /could not be stored/);
    } finally {
      await sql`drop trigger natter_test_refuse${sql.raw(server.core.database.engine === 'postgres' ? ' on offline_messages' : '')}`.execute(
        db,
      );
      if (server.core.database.engine === 'postgres')
        await sql`drop function natter_test_refuse()`.execute(db);
    }
    romeo.send(msg(owner, 'after the repair'));
    const end = Date.now() + 10_000;
    while ((await api().count(owner)) < 1) {
      assert.ok(Date.now() < end, 'the message after the repair is stored');
      await new Promise((r) => setTimeout(r, 20));
    }
    await romeo.nothing((e) => e.name === 'message' && e.attrs.type === 'error', 100);
    await romeo.close();
  });

  test('XEP-0160 §3: error, groupchat and headline messages, bare chat states and no-store hints are not stored; store hints are', async () => {
    const juliet = await fresh();
    const to = `${juliet}@localhost`;
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'd', presence: true });
    romeo.send(msg(to, 'headline', 'headline'));
    romeo.send(msg(to, 'gc', 'groupchat'));
    romeo.send(msg(to, 'err', 'error'));
    romeo.send(msg(to, undefined, 'chat', xml('composing', { xmlns: NS.chatStates })));
    romeo.send(msg(to, 'secret', 'chat', xml('no-store', { xmlns: NS.hints })));
    romeo.send(
      msg(to, undefined, 'chat', xml('active', { xmlns: NS.chatStates }), xml('store', { xmlns: NS.hints })),
    );
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(await api().count(to), 1);
    const j = await TestClient.login(server, juliet, PW, { resource: 'r', presence: true });
    const m = await j.receive('message');
    assert.ok(m.getChild('active', NS.chatStates));
    await j.nothing('message', 200);
    await Promise.all([romeo.close(), j.close()]);
  });

  test('XEP-0160 §3: the storage policy in isolation', () => {
    const p = (s: string) => shouldStore(parseElement(s));
    assert.equal(p(`<message xmlns='jabber:client' type='chat'><body>x</body></message>`), true);
    assert.equal(p(`<message xmlns='jabber:client'><body>x</body></message>`), true);
    assert.equal(p(`<message xmlns='jabber:client' type='chat'><body/></message>`), false);
    assert.equal(
      p(`<message xmlns='jabber:client' type='chat'><received xmlns='urn:xmpp:receipts' id='a'/></message>`),
      true,
    );
    assert.equal(
      p(
        `<message xmlns='jabber:client' type='chat'><request xmlns='urn:xmpp:receipts'/><thread>t</thread></message>`,
      ),
      false,
    );
    assert.equal(
      p(
        `<message xmlns='jabber:client' type='headline'><body>x</body><store xmlns='urn:xmpp:hints'/></message>`,
      ),
      false,
    );
  });

  test('XEP-0160: stored messages survive a server restart', async () => {
    const juliet = await fresh();
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'e', presence: true });
    romeo.send(msg(`${juliet}@localhost`, 'before restart'));
    await romeo.nothing('message', 200);
    await server.stop();
    const again = await startTestServer(config, { dataDir: server.dataDir });
    server = again;
    const j = await TestClient.login(server, juliet, PW, { resource: 'r', presence: true });
    const m = await j.receive('message');
    assert.equal(m.getChildText('body'), 'before restart');
    assert.ok(m.getChild('delay', NS.delay));
    await j.close();
  });

  test('XEP-0160: a deleted account loses its stored messages', async () => {
    const juliet = await fresh();
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'f', presence: true });
    romeo.send(msg(`${juliet}@localhost`, 'lost'));
    await romeo.nothing('message', 200);
    assert.equal(await api().count(`${juliet}@localhost`), 1);
    const j = await TestClient.login(server, juliet, PW, { resource: 'r' });
    const res = await j.iq(
      xml('iq', { type: 'set', to: 'localhost' }, xml('query', { xmlns: NS.register }, xml('remove'))),
    );
    assert.equal(res.attrs.type, 'result');
    assert.equal(await api().count(`${juliet}@localhost`), 0);
    await romeo.close();
  });
});

describe('offline messages: a large backlog', () => {
  test('XEP-0160 with RFC 6120 §13.12: a backlog 25 times the send buffer cap is delivered whole and in order, not cut off as a slow reader', async () => {
    const server = await startTestServer({
      limits: { maxSendBufferBytes: 16 * 1024, disabled: true },
      modules: { ...others, ping: { idleMs: 0 }, offline: { quota: 1000 } },
    });
    try {
      await server.addUser('romeo', PW);
      await server.addUser('juliet', PW);
      const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'bulk', presence: true });
      const filler = 'x'.repeat(1000);
      const count = 400;
      for (let i = 0; i < count; i++) romeo.send(msg('juliet@localhost', `${i} ${filler}`));
      const stored = async () =>
        (server.core.hosts.get('localhost')!.provided.get('offline') as OfflineApi).count('juliet@localhost');
      for (let t = 0; t < 100 && (await stored()) < count; t++) await new Promise((r) => setTimeout(r, 50));
      assert.equal(await stored(), count);

      const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'r', presence: true });
      const got: number[] = [];
      while (got.length < count) {
        const m = await juliet.receive('message', 5000);
        got.push(Number(m.getChildText('body')!.split(' ')[0]));
      }
      assert.deepEqual(
        got,
        Array.from({ length: count }, (_, i) => i),
      );
      assert.equal(juliet.closed, false, 'still connected');
      // The last delivered rows are deleted just after they are handed over (later on PostgreSQL).
      for (let t = 0; t < 100 && (await stored()) > 0; t++) await new Promise((r) => setTimeout(r, 50));
      assert.equal(await stored(), 0);
      await juliet.close();
      await romeo.close();
    } finally {
      await server.destroy();
    }
  });
  test('XEP-0160: messages taken from storage but not handed over (the client went away midway) are kept for the next login, in order', async () => {
    const server = await startTestServer({
      limits: { maxSendBufferBytes: 16 * 1024, disabled: true },
      modules: { ...others, ping: { idleMs: 0 }, offline: { quota: 1000 } },
    });
    try {
      await server.addUser('romeo', PW);
      await server.addUser('juliet', PW);
      const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'bulk', presence: true });
      const filler = 'x'.repeat(1000);
      const count = 150; // more than one batch taken from storage
      for (let i = 0; i < count; i++) romeo.send(msg('juliet@localhost', `${i} ${filler}`));
      const stored = async () =>
        (server.core.hosts.get('localhost')!.provided.get('offline') as OfflineApi).count('juliet@localhost');
      for (let t = 0; t < 100 && (await stored()) < count; t++) await new Promise((r) => setTimeout(r, 50));
      assert.equal(await stored(), count);

      const first = await TestClient.login(server, 'juliet', PW, { resource: 'r', presence: true });
      const seen: number[] = [];
      for (let i = 0; i < 5; i++)
        seen.push(Number((await first.receive('message', 5000)).getChildText('body')!.split(' ')[0]));
      first.kill();
      // A second resource's delivery waits for the first one's, which puts back what it took.
      const second = await TestClient.login(server, 'juliet', PW, { resource: 'r2', presence: true });
      const rest: number[] = [];
      while (rest.at(-1) !== count - 1) {
        const m = await second.receive('message', 5000);
        rest.push(Number(m.getChildText('body')!.split(' ')[0]));
      }
      // What was written to the dropped connection is gone with it (a few); nothing after it.
      assert.ok(rest[0]! > seen.at(-1)!, `${seen.join()} then ${rest[0]}`);
      assert.deepEqual(
        rest,
        Array.from({ length: rest.length }, (_, i) => rest[0]! + i),
      );
      assert.ok(rest[0]! < 50, `the second resource starts at ${rest[0]}`);
      assert.equal(await stored(), 0);
      await second.close();
      await romeo.close();
    } finally {
      await server.destroy();
    }
  });
});
