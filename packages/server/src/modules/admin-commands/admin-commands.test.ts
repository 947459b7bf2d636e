import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml, type Element } from '@natter/xml';
import { NS, buildForm, parseForm } from '@natter/protocol';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import { TestClient } from '../../../test/support/test-client.js';
import { command, done, refused } from '../../../test/support/adhoc.js';
import { NS_COMMANDS } from '../adhoc/api.js';
import { ADMIN_NODES, NS_ADMIN } from './admin-commands.js';

const PW = 'admin-commands-pw';
const node = (name: string) => `${NS_ADMIN}#${name}`;

/** A submitted XEP-0133 form: FORM_TYPE, then each field with its values. */
const adminForm = (fields: Record<string, string | string[]>) =>
  buildForm({
    type: 'submit',
    fields: [
      { var: 'FORM_TYPE', type: 'hidden', values: [NS_ADMIN] },
      ...Object.entries(fields).map(([k, v]) => ({ var: k, values: Array.isArray(v) ? v : [v] })),
    ],
  });

/**
 * Runs a one-form command: execute, then submit `fields` in the session it opened. A refused
 * submission leaves the session open (XEP-0050: the requester may submit again): cancelled here,
 * as a client would.
 */
async function runForm(
  c: TestClient,
  name: string,
  fields: Record<string, string | string[]>,
): Promise<Element> {
  const first = done(await c.iq(command({ node: node(name) })));
  assert.equal(first.attrs.status, 'executing');
  const sessionid = first.attrs.sessionid;
  const res = await c.iq(command({ node: node(name), sessionid, action: 'complete' }, adminForm(fields)));
  if (res.attrs.type === 'error')
    done(await c.iq(command({ node: node(name), sessionid, action: 'cancel' })));
  return res;
}

const resultField = (cmd: Element, name: string): string[] => {
  const x = cmd.getChild('x', NS.dataForms);
  assert.ok(x, cmd.toString());
  const f = parseForm(x).fields.find((v) => v.var === name);
  assert.ok(f, `no field ${name} in ${x.toString()}`);
  return f.values;
};
const notes = (cmd: Element) => cmd.getChildren('note').map((n) => `${n.attrs.type}: ${n.text()}`);

async function loginFails(
  server: TestServer,
  user: string,
  password: string,
): Promise<{ condition: string; text: string }> {
  try {
    const c = await TestClient.login(server, user, password);
    await c.close();
  } catch (err) {
    return err as { condition: string; text: string };
  }
  assert.fail(`${user} could log in`);
}

