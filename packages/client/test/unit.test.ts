// Pure pieces, no server: capability hashes, the event emitter, plugin typing, vCard codec.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  buildVCard,
  capsVerification,
  createClient,
  Emitter,
  parseRosterItem,
  parseVCard,
  ping,
  reconnect,
  roster,
  TimeoutError,
  xml,
} from '../src/index.node.js';
import { createClient as createBrowserClient, hostMetaResolver } from '../src/index.js';

describe('unit', () => {
  test('XEP-0115 §5.2: the verification string of the simple example is QgayPKawpkPSDYmwT/WM94uAlu0=', async () => {
    const ver = await capsVerification(
      [{ category: 'client', type: 'pc', name: 'Exodus 0.9.1' }],
      [
        'http://jabber.org/protocol/disco#info',
        'http://jabber.org/protocol/disco#items',
        'http://jabber.org/protocol/muc',
        'http://jabber.org/protocol/caps',
      ],
    );
    assert.equal(ver, 'QgayPKawpkPSDYmwT/WM94uAlu0=');
  });

  test('the emitter delivers typed payloads, once() fires once, waitFor() filters and times out', async () => {
    const e = new Emitter<{ n: number; s: string }>();
    const seen: number[] = [];
    e.on('n', (v) => seen.push(v));
    e.once('n', (v) => seen.push(v * 10));
    e.emit('n', 1);
    e.emit('n', 2);
    assert.deepEqual(seen, [1, 10, 2]);
    const w = e.waitFor('s', { filter: (s) => s === 'b' });
    e.emit('s', 'a');
    e.emit('s', 'b');
    assert.equal(await w, 'b');
    await assert.rejects(e.waitFor('s', { timeout: 10 }), TimeoutError);
  });

  test('client.plugins is typed from the plugins passed (no global augmentation)', () => {
    const c = createClient({
      service: 'xmpp://localhost',
      jid: 'a@localhost',
      password: 'x',
      plugins: { roster: roster(), ping: ping(), again: reconnect() },
    });
    assert.equal(typeof c.plugins.roster.fetch, 'function');
    assert.equal(typeof c.plugins.ping.ping, 'function');
    assert.equal(typeof c.plugins.again.delayFor, 'function');
    // @ts-expect-error: muc was not passed, so it is not on the type
    assert.equal(c.plugins.muc, undefined);
    const bare = createClient({ service: 'xmpp://localhost', jid: 'a@localhost', password: 'x' });
    // @ts-expect-error: no plugins at all
    assert.equal(bare.plugins.roster, undefined);
  });

  test('createClient refuses a JID without a localpart with a coded error', () => {
    assert.throws(
      () => createClient({ service: 'xmpp://localhost', jid: 'localhost', password: 'x' }),
      (e: unknown) => (e as { code?: string }).code === 'invalid-options',
    );
  });

  test('browsers: without `service`, host-meta discovery is asked for explicitly (it stays out of the bundle otherwise)', () => {
    assert.throws(
      () => createBrowserClient({ jid: 'a@localhost', password: 'x' }),
      (e: unknown) =>
        (e as { code?: string }).code === 'invalid-options' &&
        /hostMetaResolver\(\)/.test((e as Error).message),
    );
    const c = createBrowserClient({ jid: 'a@localhost', password: 'x', discover: hostMetaResolver() });
    assert.equal(c.service, '', 'found at the first connection');
    // Node finds the endpoints in DNS SRV records by default.
    assert.equal(createClient({ jid: 'a@localhost', password: 'x' }).service, '');
  });

  test('RFC 6121 §2.1.2: roster items parse with normalised JIDs, groups, ask and remove', () => {
    const el = xml(
      'item',
      {
        xmlns: 'jabber:iq:roster',
        jid: 'Juliet@Example.COM',
        name: 'J',
        subscription: 'to',
        ask: 'subscribe',
      },
      xml('group', null, 'Friends'),
    );
    assert.deepEqual(parseRosterItem(el), {
      jid: 'juliet@example.com',
      name: 'J',
      subscription: 'to',
      ask: 'subscribe',
      approved: undefined,
      groups: ['Friends'],
      remove: false,
    });
    assert.equal(
      parseRosterItem(xml('item', { xmlns: 'jabber:iq:roster', jid: 'a@b', subscription: 'remove' })).remove,
      true,
    );
  });

  test('XEP-0054: a vCard survives build and parse', () => {
    const v = parseVCard(
      buildVCard({
        fullName: 'Romeo',
        given: 'Romeo',
        family: 'Montague',
        emails: ['r@example.net'],
        photo: { type: 'image/png', data: new Uint8Array([1, 2, 3]) },
      }),
    );
    assert.equal(v.fullName, 'Romeo');
    assert.equal(v.family, 'Montague');
    assert.deepEqual(v.emails, ['r@example.net']);
    assert.deepEqual(v.photo?.data, new Uint8Array([1, 2, 3]));
  });
  test('an exception in a module listener is reported on the client error event, not thrown', () => {
    const c = createClient({
      service: 'xmpp://localhost',
      jid: 'a@localhost',
      password: 'x',
      plugins: { roster: roster() },
    });
    const errors: Error[] = [];
    c.on('error', (e) => errors.push(e));
    c.plugins.roster.on('loaded', () => {
      throw new Error('listener bug');
    });
    c.plugins.roster.emit('loaded', { items: [] });
    assert.deepEqual(
      errors.map((e) => e.message),
      ['listener bug'],
    );
  });
});
