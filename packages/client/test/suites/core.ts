import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  AuthenticationError,
  ClientError,
  StanzaError,
  StreamError,
  TimeoutError,
  createClient,
  reconnect,
  xml,
} from '../../src/index.node.js';
import type { SuiteContext } from '../helpers.js';

export function coreSuite(ctx: SuiteContext): void {
  test('RFC 6120 §5/§6/§7: connects over TCP with STARTTLS, authenticates with SCRAM-SHA-256 and binds the requested resource', async () => {
    const acct = ctx.account();
    // Without Bind2, which lets the server choose the resource (see the next test).
    const c = ctx.client(acct, { resource: 'laptop', bind2: false });
    const mechanisms: string[] = [];
    c.on('status', (s) => mechanisms.push(s));
    const jid = await c.connect();
    assert.equal(jid.toString(), `${acct.jid}/laptop`);
    assert.equal(c.secure, true, 'STARTTLS was negotiated');
    assert.equal(c.status, 'online');
    assert.deepEqual(mechanisms, ['connecting', 'online']);
    const offline = c.waitFor('offline');
    await c.disconnect();
    assert.equal((await offline).manual, true);
    assert.equal(c.status, 'offline');
  });

  test('XEP-0386 §2.2: with Bind2 (where offered) the requested resource is the tag the server’s resource starts with', async () => {
    const acct = ctx.account();
    const jid = await ctx.client(acct, { resource: 'laptop' }).connect();
    assert.equal(jid.bare.toString(), acct.jid);
    if (ctx.target.name === 'natter') assert.match(jid.resource, /^laptop\../);
    else assert.equal(jid.resource, 'laptop', 'no Bind2: the resource asked for');
  });

  test('XEP-0368: connects with direct TLS (xmpps:)', async (t) => {
    if (!ctx.target.service.tls) return t.skip('target has no direct TLS port');
    const c = ctx.client(ctx.account(), { service: ctx.target.service.tls });
    const jid = await c.connect();
    assert.ok(jid.resource.length > 0, 'the server assigned a resource');
  });

  test('RFC 7395: connects over WebSocket', async () => {
    const c = ctx.client(ctx.account(), { service: ctx.target.service.ws });
    const jid = await c.connect();
    assert.ok(jid.resource);
    const pong = await c.iq(
      xml('iq', { type: 'get', to: ctx.target.domain }, xml('ping', { xmlns: 'urn:xmpp:ping' })),
    );
    assert.equal(pong.attr('type'), 'result');
  });

  test('RFC 5802: authenticates with SCRAM-SHA-1 when the server stores SHA-1 credentials', async (t) => {
    const user = ctx.target.sha1User;
    if (!user) return t.skip('target has no SHA-1 account');
    const c = ctx.client(user);
    await c.connect();
    assert.equal(c.status, 'online');
  });

  test('RFC 4616: PLAIN is used over TLS when it is the only mechanism allowed', async () => {
    const c = ctx.client(ctx.account(), { saslMechanisms: ['PLAIN'] });
    await c.connect();
    assert.equal(c.status, 'online');
  });

  test('RFC 6120 §13.8: PLAIN is refused over an unencrypted channel unless allowPlaintextAuth is set', async () => {
    const acct = ctx.account();
    const c = ctx.client(acct, { service: ctx.target.service.ws, saslMechanisms: ['PLAIN'] });
    await assert.rejects(
      c.connect(),
      (err: unknown) =>
        err instanceof AuthenticationError &&
        err.condition === 'no-mechanism' &&
        /allowPlaintextAuth/.test(err.message),
    );
    assert.equal(c.status, 'offline');
    const c2 = ctx.client(acct, {
      service: ctx.target.service.ws,
      saslMechanisms: ['PLAIN'],
      allowPlaintextAuth: true,
      resource: 'plain',
    });
    await c2.connect();
    assert.equal(c2.secure, false);
  });

  test('RFC 6120 §4.9.3.3: a second login with the same resource ends the first with a conflict stream error', async () => {
    const acct = ctx.account();
    const first = ctx.client(acct, {
      resource: 'same',
      bind2: false,
      plugins: { reconnect: reconnect({ initialDelay: 20 }) },
    });
    await first.connect();
    const offline = first.waitFor('offline', { timeout: 5000 });
    const stopped = first.plugins.reconnect.waitFor('stopped', { timeout: 5000 });
    const second = ctx.client(acct, { resource: 'same', bind2: false });
    await second.connect();
    const off = await offline;
    assert.ok(off.error instanceof StreamError && off.error.condition === 'conflict', String(off.error));
    assert.equal((await stopped).reason, 'conflict');
    assert.equal(second.status, 'online');
  });

  test('RFC 6120 §6.4.5: a wrong password rejects connect() with an AuthenticationError (not-authorized)', async () => {
    const acct = ctx.account();
    const c = ctx.client({ jid: acct.jid, password: 'wrong' });
    await assert.rejects(
      c.connect(),
      (err: unknown) => err instanceof AuthenticationError && err.condition === 'not-authorized',
    );
    assert.equal(c.status, 'offline');
  });

  test('TLS: an untrusted certificate is refused unless configured', async () => {
    const acct = ctx.account();
    const c = ctx.client(acct, { tls: {} });
    await assert.rejects(
      c.connect(),
      (err: unknown) =>
        err instanceof ClientError && err.code === 'tls-failed' && /certificate/.test(err.message),
    );
    const c2 = ctx.client(acct, { tls: { rejectUnauthorized: false } });
    await c2.connect();
  });

  test('a service URL with an unknown scheme is refused with a coded error', async () => {
    const c = createClient({ service: 'gopher://x', jid: 'a@b', password: 'x' });
    await assert.rejects(
      c.connect(),
      (err: unknown) => err instanceof ClientError && err.code === 'unsupported-service',
    );
  });

  test('RFC 6120 §8.2.3: iq() resolves with the result', async () => {
    const c = await ctx.online();
    const res = await c.iq(
      xml('iq', { type: 'get', to: ctx.target.domain }, xml('query', { xmlns: 'jabber:iq:version' })),
    );
    assert.equal(res.attr('type'), 'result');
    assert.ok(res.getChild('query', 'jabber:iq:version')?.getChildText('name'));
  });

  test('RFC 6120 §8.3: iq() rejects with a typed StanzaError', async () => {
    const c = await ctx.online();
    await assert.rejects(
      c.iq(
        xml('iq', { type: 'get', to: ctx.target.domain }, xml('nonsense', { xmlns: 'urn:example:nothing' })),
      ),
      (err: unknown) =>
        err instanceof StanzaError && err.condition === 'service-unavailable' && err.type === 'cancel',
    );
  });

  test('iq() rejects with a TimeoutError when no reply arrives in time', async () => {
    const a = await ctx.online();
    const b = await ctx.online();
    b.handleIq(
      'get',
      'slow',
      'urn:example:slow',
      () => new Promise((r) => setTimeout(() => r(undefined), 1500)),
    );
    await assert.rejects(
      a.iq(xml('iq', { type: 'get', to: b.jid!.toString() }, xml('slow', { xmlns: 'urn:example:slow' })), {
        timeout: 200,
      }),
      TimeoutError,
    );
  });

  test('RFC 6120 §8.4: an IQ in an unknown namespace gets service-unavailable; handled ones get their result', async () => {
    const a = await ctx.online();
    const b = await ctx.online();
    b.handleIq('get', 'echo', 'urn:example:echo', (iq) =>
      xml('echo', { xmlns: 'urn:example:echo' }, iq.firstElement()?.text()),
    );
    b.handleIq('set', 'fail', 'urn:example:echo', () => {
      throw new StanzaError('not-allowed', { text: 'nope' });
    });
    const to = b.jid!.toString();
    const res = await a.iq(xml('iq', { type: 'get', to }, xml('echo', { xmlns: 'urn:example:echo' }, 'hi')));
    assert.equal(res.getChild('echo', 'urn:example:echo')?.text(), 'hi');
    await assert.rejects(
      a.iq(xml('iq', { type: 'get', to }, xml('x', { xmlns: 'urn:example:unknown' }))),
      (e: unknown) => e instanceof StanzaError && e.condition === 'service-unavailable',
    );
    await assert.rejects(
      a.iq(xml('iq', { type: 'set', to }, xml('fail', { xmlns: 'urn:example:echo' }))),
      (e: unknown) => e instanceof StanzaError && e.condition === 'not-allowed' && e.text === 'nope',
    );
  });

  test('messages and presence arrive as typed events', async () => {
    const a = await ctx.online();
    const b = await ctx.online();
    const got = b.waitFor('message', { filter: (m) => m.getChildText('body') === 'hello', timeout: 5000 });
    await a.sendMessage({ to: b.jid!, body: 'hello' });
    const msg = await got;
    assert.equal(msg.attr('from'), a.jid!.toString());
    const pres = b.waitFor('presence', {
      filter: (p) => p.attr('from') === a.jid!.toString(),
      timeout: 5000,
    });
    await a.sendPresence({ to: b.jid!, status: 'here' });
    assert.equal((await pres).getChildText('status'), 'here');
  });

  test('XEP-0030/XEP-0115: the client answers disco#info with its features and caps node', async () => {
    const a = await ctx.online();
    const b = await ctx.online();
    const ver = await b.capsVer();
    const res = await a.iq(
      xml(
        'iq',
        { type: 'get', to: b.jid!.toString() },
        xml('query', {
          xmlns: 'http://jabber.org/protocol/disco#info',
          node: `https://natter.dev/client#${ver}`,
        }),
      ),
    );
    const features = res
      .firstElement()!
      .getChildren('feature')
      .map((f) => f.attr('var'));
    assert.ok(features.includes('http://jabber.org/protocol/disco#info'));
  });

  test('send() while offline throws NotConnectedError', async () => {
    const c = ctx.client(ctx.account());
    await assert.rejects(
      c.send(xml('message', { to: 'x@y' })),
      (e: unknown) => e instanceof ClientError && e.code === 'not-connected',
    );
  });
}
