import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml, type Element } from '@natter/xml';
import { parseJid } from '@natter/jid';
import { NS, StanzaError, fieldValue, parseForm } from '@natter/protocol';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import { TestClient } from '../../../test/support/test-client.js';
import { command, done, refused, submit } from '../../../test/support/adhoc.js';
import { NATTER_VERSION, type ModuleContext } from '../../core/module-api.js';
import { NS_COMMANDS } from './api.js';
import { USER_COMMAND_NODES, formatDuration, userCommands } from './user-commands.js';

const PW = 'secret-password';
const PASSWORD = USER_COMMAND_NODES['change-password'];
const SESSIONS = USER_COMMAND_NODES.sessions;
const UPTIME = USER_COMMAND_NODES.uptime;

const formOf = (c: Element) => parseForm(c.getChild('x', NS.dataForms)!);
const noteOf = (c: Element) => c.getChild('note', NS_COMMANDS)?.text() ?? '';

describe('ad-hoc commands for users (XEP-0050)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      hosts: ['localhost', 'elsewhere.example'],
      modules: { ping: { idleMs: 0 } },
    });
    for (const u of ['romeo', 'juliet', 'solo', 'nurse']) await server.addUser(u, PW);
    await server.addUser('mallory', PW, 'elsewhere.example');
  });
  after(() => server.destroy());

  test('the three user commands are listed for a local account, with names; not for an account of another host', async () => {
    const c = await TestClient.login(server, 'nurse', PW, { resource: 'n' });
    const res = await c.iq(
      xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: NS.discoItems, node: NS_COMMANDS })),
    );
    const items = res.getChild('query', NS.discoItems)!.getChildren('item');
    assert.deepEqual(
      items.map((i) => i.attrs.node),
      [PASSWORD, SESSIONS, UPTIME],
    );
    assert.ok(items.every((i) => i.attrs.name && i.attrs.jid === 'localhost'));
    await c.close();
    const mallory = await TestClient.login({ ...server, domain: 'elsewhere.example' }, 'mallory', PW);
    for (const node of [PASSWORD, SESSIONS, UPTIME])
      refused(await mallory.iq(command({ node })), 'forbidden');
    await mallory.close();
  });

  test('change my password: two text-private fields that must match and not be empty; then the new password works, the old does not, other sessions end with <reset/>', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'desk' });
    const other = await TestClient.login(server, 'romeo', PW, { resource: 'phone' });
    const first = done(await romeo.iq(command({ node: PASSWORD })));
    assert.equal(first.attrs.status, 'executing');
    const form = formOf(first);
    assert.deepEqual(
      form.fields.map((f) => [f.var, f.type, f.required]),
      [
        ['password', 'text-private', true],
        ['password-confirm', 'text-private', true],
      ],
    );
    const sessionid = first.attrs.sessionid!;
    const again = (fields: Record<string, string>) =>
      romeo.iq(command({ node: PASSWORD, sessionid, action: 'complete' }, submit(fields)));
    assert.match(
      refused(
        await again({ password: 'new-one', 'password-confirm': 'new-0ne' }),
        'bad-request',
        'bad-payload',
      ),
      /differ/,
    );
    refused(await again({ password: '', 'password-confirm': '' }), 'bad-request', 'bad-payload');
    refused(await again({ 'password-confirm': 'x' }), 'bad-request', 'bad-payload');
    refused(
      await again({ password: 'x'.repeat(1025), 'password-confirm': 'x'.repeat(1025) }),
      'bad-request',
      'bad-payload',
    );
    // Nothing changed so far: the old password still works.
    const check = await TestClient.login(server, 'romeo', PW, { resource: 'check' });
    await check.close();

    const ok = done(await again({ password: 'new-password', 'password-confirm': 'new-password' }));
    assert.equal(ok.attrs.status, 'completed');
    assert.match(noteOf(ok), /changed/);
    await other.waitClosed();
    assert.equal(other.streamError?.condition, 'reset');
    // The session that changed it stays.
    const ping = await romeo.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: NS.ping })));
    assert.equal(ping.attrs.type, 'result');
    await assert.rejects(TestClient.login(server, 'romeo', PW, { resource: 'old' }));
    const fresh = await TestClient.login(server, 'romeo', 'new-password', { resource: 'new' });
    await fresh.close();
    await romeo.close();
  });

  test('my sessions: resource, address and start of each; ending another session closes that one only', async () => {
    const a = await TestClient.login(server, 'juliet', PW, { resource: 'a' });
    const b = await TestClient.login(server, 'juliet', PW, { resource: 'b', transport: 'tls' });
    const c = await TestClient.login(server, 'juliet', PW, {
      resource: 'c',
      transport: 'plain',
      localAddress: '127.0.0.2',
    });
    const first = done(await a.iq(command({ node: SESSIONS })));
    assert.equal(first.attrs.status, 'executing');
    const form = formOf(first);
    const lines = form.fields.filter((f) => f.type === 'fixed').map((f) => f.values[0]!);
    assert.equal(lines.length, 3);
    assert.match(
      lines.find((l) => l.startsWith('a '))!,
      /\(this one\) from 127\.0\.0\.1 since \d{4}-\d\d-\d\dT/,
    );
    assert.match(
      lines.find((l) => l.startsWith('c '))!,
      /from 127\.0\.0\.2/,
    );
    const end = form.fields.find((f) => f.var === 'end')!;
    assert.equal(end.type, 'list-single');
    assert.deepEqual(end.options!.map((o) => o.value).sort(), ['b', 'c']);

    const sessionid = first.attrs.sessionid!;
    const choose = (resource: string) =>
      a.iq(command({ node: SESSIONS, sessionid, action: 'complete' }, submit({ end: resource })));
    refused(await choose('a'), 'bad-request', 'bad-payload');
    refused(await choose('nope'), 'bad-request', 'bad-payload');
    const ended = done(await choose('b'));
    assert.equal(ended.attrs.status, 'completed');
    assert.match(noteOf(ended), /"b" was ended/);
    await b.waitClosed();
    assert.equal(b.streamError?.condition, 'not-authorized');
    // The others live on.
    for (const s of [a, c]) {
      const pong = await s.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: NS.ping })));
      assert.equal(pong.attrs.type, 'result');
    }
    // Submitting no choice ends nothing.
    const again = done(await a.iq(command({ node: SESSIONS })));
    const none = done(
      await a.iq(
        command({ node: SESSIONS, sessionid: again.attrs.sessionid, action: 'complete' }, submit({})),
      ),
    );
    assert.match(noteOf(none), /No session/);
    await a.close();
    await c.close();
  });

  test('my sessions: with one session, the listing completes at once', async () => {
    const solo = await TestClient.login(server, 'solo', PW, { resource: 'only' });
    const res = done(await solo.iq(command({ node: SESSIONS })));
    assert.equal(res.attrs.status, 'completed');
    assert.equal(formOf(res).type, 'result');
    assert.match(noteOf(res), /only session/);
    await solo.close();
  });

  test('server uptime and version: a result form in one stage', async () => {
    const c = await TestClient.login(server, 'nurse', PW, { resource: 'up' });
    const res = done(await c.iq(command({ node: UPTIME })));
    assert.equal(res.attrs.status, 'completed');
    const form = formOf(res);
    assert.equal(form.type, 'result');
    assert.equal(fieldValue(form, 'version'), NATTER_VERSION);
    assert.equal(fieldValue(form, 'software'), 'Natter');
    assert.match(fieldValue(form, 'uptime-seconds') ?? '', /^\d+$/);
    assert.ok(!Number.isNaN(Date.parse(fieldValue(form, 'started') ?? '')));
    await c.close();
  });

  test('change my password is refused where credentials may not travel (an unencrypted stream the plaintext policy does not allow)', async () => {
    // Over real sockets SASL already refuses such streams: the command's own check, directly.
    let changed = false;
    const ctx = {
      domain: 'localhost',
      accounts: { setPassword: () => ((changed = true), Promise.resolve(true)) },
    } as unknown as ModuleContext<unknown>;
    const [cmd] = userCommands(ctx, ['change-password']);
    const requester = parseJid('romeo@localhost/plain');
    for (const stage of [0, 1]) {
      await assert.rejects(
        Promise.resolve(
          cmd!.execute({
            requester,
            secure: false,
            stage,
            action: stage === 0 ? 'execute' : 'complete',
            form: {
              type: 'submit',
              fields: [
                { var: 'password', values: ['x'] },
                { var: 'password-confirm', values: ['x'] },
              ],
            },
            formElement: undefined,
            state: {},
          }),
        ),
        (err: unknown) => err instanceof StanzaError && err.condition === 'not-authorized',
      );
    }
    assert.equal(changed, false);
  });

  test('durations read as days, hours, minutes and seconds', () => {
    assert.equal(formatDuration(0), '0 s');
    assert.equal(formatDuration(59_999), '59 s');
    assert.equal(formatDuration(3_600_000), '1 h');
    assert.equal(formatDuration(90_061_000), '1 d 1 h 1 min 1 s');
  });
});
