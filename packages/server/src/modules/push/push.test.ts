import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import { TestClient } from '../../../test/support/test-client.js';
import { TestComponent } from '../../../test/support/test-component.js';
import { enableSm, until } from '../../../test/hostile/support/sm-client.js';
import { NS_PUSH, PUSH_SUMMARY, PUBLISH_OPTIONS } from './push.js';

const PW = 'push-pw';
const APP = 'push.localhost';
const SECRET = 'component-secret-for-push';

const condition = (e: Element) =>
  e
    .getChild('error')
    ?.elements()
    .find((c) => c.xmlns === NS.stanzas && c.name !== 'text')?.name;

const isPublish = (node?: string) => (e: Element) =>
  e.name === 'iq' &&
  e.attrs.type === 'set' &&
  e.getChild('pubsub', NS.pubsub) !== undefined &&
  (node === undefined || e.getChild('pubsub', NS.pubsub)!.getChild('publish')?.attrs.node === node);

/** Fields of the summary form of a notification. */
function summary(iq: Element): Record<string, string> {
  const x = iq
    .getChild('pubsub', NS.pubsub)!
    .getChild('publish')!
    .getChild('item')!
    .getChild('notification', NS_PUSH)!
    .getChild('x', NS.dataForms)!;
  const out: Record<string, string> = {};
  for (const f of x.getChildren('field')) out[f.attrs.var!] = f.getChildText('value') ?? '';
  return out;
}

function publishOptions(iq: Element): Record<string, string> {
  const x = iq.getChild('pubsub', NS.pubsub)!.getChild('publish-options')?.getChild('x', NS.dataForms);
  const out: Record<string, string> = {};
  for (const f of x?.getChildren('field') ?? []) out[f.attrs.var!] = f.getChildText('value') ?? '';
  return out;
}

const enableEl = (node: string, secret?: string, jid = APP) =>
  xml(
    'iq',
    { type: 'set' },
    xml(
      'enable',
      { xmlns: NS_PUSH, jid, node },
      secret !== undefined &&
        xml(
          'x',
          { xmlns: NS.dataForms, type: 'submit' },
          xml('field', { var: 'FORM_TYPE' }, xml('value', null, PUBLISH_OPTIONS)),
          xml('field', { var: 'secret' }, xml('value', null, secret)),
        ),
    ),
  );

/** The app server: takes the next publish for `node` and answers it (result, an error, or nothing). */
async function nextPush(
  app: TestComponent,
  node: string,
  answer: string | null = 'result',
  errorType = 'cancel',
): Promise<Element> {
  const iq = await app.receive(isPublish(node), 5000);
  if (answer === 'result') app.send(xml('iq', { type: 'result', id: iq.attrs.id, to: iq.attrs.from }));
  else if (answer !== null)
    app.send(
      xml(
        'iq',
        { type: 'error', id: iq.attrs.id, to: iq.attrs.from },
        xml('error', { type: errorType }, xml(answer, { xmlns: NS.stanzas })),
      ),
    );
  return iq;
}

