import { test } from 'node:test';
import assert from 'node:assert/strict';
import { xml } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer } from '../../../test/support/test-server.js';
import { TestClient } from '../../../test/support/test-client.js';
import { BASE_MODULES, pubsubIq, ok, fails, publish } from '../../../test/support/pubsub.js';

const PW = 'secret-password';

test('XEP-0077 §3.2: removing an account deletes its PEP nodes and its pubsub subscriptions', async () => {
  const server = await startTestServer({ modules: BASE_MODULES });
  try {
    await server.addUser('owner', PW);
    await server.addUser('leaver', PW);
    const owner = await TestClient.login(server, 'owner', PW, { resource: 'o' });
    ok(await owner.iq(pubsubIq('set', 'pubsub.localhost', false, xml('create', { node: 'feed' }))));
    let leaver = await TestClient.login(server, 'leaver', PW, { resource: 'l' });
    ok(await publish(leaver, undefined, 'urn:example:mine', 'a', xml('x', { xmlns: 'urn:example:mine' })));
    ok(
      await leaver.iq(
        pubsubIq('set', 'pubsub.localhost', false, xml('subscribe', { node: 'feed', jid: leaver.jid })),
      ),
    );
    ok(
      await leaver.iq(
        xml('iq', { type: 'set', to: 'localhost' }, xml('query', { xmlns: NS.register }, xml('remove'))),
      ),
    );
    await leaver.waitClosed();
    await server.addUser('leaver', PW);
    leaver = await TestClient.login(server, 'leaver', PW, { resource: 'l' });
    fails(
      await leaver.iq(pubsubIq('get', undefined, false, xml('items', { node: 'urn:example:mine' }))),
      'item-not-found',
    );
    const subs = ok(
      await owner.iq(pubsubIq('get', 'pubsub.localhost', true, xml('subscriptions', { node: 'feed' }))),
    );
    assert.equal(
      subs.getChild('pubsub', NS.pubsubOwner)!.getChild('subscriptions')!.getChildren('subscription').length,
      0,
    );
    await owner.close();
    await leaver.close();
  } finally {
    await server.destroy();
  }
});
