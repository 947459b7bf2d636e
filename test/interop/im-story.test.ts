// Issue #3's story, told by two clients we did not write: Alice on @xmpp/client (xmpp.js, two
// resources), Bob on StanzaJS. Roster and subscriptions, presence, receipts, offline delivery
// across a server restart, vCard with photo, carbons, the archive, removal.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type * as Stanza from 'stanza';
import { startTestServer, type TestServer } from '../../packages/server/test/support/test-server.js';
import { xmppjs, stanzaClient, waitEvent, xml, type LtxElement } from './support.js';

const PW = 'story-password';
const ROSTER = 'jabber:iq:roster';
const PHOTO = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex');

describe('instant messaging story with third-party clients (issue #3)', { concurrency: false }, () => {
  let server: TestServer;
  let alice: Awaited<ReturnType<typeof xmppjs>>;
  let bob: Stanza.Agent;

  before(async () => {
    server = await startTestServer({ modules: { ping: { idleMs: 0 } } });
    await server.addUser('alice', PW);
    await server.addUser('bob', PW);
    alice = await xmppjs(server, 'alice', PW, 'laptop');
    await alice.send(xml('presence'));
  });
  after(async () => {
    await alice?.stop().catch(() => {});
    bob?.disconnect();
    await server.destroy();
  });

  const aliceRoster = async () => {
    const r = await alice.request(xml('iq', { type: 'get' }, xml('query', { xmlns: ROSTER })));
    return r
      .getChild('query', ROSTER)!
      .getChildren('item')
      .map((i: LtxElement) => ({ jid: i.attrs.jid, subscription: i.attrs.subscription, ask: i.attrs.ask }));
  };

  test('RFC 6121 §3.1: Alice asks Bob while he is offline; Bob sees the request when he logs in', async () => {
    // Requesting the roster makes this resource "interested": it now gets roster pushes (§2.1.6).
    assert.deepEqual(await aliceRoster(), []);
    await alice.request(
      xml(
        'iq',
        { type: 'set' },
        xml(
          'query',
          { xmlns: ROSTER },
          xml('item', { jid: 'bob@localhost', name: 'Bob' }, xml('group', {}, 'Friends')),
        ),
      ),
    );
    await alice.send(xml('presence', { to: 'bob@localhost', type: 'subscribe' }));
    const push = await alice.next(
      (s) =>
        s.is('iq') &&
        s.attrs.type === 'set' &&
        s.getChild('query', ROSTER)?.getChild('item')?.attrs.ask === 'subscribe',
    );
    assert.equal(push.getChild('query', ROSTER)!.getChild('item')!.attrs.jid, 'bob@localhost');

    bob = await stanzaClient(server, 'bob', PW, 'web');
    const request = waitEvent<Stanza.Stanzas.ReceivedPresence>(bob, 'subscribe');
    bob.sendPresence();
    const req = await request;
    assert.equal(req.from, 'alice@localhost');
  });

  test('RFC 6121 §3.1.5: Bob accepts and subscribes back; both rosters show both', async () => {
    const aliceSubscribed = alice.next(
      (s) => s.is('presence') && s.attrs.type === 'subscribed' && s.attrs.from === 'bob@localhost',
    );
    const aliceAsked = alice.next(
      (s) => s.is('presence') && s.attrs.type === 'subscribe' && s.attrs.from === 'bob@localhost',
    );
    bob.acceptSubscription('alice@localhost');
    bob.subscribe('alice@localhost');
    await aliceSubscribed;
    await aliceAsked;
    const bobGetsSubscribed = waitEvent(
      bob,
      'subscribed',
      (p: Stanza.Stanzas.ReceivedPresence) => p.from === 'alice@localhost',
    );
    await alice.send(xml('presence', { to: 'bob@localhost', type: 'subscribed' }));
    await bobGetsSubscribed;
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual((await aliceRoster()).find((i) => i.jid === 'bob@localhost')?.subscription, 'both');
    const bobRoster = await bob.getRoster();
    assert.equal(bobRoster.items?.find((i) => i.jid === 'alice@localhost')?.subscription, 'both');
  });

  test('RFC 6121 §4: each sees the other go away, dnd and unavailable', async () => {
    for (const show of ['away', 'dnd'] as const) {
      const seen = alice.next(
        (s) => s.is('presence') && s.attrs.from === 'bob@localhost/web' && s.getChildText('show') === show,
      );
      bob.sendPresence({ show, status: `bob is ${show}` });
      assert.equal((await seen).getChildText('status'), `bob is ${show}`);
    }
    const bobSees = waitEvent<Stanza.Stanzas.ReceivedPresence>(
      bob,
      'available',
      (p) => p.from === String(alice.jid) && p.show === 'xa',
    );
    await alice.send(xml('presence', {}, xml('show', {}, 'xa')));
    await bobSees;
    bob.sendPresence();
  });

  test('XEP-0184: a chat with a receipt request comes back with a receipt', async () => {
    const bobGets = waitEvent<Stanza.Stanzas.ReceivedMessage>(
      bob,
      'chat',
      (m) => m.body === 'Are you there?',
    );
    const receipt = alice.next((s) => s.is('message') && !!s.getChild('received', 'urn:xmpp:receipts'));
    await alice.send(
      xml(
        'message',
        { to: 'bob@localhost', type: 'chat', id: 'receipt-1' },
        xml('body', {}, 'Are you there?'),
        xml('request', { xmlns: 'urn:xmpp:receipts' }),
      ),
    );
    const m = await bobGets;
    assert.equal(m.receipt?.type, 'request');
    // StanzaJS answers receipt requests itself when sendReceipts is on; send it explicitly here.
    bob.sendMessage({ to: m.from, type: 'chat', receipt: { type: 'received', id: m.id! } });
    assert.equal((await receipt).getChild('received', 'urn:xmpp:receipts')!.attrs.id, 'receipt-1');
  });

  test('XEP-0160: Bob goes offline, Alice sends three messages, the server restarts, Bob gets them in order with delay stamps', async () => {
    const bobGone = alice.next(
      (s) => s.is('presence') && s.attrs.type === 'unavailable' && s.attrs.from === 'bob@localhost/web',
    );
    bob.disconnect();
    await bobGone;
    for (const n of [1, 2, 3])
      await alice.send(
        xml(
          'message',
          { to: 'bob@localhost', type: 'chat', id: `off-${n}` },
          xml('body', {}, `offline ${n}`),
        ),
      );
    // the server answers a ping only after it processed the messages before it
    await alice.request(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    // The resource that sent them (with Bind2 the server picks it; the next login gets another).
    const sender = String(alice.jid);
    await alice.stop();
    await server.stop();
    server = await startTestServer({ modules: { ping: { idleMs: 0 } } }, { dataDir: server.dataDir });
    alice = await xmppjs(server, 'alice', PW, 'laptop');
    await alice.send(xml('presence'));

    // Offline messages are delivered after initial presence, so the handler is in place first.
    bob = await stanzaClient(server, 'bob', PW, 'web');
    const got: Stanza.Stanzas.ReceivedMessage[] = [];
    const all = new Promise<void>((resolve) => {
      bob.on('chat', (m) => {
        if (m.body?.startsWith('offline ')) got.push(m);
        if (got.length === 3) resolve();
      });
    });
    bob.sendPresence();
    await Promise.race([
      all,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error(`got ${got.length} offline messages`)), 5000),
      ),
    ]);
    assert.deepEqual(
      got.map((m) => m.body),
      ['offline 1', 'offline 2', 'offline 3'],
    );
    for (const m of got) {
      assert.ok(m.delay?.timestamp instanceof Date, 'delay stamp');
      assert.equal(m.from, sender);
    }
  });

  test('XEP-0054/0153: Alice sets a vCard with a photo; Bob fetches it', async () => {
    const res = await alice.request(
      xml(
        'iq',
        { type: 'set' },
        xml(
          'vCard',
          { xmlns: 'vcard-temp' },
          xml('FN', {}, 'Alice Liddell'),
          xml('PHOTO', {}, xml('TYPE', {}, 'image/png'), xml('BINVAL', {}, PHOTO.toString('base64'))),
        ),
      ),
    );
    assert.equal(res.attrs.type, 'result');
    const card = await bob.getVCard('alice@localhost');
    assert.equal(card.fullName, 'Alice Liddell');
    // StanzaJS hands BINVAL over as its base64 text
    const photo = card.records?.find((r) => r.type === 'photo') as
      { data?: unknown; mediaType?: string } | undefined;
    assert.deepEqual(Buffer.from(String(photo!.data), 'base64'), PHOTO);
    assert.equal(photo!.mediaType, 'image/png');
    // XEP-0153: Alice's presence carries the photo hash
    const hash = createHash('sha1').update(PHOTO).digest('hex');
    const bobSees = waitEvent<Stanza.Stanzas.ReceivedPresence>(
      bob,
      'available',
      (p) => p.from === String(alice.jid) && p.vcardAvatar === hash,
    );
    await alice.send(xml('presence', {}, xml('x', { xmlns: 'vcard-temp:x:update' })));
    await bobSees;
  });

  test('XEP-0280/0313: a second resource of Alice gets carbons; both fetch the history, paged', async () => {
    const phone = await xmppjs(server, 'alice', PW, 'phone');
    try {
      const enabled = await phone.request(
        xml('iq', { type: 'set' }, xml('enable', { xmlns: 'urn:xmpp:carbons:2' })),
      );
      assert.equal(enabled.attrs.type, 'result');
      await phone.send(xml('presence', {}, xml('priority', {}, '-1')));
      const sentCopy = phone.next((s) => s.is('message') && !!s.getChild('sent', 'urn:xmpp:carbons:2'));
      const bobGets = waitEvent<Stanza.Stanzas.ReceivedMessage>(
        bob,
        'chat',
        (m) => m.body === 'from the laptop',
      );
      await alice.send(
        xml('message', { to: 'bob@localhost/web', type: 'chat' }, xml('body', {}, 'from the laptop')),
      );
      await bobGets;
      const fwd = (await sentCopy)
        .getChild('sent', 'urn:xmpp:carbons:2')!
        .getChild('forwarded', 'urn:xmpp:forward:0')!
        .getChild('message');
      assert.equal(fwd!.getChildText('body'), 'from the laptop');
      const receivedCopy = phone.next(
        (s) => s.is('message') && !!s.getChild('received', 'urn:xmpp:carbons:2'),
      );
      bob.sendMessage({ to: String(alice.jid), type: 'chat', body: 'to the laptop' });
      const rfwd = (await receivedCopy)
        .getChild('received', 'urn:xmpp:carbons:2')!
        .getChild('forwarded', 'urn:xmpp:forward:0')!
        .getChild('message');
      assert.equal(rfwd!.getChildText('body'), 'to the laptop');

      // Alice (xmpp.js) pages through the archive two at a time
      const bodies: string[] = [];
      let after: string | undefined;
      for (let page = 0; page < 10; page++) {
        const qid = `q${page}`;
        const results: LtxElement[] = [];
        const collect = (s: LtxElement) => {
          const r = s.is('message') ? s.getChild('result', 'urn:xmpp:mam:2') : undefined;
          if (r && r.attrs.queryid === qid) results.push(r);
        };
        phone.on('stanza', collect);
        const fin = await phone.request(
          xml(
            'iq',
            { type: 'set' },
            xml(
              'query',
              { xmlns: 'urn:xmpp:mam:2', queryid: qid },
              xml(
                'x',
                { xmlns: 'jabber:x:data', type: 'submit' },
                xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, 'urn:xmpp:mam:2')),
                xml('field', { var: 'with' }, xml('value', {}, 'bob@localhost')),
              ),
              xml(
                'set',
                { xmlns: 'http://jabber.org/protocol/rsm' },
                xml('max', {}, '2'),
                after ? xml('after', {}, after) : null,
              ),
            ),
          ),
        );
        phone.off('stanza', collect);
        assert.ok(results.length <= 2);
        for (const r of results)
          bodies.push(
            r.getChild('forwarded', 'urn:xmpp:forward:0')!.getChild('message')!.getChildText('body') ?? '',
          );
        const f = fin.getChild('fin', 'urn:xmpp:mam:2')!;
        if (f.attrs.complete === 'true') break;
        after = f.getChild('set', 'http://jabber.org/protocol/rsm')!.getChildText('last') ?? undefined;
      }
      for (const b of [
        'Are you there?',
        'offline 1',
        'offline 2',
        'offline 3',
        'from the laptop',
        'to the laptop',
      ])
        assert.ok(bodies.includes(b), `archive has "${b}": ${bodies.join(', ')}`);

      // Bob (StanzaJS) too
      const bobHistory = await bob.searchHistory({ with: 'alice@localhost', paging: { max: 2 } });
      assert.equal(bobHistory.results?.length, 2);
      assert.ok(bobHistory.paging?.count === undefined || bobHistory.paging.count >= 6);
    } finally {
      await phone.stop().catch(() => {});
    }
  });

  test('RFC 6121 §2.5: Alice removes Bob; Bob sees the unsubscription and a roster push', async () => {
    const unsubscribed = waitEvent<Stanza.Stanzas.ReceivedPresence>(
      bob,
      'unsubscribed',
      (p) => p.from === 'alice@localhost',
    );
    const unavailable = waitEvent<Stanza.Stanzas.ReceivedPresence>(
      bob,
      'unavailable',
      (p) => p.from?.startsWith('alice@localhost/') ?? false,
    );
    await alice.request(
      xml(
        'iq',
        { type: 'set' },
        xml('query', { xmlns: ROSTER }, xml('item', { jid: 'bob@localhost', subscription: 'remove' })),
      ),
    );
    await unsubscribed;
    await unavailable;
    const roster = await bob.getRoster();
    assert.notEqual(roster.items?.find((i) => i.jid === 'alice@localhost')?.subscription, 'both');
    assert.equal(
      (await aliceRoster()).some((i) => i.jid === 'bob@localhost'),
      false,
    );
  });
});
