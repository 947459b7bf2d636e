// The federation cases run against each real peer (federation-prosody.test.ts,
// federation-ejabberd.test.ts): Natter (natter.test) and the peer (prosody.test / ejabberd.test)
// federate over loopback, over STARTTLS, in one of two ways: self-signed certificates, so the servers
// authenticate with dialback (XEP-0220); or certificates from one test CA that both trust, so they
// authenticate with SASL EXTERNAL (XEP-0178) and dialback is not allowed.
// Clients on both sides are the server tests' TestClient (SCRAM over STARTTLS on the c2s ports).
// The MUC services (conference.natter.test, conference.<peer>) are server domains of their own: each
// side resolves the other's like its main domain (hosts file / s2s.routes), and in the CA mode each
// has a certificate of its own from the test CA.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { TestClient } from '../support/test-client.js';
import { codes, errorCondition } from '../support/muc.js';
import type { TestServer } from '../support/test-server.js';
import { makeTestCa } from '../support/test-ca.js';
import {
  mucDomainOf,
  startNatterOn5269,
  type FederationPeer,
  type PeerOptions,
} from '../support/federation-peers.js';

export const NATTER_DOMAIN = 'natter.test';
/** Natter's MUC service (on by default at conference.<host>). */
const NATTER_MUC = `conference.${NATTER_DOMAIN}`;
const PW = 'federation-pw-1';
/** Generous for one stanza across two servers (the first one opens and authenticates the streams). */
const WAIT = 20_000;

const chat = (to: string, body: string, id?: string) =>
  xml('message', { to, type: 'chat', ...(id ? { id } : {}) }, xml('body', {}, body));

const bare = (jid: string | undefined) => (jid ?? '').split('/')[0];

/** The subscription of `contact` in `client`'s roster (undefined when absent). */
async function subscriptionOf(client: TestClient, contact: string): Promise<string | undefined> {
  const r = await client.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS.roster })), WAIT);
  assert.equal(r.attrs.type, 'result', `roster get: ${r.toString()}`);
  const item = r
    .getChild('query', NS.roster)
    ?.getChildren('item')
    .find((i: Element) => i.attrs.jid === contact);
  return item?.attrs.subscription;
}

