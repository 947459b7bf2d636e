import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { xml, type Element } from '@natter/xml';
import { NS, fromBase64, toBase64 } from '@natter/protocol';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import { TestClient } from '../../../test/support/test-client.js';
import { sasl2Exchange, userAgent, type Sasl2Outcome } from '../../../test/support/sasl2-exchange.js';

const PW = 'fast-password';
const UA = '6f1d7c0e-8a3b-4c2d-9e5f-0a1b2c3d4e5f';

function peer(c: TestClient) {
  return { features: c.features, send: (el: Element) => c.send(el), receive: c.receive.bind(c) };
}

const mac = (token: string, label: string, cb: Uint8Array = new Uint8Array(0)) =>
  createHmac('sha256', token).update(label).update(cb).digest();

/** A password login on a new connection asking for a token; returns the token and its expiry. */
async function requestToken(
  server: TestServer,
  user: string,
  ua = UA,
  mechanism = 'HT-SHA-256-NONE',
): Promise<{ token: string; expiry: string }> {
  const c = await TestClient.open(server, 'starttls');
  const r = await sasl2Exchange(peer(c), user, PW, 'SCRAM-SHA-256', [
    userAgent(ua),
    xml('request-token', { xmlns: NS.fast, mechanism }),
  ]);
  assert.equal(r.success, true, r.element.toString());
  const t = r.element.getChild('token', NS.fast);
  assert.ok(t, r.element.toString());
  c.kill();
  return { token: t.attrs.token!, expiry: t.attrs.expiry! };
}

/** One HT-* login with `token`: `<authenticate/>` with `<fast/>` and extra children. */
async function fastLogin(
  c: TestClient,
  user: string,
  token: string,
  opts: {
    ua?: string;
    count?: number;
    mechanism?: string;
    cb?: Uint8Array;
    extra?: Element[];
    invalidate?: boolean;
  } = {},
): Promise<Sasl2Outcome> {
  const initial = Buffer.concat([Buffer.from(`${user}\0`), mac(token, 'Initiator', opts.cb)]);
  const p = c.receive((e) => e.xmlns === NS.sasl2 && (e.name === 'success' || e.name === 'failure'));
  c.send(
    xml(
      'authenticate',
      { xmlns: NS.sasl2, mechanism: opts.mechanism ?? 'HT-SHA-256-NONE' },
      xml('initial-response', null, toBase64(initial)),
      userAgent(opts.ua ?? UA),
      xml('fast', {
        xmlns: NS.fast,
        count: opts.count === undefined ? undefined : String(opts.count),
        invalidate: opts.invalidate ? 'true' : undefined,
      }),
      ...(opts.extra ?? []),
    ),
  );
  const el = await p;
  return {
    element: el,
    success: el.name === 'success',
    condition: el.elements().find((e) => e.xmlns === NS.sasl)?.name,
  };
}

