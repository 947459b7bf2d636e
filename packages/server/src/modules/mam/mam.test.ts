import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import { TestClient } from '../../../test/support/test-client.js';
import type { MamApi } from './mam.js';
import { enableSm, until } from '../../../test/hostile/support/sm-client.js';

const PW = 'archive-pw';
const MODULES = { ping: { idleMs: 0 }, mam: { maxPageSize: 4 } };
/** NATTER_TEST_PG_URL=postgres://… runs the same tests on an (empty) PostgreSQL database. */
const STORAGE = process.env.NATTER_TEST_PG_URL
  ? { storage: { engine: 'postgres' as const, url: process.env.NATTER_TEST_PG_URL } }
  : {};

interface Rsm {
  max?: number;
  after?: string;
  before?: string;
}
interface Result {
  iq: Element;
  messages: { id: string; stamp: string; message: Element; wrapper: Element }[];
  bodies: string[];
  fin: Element | undefined;
  set: { first?: string; firstIndex?: string; last?: string; count?: number };
}

let qn = 0;
function form(fields: Record<string, string | string[]>): Element {
  return xml(
    'x',
    { xmlns: NS.dataForms, type: 'submit' },
    xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', null, NS.mam)),
    Object.entries(fields).map(([k, v]) =>
      xml(
        'field',
        { var: k },
        (Array.isArray(v) ? v : [v]).map((x) => xml('value', null, x)),
      ),
    ),
  );
}

async function query(
  c: TestClient,
  fields: Record<string, string | string[]> = {},
  rsm?: Rsm,
  extra?: Element,
): Promise<Result> {
  const queryid = `q${++qn}`;
  const set =
    rsm &&
    xml(
      'set',
      { xmlns: NS.rsm },
      rsm.max !== undefined && xml('max', null, String(rsm.max)),
      rsm.after !== undefined && xml('after', null, rsm.after),
      rsm.before !== undefined && xml('before', null, rsm.before || undefined),
    );
  const iq = await c.iq(
    xml(
      'iq',
      { type: 'set' },
      xml('query', { xmlns: NS.mam, queryid }, Object.keys(fields).length > 0 && form(fields), set, extra),
    ),
  );
  const messages: Result['messages'] = [];
  for (let i = 0; i < c.received.length;) {
    const e = c.received[i]!;
    const r = e.name === 'message' ? e.getChild('result', NS.mam) : undefined;
    if (r && r.attrs.queryid === queryid) {
      c.received.splice(i, 1);
      const fwd = r.getChild('forwarded', NS.forward)!;
      messages.push({
        id: r.attrs.id!,
        stamp: fwd.getChild('delay', NS.delay)!.attrs.stamp!,
        message: fwd.getChild('message', NS.client)!,
        wrapper: e,
      });
    } else i++;
  }
  const fin = iq.getChild('fin', NS.mam);
  const s = fin?.getChild('set', NS.rsm);
  const count = s?.getChildText('count', NS.rsm);
  return {
    iq,
    messages,
    bodies: messages.map((m) => m.message.getChildText('body') ?? ''),
    fin,
    set: {
      first: s?.getChildText('first', NS.rsm),
      firstIndex: s?.getChild('first', NS.rsm)?.attrs.index,
      last: s?.getChildText('last', NS.rsm),
      count: count === undefined ? undefined : Number(count),
    },
  };
}

const chat = (to: string, body: string, ...extra: Element[]) =>
  xml('message', { to, type: 'chat' }, xml('body', null, body), ...extra);
const withBody = (body: string) => (e: Element) => e.name === 'message' && e.getChildText('body') === body;
const errorOf = (iq: Element) =>
  iq
    .getChild('error')
    ?.elements()
    .find((c) => c.xmlns === NS.stanzas)?.name;

