import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestClient } from '../support/test-client.js';

const PW = 'conformance-pw';

function condition(el: Element): string | undefined {
  return el
    .getChild('error')
    ?.elements()
    .find((c) => c.xmlns === NS.stanzas)?.name;
}
const features = (r: Element) =>
  r
    .getChild('query', NS.discoInfo)
    ?.getChildren('feature')
    .map((f) => f.attrs.var) ?? [];

describe('XEPs a conformance suite checks: 0199, 0030, 0092, 0077, 0280, 0313', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ modules: { ping: { idleMs: 0 } } });
    for (const u of ['romeo', 'juliet', 'mercutio', 'tybalt', 'paris', 'nurse']) await server.addUser(u, PW);
  });
  after(() => server.destroy());

  test('XEP-0199 §4.2: a ping to the server is answered with an empty result from the domain', async () => {
    const c = await TestClient.login(server, 'romeo', PW);
    const r = await c.iq(
      xml('iq', { type: 'get', to: 'localhost', id: 'ping-s' }, xml('ping', { xmlns: NS.ping })),
    );
    assert.equal(r.attrs.type, 'result');
    assert.equal(r.attrs.from, 'localhost');
    assert.equal(r.attrs.id, 'ping-s');
    assert.equal(r.elements().length, 0);
    c.kill();
  });

  test('XEP-0199 §4.1: a ping to a full JID is routed to that client and its result routed back', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'pinger' });
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'pinged' });
    const p = romeo.iq(
      xml(
        'iq',
        { type: 'get', to: 'juliet@localhost/pinged', id: 'ping-c' },
        xml('ping', { xmlns: NS.ping }),
      ),
    );
    const req = await juliet.receive((e) => e.name === 'iq' && e.attrs.id === 'ping-c');
    assert.equal(req.attrs.from, 'romeo@localhost/pinger');
    assert.ok(req.getChild('ping', NS.ping));
    juliet.send(xml('iq', { type: 'result', id: 'ping-c', to: req.attrs.from }));
    const r = await p;
    assert.equal(r.attrs.type, 'result');
    assert.equal(r.attrs.from, 'juliet@localhost/pinged');
    romeo.kill();
    juliet.kill();
  });

  test('XEP-0199 §4.2 / XEP-0030: a ping to the own bare JID is answered by the server', async () => {
    const c = await TestClient.login(server, 'romeo', PW);
    const r = await c.iq(xml('iq', { type: 'get', to: 'romeo@localhost' }, xml('ping', { xmlns: NS.ping })));
    assert.equal(r.attrs.type, 'result', r.toString());
    c.kill();
  });

  test('XEP-0030 §3.1: disco#info of the server has the server/im identity and the core features', async () => {
    const c = await TestClient.login(server, 'romeo', PW);
    const r = await c.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: NS.discoInfo })));
    assert.equal(r.attrs.type, 'result');
    const ids = r.getChild('query', NS.discoInfo)!.getChildren('identity');
    assert.ok(ids.some((i) => i.attrs.category === 'server' && i.attrs.type === 'im'));
    const f = features(r);
    for (const ns of [NS.discoInfo, NS.discoItems, NS.ping, NS.version, NS.carbons])
      assert.ok(f.includes(ns), ns);
    assert.equal(new Set(f).size, f.length, 'no duplicate features');
    c.kill();
  });

  test('XEP-0030 §3.1: disco#info with an unknown node gets item-not-found', async () => {
    const c = await TestClient.login(server, 'romeo', PW);
    const r = await c.iq(
      xml(
        'iq',
        { type: 'get', to: 'localhost' },
        xml('query', { xmlns: NS.discoInfo, node: 'urn:example:no-such-node' }),
      ),
    );
    assert.equal(r.attrs.type, 'error', r.toString());
    assert.equal(condition(r), 'item-not-found');
    c.kill();
  });

  test('XEP-0030 §4.1: disco#items of the server lists items with a jid each', async () => {
    const c = await TestClient.login(server, 'romeo', PW);
    const r = await c.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: NS.discoItems })));
    assert.equal(r.attrs.type, 'result');
    const items = r.getChild('query', NS.discoItems)!.getChildren('item');
    for (const i of items) assert.ok(i.attrs.jid, i.toString());
    c.kill();
  });

  test('XEP-0030 / XEP-0313 §6: disco#info of the own account has account/registered and urn:xmpp:mam:2', async () => {
    const c = await TestClient.login(server, 'romeo', PW);
    const r = await c.iq(
      xml('iq', { type: 'get', to: 'romeo@localhost' }, xml('query', { xmlns: NS.discoInfo })),
    );
    assert.equal(r.attrs.type, 'result');
    assert.ok(
      r
        .getChild('query', NS.discoInfo)!
        .getChildren('identity')
        .some((i) => i.attrs.category === 'account' && i.attrs.type === 'registered'),
    );
    assert.ok(features(r).includes(NS.mam));
    c.kill();
  });

  test('XEP-0030 §4.1: disco#items of the own account is answered', async () => {
    const c = await TestClient.login(server, 'romeo', PW);
    const r = await c.iq(
      xml('iq', { type: 'get', to: 'romeo@localhost' }, xml('query', { xmlns: NS.discoItems })),
    );
    assert.equal(r.attrs.type, 'result', r.toString());
    c.kill();
  });

  test('XEP-0092 §3: the server answers jabber:iq:version with name and version', async () => {
    const c = await TestClient.login(server, 'romeo', PW);
    const r = await c.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: NS.version })));
    assert.equal(r.attrs.type, 'result');
    const q = r.getChild('query', NS.version)!;
    assert.ok(q.getChildText('name'));
    assert.ok(q.getChildText('version'));
    c.kill();
  });

  test('XEP-0092 §3: a version query to a full JID is routed to the client', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'asker' });
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'client' });
    void romeo
      .iq(
        xml(
          'iq',
          { type: 'get', to: 'juliet@localhost/client', id: 'ver-c' },
          xml('query', { xmlns: NS.version }),
        ),
      )
      .catch(() => undefined);
    const req = await juliet.receive((e) => e.name === 'iq' && e.attrs.id === 'ver-c');
    assert.ok(req.getChild('query', NS.version));
    romeo.kill();
    juliet.kill();
  });

  test('XEP-0077 §3.3: a password change takes effect: the new password works, the old one does not', async () => {
    const c = await TestClient.login(server, 'tybalt', PW, { resource: 'pw' });
    const r = await c.iq(
      xml(
        'iq',
        { type: 'set', to: 'localhost' },
        xml(
          'query',
          { xmlns: NS.register },
          xml('username', null, 'tybalt'),
          xml('password', null, 'new-pass-1'),
        ),
      ),
    );
    assert.equal(r.attrs.type, 'result', r.toString());
    c.kill();
    const ok = await TestClient.login(server, 'tybalt', 'new-pass-1');
    ok.kill();
    const old = await TestClient.open(server, 'starttls');
    await assert.rejects(old.authenticate('tybalt', PW), /not-authorized/);
    old.kill();
  });

  for (const [user, to] of [
    ['mercutio', undefined],
    ['paris', 'localhost'],
  ] as const) {
    test(`XEP-0077 §3.2: account removal ${to ? 'addressed to the domain' : 'without a to (Example 13)'} is confirmed, the session ends, and the account can no longer log in`, async () => {
      const c = await TestClient.login(server, user, PW, { resource: 'rm' });
      const r = await c.iq(
        xml('iq', { type: 'set', id: 'rm1', to }, xml('query', { xmlns: NS.register }, xml('remove'))),
      );
      assert.equal(r.attrs.type, 'result', r.toString());
      await c.waitClosed();
      const again = await TestClient.open(server, 'starttls');
      await assert.rejects(again.authenticate(user, PW), /not-authorized/);
      again.kill();
    });
  }

  test('XEP-0077 §3.3: a password change without a to is handled by the server for the account', async () => {
    const c = await TestClient.login(server, 'nurse', PW, { resource: 'pw' });
    const r = await c.iq(
      xml(
        'iq',
        { type: 'set' },
        xml(
          'query',
          { xmlns: NS.register },
          xml('username', null, 'nurse'),
          xml('password', null, 'new-pass-2'),
        ),
      ),
    );
    assert.equal(r.attrs.type, 'result', r.toString());
    c.kill();
    const ok = await TestClient.login(server, 'nurse', 'new-pass-2');
    ok.kill();
  });

  test('XEP-0280 §4–§5: with carbons enabled, a resource gets <received/> and <sent/> copies from the own bare JID', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'rc', presence: true });
    const a = await TestClient.login(server, 'juliet', PW, { resource: 'carbon-a', presence: true });
    const b = await TestClient.login(server, 'juliet', PW, { resource: 'carbon-b', presence: true });
    const en = await a.iq(xml('iq', { type: 'set' }, xml('enable', { xmlns: NS.carbons })));
    assert.equal(en.attrs.type, 'result');

    romeo.send(
      xml('message', { to: 'juliet@localhost/carbon-b', type: 'chat', id: 'cb-in' }, xml('body', null, 'in')),
    );
    await b.receive((e) => e.name === 'message' && e.attrs.id === 'cb-in');
    const rec = await a.receive((e) => e.name === 'message' && !!e.getChild('received', NS.carbons));
    assert.equal(rec.attrs.from, 'juliet@localhost');
    assert.equal(rec.attrs.to, 'juliet@localhost/carbon-a');
    const inner = rec
      .getChild('received', NS.carbons)!
      .getChild('forwarded', NS.forward)!
      .getChild('message', NS.client)!;
    assert.equal(inner.attrs.id, 'cb-in');
    assert.equal(inner.attrs.from, 'romeo@localhost/rc');

    b.send(
      xml('message', { to: 'romeo@localhost/rc', type: 'chat', id: 'cb-out' }, xml('body', null, 'out')),
    );
    await romeo.receive((e) => e.name === 'message' && e.attrs.id === 'cb-out');
    const sent = await a.receive((e) => e.name === 'message' && !!e.getChild('sent', NS.carbons));
    assert.equal(sent.attrs.from, 'juliet@localhost');
    const out = sent
      .getChild('sent', NS.carbons)!
      .getChild('forwarded', NS.forward)!
      .getChild('message', NS.client)!;
    assert.equal(out.attrs.id, 'cb-out');
    assert.equal(out.attrs.from, 'juliet@localhost/carbon-b');

    b.send(
      xml(
        'message',
        { to: 'romeo@localhost/rc', type: 'chat', id: 'cb-priv' },
        xml('body', null, 'private'),
        xml('private', { xmlns: NS.carbons }),
        xml('no-copy', { xmlns: NS.hints }),
      ),
    );
    await romeo.receive((e) => e.name === 'message' && e.attrs.id === 'cb-priv');
    await a.nothing((e) => !!e.getChild('sent', NS.carbons), 400);

    const dis = await a.iq(xml('iq', { type: 'set' }, xml('disable', { xmlns: NS.carbons })));
    assert.equal(dis.attrs.type, 'result');
    romeo.send(
      xml(
        'message',
        { to: 'juliet@localhost/carbon-b', type: 'chat', id: 'cb-off' },
        xml('body', null, 'in'),
      ),
    );
    await b.receive((e) => e.name === 'message' && e.attrs.id === 'cb-off');
    await a.nothing((e) => !!e.getChild('received', NS.carbons), 400);
    romeo.kill();
    a.kill();
    b.kill();
  });

  test('XEP-0313 §4: a MAM query returns the archived messages from the own bare JID, then <fin/> with RSM; ids match XEP-0359 stanza-ids', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'mam', presence: true });
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'mam', presence: true });
    romeo.send(
      xml(
        'message',
        { to: 'juliet@localhost', type: 'chat', id: 'mam-1' },
        xml('body', null, 'archived one'),
      ),
    );
    const got = await juliet.receive((e) => e.name === 'message' && e.attrs.id === 'mam-1');
    const sid = got.getChild('stanza-id', NS.sid);
    assert.equal(sid?.attrs.by, 'juliet@localhost');
    assert.ok(sid?.attrs.id);

    const form = xml(
      'x',
      { xmlns: NS.dataForms, type: 'submit' },
      xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', null, NS.mam)),
      xml('field', { var: 'with' }, xml('value', null, 'romeo@localhost')),
    );
    const results: Element[] = [];
    const collect = async () => {
      for (;;) {
        const m = await juliet
          .receive((e) => e.name === 'message' && !!e.getChild('result', NS.mam), 2000)
          .catch(() => undefined);
        if (!m) return;
        results.push(m);
      }
    };
    const collecting = collect();
    const fin = await juliet.iq(
      xml('iq', { type: 'set', id: 'mamq' }, xml('query', { xmlns: NS.mam, queryid: 'q1' }, form)),
    );
    assert.equal(fin.attrs.type, 'result', fin.toString());
    const finEl = fin.getChild('fin', NS.mam);
    assert.ok(finEl, 'fin');
    assert.ok(finEl!.getChild('set', NS.rsm)?.getChildText('last', NS.rsm));
    await collecting;
    const mine = results.filter(
      (m) =>
        m.getChild('result', NS.mam)!.getChild('forwarded', NS.forward)?.getChild('message', NS.client)?.attrs
          .id === 'mam-1',
    );
    assert.equal(mine.length, 1);
    const res = mine[0]!;
    assert.ok(
      res.attrs.from === undefined || res.attrs.from === 'juliet@localhost',
      `from=${res.attrs.from}`,
    );
    const r = res.getChild('result', NS.mam)!;
    assert.equal(r.attrs.queryid, 'q1');
    assert.equal(r.attrs.id, sid!.attrs.id);
    assert.ok(r.getChild('forwarded', NS.forward)!.getChild('delay', NS.delay)?.attrs.stamp);
    romeo.kill();
    juliet.kill();
  });

  test('XEP-0313 §5.1 / XEP-0059: paging with <max/> returns one page, an incomplete <fin/>, and <after/> continues', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'page', presence: true });
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'page', presence: true });
    for (const id of ['pg-1', 'pg-2', 'pg-3']) {
      romeo.send(xml('message', { to: 'juliet@localhost', type: 'chat', id }, xml('body', null, id)));
      await juliet.receive((e) => e.name === 'message' && e.attrs.id === id);
    }
    const page = async (after?: string) => {
      const queryid = `qp-${after ?? 'first'}`;
      const form = xml(
        'x',
        { xmlns: NS.dataForms, type: 'submit' },
        xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', null, NS.mam)),
        xml('field', { var: 'with' }, xml('value', null, 'romeo@localhost/page')),
      );
      const fin = await juliet.iq(
        xml(
          'iq',
          { type: 'set' },
          xml(
            'query',
            { xmlns: NS.mam, queryid },
            form,
            xml(
              'set',
              { xmlns: NS.rsm },
              xml('max', null, '2'),
              after !== undefined && xml('after', null, after),
            ),
          ),
        ),
      );
      const results: Element[] = [];
      for (;;) {
        const m = juliet.received.findIndex((e) => e.getChild('result', NS.mam)?.attrs.queryid === queryid);
        if (m < 0) break;
        results.push(juliet.received.splice(m, 1)[0]!);
      }
      return {
        fin,
        ids: results.map(
          (r) =>
            r.getChild('result', NS.mam)!.getChild('forwarded', NS.forward)!.getChild('message', NS.client)!
              .attrs.id,
        ),
      };
    };
    const p1 = await page();
    assert.equal(p1.fin.attrs.type, 'result', p1.fin.toString());
    assert.deepEqual(p1.ids, ['pg-1', 'pg-2']);
    const fin1 = p1.fin.getChild('fin', NS.mam)!;
    assert.notEqual(fin1.attrs.complete, 'true');
    const last = fin1.getChild('set', NS.rsm)!.getChildText('last', NS.rsm)!;
    const p2 = await page(last);
    assert.deepEqual(p2.ids, ['pg-3']);
    assert.equal(p2.fin.getChild('fin', NS.mam)!.attrs.complete, 'true');
    romeo.kill();
    juliet.kill();
  });

  test('XEP-0280 §6: a normal message with a body is carbon-copied; an error message is not', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'rn', presence: true });
    const a = await TestClient.login(server, 'juliet', PW, { resource: 'cn-a', presence: true });
    const b = await TestClient.login(server, 'juliet', PW, { resource: 'cn-b', presence: true });
    await a.iq(xml('iq', { type: 'set' }, xml('enable', { xmlns: NS.carbons })));
    romeo.send(xml('message', { to: 'juliet@localhost/cn-b', id: 'cn-1' }, xml('body', null, 'normal one')));
    await b.receive((e) => e.name === 'message' && e.attrs.id === 'cn-1');
    const copy = await a.receive((e) => e.name === 'message' && !!e.getChild('received', NS.carbons));
    assert.equal(
      copy
        .getChild('received', NS.carbons)!
        .getChild('forwarded', NS.forward)!
        .getChild('message', NS.client)!.attrs.id,
      'cn-1',
    );
    romeo.send(
      xml(
        'message',
        { to: 'juliet@localhost/cn-b', id: 'cn-2', type: 'error' },
        xml('error', { type: 'cancel' }, xml('undefined-condition', { xmlns: NS.stanzas })),
      ),
    );
    await b.receive((e) => e.name === 'message' && e.attrs.id === 'cn-2');
    await a.nothing((e) => !!e.getChild('received', NS.carbons), 400);
    romeo.kill();
    a.kill();
    b.kill();
  });

  test('XEP-0313 §4.1: a MAM query with an unknown form field gets bad-request', async () => {
    const c = await TestClient.login(server, 'romeo', PW);
    const form = xml(
      'x',
      { xmlns: NS.dataForms, type: 'submit' },
      xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', null, NS.mam)),
      xml('field', { var: 'urn:example:bogus-field' }, xml('value', null, 'x')),
    );
    const r = await c.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: NS.mam }, form)));
    assert.equal(r.attrs.type, 'error', r.toString());
    assert.ok(['bad-request', 'feature-not-implemented'].includes(condition(r) ?? ''), condition(r));
    c.kill();
  });
});
