// The filter stage (`stanza/in`, DESIGN.md "one filter stage runs before dispatch for stanzas from
// every origin"): a user's policy holds against senders that are not local clients. An external
// component (XEP-0114) stands in for a remote domain: its stanzas enter the router with a `from` on
// a domain that has no account here, as a remote server's do (ServerCore.routeFromRemote and
// routeFromComponent end in the same router.dispatch).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from './support/test-server.js';
import { TestClient } from './support/test-client.js';
import { TestComponent } from './support/test-component.js';

const PW = 'filter-stage-pw';
const FAR = 'far.example';
const SECRET = 'a-long-enough-component-secret';

const condition = (e: Element) =>
  e
    .getChild('error')
    ?.elements()
    .find((c) => c.xmlns === NS.stanzas)?.name;
const blockIq = (verb: 'block' | 'unblock', jid: string) =>
  xml('iq', { type: 'set' }, xml(verb, { xmlns: NS.blocking }, xml('item', { jid })));

describe('the filter stage: policy for stanzas from every origin', () => {
  let server: TestServer;
  let far: TestComponent;
  let n = 0;
  before(async () => {
    server = await startTestServer({
      components: { [FAR]: { secret: SECRET } },
      modules: { ping: { idleMs: 0 } },
    });
    far = await TestComponent.connect(server.port('component'), FAR, SECRET);
  });
  after(async () => {
    await far.close();
    await server.destroy();
  });

  /** A fresh user, online and available, with its own presence reflection swallowed. */
  const user = async () => {
    const name = `user${++n}`;
    await server.addUser(name, PW);
    const c = await TestClient.login(server, name, PW, { resource: 'r', presence: true });
    await c.receive((e) => e.name === 'presence' && e.attrs.from === c.jid);
    return { c, bare: `${name}@localhost` };
  };

  /**
   * Everything a contact can send a user, each stanza tagged with `id`: messages to the bare and
   * the full JID, presence (directed, subscription request, probe) to both, IQs to the bare JID
   * (answered by the server for the account) and to the full JID (answered by the client).
   */
  const everything = (from: string, bare: string, full: string, id: string) => [
    xml('message', { from, to: bare, type: 'chat', id: `${id}-m-bare` }, xml('body', null, 'bare')),
    xml('message', { from, to: full, type: 'chat', id: `${id}-m-full` }, xml('body', null, 'full')),
    xml('message', { from, to: full, type: 'normal', id: `${id}-m-normal` }, xml('body', null, 'n')),
    xml('presence', { from, to: bare, id: `${id}-p-bare` }),
    xml('presence', { from, to: full, id: `${id}-p-full` }),
    xml('presence', { from, to: bare, type: 'subscribe', id: `${id}-p-sub` }),
    xml('presence', { from, to: bare, type: 'probe', id: `${id}-p-probe` }),
    xml('iq', { from, to: bare, type: 'get', id: `${id}-iq-vcard` }, xml('vCard', { xmlns: NS.vcard })),
    xml('iq', { from, to: bare, type: 'get', id: `${id}-iq-ping` }, xml('ping', { xmlns: NS.ping })),
    xml('iq', { from, to: bare, type: 'get', id: `${id}-iq-last` }, xml('query', { xmlns: NS.last })),
    xml('iq', { from, to: full, type: 'get', id: `${id}-iq-full` }, xml('ping', { xmlns: NS.ping })),
  ];

  /**
   * Sends `stanzas` from the component, then a chat message from an address the user did not
   * block. The component's stanzas are routed one after the other, so once that marker reaches the
   * user, anything the blocked stanzas could have delivered has been delivered.
   */
  const sendThenMarker = async (client: TestClient, full: string, stanzas: Element[], tag: string) => {
    for (const s of stanzas) far.send(s);
    far.send(xml('message', { from: `friend@${FAR}`, to: full, type: 'chat', id: `${tag}-marker` }));
    await client.receive((e) => e.name === 'message' && e.attrs.id === `${tag}-marker`);
  };

  test('XEP-0191 §3.3: a blocked remote JID reaches the user by no path (messages, presence, IQs to the bare and the full JID); requests get service-unavailable', async () => {
    const { c: romeo, bare } = await user();
    const mallory = `mallory@${FAR}/laptop`;
    assert.equal((await romeo.iq(blockIq('block', `mallory@${FAR}`))).attrs.type, 'result');

    const stanzas = everything(mallory, bare, romeo.jid, 'b');
    // Requests are answered with errors before the marker passes (bounces are routed at once).
    const answers = stanzas
      .filter((s) => s.name === 'message' || s.name === 'iq')
      .map((s) => far.receive((e) => e.attrs.id === s.attrs.id && e.attrs.type === 'error'));
    await sendThenMarker(romeo, romeo.jid, stanzas, 'b');
    for (const a of await Promise.all(answers))
      assert.equal(condition(a), 'service-unavailable', a.toString());

    const leaked = romeo.received.filter((e) => e.attrs.from?.startsWith(`mallory@${FAR}`));
    assert.deepEqual(
      leaked.map((e) => e.toString()),
      [],
    );
    // Nothing but errors went back to the blocked sender (no presence answer to its probe): a
    // round trip on the component's own stream first, so that all the server wrote it is read.
    await far.iq(xml('iq', { to: 'localhost', type: 'get' }, xml('ping', { xmlns: NS.ping })));
    const toMallory = far.received.filter((e) => e.attrs.to === mallory);
    assert.deepEqual(
      toMallory.map((e) => e.toString()),
      [],
    );
    await romeo.close();
  });

  test('XEP-0191 §3.4: unblocking a remote JID restores delivery on every path', async () => {
    const { c: romeo, bare } = await user();
    const mallory = `mallory@${FAR}/laptop`;
    await romeo.iq(blockIq('block', `mallory@${FAR}`));
    await romeo.iq(blockIq('unblock', `mallory@${FAR}`));

    far.send(xml('message', { from: mallory, to: bare, type: 'chat', id: 'u-m' }, xml('body', null, 'hi')));
    assert.equal((await romeo.receive((e) => e.attrs.id === 'u-m')).getChildText('body'), 'hi');
    far.send(xml('presence', { from: mallory, to: romeo.jid, id: 'u-p' }));
    assert.equal((await romeo.receive((e) => e.attrs.id === 'u-p')).attrs.from, mallory);

    const ping = await far.iq(
      xml('iq', { from: mallory, to: bare, type: 'get', id: 'u-ping' }, xml('ping', { xmlns: NS.ping })),
    );
    assert.equal(ping.attrs.type, 'result');
    const asked = romeo.receive((e) => e.name === 'iq' && e.attrs.id === 'u-full');
    const answer = far.receive((e) => e.attrs.id === 'u-full' && e.attrs.type === 'result');
    far.send(
      xml('iq', { from: mallory, to: romeo.jid, type: 'get', id: 'u-full' }, xml('ping', { xmlns: NS.ping })),
    );
    const req = await asked;
    romeo.send(xml('iq', { type: 'result', id: req.attrs.id, to: req.attrs.from }));
    assert.equal((await answer).attrs.from, romeo.jid);
    await romeo.close();
  });

  test('XEP-0191 §3.3: presence the server broadcasts in the user’s name does not reach a blocked remote contact; other contacts still get it', async () => {
    const { c: romeo, bare } = await user();
    const mallory = `mallory@${FAR}`;
    const friend = `friend@${FAR}`;
    // Both remote contacts subscribe to the user's presence, and the user approves.
    for (const contact of [mallory, friend]) {
      far.send(xml('presence', { from: contact, to: bare, type: 'subscribe' }));
      await romeo.receive((e) => e.attrs.type === 'subscribe' && e.attrs.from === contact);
      romeo.send(xml('presence', { to: contact, type: 'subscribed' }));
      await far.receive((e) => e.attrs.type === 'subscribed' && e.attrs.to === contact);
      await far.receive((e) => e.name === 'presence' && !e.attrs.type && e.attrs.to === contact);
    }

    await romeo.iq(blockIq('block', mallory));
    // §3.3: the contact is told the user went unavailable, once.
    await far.receive((e) => e.attrs.type === 'unavailable' && e.attrs.to === mallory);

    romeo.send(xml('presence', null, xml('status', null, 'after the block')));
    await far.receive((e) => e.name === 'presence' && e.attrs.to === friend && !e.attrs.type);
    // The client's stanzas are routed in order: once this message is through, so is the broadcast.
    romeo.send(xml('message', { to: friend, type: 'chat', id: 'bc-marker' }, xml('body', null, '.')));
    await far.receive((e) => e.name === 'message' && e.attrs.id === 'bc-marker');
    const leaked = far.received.filter((e) => e.name === 'presence' && e.attrs.to === mallory);
    assert.deepEqual(
      leaked.map((e) => e.toString()),
      [],
    );

    // The user's own directed presence to the blocked contact is refused with not-acceptable.
    romeo.send(xml('presence', { to: mallory, id: 'direct' }));
    const refused = await romeo.receive((e) => e.attrs.id === 'direct' && e.attrs.type === 'error');
    assert.equal(condition(refused), 'not-acceptable');
    await romeo.close();
  });

  test('RFC 6121 §2.1.6: a roster push from a remote JID to a user’s resource is refused and never delivered', async () => {
    const { c: romeo } = await user();
    const push = xml(
      'iq',
      { from: `mallory@${FAR}`, to: romeo.jid, type: 'set', id: 'fake-push' },
      xml('query', { xmlns: NS.roster }, xml('item', { jid: `mallory@${FAR}`, subscription: 'both' })),
    );
    const answer = far.receive((e) => e.attrs.id === 'fake-push');
    await sendThenMarker(romeo, romeo.jid, [push], 'rp');
    assert.equal(condition(await answer), 'forbidden');
    assert.equal(
      romeo.received.find((e) => e.attrs.id === 'fake-push'),
      undefined,
    );
    await romeo.close();
  });
});