describe('message archive management (XEP-0313)', () => {
  let server: TestServer;
  const mamApi = () => server.core.hosts.get('localhost')!.provided.get('mam') as MamApi;
  before(async () => {
    server = await startTestServer({ modules: MODULES, ...STORAGE });
    for (const u of ['romeo', 'juliet', 'nurse', 'pager', 'quiet', 'offline', 'sender', 'resender', 'hushed'])
      await server.addUser(u, PW);
  });
  after(() => server.destroy());

  const login = (user: string, resource = 'r') =>
    TestClient.login(server, user, PW, { resource, presence: true });

  test('XEP-0313 §8: the account advertises urn:xmpp:mam:2, #extended and urn:xmpp:sid:0', async () => {
    const c = await login('romeo', 'disco');
    const res = await c.iq(
      xml('iq', { type: 'get', to: 'romeo@localhost' }, xml('query', { xmlns: NS.discoInfo })),
    );
    const features = res
      .getChild('query', NS.discoInfo)!
      .getChildren('feature')
      .map((f) => f.attrs.var);
    for (const f of [NS.mam, `${NS.mam}#extended`, NS.sid]) assert.ok(features.includes(f), f);
    await c.close();
  });

  test('XEP-0313 §4.1.5: an IQ get of the query returns the form with its fields', async () => {
    const c = await login('romeo', 'form');
    const res = await c.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS.mam })));
    const x = res.getChild('query', NS.mam)!.getChild('x', NS.dataForms)!;
    const vars = x.getChildren('field').map((f) => f.attrs.var);
    for (const v of ['FORM_TYPE', 'with', 'start', 'end', 'before-id', 'after-id', 'ids'])
      assert.ok(vars.includes(v), v);
    assert.equal(x.getChildren('field').find((f) => f.attrs.var === 'with')?.attrs.type, 'jid-single');
    await c.close();
  });

  test('XEP-0313 §3/§2.4: a conversation is archived on both sides; the delivered copy carries the recipient archive stanza-id', async () => {
    const romeo = await login('romeo', 'orchard');
    const juliet = await login('juliet', 'balcony');
    // XEP-0359 §3.3: a stanza-id claiming to be by the recipient is forged and removed.
    romeo.send(
      chat(
        'juliet@localhost',
        'hello juliet',
        xml('stanza-id', { xmlns: NS.sid, by: 'juliet@localhost', id: 'forged' }),
      ),
    );
    const got = await juliet.receive(withBody('hello juliet'));
    const sids = got.getChildren('stanza-id', NS.sid);
    assert.equal(sids.length, 1);
    assert.equal(sids[0]!.attrs.by, 'juliet@localhost');
    assert.notEqual(sids[0]!.attrs.id, 'forged');
    juliet.send(chat('romeo@localhost/orchard', 'hello romeo'));
    const back = await romeo.receive(withBody('hello romeo'));
    const romeoSid = back.getChild('stanza-id', NS.sid)!;
    assert.equal(romeoSid.attrs.by, 'romeo@localhost');

    const r = await query(romeo, { with: 'juliet@localhost' });
    assert.deepEqual(r.bodies, ['hello juliet', 'hello romeo']);
    assert.equal(r.messages[1]!.id, romeoSid.attrs.id);
    assert.equal(r.messages[0]!.message.attrs.from, 'romeo@localhost/orchard');
    assert.equal(r.messages[1]!.message.attrs.from, 'juliet@localhost/balcony');
    assert.equal(r.messages[0]!.wrapper.attrs.to, 'romeo@localhost/orchard');
    assert.match(r.messages[0]!.stamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    assert.equal(r.fin?.attrs.complete, 'true');

    const j = await query(juliet, { with: 'romeo@localhost' });
    assert.deepEqual(j.bodies, ['hello juliet', 'hello romeo']);
    assert.equal(j.messages[0]!.id, sids[0]!.attrs.id);
    await Promise.all([romeo.close(), juliet.close()]);
  });

  test('XEP-0313 §4.1.1: with a bare JID matches every resource, with a full JID only that resource', async () => {
    const romeo = await login('romeo', 'w');
    const nurse1 = await login('nurse', 'one');
    const nurse2 = await login('nurse', 'two');
    // one after the other: two connections give no ordering guarantee between them
    nurse1.send(chat('romeo@localhost/w', 'from nurse one'));
    await romeo.receive(withBody('from nurse one'));
    nurse2.send(chat('romeo@localhost/w', 'from nurse two'));
    await romeo.receive(withBody('from nurse two'));
    const bare = await query(romeo, { with: 'nurse@localhost' });
    assert.deepEqual(bare.bodies, ['from nurse one', 'from nurse two']);
    const full = await query(romeo, { with: 'nurse@localhost/two' });
    assert.deepEqual(full.bodies, ['from nurse two']);
    await Promise.all([romeo.close(), nurse1.close(), nurse2.close()]);
  });

  test('XEP-0313 §4.1.2: start and end select a time range, both inclusive', async () => {
    const quiet = await login('quiet');
    const romeo = await login('romeo', 'time');
    const stamps: string[] = [];
    for (const b of ['t1', 't2', 't3']) {
      romeo.send(chat('quiet@localhost/r', b));
      await quiet.receive(withBody(b));
      await sleep(30);
    }
    const all = await query(quiet, { with: 'romeo@localhost' });
    assert.deepEqual(all.bodies, ['t1', 't2', 't3']);
    for (const m of all.messages) stamps.push(m.stamp);
    const middle = await query(quiet, { start: stamps[1]!, end: stamps[1]! });
    assert.deepEqual(middle.bodies, ['t2']);
    const after = await query(quiet, { start: stamps[1]! });
    assert.deepEqual(after.bodies, ['t2', 't3']);
    const before = await query(quiet, { end: stamps[1]! });
    assert.deepEqual(before.bodies, ['t1', 't2']);
    const bad = await query(quiet, { start: 'yesterday' });
    assert.equal(errorOf(bad.iq), 'bad-request');
    await Promise.all([quiet.close(), romeo.close()]);
  });

  describe('XEP-0313 §4.3 paging with RSM (XEP-0059)', () => {
    let pager: TestClient;
    let ids: string[] = [];
    before(async () => {
      pager = await login('pager');
      const romeo = await login('romeo', 'pages');
      for (let i = 1; i <= 5; i++) {
        romeo.send(chat('pager@localhost', `p${i}`));
        await pager.receive(withBody(`p${i}`));
      }
      await romeo.close();
      const all = await query(pager, {}, { max: 10 });
      ids = all.messages.map((m) => m.id);
    });
    after(() => pager.close());

    test('XEP-0059 §2.1: max=2 pages forward through 5 messages with after; count and complete', async () => {
      assert.equal(ids.length, 4); // maxPageSize 4 clamps max=10
      const p1 = await query(pager, {}, { max: 2 });
      assert.deepEqual(p1.bodies, ['p1', 'p2']);
      assert.equal(p1.set.count, 5);
      assert.equal(p1.set.firstIndex, '0');
      assert.equal(p1.set.first, p1.messages[0]!.id);
      assert.equal(p1.set.last, p1.messages[1]!.id);
      assert.notEqual(p1.fin?.attrs.complete, 'true');
      const p2 = await query(pager, {}, { max: 2, after: p1.set.last! });
      assert.deepEqual(p2.bodies, ['p3', 'p4']);
      assert.equal(p2.set.firstIndex, '2');
      assert.notEqual(p2.fin?.attrs.complete, 'true');
      const p3 = await query(pager, {}, { max: 2, after: p2.set.last! });
      assert.deepEqual(p3.bodies, ['p5']);
      assert.equal(p3.fin?.attrs.complete, 'true');
    });

    test('XEP-0059 §2.5 / XEP-0313 §4.3.3: an empty <before/> gives the last page; before pages backwards', async () => {
      const p1 = await query(pager, {}, { max: 2, before: '' });
      assert.deepEqual(p1.bodies, ['p4', 'p5']);
      assert.equal(p1.set.firstIndex, '3');
      assert.notEqual(p1.fin?.attrs.complete, 'true');
      const p2 = await query(pager, {}, { max: 2, before: p1.set.first! });
      assert.deepEqual(p2.bodies, ['p2', 'p3']);
      const p3 = await query(pager, {}, { max: 2, before: p2.set.first! });
      assert.deepEqual(p3.bodies, ['p1']);
      assert.equal(p3.fin?.attrs.complete, 'true');
    });

    test('XEP-0059 §2.6: max=0 returns only the count', async () => {
      const r = await query(pager, {}, { max: 0 });
      assert.equal(r.messages.length, 0);
      assert.equal(r.set.count, 5);
    });

    test('XEP-0313 §4.3.1: a page larger than the server limit is clamped and marked incomplete', async () => {
      const r = await query(pager, {});
      assert.deepEqual(r.bodies, ['p1', 'p2', 'p3', 'p4']);
      assert.notEqual(r.fin?.attrs.complete, 'true');
    });

    test('XEP-0313 §4.3.2: an unknown after or before id is item-not-found', async () => {
      assert.equal(errorOf((await query(pager, {}, { max: 2, after: 'no-such-id' })).iq), 'item-not-found');
      assert.equal(errorOf((await query(pager, {}, { max: 2, before: 'no-such-id' })).iq), 'item-not-found');
      assert.equal(errorOf((await query(pager, { 'after-id': 'no-such-id' })).iq), 'item-not-found');
    });

    test('XEP-0313 §4.1.3: after-id, before-id and ids; §4.3.4 flip-page reverses a page', async () => {
      const between = await query(pager, { 'after-id': ids[0]!, 'before-id': ids[3]! });
      assert.deepEqual(between.bodies, ['p2', 'p3']);
      const one = await query(pager, { ids: [ids[2]!] });
      assert.deepEqual(one.bodies, ['p3']);
      const flipped = await query(pager, {}, { max: 2 }, xml('flip-page'));
      assert.deepEqual(flipped.bodies, ['p2', 'p1']);
    });

    test('XEP-0313 §4.1.5: an unknown form field is feature-not-implemented', async () => {
      assert.equal(
        errorOf((await query(pager, { 'urn:example:search': 'x' })).iq),
        'feature-not-implemented',
      );
    });

    test('XEP-0313 §5: metadata names the first and last archived messages', async () => {
      const res = await pager.iq(xml('iq', { type: 'get' }, xml('metadata', { xmlns: NS.mam })));
      const md = res.getChild('metadata', NS.mam)!;
      assert.equal(md.getChild('start')?.attrs.id, ids[0]);
      const last = await query(pager, {}, { max: 1, before: '' });
      assert.equal(md.getChild('end')?.attrs.id, last.messages[0]!.id);
    });
  });

  test('XEP-0313 §7.1: only the owner may query an archive', async () => {
    const romeo = await login('romeo', 'snoop');
    const res = await romeo.iq(
      xml('iq', { type: 'set', to: 'juliet@localhost' }, xml('query', { xmlns: NS.mam })),
    );
    assert.equal(errorOf(res), 'forbidden');
    await romeo.close();
  });

  test('XEP-0441: prefs default=never stops archiving (and the stanza-id); the always list overrides it', async () => {
    const sender = await login('sender');
    const romeo = await login('romeo', 'prefs');
    const set = await sender.iq(
      xml(
        'iq',
        { type: 'set' },
        xml(
          'prefs',
          { xmlns: NS.mam, default: 'never' },
          xml('always', null, xml('jid', null, 'nurse@localhost')),
          xml('never'),
        ),
      ),
    );
    assert.equal(set.getChild('prefs', NS.mam)?.attrs.default, 'never');
    const get = await sender.iq(xml('iq', { type: 'get' }, xml('prefs', { xmlns: NS.mam })));
    const prefs = get.getChild('prefs', NS.mam)!;
    assert.equal(prefs.attrs.default, 'never');
    assert.deepEqual(
      prefs
        .getChild('always', NS.mam)!
        .getChildren('jid')
        .map((j) => j.text()),
      ['nurse@localhost'],
    );

    romeo.send(chat('sender@localhost', 'not kept'));
    const got = await sender.receive(withBody('not kept'));
    assert.equal(got.getChild('stanza-id', NS.sid), undefined);
    sender.send(chat('romeo@localhost/prefs', 'not kept either'));
    await romeo.receive(withBody('not kept either'));
    const nurse = await login('nurse', 'always');
    nurse.send(chat('sender@localhost', 'kept'));
    await sender.receive(withBody('kept'));
    const r = await query(sender);
    assert.deepEqual(r.bodies, ['kept']);
    // the other side keeps its own copies (romeo archives by default)
    const rr = await query(romeo, { with: 'sender@localhost' });
    assert.deepEqual(rr.bodies, ['not kept', 'not kept either']);
    const bad = await sender.iq(
      xml('iq', { type: 'set' }, xml('prefs', { xmlns: NS.mam, default: 'sometimes' })),
    );
    assert.equal(errorOf(bad), 'bad-request');
    await Promise.all([sender.close(), romeo.close(), nurse.close()]);
  });

  test('XEP-0313 §6.1.1: messages to an account with no available resource are archived (offline storage)', async () => {
    const romeo = await login('romeo', 'away');
    romeo.send(chat('offline@localhost', 'while you were out'));
    await romeo.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: NS.ping })));
    await romeo.close();
    const off = await TestClient.login(server, 'offline', PW, { resource: 'back' });
    const r = await query(off);
    assert.deepEqual(r.bodies, ['while you were out']);
    await off.close();
  });

  test('XEP-0313 with XEP-0198 §5: a message re-sent after a dropped session is archived once', async () => {
    const phone = await login('quiet', 'phone');
    const { tracker } = await enableSm(phone, false);
    tracker.autoAck = false;
    const desktop = await login('quiet', 'desktop');
    const sender = await login('resender', 'once');
    sender.send(chat('quiet@localhost/phone', 'archived once'));
    await until(() => tracker.bodies.length === 1, 3000, 'the message on the phone');
    // The phone drops without acknowledging: the message is routed again, to the desktop.
    phone.kill();
    const resent = await desktop.receive(withBody('archived once'));
    assert.ok(resent.getChild('delay', NS.delay), 'the re-sent copy is stamped');
    assert.equal(
      resent.getChild('stanza-id', NS.sid)?.attrs.id,
      phone.received.find(withBody('archived once'))?.getChild('stanza-id', NS.sid)?.attrs.id,
      'the re-sent copy names the archive entry made when it first arrived',
    );
    const r = await query(desktop, { with: 'resender@localhost' });
    assert.deepEqual(r.bodies, ['archived once']);
    const out = await query(sender, { with: 'quiet@localhost' });
    assert.deepEqual(out.bodies, ['archived once']);
    for (const c of [desktop, sender]) await c.close();
  });

  test('XEP-0313 with XEP-0198 §5 and XEP-0280: a message another resource got as a carbon is not re-sent when the session drops, and is archived once', async () => {
    const phone = await login('hushed', 'phone');
    const { tracker } = await enableSm(phone, false);
    tracker.autoAck = false;
    const desktop = await login('hushed', 'desktop');
    const enabled = await desktop.iq(xml('iq', { type: 'set' }, xml('enable', { xmlns: NS.carbons })));
    assert.equal(enabled.attrs.type, 'result');
    const sender = await login('resender', 'twice');
    sender.send(chat('hushed@localhost/phone', 'carbon only'));
    await until(() => tracker.bodies.length === 1, 3000, 'the message on the phone');
    const carbon = await desktop.receive((e) => e.getChild('received', NS.carbons) !== undefined);
    assert.ok(carbon);
    phone.kill();
    await desktop.receive((e) => e.name === 'presence' && e.attrs.type === 'unavailable');
    await desktop.nothing(withBody('carbon only'), 300);
    const r = await query(desktop, { with: 'resender@localhost' });
    assert.deepEqual(r.bodies, ['carbon only']);
    for (const c of [desktop, sender]) await c.close();
  });

  test('XEP-0313 §3.2: retention removes the oldest messages', async () => {
    const c = await login('pager', 'retention');
    await mamApi().purgeExpired(Date.now() + 366 * 86_400_000);
    const r = await query(c, {}, { max: 0 });
    assert.equal(r.set.count, 0);
    await c.close();
  });
});