/** Polls the roster until `contact` has `want` (roster state may trail the last stanza a little). */
async function waitSubscription(client: TestClient, contact: string, want: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  let got: string | undefined;
  while (Date.now() < deadline) {
    got = await subscriptionOf(client, contact);
    if (got === want) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal(got, want, `${client.jid}: subscription of ${contact}`);
}

/** A vcard-temp vCard (XEP-0054) with a formatted name and a nickname. */
const vcard = (fn: string, nick: string) =>
  xml('vCard', { xmlns: 'vcard-temp' }, xml('FN', {}, fn), xml('NICKNAME', {}, nick));

/** Sets the client's own vCard on its server. */
async function setVcard(client: TestClient, fn: string, nick: string): Promise<void> {
  const r = await client.iq(xml('iq', { type: 'set' }, vcard(fn, nick)), WAIT);
  assert.equal(r.attrs.type, 'result', `${client.jid}: vCard set: ${r.toString()}`);
}

/** Fetches `jid`'s vCard through the client's server; asserts a result from `jid`, returns its FN. */
async function fetchVcardFn(client: TestClient, jid: string): Promise<string | undefined> {
  const r = await client.iq(xml('iq', { type: 'get', to: jid }, xml('vCard', { xmlns: 'vcard-temp' })), WAIT);
  assert.equal(r.attrs.type, 'result', `${client.jid}: vCard of ${jid}: ${r.toString()}`);
  assert.equal(r.attrs.from, jid);
  return r.getChild('vCard', 'vcard-temp')?.getChildText('FN') ?? undefined;
}

/** An available presence from exactly `from` (a room occupant's JID). */
const isAvailableFrom =
  (from: string) =>
  (e: Element): boolean =>
    e.name === 'presence' && e.attrs.type === undefined && e.attrs.from === from;

/**
 * Joins `room` as `nick` (XEP-0045 §7.2) and waits for the self-presence (status 110); a room this
 * created (status 201) is locked until configured, so its default configuration is accepted (an
 * empty muc#owner submit, §10.1.2: an instant room).
 */
async function joinRoom(client: TestClient, room: string, nick: string): Promise<Element> {
  client.send(xml('presence', { to: `${room}/${nick}` }, xml('x', { xmlns: NS.muc })));
  // An error (the room's server unreachable, say) ends the wait at once rather than at the timeout.
  const self = await client.receive(
    (e) =>
      e.name === 'presence' &&
      e.attrs.from === `${room}/${nick}` &&
      (codes(e).includes(110) || e.attrs.type === 'error'),
    WAIT,
  );
  assert.equal(self.attrs.type, undefined, `${client.jid} joining ${room}: ${self.toString()}`);
  if (codes(self).includes(201)) {
    const ok = await client.iq(
      xml(
        'iq',
        { type: 'set', to: room },
        xml('query', { xmlns: NS.mucOwner }, xml('x', { xmlns: 'jabber:x:data', type: 'submit' })),
      ),
      WAIT,
    );
    assert.equal(ok.attrs.type, 'result', `${client.jid}: configuring ${room}: ${ok.toString()}`);
  }
  return self;
}

const isPresence =
  (from: (f: string) => boolean, type: string | undefined) =>
  (e: Element): boolean =>
    e.name === 'presence' && e.attrs.type === type && from(e.attrs.from ?? '');

export function federationSuite(
  peerName: string,
  startPeer: (opts: PeerOptions) => Promise<FederationPeer>,
  peerDomain: string,
  opts: {
    /**
     * dialback: self-signed certificates on both sides, servers authenticated by XEP-0220 dialback;
     * external: certificates from one test CA that both trust, SASL EXTERNAL required (no dialback).
     */
    auth: 'dialback' | 'external';
    todo?: Partial<
      Record<
        'chat' | 'error' | 'ping' | 'subscription' | 'vcard' | 'mucOnPeer' | 'mucOnNatter' | 'unknownDomain',
        string
      >
    >;
  },
): void {
  const how =
    opts.auth === 'dialback'
      ? 'self-signed certificates, dialback over STARTTLS'
      : 'CA-signed certificates, SASL EXTERNAL over STARTTLS';
  describe(`federation between Natter and ${peerName} (${how})`, () => {
    let natter: TestServer | undefined;
    let peer: FederationPeer | undefined;
    let caDir: string | undefined;
    const clients: TestClient[] = [];
    const login = async (
      target: TestServer | FederationPeer,
      user: string,
      resource: string,
      presence = true,
    ): Promise<TestClient> => {
      const c = await TestClient.login(target, user, PW, { resource, presence });
      clients.push(c);
      return c;
    };

    before(
      async () => {
        let peerTls: PeerOptions['tls'];
        let natterConfig: Parameters<typeof startNatterOn5269>[1] = {};
        if (opts.auth === 'external') {
          caDir = await mkdtemp(join(tmpdir(), 'natter-fed-ca-'));
          const peerMuc = mucDomainOf(peerDomain);
          const ca = await makeTestCa(caDir, [NATTER_DOMAIN, NATTER_MUC, peerDomain, peerMuc]);
          peerTls = { ...ca.certs[peerDomain]!, ca: ca.caCert, muc: ca.certs[peerMuc]! };
          natterConfig = {
            config: {
              tls: {
                cert: ca.certs[NATTER_DOMAIN]!.cert,
                key: ca.certs[NATTER_DOMAIN]!.key,
                // Chosen by name (SNI inbound, our domain outbound) for the MUC service's streams.
                certificates: [ca.certs[NATTER_MUC]!],
              },
              s2s: { enabled: true, ca: [ca.caCert], requireTrustedCertificates: true },
            },
          };
        }
        const n = await startNatterOn5269(NATTER_DOMAIN, natterConfig);
        natter = n.server;
        peer = await startPeer({
          domain: peerDomain,
          hosts: { [NATTER_DOMAIN]: n.address, [NATTER_MUC]: n.address },
          tls: peerTls,
        });
        natter.core.config.s2s.routes[peerDomain] = peer.s2sRoute;
        natter.core.config.s2s.routes[peer.mucDomain] = peer.s2sRoute;
        for (const u of ['alice', 'carol']) await natter.addUser(u, PW);
        for (const u of ['bob', 'dave']) await peer.addUser(u, PW);
      },
      // The first run installs Debian packages.
      { timeout: 600_000 },
    );

    after(
      async () => {
        for (const c of clients) c.kill();
        if (process.env.NATTER_PEER_LOG && peer) console.log(await peer.log());
        await peer?.stop();
        await natter?.destroy();
        if (caDir) await rm(caDir, { recursive: true, force: true });
      },
      { timeout: 60_000 },
    );

    test(
      'chat both ways with a non-ASCII body; one authenticated, encrypted stream each way',
      { timeout: 60_000, todo: opts.todo?.chat },
      async () => {
        const alice = await login(natter!, 'alice', 'phone');
        const bob = await login(peer!, 'bob', 'desk');
        const body = `Grüße aus ${NATTER_DOMAIN} — 你好 🌍 <&> "quoted"`;
        alice.send(chat(`bob@${peerDomain}`, body));
        const got = await bob.receive((e) => e.name === 'message' && e.getChildText('body') === body, WAIT);
        assert.equal(got.attrs.from, `alice@${NATTER_DOMAIN}/phone`);
        // Prosody leaves a message to the bare JID addressed so; only the bare JID is certain.
        assert.equal(bare(got.attrs.to), `bob@${peerDomain}`);

        const reply = 'Привет, alice ✓ ñ';
        bob.send(chat(`alice@${NATTER_DOMAIN}/phone`, reply));
        const back = await alice.receive(
          (e) => e.name === 'message' && e.getChildText('body') !== undefined,
          WAIT,
        );
        assert.equal(back.getChildText('body'), reply);
        assert.equal(back.attrs.from, `bob@${peerDomain}/desk`);

        // Natter's side of the two streams: outbound to the peer and inbound from it, both TLS and
        // authenticated as this suite says (dialback, or SASL EXTERNAL with the CA's certificates).
        const out = natter!.core.federation!.list().find((s) => s.remoteDomains.includes(peerDomain));
        assert.ok(out, 'an outbound stream to the peer');
        assert.equal(out.tls, true);
        assert.equal(out.auth, opts.auth);
        const inbound = [...natter!.core.s2sInbound]
          .map((s) => s.info())
          .filter((i) => i.state === 'authenticated' && i.remoteDomains.includes(peerDomain));
        assert.equal(inbound.length, 1, 'one authenticated inbound stream from the peer');
        assert.equal(inbound[0]!.tls, true);
        assert.equal(inbound[0]!.auth, opts.auth);
      },
    );

    test(
      'a message to a user who does not exist on the peer comes back as an error',
      { timeout: 60_000, todo: opts.todo?.error },
      async () => {
        const alice = await login(natter!, 'alice', 'err');
        alice.send(chat(`nobody@${peerDomain}`, 'anyone there?', 'm-nobody-1'));
        const err = await alice.receive((e) => e.name === 'message' && e.attrs.type === 'error', WAIT);
        assert.equal(err.attrs.id, 'm-nobody-1');
        assert.equal(err.attrs.from, `nobody@${peerDomain}`);
        assert.equal(err.attrs.to, `alice@${NATTER_DOMAIN}/err`);
        assert.ok(
          err.getChild('error')?.getChild('service-unavailable', NS.stanzas),
          `service-unavailable: ${err.toString()}`,
        );
      },
    );

    test(
      'a ping (XEP-0199) to the peer server gets a result',
      { timeout: 60_000, todo: opts.todo?.ping },
      async () => {
        const alice = await login(natter!, 'alice', 'ping', false);
        const r = await alice.iq(
          xml('iq', { type: 'get', to: peerDomain, id: 'ping-1' }, xml('ping', { xmlns: NS.ping })),
          WAIT,
        );
        assert.equal(r.attrs.type, 'result', r.toString());
        assert.equal(r.attrs.from, peerDomain);
        assert.equal(r.attrs.id, 'ping-1');
      },
    );

    test(
      'a mutual presence subscription across domains: rosters say both, presence flows both ways',
      { timeout: 90_000, todo: opts.todo?.subscription },
      async () => {
        const carolJid = `carol@${NATTER_DOMAIN}`;
        const daveJid = `dave@${peerDomain}`;
        // Roster first, then initial presence: both are then "interested resources" (RFC 6121 §2.2)
        // that get subscription requests and roster pushes.
        const carol = await login(natter!, 'carol', 'c', false);
        const dave = await login(peer!, 'dave', 'd', false);
        assert.equal(await subscriptionOf(carol, daveJid), undefined);
        assert.equal(await subscriptionOf(dave, carolJid), undefined);
        carol.send(xml('presence'));
        dave.send(xml('presence'));

        carol.send(xml('presence', { to: daveJid, type: 'subscribe' }));
        await dave.receive(
          isPresence((f) => f === carolJid, 'subscribe'),
          WAIT,
        );
        dave.send(xml('presence', { to: carolJid, type: 'subscribed' }));
        dave.send(xml('presence', { to: carolJid, type: 'subscribe' }));
        await carol.receive(
          isPresence((f) => bare(f) === daveJid, 'subscribed'),
          WAIT,
        );
        await carol.receive(
          isPresence((f) => bare(f) === daveJid, 'subscribe'),
          WAIT,
        );
        carol.send(xml('presence', { to: daveJid, type: 'subscribed' }));
        await dave.receive(
          isPresence((f) => bare(f) === carolJid, 'subscribed'),
          WAIT,
        );

        // Each approval makes the approver's server send the approver's available presence to the
        // new subscriber (RFC 6121 §3.1.5).
        await carol.receive(
          isPresence((f) => f === `${daveJid}/d`, undefined),
          WAIT,
        );
        await dave.receive(
          isPresence((f) => f === `${carolJid}/c`, undefined),
          WAIT,
        );

        await waitSubscription(carol, daveJid, 'both');
        await waitSubscription(dave, carolJid, 'both');

        // A later presence change is broadcast to the contact, both ways.
        carol.send(xml('presence', {}, xml('show', {}, 'away'), xml('status', {}, 'café ☕')));
        const fromCarol = await dave.receive(
          (e) =>
            e.name === 'presence' && e.attrs.from === `${carolJid}/c` && e.getChildText('show') === 'away',
          WAIT,
        );
        assert.equal(fromCarol.getChildText('status'), 'café ☕');
        dave.send(xml('presence', {}, xml('show', {}, 'dnd')));
        await carol.receive(
          (e) => e.name === 'presence' && e.attrs.from === `${daveJid}/d` && e.getChildText('show') === 'dnd',
          WAIT,
        );
      },
    );

    test(
      "vCards (XEP-0054) across: each user fetches the other's vCard from the other server",
      { timeout: 60_000, todo: opts.todo?.vcard },
      async () => {
        const alice = await login(natter!, 'alice', 'vcard', false);
        const bob = await login(peer!, 'bob', 'vcard', false);
        const bobFn = `Bōb Bäcker — ${peerName} 山田 🎻`;
        await setVcard(bob, bobFn, 'bob');
        assert.equal(await fetchVcardFn(alice, `bob@${peerDomain}`), bobFn);

        const aliceFn = 'Alïce Łukasiewicz — Natter 日本 ✓';
        await setVcard(alice, aliceFn, 'alice');
        assert.equal(await fetchVcardFn(bob, `alice@${NATTER_DOMAIN}`), aliceFn);
      },
    );

    test(
      `MUC (XEP-0045) on the peer's service: a Natter user joins, both see each other, the Natter user's groupchat arrives`,
      { timeout: 60_000, todo: opts.todo?.mucOnPeer },
      async () => {
        const room = `natter-visits-${opts.auth}@${peer!.mucDomain}`;
        const bob = await login(peer!, 'bob', 'muc', true);
        const alice = await login(natter!, 'alice', 'muc', true);
        await joinRoom(bob, room, 'bob');
        const self = await joinRoom(alice, room, 'alice');
        assert.equal(bare(self.attrs.to), `alice@${NATTER_DOMAIN}`);
        // The room sends the joiner the occupants already there, and them the joiner (§7.2.3).
        await alice.receive(isAvailableFrom(`${room}/bob`), WAIT);
        await bob.receive(isAvailableFrom(`${room}/alice`), WAIT);

        const body = `Grüße in den Raum — 你好 🌍 <&> from ${NATTER_DOMAIN}`;
        alice.send(xml('message', { to: room, type: 'groupchat' }, xml('body', {}, body)));
        const heard = await bob.receive(
          (e) => e.name === 'message' && e.attrs.type === 'groupchat' && e.getChildText('body') === body,
          WAIT,
        );
        assert.equal(heard.attrs.from, `${room}/alice`);
        // The room reflects it to its sender too, across the federation again.
        const echo = await alice.receive(
          (e) => e.name === 'message' && e.attrs.type === 'groupchat' && e.getChildText('body') === body,
          WAIT,
        );
        assert.equal(echo.attrs.from, `${room}/alice`);
      },
    );

    test(
      `MUC (XEP-0045) on Natter's service: a user of ${peerName} joins, both see each other, their groupchat arrives`,
      { timeout: 60_000, todo: opts.todo?.mucOnNatter },
      async () => {
        const room = `peer-visits-${opts.auth}@${NATTER_MUC}`;
        const alice = await login(natter!, 'alice', 'muc-home', true);
        const bob = await login(peer!, 'bob', 'muc-away', true);
        await joinRoom(alice, room, 'alice');
        const self = await joinRoom(bob, room, 'bob');
        assert.equal(bare(self.attrs.to), `bob@${peerDomain}`);
        await bob.receive(isAvailableFrom(`${room}/alice`), WAIT);
        await alice.receive(isAvailableFrom(`${room}/bob`), WAIT);

        const body = `Привет из ${peerDomain} — ñandú ☕ <&> "quoted"`;
        bob.send(xml('message', { to: room, type: 'groupchat' }, xml('body', {}, body)));
        const heard = await alice.receive(
          (e) => e.name === 'message' && e.attrs.type === 'groupchat' && e.getChildText('body') === body,
          WAIT,
        );
        assert.equal(heard.attrs.from, `${room}/bob`);
        const echo = await bob.receive(
          (e) => e.name === 'message' && e.attrs.type === 'groupchat' && e.getChildText('body') === body,
          WAIT,
        );
        assert.equal(echo.attrs.from, `${room}/bob`);
      },
    );

    test(
      'a message to a domain that does not exist (no route, no DNS) comes back as remote-server-not-found',
      { timeout: 30_000, todo: opts.todo?.unknownDomain },
      async () => {
        // No static route and no hosts entry: Natter asks the system's DNS (SRV, then the domain's
        // address, RFC 6120 §3.2.2), which knows no .invalid name (RFC 6761).
        const alice = await login(natter!, 'alice', 'nx', false);
        const started = Date.now();
        alice.send(chat('someone@nonexistent.invalid', 'is anybody out there?', 'm-nx-1'));
        const err = await alice.receive(
          (e) => e.name === 'message' && e.attrs.type === 'error' && e.attrs.id === 'm-nx-1',
          10_000,
        );
        assert.equal(errorCondition(err), 'remote-server-not-found', err.toString());
        assert.equal(err.attrs.from, 'someone@nonexistent.invalid');
        assert.equal(err.attrs.to, `alice@${NATTER_DOMAIN}/nx`);
        assert.ok(Date.now() - started < 10_000, `bounced after ${Date.now() - started} ms`);
      },
    );
  });
}
