import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import { TestClient } from '../../../test/support/test-client.js';

const PW = 'secret-password';

const isPush = (e: Element) =>
  e.name === 'iq' && e.attrs.type === 'set' && e.getChild('query', NS.roster) !== undefined;
const pushItem = (e: Element) => e.getChild('query', NS.roster)!.getChild('item', NS.roster)!;
const errorCondition = (e: Element) =>
  e
    .getChild('error')
    ?.elements()
    .find((c) => c.xmlns === NS.stanzas && c.name !== 'text')?.name;

function rosterSet(item: Element, to?: string): Element {
  return xml('iq', { type: 'set', to }, xml('query', { xmlns: NS.roster }, item));
}
async function getRoster(c: TestClient, ver?: string): Promise<Element> {
  return c.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS.roster, ver })));
}
function items(res: Element): Element[] {
  return res.getChild('query', NS.roster)?.getChildren('item', NS.roster) ?? [];
}

describe('roster (RFC 6121 §2, XEP-0237)', () => {
  let server: TestServer;
  const clients: TestClient[] = [];
  const login = async (user: string, resource: string, rosterGet = true) => {
    const c = await TestClient.login(server, user, PW, { resource });
    clients.push(c);
    if (rosterGet) await getRoster(c);
    return c;
  };
  before(async () => {
    server = await startTestServer({
      modules: { ping: { idleMs: 0 }, roster: { maxItems: 4, maxNameLength: 20 } },
    });
    for (const u of ['romeo', 'juliet', 'nurse', 'tybalt', 'paris', 'limit', 'versions', 'gone'])
      await server.addUser(u, PW);
  });
  after(async () => {
    for (const c of clients) c.kill();
    await server.destroy();
  });

  test('RFC 6121 §2.2: a new account gets an empty roster', async () => {
    const c = await login('paris', 'a', false);
    const res = await getRoster(c);
    assert.equal(res.attrs.type, 'result');
    assert.equal(items(res).length, 0);
  });

  test('RFC 6121 §2.3, §2.1.6: a roster set is pushed to every interested resource, with name and groups', async () => {
    const a = await login('romeo', 'a');
    const b = await login('romeo', 'b');
    const quiet = await login('romeo', 'c', false); // never asked for the roster: not interested
    const pushA = a.receive(isPush);
    const pushB = b.receive(isPush);
    const res = await a.iq(
      rosterSet(
        xml(
          'item',
          { jid: 'nurse@localhost', name: 'Nurse' },
          xml('group', null, 'Servants'),
          xml('group', null, 'Verona'),
        ),
      ),
    );
    assert.equal(res.attrs.type, 'result');
    for (const p of [await pushA, await pushB]) {
      const item = pushItem(p);
      assert.equal(item.attrs.jid, 'nurse@localhost');
      assert.equal(item.attrs.name, 'Nurse');
      assert.equal(item.attrs.subscription, 'none');
      assert.deepEqual(
        item.getChildren('group').map((g) => g.text()),
        ['Servants', 'Verona'],
      );
      assert.equal(p.attrs.from, undefined);
    }
    await quiet.nothing(isPush, 200);
    const got = await getRoster(b);
    assert.deepEqual(
      items(got).map((i) => i.attrs.jid),
      ['nurse@localhost'],
    );
  });

  test('RFC 6121 §2.4: updating an item replaces its name and groups and is pushed', async () => {
    const a = await login('romeo', 'upd');
    const push = a.receive((e) => isPush(e) && pushItem(e).attrs.jid === 'nurse@localhost');
    await a.iq(rosterSet(xml('item', { jid: 'nurse@localhost' }, xml('group', null, 'Friends'))));
    const item = pushItem(await push);
    assert.equal(item.attrs.name, undefined);
    assert.deepEqual(
      item.getChildren('group').map((g) => g.text()),
      ['Friends'],
    );
  });

  test('RFC 6121 §2.5: removing an item pushes subscription="remove"; an unknown item gets item-not-found', async () => {
    const a = await login('romeo', 'rm');
    await a.iq(rosterSet(xml('item', { jid: 'tybalt@localhost' })));
    const push = a.receive((e) => isPush(e) && pushItem(e).attrs.subscription === 'remove');
    const res = await a.iq(rosterSet(xml('item', { jid: 'tybalt@localhost', subscription: 'remove' })));
    assert.equal(res.attrs.type, 'result');
    assert.equal(pushItem(await push).attrs.jid, 'tybalt@localhost');
    const again = await a.iq(rosterSet(xml('item', { jid: 'tybalt@localhost', subscription: 'remove' })));
    assert.equal(errorCondition(again), 'item-not-found');
  });

  test('RFC 6121 §2.3.3: more than one item, a subscription other than remove, duplicate groups → bad-request', async () => {
    const a = await login('juliet', 'v1');
    const two = await a.iq(
      xml(
        'iq',
        { type: 'set' },
        xml(
          'query',
          { xmlns: NS.roster },
          xml('item', { jid: 'a@localhost' }),
          xml('item', { jid: 'b@localhost' }),
        ),
      ),
    );
    assert.equal(errorCondition(two), 'bad-request');
    const sub = await a.iq(rosterSet(xml('item', { jid: 'a@localhost', subscription: 'both' })));
    assert.equal(errorCondition(sub), 'bad-request');
    const dup = await a.iq(
      rosterSet(xml('item', { jid: 'a@localhost' }, xml('group', null, 'G'), xml('group', null, 'G'))),
    );
    assert.equal(errorCondition(dup), 'bad-request');
    assert.equal(items(await getRoster(a)).length, 0);
  });

  test('RFC 6121 §2.3.3: an empty group or a too long name → not-acceptable; the user itself → not-allowed', async () => {
    const a = await login('juliet', 'v2');
    const empty = await a.iq(rosterSet(xml('item', { jid: 'a@localhost' }, xml('group', null, ''))));
    assert.equal(errorCondition(empty), 'not-acceptable');
    const long = await a.iq(rosterSet(xml('item', { jid: 'a@localhost', name: 'x'.repeat(21) })));
    assert.equal(errorCondition(long), 'not-acceptable');
    const self = await a.iq(rosterSet(xml('item', { jid: 'juliet@localhost' })));
    assert.equal(errorCondition(self), 'not-allowed');
    assert.equal(items(await getRoster(a)).length, 0);
  });

  test('RFC 6121 §2.3.3: a roster at the configured maximum refuses new items (not-acceptable)', async () => {
    const a = await login('limit', 'a');
    for (let i = 0; i < 4; i++)
      assert.equal((await a.iq(rosterSet(xml('item', { jid: `c${i}@localhost` })))).attrs.type, 'result');
    const full = await a.iq(rosterSet(xml('item', { jid: 'c9@localhost' })));
    assert.equal(errorCondition(full), 'not-acceptable');
    assert.match(full.getChild('error')!.getChildText('text', NS.stanzas) ?? '', /at most 4/);
    // an existing item can still be changed
    assert.equal(
      (await a.iq(rosterSet(xml('item', { jid: 'c0@localhost', name: 'zero' })))).attrs.type,
      'result',
    );
    // a subscription request that would add an item is refused the same way (RFC 6121 §3.1.2)
    a.send(xml('presence', { to: 'c9@localhost', type: 'subscribe', id: 'full' }));
    const refused = await a.receive((e) => e.name === 'presence' && e.attrs.id === 'full');
    assert.equal(refused.attrs.type, 'error');
    assert.equal(errorCondition(refused), 'not-acceptable');
  });

  test('RFC 6121 §2.1.5: only the owner may get or set a roster (forbidden)', async () => {
    const a = await login('nurse', 'a');
    const get = await a.iq(
      xml('iq', { type: 'get', to: 'romeo@localhost' }, xml('query', { xmlns: NS.roster })),
    );
    assert.equal(errorCondition(get), 'forbidden');
    const set = await a.iq(rosterSet(xml('item', { jid: 'nurse@localhost' }), 'romeo@localhost'));
    assert.equal(errorCondition(set), 'forbidden');
  });

  test('RFC 6121 §2.1.6: a roster push sent by a client to another user is refused and never delivered', async () => {
    const victim = await login('tybalt', 'a');
    const attacker = await login('nurse', 'b');
    const res = await attacker.iq(rosterSet(xml('item', { jid: 'evil@localhost' }), 'tybalt@localhost/a'));
    assert.equal(errorCondition(res), 'forbidden');
    await victim.nothing(isPush, 200);
  });

  test('XEP-0237: <ver/> is a stream feature; the current ver gets an empty result, an older one only the changes', async () => {
    const a = await login('versions', 'a', false);
    assert.ok(a.features?.getChild('ver', NS.rosterver));
    const first = await getRoster(a, '');
    const v0 = first.getChild('query', NS.roster)!.attrs.ver!;
    assert.ok(v0);
    for (const j of ['x', 'y']) await a.iq(rosterSet(xml('item', { jid: `${j}@localhost` })));
    const full = await getRoster(a, '');
    const v1 = full.getChild('query', NS.roster)!.attrs.ver!;
    assert.notEqual(v1, v0);
    assert.equal(items(full).length, 2);

    // up to date: empty result, no pushes
    const b = await login('versions', 'b', false);
    const same = await getRoster(b, v1);
    assert.equal(same.attrs.type, 'result');
    assert.equal(same.getChild('query', NS.roster), undefined);
    await b.nothing(isPush, 200);

    // older version: empty result, then pushes of the changes only
    await a.iq(rosterSet(xml('item', { jid: 'z@localhost' })));
    await a.iq(rosterSet(xml('item', { jid: 'x@localhost', subscription: 'remove' })));
    const cur = (await getRoster(a, '')).getChild('query', NS.roster)!.attrs.ver!;
    const c = await login('versions', 'c', false);
    const old = await getRoster(c, v1);
    assert.equal(old.getChild('query', NS.roster), undefined);
    const p1 = await c.receive(isPush);
    const p2 = await c.receive(isPush);
    assert.deepEqual(
      [pushItem(p1).attrs.jid, pushItem(p2).attrs.jid, pushItem(p2).attrs.subscription],
      ['z@localhost', 'x@localhost', 'remove'],
    );
    assert.equal(p2.getChild('query', NS.roster)!.attrs.ver, cur);
    await c.nothing(isPush, 200);

    // a version the server does not know: the full roster
    const d = await login('versions', 'd', false);
    const unknown = await getRoster(d, 'bogus-17');
    assert.deepEqual(
      items(unknown)
        .map((i) => i.attrs.jid)
        .sort(),
      ['y@localhost', 'z@localhost'],
    );
    assert.equal(unknown.getChild('query', NS.roster)!.attrs.ver, cur);
  });

  test('RFC 6121 §2: rosters and versions survive a restart; deleting the account deletes its roster', async () => {
    const a = await login('gone', 'a');
    await a.iq(rosterSet(xml('item', { jid: 'romeo@localhost', name: 'R' }, xml('group', null, 'G'))));
    const ver = (await getRoster(a, '')).getChild('query', NS.roster)!.attrs.ver!;
    for (const c of clients.splice(0)) c.kill();
    await server.stop();
    server = await startTestServer(
      { modules: { ping: { idleMs: 0 }, roster: { maxItems: 4, maxNameLength: 20 } } },
      { dataDir: server.dataDir },
    );
    const b = await login('gone', 'b', false);
    const res = await getRoster(b, '');
    assert.equal(res.getChild('query', NS.roster)!.attrs.ver, ver);
    const [item] = items(res);
    assert.equal(item?.attrs.name, 'R');
    assert.deepEqual(
      item?.getChildren('group').map((g) => g.text()),
      ['G'],
    );
    assert.equal((await getRoster(b, ver)).getChild('query', NS.roster), undefined);

    const removed = await b.iq(
      xml('iq', { type: 'set', to: 'localhost' }, xml('query', { xmlns: NS.register }, xml('remove'))),
    );
    assert.equal(removed.attrs.type, 'result');
    await b.waitClosed();
    await server.addUser('gone', PW);
    const again = await login('gone', 'c', false);
    assert.equal(items(await getRoster(again)).length, 0);
  });
});
