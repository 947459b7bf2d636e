import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import { TestClient } from '../../../test/support/test-client.js';
import { builtinModules } from '../index.js';

const PW = 'secret-password';
/** The real roster and presence modules with the ones under test. */
const MINE = new Set([
  'disco',
  'ping',
  'version',
  'register',
  'roster',
  'presence',
  'blocking',
  'vcard',
  'last',
  'offline',
]);
const others = Object.fromEntries(
  builtinModules.filter((m) => !MINE.has(m.name)).map((m) => [m.name, false as const]),
);

const isPresence = (from: string, type?: string) => (e: Element) =>
  e.name === 'presence' && e.attrs.from === from && e.attrs.type === type;
const condition = (el: Element) =>
  el
    .getChild('error')
    ?.elements()
    .find((c) => c.xmlns === NS.stanzas && c.name !== 'text')?.name;

/** Mutual subscription between two online clients (RFC 6121 §3). */
async function subscribe(a: TestClient, b: TestClient) {
  const aj = a.jid.split('/')[0]!;
  const bj = b.jid.split('/')[0]!;
  const from = (jid: string, type: string) => (e: Element) =>
    e.name === 'presence' && e.attrs.type === type && e.attrs.from?.split('/')[0] === jid;
  a.send(xml('presence', { to: bj, type: 'subscribe' }));
  await b.receive(from(aj, 'subscribe'));
  b.send(xml('presence', { to: aj, type: 'subscribed' }));
  await a.receive(from(bj, 'subscribed'));
  b.send(xml('presence', { to: aj, type: 'subscribe' }));
  await a.receive(from(bj, 'subscribe'));
  a.send(xml('presence', { to: bj, type: 'subscribed' }));
  await b.receive(from(aj, 'subscribed'));
}

describe('blocking, vCard avatars and last activity with the roster and presence modules', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ modules: { ...others, ping: { idleMs: 0 } } });
    for (const u of ['romeo', 'juliet']) await server.addUser(u, PW);
  });
  after(() => server?.destroy());

  test('XEP-0153 / XEP-0191 §3.3 / XEP-0012 §4: avatar hash reaches contacts; a block hides presence both ways and refuses last activity; unblock restores presence', async () => {
    const romeo = await TestClient.login(server, 'romeo', PW, { resource: 'r' });
    const juliet = await TestClient.login(server, 'juliet', PW, { resource: 'j' });
    await romeo.iq(xml('iq', { type: 'get', to: 'romeo@localhost' }, xml('query', { xmlns: NS.roster })));
    await juliet.iq(xml('iq', { type: 'get', to: 'juliet@localhost' }, xml('query', { xmlns: NS.roster })));
    romeo.send(xml('presence'));
    juliet.send(xml('presence'));
    await subscribe(romeo, juliet);
    await new Promise((r) => setTimeout(r, 200));
    romeo.received.length = 0;
    juliet.received.length = 0;

    // XEP-0153: romeo publishes a photo; his next broadcast carries its hash to juliet.
    const image = Buffer.from('romeo-avatar-bytes');
    const hash = createHash('sha1').update(image).digest('hex');
    const set = await romeo.iq(
      xml(
        'iq',
        { type: 'set', to: 'romeo@localhost' },
        xml(
          'vCard',
          { xmlns: NS.vcard },
          xml('PHOTO', null, xml('TYPE', null, 'image/png'), xml('BINVAL', null, image.toString('base64'))),
        ),
      ),
    );
    assert.equal(set.attrs.type, 'result');
    juliet.send(xml('presence'));
    romeo.send(xml('presence'));
    const seen = await juliet.receive(isPresence('romeo@localhost/r'));
    assert.equal(seen.getChild('x', NS.vcardUpdate)?.getChildText('photo', NS.vcardUpdate), hash);
    await romeo.receive(isPresence('juliet@localhost/j'));

    // XEP-0012: juliet (subscribed to romeo) may ask romeo's last activity: online, 0.
    const last = await juliet.iq(
      xml('iq', { type: 'get', to: 'romeo@localhost' }, xml('query', { xmlns: NS.last })),
    );
    assert.equal(last.getChild('query', NS.last)?.attrs.seconds, '0');

    // XEP-0191 §3.3: juliet blocks romeo: he gets her unavailable presence, then nothing.
    await juliet.iq(
      xml(
        'iq',
        { type: 'set', to: 'juliet@localhost' },
        xml('block', { xmlns: NS.blocking }, xml('item', { jid: 'romeo@localhost' })),
      ),
    );
    await romeo.receive(isPresence('juliet@localhost/j', 'unavailable'));
    juliet.send(xml('presence', null, xml('status', null, 'hidden from romeo')));
    romeo.send(xml('presence', null, xml('status', null, 'unseen by juliet')));
    await romeo.nothing((e) => e.name === 'presence' && e.attrs.from === 'juliet@localhost/j', 300);
    await juliet.nothing((e) => e.name === 'presence' && e.attrs.from === 'romeo@localhost/r', 100);
    const refused = await romeo.iq(
      xml('iq', { type: 'get', to: 'juliet@localhost' }, xml('query', { xmlns: NS.last })),
    );
    assert.equal(condition(refused), 'service-unavailable');

    // Unblocking sends juliet's current presence to romeo.
    await juliet.iq(
      xml('iq', { type: 'set', to: 'juliet@localhost' }, xml('unblock', { xmlns: NS.blocking })),
    );
    const back = await romeo.receive(isPresence('juliet@localhost/j'));
    assert.equal(back.getChildText('status'), 'hidden from romeo');
    await Promise.all([romeo.close(), juliet.close()]);
  });
});