describe('push notifications (XEP-0357)', () => {
  let server: TestServer;
  let bodyServer: TestServer;
  let app: TestComponent;
  let bodyApp: TestComponent;
  let juliet: TestClient;

  before(async () => {
    server = await startTestServer({
      components: { [APP]: { secret: SECRET } },
      modules: { ping: { idleMs: 0 }, push: { minIntervalMs: 0, timeoutMs: 500, retries: 0 } },
    });
    for (const u of ['juliet', 'romeo', 'mercutio', 'benvolio', 'tybalt', 'paris', 'nurse', 'friar'])
      await server.addUser(u, PW);
    app = await TestComponent.connect(server.port('component'), APP, SECRET);
    juliet = await TestClient.login(server, 'juliet', PW, { resource: 'balcony' });

    bodyServer = await startTestServer({
      components: { [APP]: { secret: SECRET } },
      modules: { ping: { idleMs: 0 }, push: { includeBody: true, minIntervalMs: 0 } },
    });
    await bodyServer.addUser('juliet', PW);
    await bodyServer.addUser('romeo', PW);
    bodyApp = await TestComponent.connect(bodyServer.port('component'), APP, SECRET);
  });
  after(async () => {
    await juliet.close();
    await app.close();
    await bodyApp.close();
    await server.destroy();
    await bodyServer.destroy();
  });

  const login = (user: string, resource = 'phone', presence = false) =>
    TestClient.login(server, user, PW, { resource, presence });
  const say = (to: string, body: string, from = juliet) =>
    from.send(xml('message', { type: 'chat', to, id: `m-${body}` }, xml('body', null, body)));
  const enable = async (user: string, node: string, secret?: string) => {
    const c = await login(user, 'enable');
    const res = await c.iq(enableEl(node, secret));
    assert.equal(res.attrs.type, 'result', res.toString());
    await c.close();
  };

  test('the account advertises urn:xmpp:push:0', async () => {
    const c = await login('friar');
    const info = await c.iq(
      xml('iq', { type: 'get', to: 'friar@localhost' }, xml('query', { xmlns: NS.discoInfo })),
    );
    const vars = info
      .getChild('query', NS.discoInfo)!
      .getChildren('feature')
      .map((f) => f.attrs.var);
    assert.ok(vars.includes(NS_PUSH), info.toString());
    await c.close();
  });

  test('an offline account: the app server gets the count and sender, no body, and the secret', async () => {
    await enable('romeo', 'romeo-node', 's3cr3t');
    await say('romeo@localhost', 'wherefore art thou');
    const iq = await nextPush(app, 'romeo-node');
    assert.equal(iq.attrs.from, 'romeo@localhost');
    assert.equal(iq.attrs.to, APP);
    const s = summary(iq);
    assert.equal(s.FORM_TYPE, PUSH_SUMMARY);
    assert.equal(s['message-count'], '1');
    assert.equal(s['last-message-sender'], 'juliet@localhost/balcony');
    assert.equal(s['last-message-body'], undefined);
    assert.deepEqual(publishOptions(iq), { FORM_TYPE: PUBLISH_OPTIONS, secret: 's3cr3t' });
  });

  test('the count grows, and starts again once the account was online', async () => {
    await say('romeo@localhost', 'second');
    assert.equal(summary(await nextPush(app, 'romeo-node'))['message-count'], '2');
    const romeo = await login('romeo', 'phone', true);
    await romeo.receive((e) => e.name === 'message' && e.getChildText('body') === 'second');
    await romeo.close();
    await say('romeo@localhost', 'third');
    assert.equal(summary(await nextPush(app, 'romeo-node'))['message-count'], '1');
  });

  test('includeBody: the last message body is in the notification', async () => {
    const c = await TestClient.login(bodyServer, 'romeo', PW, { resource: 'enable' });
    assert.equal((await c.iq(enableEl('body-node', 'x'))).attrs.type, 'result');
    await c.close();
    const j = await TestClient.login(bodyServer, 'juliet', PW, { resource: 'balcony' });
    await say('romeo@localhost', 'a rose by any other name', j);
    const s = summary(await nextPush(bodyApp, 'body-node'));
    assert.equal(s['last-message-body'], 'a rose by any other name');
    assert.equal(s['message-count'], '1');
    await j.close();
  });

  test('disable stops notifications', async () => {
    await enable('mercutio', 'm-node');
    await say('mercutio@localhost', 'one');
    await nextPush(app, 'm-node');
    const c = await login('mercutio', 'disable');
    const res = await c.iq(xml('iq', { type: 'set' }, xml('disable', { xmlns: NS_PUSH, jid: APP })));
    assert.equal(res.attrs.type, 'result');
    await c.close();
    await say('mercutio@localhost', 'two');
    await app.nothing(isPublish('m-node'), 500);
  });

  test('another account may not enable push for someone else', async () => {
    const req = enableEl('stolen');
    req.attrs.to = 'romeo@localhost';
    const res = await juliet.iq(req);
    assert.equal(res.attrs.type, 'error');
    assert.equal(condition(res), 'forbidden');
  });

  test('an app server answering item-not-found disables the registration', async () => {
    await enable('benvolio', 'gone-node');
    await say('benvolio@localhost', 'one');
    await nextPush(app, 'gone-node', 'item-not-found');
    await new Promise((r) => setTimeout(r, 200));
    await say('benvolio@localhost', 'two');
    await app.nothing(isPublish('gone-node'), 500);
  });

  test('an app server that never answers does not delay offline storage', async () => {
    await enable('tybalt', 'silent-node');
    await say('tybalt@localhost', 'never answered');
    await nextPush(app, 'silent-node', null);
    const tybalt = await login('tybalt', 'phone', true);
    const m = await tybalt.receive(
      (e) => e.name === 'message' && e.getChildText('body') === 'never answered',
      2000,
    );
    assert.ok(m);
    await tybalt.close();
  });

  test('a hibernated stream management session gets a notification when its stream is cut', async () => {
    const paris = await login('paris', 'phone', true);
    await enableSm(paris);
    assert.equal((await paris.iq(enableEl('sm-node', 'k'))).attrs.type, 'result');
    paris.kill();
    await until(
      () =>
        [...server.core.sessions.all()].some(
          (s) => s.jid.toString() === 'paris@localhost/phone' && s.hibernated,
        ),
      3000,
      'hibernation',
    );
    await say('paris@localhost', 'wake up');
    const s = summary(await nextPush(app, 'sm-node'));
    assert.equal(s['message-count'], '1');
    assert.equal(s['last-message-sender'], 'juliet@localhost/balcony');
  });

  test('deleting the account removes its registrations', async () => {
    await enable('nurse', 'nurse-node');
    const c = await login('nurse', 'remove');
    const res = await c.iq(
      xml('iq', { type: 'set', to: 'localhost' }, xml('query', { xmlns: NS.register }, xml('remove'))),
    );
    assert.equal(res.attrs.type, 'result');
    await c.waitClosed().catch(() => c.kill());
    await server.addUser('nurse', PW);
    await say('nurse@localhost', 'anyone?');
    await app.nothing(isPublish('nurse-node'), 500);
  });

  test('rate limit: counts coalesce within the window; wait errors are retried a bounded number of times', async () => {
    const limited = await startTestServer({
      components: { [APP]: { secret: SECRET } },
      modules: { ping: { idleMs: 0 }, push: { minIntervalMs: 400, retries: 1, retryDelayMs: 50 } },
    });
    try {
      await limited.addUser('juliet', PW);
      await limited.addUser('romeo', PW);
      const lapp = await TestComponent.connect(limited.port('component'), APP, SECRET);
      const c = await TestClient.login(limited, 'romeo', PW, { resource: 'enable' });
      assert.equal((await c.iq(enableEl('rl-node'))).attrs.type, 'result');
      await c.close();
      const j = await TestClient.login(limited, 'juliet', PW, { resource: 'balcony' });
      await say('romeo@localhost', 'a', j);
      assert.equal(summary(await nextPush(lapp, 'rl-node'))['message-count'], '1');
      await say('romeo@localhost', 'b', j);
      await say('romeo@localhost', 'c', j);
      await lapp.nothing(isPublish('rl-node'), 150);
      const started = Date.now();
      // One notification for both, once the window is over; the app server asks to wait.
      const first = await nextPush(lapp, 'rl-node', 'resource-constraint', 'wait');
      assert.equal(summary(first)['message-count'], '3');
      const retried = await nextPush(lapp, 'rl-node', 'resource-constraint', 'wait');
      assert.equal(summary(retried)['message-count'], '3');
      assert.ok(Date.now() - started < 2000);
      // retries: 1 — no third attempt.
      await lapp.nothing(isPublish('rl-node'), 300);
      await j.close();
      await lapp.close();
    } finally {
      await limited.destroy();
    }
  });
});
