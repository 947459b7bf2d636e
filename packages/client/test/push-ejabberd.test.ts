// The `push` module (XEP-0357) against ejabberd 23.01's mod_push (Debian's package, started by this
// file with its own config, spool and ports): Prosody 0.12 has no XEP-0357 module, so ejabberd is
// the third-party server these run against (Natter: test/push.test.ts). The app server is a second
// account's resource that takes the pubsub publishes ejabberd sends it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  createClient,
  push,
  StanzaError,
  streamManagement,
  type Client,
  type Element,
  type NoPlugins,
  type PluginMap,
} from '../src/index.node.js';
import { startEjabberd, type Ejabberd } from '../../component/test/ejabberd.js';
import { available, sleep } from './helpers.js';

const NS_PUBSUB = 'http://jabber.org/protocol/pubsub';
const BOUND = { timeout: 120_000 };

function fieldsOf(x: Element | undefined): Map<string | undefined, string | undefined> {
  return new Map((x?.getChildren('field') ?? []).map((f) => [f.attr('var'), f.getChildText('value')]));
}

/** The XEP-0357 summary form of a notification (empty when it has none). */
function summaryOf(iq: Element): Map<string | undefined, string | undefined> {
  return fieldsOf(
    iq
      .getChild('pubsub', NS_PUBSUB)
      ?.getChild('publish')
      ?.getChild('item')
      ?.getChild('notification', 'urn:xmpp:push:0')
      ?.getChild('x'),
  );
}