describe('message archive management: roster preference and account removal', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      modules: { ping: { idleMs: 0 }, mam: { defaultArchive: 'roster' } },
      ...STORAGE,
    });
    for (const u of ['owner', 'friend', 'stranger', 'doomed']) await server.addUser(u, PW);
  });
  after(() => server.destroy());
  const login = (user: string, resource = 'r') =>
    TestClient.login(server, user, PW, { resource, presence: true });

  test("XEP-0441 §3: default='roster' archives messages with roster contacts only", async () => {
    const owner = await login('owner');
    const add = await owner.iq(
      xml(
        'iq',
        { type: 'set', to: 'owner@localhost' },
        xml('query', { xmlns: NS.roster }, xml('item', { jid: 'friend@localhost' })),
      ),
    );
    assert.equal(add.attrs.type, 'result', add.toString());
    const friend = await login('friend');
    const stranger = await login('stranger');
    stranger.send(chat('owner@localhost', 'from a stranger'));
    friend.send(chat('owner@localhost', 'from a friend'));
    await owner.receive(withBody('from a stranger'));
    await owner.receive(withBody('from a friend'));
    const r = await query(owner);
    assert.deepEqual(r.bodies, ['from a friend']);
    await Promise.all([owner.close(), friend.close(), stranger.close()]);
  });

  test('XEP-0313 §7.1 / XEP-0077 §3.2: removing the account deletes its archive', async () => {
    const doomed = await login('doomed');
    const friend = await login('friend', 'f2');
    await doomed.iq(
      xml(
        'iq',
        { type: 'set' },
        xml('prefs', { xmlns: NS.mam, default: 'always' }, xml('always'), xml('never')),
      ),
    );
    friend.send(chat('doomed@localhost', 'soon gone'));
    await doomed.receive(withBody('soon gone'));
    assert.deepEqual((await query(doomed)).bodies, ['soon gone']);
    const res = await doomed.iq(
      xml('iq', { type: 'set', to: 'localhost' }, xml('query', { xmlns: NS.register }, xml('remove'))),
    );
    assert.equal(res.attrs.type, 'result', res.toString());
    await doomed.waitClosed();
    await server.addUser('doomed', PW);
    const again = await login('doomed', 'again');
    assert.deepEqual((await query(again)).bodies, []);
    const prefs = await again.iq(xml('iq', { type: 'get' }, xml('prefs', { xmlns: NS.mam })));
    assert.equal(prefs.getChild('prefs', NS.mam)?.attrs.default, 'roster');
    await Promise.all([again.close(), friend.close()]);
  });
});

