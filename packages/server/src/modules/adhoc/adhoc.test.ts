import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { xml, type Element } from '@natter/xml';
import { NS, fieldValue, parseForm } from '@natter/protocol';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import { TestClient } from '../../../test/support/test-client.js';
import { command, done, refused, submit } from '../../../test/support/adhoc.js';
import { defineModule } from '../../core/module-api.js';
import { NS_COMMANDS, commandError, type AdhocApi } from './api.js';

const PW = 'secret-password';
const WIZARD = 'urn:natter:test:wizard';
const ADMIN_ONLY = 'urn:natter:test:admin-only';

/**
 * A peer module registering commands through the API: a three-stage wizard (name, then colour,
 * then the result) and a command only admin@localhost may run.
 */
const testCommands = defineModule({
  name: 'adhoc-test-commands',
  description: 'test commands',
  specs: [],
  enabledByDefault: true,
  dependencies: ['adhoc'],
  setup(ctx) {
    const api = ctx.use<AdhocApi>('adhoc')!;
    ctx.onStop(
      api.register({
        node: WIZARD,
        name: 'Wizard',
        allowed: (r) => r.domain === ctx.domain && r.local !== '',
        execute({ stage, form, state }) {
          if (stage === 0)
            return {
              status: 'executing',
              actions: { allowed: ['next'], execute: 'next' },
              form: {
                type: 'form',
                title: 'Name',
                fields: [{ var: 'name', type: 'text-single', values: [] }],
              },
            };
          if (stage === 1) {
            const name = form && fieldValue(form, 'name');
            if (!name) throw commandError('bad-payload', 'a name is required');
            state.name = name;
            return {
              status: 'executing',
              actions: { allowed: ['prev', 'complete'], execute: 'complete' },
              notes: [{ type: 'warn', text: `hello ${name}` }],
              form: {
                type: 'form',
                title: 'Colour',
                fields: [{ var: 'colour', type: 'text-single', values: [] }],
              },
            };
          }
          return {
            status: 'completed',
            form: {
              type: 'result',
              fields: [
                {
                  var: 'summary',
                  values: [`${String(state.name)} likes ${fieldValue(form!, 'colour') ?? '?'}`],
                },
              ],
            },
          };
        },
      }),
    );
    ctx.onStop(
      api.register({
        node: ADMIN_ONLY,
        name: 'Admins only',
        allowed: (r) => r.bare.toString() === `admin@${ctx.domain}`,
        execute: () => ({ status: 'completed', notes: [{ text: 'done' }] }),
      }),
    );
  },
});

const actionsOf = (c: Element) => {
  const a = c.getChild('actions', NS_COMMANDS);
  return a && { execute: a.attrs.execute, allowed: a.elements().map((e) => e.name) };
};
const formTitle = (c: Element) => c.getChild('x', NS.dataForms)?.getChildText('title', NS.dataForms);

async function discoItems(c: TestClient): Promise<Element[]> {
  const res = await c.iq(
    xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: NS.discoItems, node: NS_COMMANDS })),
  );
  assert.equal(res.attrs.type, 'result', res.toString());
  return res.getChild('query', NS.discoItems)!.getChildren('item');
}