describe('XEP-0133 service administration', () => {
  let server: TestServer;
  let admin: TestClient;
  before(async () => {
    server = await startTestServer({
      hosts: ['localhost', 'other.example'],
      admins: ['boss@localhost'],
      modules: { ping: { idleMs: 0 } },
    });
    for (const u of ['boss', 'worker', 'temp', 'idle']) await server.addUser(u, PW);
    admin = await TestClient.login(server, 'boss', PW, { resource: 'console' });
  });
  after(async () => {
    await admin.close();
    await server.destroy();
  });

  test('the admin sees every XEP-0133 command on the server; an ordinary user sees none and may run none', async () => {
    const list = async (c: TestClient) =>
      (
        await c.iq(
          xml(
            'iq',
            { type: 'get', to: 'localhost' },
            xml('query', { xmlns: NS.discoItems, node: NS_COMMANDS }),
          ),
        )
      )
        .getChild('query', NS.discoItems)!
        .getChildren('item')
        .map((i) => i.attrs.node!);
    const nodes = await list(admin);
    for (const n of ADMIN_NODES) assert.ok(nodes.includes(node(n)), `${n} missing from ${nodes.join(' ')}`);
    const worker = await TestClient.login(server, 'worker', PW);
    assert.deepEqual(
      (await list(worker)).filter((n) => n.startsWith(NS_ADMIN)),
      [],
    );
    refused(await worker.iq(command({ node: node('add-user') })), 'forbidden');
    refused(await worker.iq(command({ node: node('get-registered-users-num') })), 'forbidden');
    await worker.close();
  });

  test('add-user: the form has XEP-0133 fields; passwords must match; the new account logs in; adding it again is a conflict', async () => {
    const first = done(await admin.iq(command({ node: node('add-user') })));
    const x = parseForm(first.getChild('x', NS.dataForms)!);
    assert.deepEqual(x.fields.map((f) => [f.var, f.type]).slice(0, 4), [
      ['FORM_TYPE', 'hidden'],
      ['accountjid', 'jid-single'],
      ['password', 'text-private'],
      ['password-verify', 'text-private'],
    ]);
    const text = refused(
      await runForm(admin, 'add-user', {
        accountjid: 'newbie@localhost',
        password: 'a1',
        'password-verify': 'a2',
      }),
      'bad-request',
      'bad-payload',
    );
    assert.match(text, /differ/);
    const ok = done(
      await runForm(admin, 'add-user', {
        accountjid: 'newbie@localhost',
        password: 'n3w',
        'password-verify': 'n3w',
      }),
    );
    assert.equal(ok.attrs.status, 'completed');
    const newbie = await TestClient.login(server, 'newbie', 'n3w');
    await newbie.close();
    refused(
      await runForm(admin, 'add-user', {
        accountjid: 'newbie@localhost',
        password: 'x',
        'password-verify': 'x',
      }),
      'conflict',
    );
    const notHosted = refused(
      await runForm(admin, 'add-user', {
        accountjid: 'eve@nowhere.example',
        password: 'x',
        'password-verify': 'x',
      }),
      'bad-request',
    );
    assert.match(notHosted, /nowhere\.example is not hosted/);
  });

  test('disable-user ends the sessions; logins fail with <account-disabled/> (only once the password is right); counts and lists show it; reenable-user lets it in again', async () => {
    const live = await TestClient.login(server, 'temp', PW, { resource: 'r' });
    const res = done(await runForm(admin, 'disable-user', { accountjids: ['temp@localhost'] }));
    assert.equal(res.attrs.status, 'completed', res.toString());
    await live.waitClosed();
    assert.equal(live.streamError?.condition, 'not-authorized');
    const failure = await loginFails(server, 'temp', PW);
    assert.equal(failure.condition, 'account-disabled');
    // A wrong password learns nothing of it.
    assert.equal((await loginFails(server, 'temp', 'wrong')).condition, 'not-authorized');

    const num = done(await admin.iq(command({ node: node('get-disabled-users-num') })));
    assert.equal(num.attrs.status, 'completed');
    assert.deepEqual(resultField(num, 'disabledusersnum'), ['1']);
    assert.deepEqual(
      resultField(
        done(await runForm(admin, 'get-disabled-users-list', { max_items: 'none' })),
        'disableduserjids',
      ),
      ['temp@localhost'],
    );

    done(await runForm(admin, 'reenable-user', { accountjids: ['temp@localhost'] }));
    const back = await TestClient.login(server, 'temp', PW);
    await back.close();
    assert.deepEqual(
      resultField(
        done(await admin.iq(command({ node: node('get-disabled-users-num') }))),
        'disabledusersnum',
      ),
      ['0'],
    );
  });

  test('several accountjids: each is done, and the ones refused are error notes', async () => {
    await server.addUser('a1', PW);
    await server.addUser('a2', PW);
    const res = done(
      await runForm(admin, 'disable-user', {
        accountjids: ['a1@localhost', 'ghost@localhost', 'a2@localhost'],
      }),
    );
    const n = notes(res);
    assert.ok(
      n.some((t) => t.startsWith('info:') && t.includes('2 of 3')),
      n.join(' | '),
    );
    assert.ok(
      n.some((t) => t.startsWith('error:') && t.includes('ghost@localhost')),
      n.join(' | '),
    );
    for (const u of ['a1', 'a2'])
      assert.equal((await loginFails(server, u, PW)).condition, 'account-disabled');
    // One JID refused is the command's error.
    refused(await runForm(admin, 'reenable-user', { accountjids: 'ghost@localhost' }), 'item-not-found');
    done(await runForm(admin, 'delete-user', { accountjids: ['a1@localhost', 'a2@localhost'] }));
    assert.equal(await server.core.accounts.exists('a1', 'localhost'), false);
  });

  test('change-user-password: its sessions end with <reset/>, the new password works and the old one does not', async () => {
    const w = await TestClient.login(server, 'worker', PW, { resource: 'desk' });
    done(
      await runForm(admin, 'change-user-password', {
        accountjid: 'worker@localhost',
        password: 'changed-pw',
      }),
    );
    await w.waitClosed();
    assert.equal(w.streamError?.condition, 'reset');
    assert.equal((await loginFails(server, 'worker', PW)).condition, 'not-authorized');
    const again = await TestClient.login(server, 'worker', 'changed-pw');
    await again.close();
  });

  test('online and active users: numbers and lists; end-user-session of a full JID ends that one session', async () => {
    const away = await TestClient.login(server, 'idle', PW, { resource: 'quiet' }); // no presence: online, not active
    const here = await TestClient.login(server, 'temp', PW, { resource: 'one', presence: true });
    const here2 = await TestClient.login(server, 'temp', PW, { resource: 'two', presence: true });
    // Presence is routed asynchronously: an IQ round trip after it means it was handled.
    await here.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    await here2.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    const online = resultField(
      done(await admin.iq(command({ node: node('get-online-users-num') }))),
      'onlineusersnum',
    );
    // boss (the admin), idle, temp
    assert.deepEqual(online, ['3']);
    const active = resultField(
      done(await admin.iq(command({ node: node('get-active-users-num') }))),
      'activeusersnum',
    );
    assert.deepEqual(active, ['1']);
    assert.deepEqual(
      resultField(done(await runForm(admin, 'get-online-users-list', { max_items: '25' })), 'onlineuserjids'),
      ['boss@localhost', 'idle@localhost', 'temp@localhost'],
    );
    assert.deepEqual(
      resultField(done(await runForm(admin, 'get-active-users', { max_items: 'none' })), 'activeuserjids'),
      ['temp@localhost'],
    );
    const limited = done(await runForm(admin, 'get-online-users-list', { max_items: '2' }));
    assert.equal(resultField(limited, 'onlineuserjids').length, 2);
    assert.ok(notes(limited).some((t) => t.includes('2 of 3')));

    done(await runForm(admin, 'end-user-session', { accountjids: ['temp@localhost/one'] }));
    await here.waitClosed();
    assert.equal(here.streamError?.condition, 'not-authorized');
    assert.equal(here2.closed, false, String(here2.streamError?.condition) + here2.streamError?.text);
    await here2.close();
    await away.close();
  });

  test('announce: a headline from the domain to every available session of the domain, with subject', async () => {
    const a = await TestClient.login(server, 'temp', PW, { resource: 'a', presence: true });
    const b = await TestClient.login(server, 'idle', PW, { resource: 'b' }); // no presence: not sent
    await a.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    const res = done(
      await runForm(admin, 'announce', {
        subject: 'Maintenance',
        announcement: ['Down at 22:00', 'for ten minutes'],
      }),
    );
    assert.ok(
      notes(res).some((t) => /Sent to 1 session/.test(t)),
      notes(res).join(' | '),
    );
    const msg = await a.receive((e) => e.name === 'message' && e.attrs.type === 'headline');
    assert.equal(msg.attrs.from, 'localhost');
    assert.equal(msg.getChildText('subject'), 'Maintenance');
    assert.equal(msg.getChildText('body'), 'Down at 22:00\nfor ten minutes');
    await b.nothing((e) => e.name === 'message');
    refused(await runForm(admin, 'announce', { announcement: '' }), 'bad-request', 'bad-payload');
    await a.close();
    await b.close();
  });

  test('get-registered-users: the count and the list match the accounts of the host, not of the other host', async () => {
    await server.addUser('stranger', PW, 'other.example');
    const num = Number(
      resultField(
        done(await admin.iq(command({ node: node('get-registered-users-num') }))),
        'registeredusersnum',
      )[0],
    );
    const list = resultField(
      done(await runForm(admin, 'get-registered-users-list', { max_items: 'none' })),
      'registereduserjids',
    );
    assert.equal(list.length, num);
    assert.deepEqual(
      list,
      (await server.core.accounts.list('localhost')).map((u) => `${u}@localhost`),
    );
    assert.ok(!list.some((j) => j.endsWith('other.example')));
  });
});