describe('message archive management across restarts', () => {
  test('XEP-0313 §3: the archive survives a restart on the same storage, and is flushed on a clean stop', async () => {
    const first = await startTestServer({
      modules: { ping: { idleMs: 0 }, mam: { flushIntervalMs: 10_000 } },
      ...STORAGE,
    });
    await first.addUser('montague', PW);
    await first.addUser('capulet', PW);
    const romeo = await TestClient.login(first, 'montague', PW, { resource: 'r', presence: true });
    const juliet = await TestClient.login(first, 'capulet', PW, { resource: 'r', presence: true });
    romeo.send(chat('capulet@localhost', 'before restart'));
    const got = await juliet.receive(withBody('before restart'));
    const id = got.getChild('stanza-id', NS.sid)!.attrs.id!;
    await first.stop(); // the write buffer has not flushed yet (10 s): stop must write it
    const again = await startTestServer(
      { modules: { ping: { idleMs: 0 } }, ...STORAGE },
      { dataDir: first.dataDir },
    );
    try {
      const j = await TestClient.login(again, 'capulet', PW, { resource: 'r2' });
      const r = await query(j);
      assert.deepEqual(r.bodies, ['before restart']);
      assert.equal(r.messages[0]!.id, id);
      // new messages keep the order after the old ones
      const romeo2 = await TestClient.login(again, 'montague', PW, { resource: 'r2', presence: true });
      romeo2.send(chat('capulet@localhost', 'after restart'));
      await romeo2.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: NS.ping })));
      const r2 = await query(j);
      assert.deepEqual(r2.bodies, ['before restart', 'after restart']);
      await Promise.all([j.close(), romeo2.close()]);
    } finally {
      await again.destroy();
    }
  });
});
