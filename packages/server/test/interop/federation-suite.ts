// The federation cases run against each real peer (federation-prosody.test.ts,
// federation-ejabberd.test.ts): Natter (natter.test) and the peer (prosody.test / ejabberd.test)
// federate over loopback, over STARTTLS, in one of two ways: self-signed certificates, so the servers
// authenticate with dialback (XEP-0220); or certificates from one test CA that both trust, so they
// authenticate with SASL EXTERNAL (XEP-0178) and dialback is not allowed.
// Clients on both sides are the server tests' TestClient (SCRAM over STARTTLS on the c2s ports).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { TestClient } from '../support/test-client.js';
import type { TestServer } from '../support/test-server.js';
import { makeTestCa } from '../support/test-ca.js';
import { startNatterOn5269, type FederationPeer, type PeerOptions } from '../support/federation-peers.js';

export const NATTER_DOMAIN = 'natter.test';
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
    todo?: Partial<Record<'chat' | 'error' | 'ping' | 'subscription', string>>;
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
          const ca = await makeTestCa(caDir, [NATTER_DOMAIN, peerDomain]);
          peerTls = { ...ca.certs[peerDomain]!, ca: ca.caCert };
          natterConfig = {
            config: {
              tls: { cert: ca.certs[NATTER_DOMAIN]!.cert, key: ca.certs[NATTER_DOMAIN]!.key },
              s2s: { enabled: true, ca: [ca.caCert], requireTrustedCertificates: true },
            },
          };
        }
        const n = await startNatterOn5269(NATTER_DOMAIN, natterConfig);
        natter = n.server;
        peer = await startPeer({
          domain: peerDomain,
          hosts: { [NATTER_DOMAIN]: n.address },
          tls: peerTls,
        });
        natter.core.config.s2s.routes[peerDomain] = peer.s2sRoute;
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
  });
}