describe('FAST (XEP-0484) with HT-* mechanisms', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ modules: { ping: { idleMs: 0 }, fast: { maxTokensPerAccount: 2 } } });
    for (const u of ['romeo', 'juliet', 'nurse', 'tybalt']) await server.addUser(u, PW);
  });
  after(() => server.destroy());

  test('XEP-0484 §3: <fast/> is offered inline with HT-SHA-256-NONE and, over TLS, the channel-bound variants', async () => {
    const c = await TestClient.open(server, 'starttls');
    const fast = c
      .features!.getChild('authentication', NS.sasl2)!
      .getChild('inline', NS.sasl2)!
      .getChild('fast', NS.fast);
    const mechs = fast!.getChildren('mechanism', NS.fast).map((m) => m.text());
    assert.ok(mechs.includes('HT-SHA-256-NONE'));
    assert.ok(mechs.includes('HT-SHA-256-ENDP'), mechs.join(' '));
    assert.equal(
      c
        .features!.getChild('mechanisms', NS.sasl)!
        .getChildren('mechanism', NS.sasl)
        .some((m) => m.text().startsWith('HT-')),
      false,
      'HT-* are FAST mechanisms, not offered for password logins',
    );
    c.kill();
  });

  test('XEP-0484 §4–§5: a token is issued on request, logs in with one round trip and the server proves it knows it', async () => {
    const { token, expiry } = await requestToken(server, 'romeo');
    assert.ok(token.length > 64);
    assert.ok(Date.parse(expiry) > Date.now() + 13 * 86_400_000);
    const c = await TestClient.open(server, 'starttls');
    const r = await fastLogin(c, 'romeo', token, {
      count: 1,
      extra: [xml('bind', { xmlns: NS.bind2 }, xml('tag', null, 'fast'))],
    });
    assert.equal(r.success, true, r.element.toString());
    assert.deepEqual(
      fromBase64(r.element.getChildText('additional-data', NS.sasl2)!),
      new Uint8Array(mac(token, 'Responder')),
    );
    assert.match(r.element.getChildText('authorization-identifier', NS.sasl2)!, /^romeo@localhost\/fast\./);
    const pong = await c.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: NS.ping })));
    assert.equal(pong.attrs.type, 'result');
    await c.close();
  });

  test('XEP-0484 §5: a replayed count, a wrong token, another user agent or mechanism are refused with not-authorized', async () => {
    const { token } = await requestToken(server, 'juliet');
    const c = await TestClient.open(server, 'starttls', undefined, '127.0.0.20');
    assert.equal((await fastLogin(c, 'juliet', token, { count: 5 })).success, true);
    c.kill();
    const tries: [string, Parameters<typeof fastLogin>[3]][] = [
      ['same count', { count: 5 }],
      ['lower count', { count: 4 }],
      ['other user agent', { count: 9, ua: '00000000-0000-4000-8000-000000000000' }],
    ];
    for (const [what, opts] of tries) {
      const d = await TestClient.open(server, 'starttls', undefined, '127.0.0.21');
      const r = await fastLogin(d, 'juliet', token, opts);
      assert.equal(r.condition, 'not-authorized', what);
      d.kill();
    }
    const d = await TestClient.open(server, 'starttls', undefined, '127.0.0.22');
    assert.equal((await fastLogin(d, 'juliet', `${token}x`, { count: 10 })).condition, 'not-authorized');
    assert.equal(
      (
        await fastLogin(d, 'juliet', token, {
          count: 11,
          mechanism: 'HT-SHA-256-ENDP',
          cb: new Uint8Array(32),
        })
      ).condition,
      'not-authorized',
      'a token is bound to the mechanism it was issued for (and ENDP to the channel)',
    );
    d.kill();
    // A higher count still works: the refusals did not burn the token.
    const e = await TestClient.open(server, 'starttls');
    assert.equal((await fastLogin(e, 'juliet', token, { count: 12 })).success, true);
    e.kill();
  });

  test('XEP-0484 §6: a new token rotates the old one, which stays valid until the new one is used', async () => {
    const first = await requestToken(server, 'nurse');
    const c = await TestClient.open(server, 'starttls');
    const r = await fastLogin(c, 'nurse', first.token, {
      extra: [xml('request-token', { xmlns: NS.fast, mechanism: 'HT-SHA-256-NONE' })],
    });
    const second = r.element.getChild('token', NS.fast)!.attrs.token!;
    assert.notEqual(second, first.token);
    c.kill();
    // The client may not have received the new token: the old one still works …
    const d = await TestClient.open(server, 'starttls');
    assert.equal((await fastLogin(d, 'nurse', first.token)).success, true);
    d.kill();
    // … until the new one is used.
    const e = await TestClient.open(server, 'starttls');
    assert.equal((await fastLogin(e, 'nurse', second)).success, true);
    e.kill();
    const f = await TestClient.open(server, 'starttls');
    assert.equal((await fastLogin(f, 'nurse', first.token)).condition, 'not-authorized');
    // invalidate='true' logs the device out for good.
    assert.equal((await fastLogin(f, 'nurse', second, { invalidate: true })).success, true);
    f.kill();
    const g = await TestClient.open(server, 'starttls');
    assert.equal((await fastLogin(g, 'nurse', second)).condition, 'not-authorized');
    g.kill();
  });

  test('XEP-0484 §8: tokens are stored hashed, capped per account, and dropped when the password changes', async () => {
    const a = await requestToken(server, 'tybalt', '11111111-1111-4111-8111-111111111111');
    const rows = await server.core.database.db
      .selectFrom('fast_tokens')
      .selectAll()
      .where('username', '=', 'tybalt')
      .execute();
    assert.equal(rows.length, 1);
    assert.ok(!JSON.stringify(rows).includes(a.token), 'the token itself is not stored');
    await requestToken(server, 'tybalt', '22222222-2222-4222-8222-222222222222');
    await requestToken(server, 'tybalt', '33333333-3333-4333-8333-333333333333');
    // maxTokensPerAccount: 2 — the least recent user agent lost its token.
    const c = await TestClient.open(server, 'starttls');
    assert.equal(
      (await fastLogin(c, 'tybalt', a.token, { ua: '11111111-1111-4111-8111-111111111111' })).condition,
      'not-authorized',
    );
    c.kill();
    const b = await requestToken(server, 'tybalt', '44444444-4444-4444-8444-444444444444');
    // In-band password change (XEP-0077): every token of the account goes.
    const owner = await TestClient.login(server, 'tybalt', PW, { resource: 'pw' });
    const res = await owner.iq(
      xml(
        'iq',
        { type: 'set' },
        xml(
          'query',
          { xmlns: NS.register },
          xml('username', null, 'tybalt'),
          xml('password', null, 'new-password'),
        ),
      ),
    );
    assert.equal(res.attrs.type, 'result');
    const left = await server.core.database.db
      .selectFrom('fast_tokens')
      .selectAll()
      .where('username', '=', 'tybalt')
      .execute();
    assert.equal(left.length, 0);
    const d = await TestClient.open(server, 'starttls');
    assert.equal(
      (await fastLogin(d, 'tybalt', b.token, { ua: '44444444-4444-4444-8444-444444444444' })).condition,
      'not-authorized',
    );
    d.kill();
    await owner.close();
  });

  test('XEP-0484 §6: a token used past half its life is replaced in the same <success/>', async () => {
    const ua = '55555555-5555-4555-8555-555555555555';
    const { token } = await requestToken(server, 'romeo', ua);
    await server.core.database.db
      .updateTable('fast_tokens')
      .set({ current_created: Date.now() - 8 * 86_400_000 })
      .where('username', '=', 'romeo')
      .where('user_agent', '=', ua)
      .execute();
    const c = await TestClient.open(server, 'starttls');
    const r = await fastLogin(c, 'romeo', token, { ua });
    assert.equal(r.success, true);
    const fresh = r.element.getChild('token', NS.fast)?.attrs.token;
    assert.ok(fresh && fresh !== token, r.element.toString());
    c.kill();
    const d = await TestClient.open(server, 'starttls');
    assert.equal((await fastLogin(d, 'romeo', fresh, { ua })).success, true);
    d.kill();
  });

  test('XEP-0484 §8: removing the account (XEP-0077) drops its tokens', async () => {
    await server.addUser('mercutio', PW);
    await requestToken(server, 'mercutio');
    const owner = await TestClient.login(server, 'mercutio', PW, { resource: 'rm' });
    const res = await owner.iq(
      xml('iq', { type: 'set' }, xml('query', { xmlns: NS.register }, xml('remove'))),
    );
    assert.equal(res.attrs.type, 'result');
    const left = await server.core.database.db
      .selectFrom('fast_tokens')
      .selectAll()
      .where('username', '=', 'mercutio')
      .execute();
    assert.equal(left.length, 0);
    owner.kill();
  });

  test('XEP-0484: bad token requests fail before anything is checked', async () => {
    const c = await TestClient.open(server, 'starttls');
    const ask = async (children: Element[], mechanism = 'PLAIN') => {
      const p = c.receive((e) => e.xmlns === NS.sasl2 && (e.name === 'failure' || e.name === 'success'));
      c.send(
        xml(
          'authenticate',
          { xmlns: NS.sasl2, mechanism },
          xml('initial-response', null, toBase64(new TextEncoder().encode(`\0romeo\0${PW}`))),
          ...children,
        ),
      );
      const f = await p;
      return f.name === 'failure' ? f.elements().find((e) => e.xmlns === NS.sasl)?.name : 'success';
    };
    // No user agent to bind the token to.
    assert.equal(
      await ask([xml('request-token', { xmlns: NS.fast, mechanism: 'HT-SHA-256-NONE' })]),
      'malformed-request',
    );
    // A mechanism not offered.
    assert.equal(
      await ask([userAgent(UA), xml('request-token', { xmlns: NS.fast, mechanism: 'HT-MD5-NONE' })]),
      'malformed-request',
    );
    // HT without <fast/>, or with a bad count.
    assert.equal(await ask([userAgent(UA)], 'HT-SHA-256-NONE'), 'malformed-request');
    assert.equal(
      await ask([userAgent(UA), xml('fast', { xmlns: NS.fast, count: '-1' })], 'HT-SHA-256-NONE'),
      'malformed-request',
    );
    // An HT exchange with garbage, and an unknown user.
    assert.equal(
      await ask([userAgent(UA), xml('fast', { xmlns: NS.fast })], 'HT-SHA-256-NONE'),
      'malformed-request',
    );
    assert.equal(c.closed, false);
    c.kill();
  });
});