describe('Ad-Hoc Commands (XEP-0050)', () => {
  let server: TestServer;
  let romeo: TestClient;
  before(async () => {
    server = await startTestServer(
      {
        hosts: ['localhost', 'elsewhere.example'],
        modules: { ping: { idleMs: 0 }, adhoc: { maxSessionsPerUser: 3, sessionTimeoutMs: 400 } },
      },
      { modules: [testCommands] },
    );
    for (const u of ['romeo', 'juliet', 'admin']) await server.addUser(u, PW);
    await server.addUser('mallory', PW, 'elsewhere.example');
    romeo = await TestClient.login(server, 'romeo', PW, { resource: 'orchard' });
  });
  after(async () => {
    await romeo.close();
    await server.destroy();
  });

  test('XEP-0050 §2.1-§2.2: the server advertises commands and lists those the requester may run', async () => {
    const info = await romeo.iq(
      xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: NS.discoInfo })),
    );
    const features = info
      .getChild('query', NS.discoInfo)!
      .getChildren('feature')
      .map((f) => f.attrs.var);
    assert.ok(features.includes(NS_COMMANDS), features.join(' '));

    const nodes = (await discoItems(romeo)).map((i) => i.attrs.node);
    assert.ok(nodes.includes(WIZARD));
    assert.ok(!nodes.includes(ADMIN_ONLY), 'romeo may not run the admin command');
    for (const i of await discoItems(romeo)) assert.equal(i.attrs.jid, 'localhost');

    const admin = await TestClient.login(server, 'admin', PW, { resource: 'desk' });
    assert.ok(
      (await discoItems(admin)).some((i) => i.attrs.node === ADMIN_ONLY && i.attrs.name === 'Admins only'),
    );
    await admin.close();
  });

  test('XEP-0050 §2.3: disco#info of a command node: automation/command-node, commands and jabber:x:data', async () => {
    const res = await romeo.iq(
      xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: NS.discoInfo, node: WIZARD })),
    );
    const q = res.getChild('query', NS.discoInfo)!;
    assert.equal(q.attrs.node, WIZARD);
    const id = q.getChild('identity')!;
    assert.deepEqual(
      [id.attrs.category, id.attrs.type, id.attrs.name],
      ['automation', 'command-node', 'Wizard'],
    );
    const features = q.getChildren('feature').map((f) => f.attrs.var);
    assert.ok(features.includes(NS_COMMANDS) && features.includes(NS.dataForms), features.join(' '));
    // The list node itself (XEP-0030 registry: automation/command-list).
    const list = await romeo.iq(
      xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: NS.discoInfo, node: NS_COMMANDS })),
    );
    const listId = list.getChild('query', NS.discoInfo)!.getChild('identity')!;
    assert.deepEqual([listId.attrs.category, listId.attrs.type], ['automation', 'command-list']);
    // A command the requester may not run is not disclosed.
    refused(
      await romeo.iq(
        xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: NS.discoInfo, node: ADMIN_ONLY })),
      ),
      'item-not-found',
    );
  });

  test('XEP-0050 §3.4: a multi-stage command: execute, next, prev, next, complete, with actions and notes', async () => {
    const first = done(await romeo.iq(command({ node: WIZARD, action: 'execute' })));
    assert.equal(first.attrs.status, 'executing');
    const sessionid = first.attrs.sessionid!;
    assert.ok(sessionid);
    assert.deepEqual(actionsOf(first), { execute: 'next', allowed: ['next'] });
    assert.equal(formTitle(first), 'Name');

    // "execute" within a session is the default action (next here).
    const second = done(await romeo.iq(command({ node: WIZARD, sessionid }, submit({ name: 'Romeo' }))));
    assert.equal(second.attrs.status, 'executing');
    assert.deepEqual(actionsOf(second), { execute: 'complete', allowed: ['prev', 'complete'] });
    const note = second.getChild('note', NS_COMMANDS)!;
    assert.deepEqual([note.attrs.type, note.text()], ['warn', 'hello Romeo']);

    const back = done(await romeo.iq(command({ node: WIZARD, sessionid, action: 'prev' })));
    assert.equal(formTitle(back), 'Name');
    assert.equal(back.attrs.sessionid, sessionid);
    done(await romeo.iq(command({ node: WIZARD, sessionid, action: 'next' }, submit({ name: 'R.' }))));
    const last = done(
      await romeo.iq(command({ node: WIZARD, sessionid, action: 'complete' }, submit({ colour: 'red' }))),
    );
    assert.equal(last.attrs.status, 'completed');
    assert.equal(last.getChild('actions', NS_COMMANDS), undefined);
    assert.equal(fieldValue(parseForm(last.getChild('x', NS.dataForms)!), 'summary'), 'R. likes red');
    // The session is over.
    refused(
      await romeo.iq(command({ node: WIZARD, sessionid, action: 'complete' }, submit({}))),
      'bad-request',
      'bad-sessionid',
    );
  });

  test('XEP-0050 §3.5 and §4.6: cancel ends a session; actions not allowed at a stage are bad-action', async () => {
    const first = done(await romeo.iq(command({ node: WIZARD })));
    const sessionid = first.attrs.sessionid!;
    refused(
      await romeo.iq(command({ node: WIZARD, sessionid, action: 'complete' }, submit({ name: 'x' }))),
      'bad-request',
      'bad-action',
    );
    refused(
      await romeo.iq(command({ node: WIZARD, sessionid, action: 'prev' })),
      'bad-request',
      'bad-action',
    );
    refused(
      await romeo.iq(command({ node: WIZARD, sessionid, action: 'jump' })),
      'bad-request',
      'malformed-action',
    );
    // A missing or empty form is refused, and the session stays for another try.
    refused(
      await romeo.iq(command({ node: WIZARD, sessionid, action: 'next' })),
      'bad-request',
      'bad-payload',
    );
    refused(
      await romeo.iq(command({ node: WIZARD, sessionid, action: 'next' }, submit({ name: '' }))),
      'bad-request',
      'bad-payload',
    );
    const canceled = done(await romeo.iq(command({ node: WIZARD, sessionid, action: 'cancel' })));
    assert.equal(canceled.attrs.status, 'canceled');
    refused(
      await romeo.iq(command({ node: WIZARD, sessionid, action: 'next' }, submit({ name: 'x' }))),
      'bad-request',
      'bad-sessionid',
    );
    // Only execute starts a command.
    refused(await romeo.iq(command({ node: WIZARD, action: 'next' })), 'bad-request', 'bad-action');
  });

  test('XEP-0050 §4.6: unknown node, forbidden command, unknown session id', async () => {
    refused(await romeo.iq(command({ node: 'urn:natter:test:nothing' })), 'item-not-found');
    refused(await romeo.iq(command({})), 'item-not-found');
    refused(await romeo.iq(command({ node: ADMIN_ONLY })), 'forbidden');
    refused(
      await romeo.iq(command({ node: WIZARD, sessionid: 'made-up', action: 'next' }, submit({ name: 'x' }))),
      'bad-request',
      'bad-sessionid',
    );
  });

  test("a session is bound to the requester's full JID: another user or another resource of the same account cannot continue it", async () => {
    const first = done(await romeo.iq(command({ node: WIZARD })));
    const sessionid = first.attrs.sessionid!;
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'balcony' });
    const romeo2 = await TestClient.login(server, 'romeo', PW, { resource: 'street' });
    for (const c of [juliet, romeo2]) {
      refused(
        await c.iq(command({ node: WIZARD, sessionid }, submit({ name: 'thief' }))),
        'bad-request',
        'bad-sessionid',
      );
      refused(
        await c.iq(command({ node: WIZARD, sessionid, action: 'cancel' })),
        'bad-request',
        'bad-sessionid',
      );
    }
    // Still romeo's, untouched.
    const next = done(await romeo.iq(command({ node: WIZARD, sessionid }, submit({ name: 'Romeo' }))));
    assert.equal(formTitle(next), 'Colour');
    done(await romeo.iq(command({ node: WIZARD, sessionid, action: 'cancel' })));
    await juliet.close();
    await romeo2.close();
  });

  test('an idle session expires: not-allowed with session-expired', async () => {
    const first = done(await romeo.iq(command({ node: WIZARD })));
    await sleep(600);
    refused(
      await romeo.iq(
        command({ node: WIZARD, sessionid: first.attrs.sessionid, action: 'next' }, submit({ name: 'late' })),
      ),
      'not-allowed',
      'session-expired',
    );
  });

  test('an account has at most maxSessionsPerUser sessions open (resource-constraint), over all its resources', async () => {
    const romeo2 = await TestClient.login(server, 'romeo', PW, { resource: 'street' });
    const ids: string[] = [];
    for (const c of [romeo, romeo, romeo2])
      ids.push(done(await c.iq(command({ node: WIZARD }))).attrs.sessionid!);
    refused(await romeo.iq(command({ node: WIZARD })), 'resource-constraint');
    // Another account is not counted with romeo.
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'balcony' });
    done(await juliet.iq(command({ node: WIZARD })));
    // A session ended (its resource logged out) frees its place.
    await romeo2.close();
    await sleep(50);
    done(await romeo.iq(command({ node: WIZARD })));
    await juliet.close();
    await sleep(600); // let them expire for the next tests
  });

  test('accounts of another host are offered nothing and refused (forbidden)', async () => {
    const mallory = await TestClient.login({ ...server, domain: 'elsewhere.example' }, 'mallory', PW);
    assert.deepEqual(await discoItems(mallory), []);
    refused(await mallory.iq(command({ node: WIZARD })), 'forbidden');
    await mallory.close();
  });
});