describe('push (XEP-0357) against ejabberd 23.01 mod_push', () => {
  let server: Ejabberd;
  let next = 0;
  const clients: Client[] = [];
  const account = () => server.users[next++]!;
  const client = <P extends PluginMap = NoPlugins>(
    acct: { jid: string; password: string },
    opts: { resource?: string; plugins?: P } = {},
  ) => {
    // ejabberd's listener here is plain TCP on loopback (no certificate configured).
    const c = createClient<P>({ service: server.service, ...acct, allowPlaintextAuth: true, ...opts });
    clients.push(c as unknown as Client);
    return c;
  };

  /** A second account's resource as the XEP-0357 app server: it takes every pubsub publish. */
  async function appServer() {
    const c = client(account(), { resource: 'app-server' });
    const publishes: Element[] = [];
    const waiters: (() => void)[] = [];
    c.handleIq('set', 'pubsub', NS_PUBSUB, (iq) => {
      publishes.push(iq);
      for (const w of waiters.splice(0)) w();
    });
    await c.connect();
    return {
      jid: c.jid!.toString(),
      publishes,
      /** The first publish to `node` (that `filter` accepts) not taken yet; 10 s at most. */
      async next(node: string, filter: (iq: Element) => boolean = () => true): Promise<Element> {
        const deadline = Date.now() + 10_000;
        for (;;) {
          const i = publishes.findIndex(
            (iq) =>
              iq.getChild('pubsub', NS_PUBSUB)?.getChild('publish')?.attr('node') === node && filter(iq),
          );
          if (i >= 0) return publishes.splice(i, 1)[0]!;
          const left = deadline - Date.now();
          if (left <= 0) throw new Error(`no push notification for ${node} within 10 s`);
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, left);
            waiters.push(() => {
              clearTimeout(t);
              resolve();
            });
          });
        }
      },
      nodes: () => publishes.map((iq) => iq.getChild('pubsub', NS_PUBSUB)?.getChild('publish')?.attr('node')),
    };
  }

  before(async () => {
    server = await startEjabberd({
      users: 12,
      modules: `  mod_offline: {}
  mod_stream_mgmt:
    resume_timeout: 60
  mod_push:
    include_sender: true
`,
    });
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.disconnect().catch(() => undefined)));
    await server?.stop();
  });

  test('the account announces urn:xmpp:push:0; enable and disable are accepted', BOUND, async () => {
    const c = client(account(), { plugins: { push: push() } });
    await c.connect();
    assert.equal(await c.plugins.push.supported(), true);
    await c.plugins.push.enable({ jid: 'push.example.net', node: 'device-a', secret: 'tok' });
    await c.plugins.push.disable({ jid: 'push.example.net', node: 'device-a' });
    await c.plugins.push.enable({ jid: 'push.example.net', node: 'device-b', form: { endpoint: 'x' } });
    // ejabberd keeps one registration per session: this enable replaces device-b.
    await c.plugins.push.enable({ jid: 'push.example.net', node: 'device-c' });
    await c.plugins.push.disable({ jid: 'push.example.net' });
    // It answers a disable that matches no registration with item-not-found.
    await assert.rejects(
      c.plugins.push.disable({ jid: 'push.example.net', node: 'device-b' }),
      (err: unknown) => err instanceof StanzaError && err.condition === 'item-not-found',
    );
    await assert.rejects(
      c.plugins.push.disable({ jid: 'push.example.net' }),
      (err: unknown) => err instanceof StanzaError && err.condition === 'item-not-found',
    );
  });

  test(
    'offline: a message to the account notifies the app server after enable, not after disable',
    BOUND,
    async () => {
      const app = await appServer();
      const acct = account();
      const phone = client(acct, { resource: 'phone', plugins: { push: push() } });
      await phone.connect();
      await available(phone as unknown as Client);
      await phone.plugins.push.enable({ jid: app.jid, node: 'device-1', secret: 'eruio234vzxc2kla-91' });
      await phone.disconnect();

      const sender = client(account());
      await sender.connect();
      await sender.sendMessage({ to: acct.jid, body: 'are you there?' });
      const iq = await app.next('device-1');
      // From the account's server (as in XEP-0357's examples; Natter sends from the account's JID).
      assert.equal(iq.attr('from'), server.domain);
      const pubsub = iq.getChild('pubsub', NS_PUBSUB)!;
      const summary = fieldsOf(
        pubsub
          .getChild('publish')
          ?.getChild('item')
          ?.getChild('notification', 'urn:xmpp:push:0')
          ?.getChild('x'),
      );
      assert.equal(summary.get('FORM_TYPE'), 'urn:xmpp:push:summary');
      assert.equal(summary.get('last-message-sender'), sender.jid!.toString());
      const options = fieldsOf(pubsub.getChild('publish-options')?.getChild('x'));
      assert.equal(options.get('secret'), 'eruio234vzxc2kla-91');

      // Disabled: the next missed message notifies only the registration made since.
      await phone.connect();
      await phone.plugins.push.disable({ jid: app.jid, node: 'device-1' });
      await phone.plugins.push.enable({ jid: app.jid, node: 'device-2' });
      await phone.disconnect();
      await sender.sendMessage({ to: acct.jid, body: 'still there?' });
      await app.next('device-2');
      await sleep(500);
      assert.deepEqual(app.nodes(), [], 'nothing for device-1');
    },
  );

  test(
    'hibernated (stream management): a message notifies the app server, and arrives on resumption',
    BOUND,
    async () => {
      const app = await appServer();
      const acct = account();
      const phone = client(acct, { resource: 'phone', plugins: { push: push(), sm: streamManagement() } });
      await phone.connect();
      await available(phone as unknown as Client);
      await phone.plugins.push.enable({ jid: app.jid, node: 'hibernating' });
      // The connection is lost, not closed: ejabberd keeps the session for resumption.
      phone.dropConnection();
      assert.equal(phone.resumable, true);

      const sender = client(account());
      await sender.connect();
      await sender.sendMessage({ to: `${acct.jid}/phone`, body: 'wake up' });
      // ejabberd may notify as the session goes to sleep with stanzas unacknowledged (a
      // notification without a summary); the message's own names its sender.
      const iq = await app.next(
        'hibernating',
        (x) => summaryOf(x).get('last-message-sender') === sender.jid!.toString(),
      );
      assert.equal(iq.attr('from'), server.domain);

      const delivered = phone.waitFor('message', {
        filter: (m) => m.getChildText('body') === 'wake up',
        timeout: 10_000,
      });
      const online = phone.waitFor('online', { timeout: 10_000 });
      await phone.connect();
      assert.equal((await online).resumed, true);
      await delivered;

      // Disabled, then hibernated again: no notification at all.
      await phone.plugins.push.disable({ jid: app.jid, node: 'hibernating' });
      app.publishes.length = 0;
      phone.dropConnection();
      await sender.sendMessage({ to: `${acct.jid}/phone`, body: 'are you asleep?' });
      // A ping round trip on the sender's stream and a bounded wait let ejabberd route it.
      await available(sender);
      await sleep(1000);
      assert.deepEqual(app.nodes(), [], 'no notification once disabled');
    },
  );
});
