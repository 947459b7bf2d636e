// Natter's XEP-0114 component listener with components nobody here wrote, run as real processes:
// @xmpp/component (npm), slixmpp's ComponentXMPP (Debian python3-slixmpp) and biboumi, the
// XMPP↔IRC gateway (Debian biboumi), with an ngIRCd IRC server and a plain IRC client.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml as natterXml } from '@natter/xml';
import { NS } from '@natter/protocol';
import { component, xml, type XmppElement } from '@xmpp/component';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestClient } from '../support/test-client.js';
import { startBiboumi, startSlixmppEcho } from './components.js';
import { IrcClient, startNgircd } from './ngircd.js';

const PW = 'interop-pw';
const SECRET = 'interop-component-secret-0123456789';
const NPM = 'npm.localhost';
const SLIX = 'slix.localhost';
const IRC = 'irc.localhost';
const BOUND = { timeout: 120_000 };

describe('third-party components on the component listener (XEP-0114)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      components: { [NPM]: { secret: SECRET }, [SLIX]: { secret: SECRET }, [IRC]: { secret: SECRET } },
      modules: { ping: { idleMs: 0 } },
    });
    await server.addUser('romeo', PW);
  });
  after(() => server.destroy());

  const login = (resource: string) => TestClient.login(server, 'romeo', PW, { resource, presence: true });

  test('@xmpp/component connects, receives a user message and replies', BOUND, async () => {
    const gw = component({
      service: `xmpp://127.0.0.1:${server.port('component')}`,
      domain: NPM,
      password: SECRET,
    });
    gw.on('error', () => {});
    const got = new Promise<XmppElement>((resolve) => {
      gw.on('stanza', (s: XmppElement) => {
        if (s.is('message') && s.getChildText('body')) resolve(s);
      });
    });
    await gw.start();
    const romeo = await login('npm');
    try {
      romeo.send(
        natterXml(
          'message',
          { to: `bot@${NPM}`, type: 'chat', id: 'n1' },
          natterXml('body', null, 'hello npm'),
        ),
      );
      const msg = await got;
      assert.equal(msg.attrs.from, romeo.jid);
      assert.equal(msg.attrs.to, `bot@${NPM}`);
      await gw.send(
        xml(
          'message',
          { from: `bot@${NPM}`, to: msg.attrs.from, type: 'chat' },
          xml('body', null, 'hello romeo'),
        ),
      );
      const reply = await romeo.receive(
        (e) => e.name === 'message' && e.getChildText('body') === 'hello romeo',
        20_000,
      );
      assert.equal(reply.attrs.from, `bot@${NPM}`);
    } finally {
      await romeo.close();
      await gw.stop();
    }
  });

  test(
    'slixmpp ComponentXMPP echoes a message and answers disco#info through the server',
    BOUND,
    async (t) => {
      const slix = await startSlixmppEcho({ domain: SLIX, secret: SECRET, port: server.port('component') });
      t.after(() => slix.stop());
      const romeo = await login('slix');
      t.after(() => romeo.close());
      romeo.send(
        natterXml(
          'message',
          { to: `echo@${SLIX}`, type: 'chat', id: 's1' },
          natterXml('body', null, 'ping?'),
        ),
      );
      const echo = await romeo.receive(
        (e) => e.name === 'message' && e.getChildText('body') === 'echo: ping?',
        20_000,
      );
      assert.equal(echo.attrs.from, `echo@${SLIX}`);

      const info = await romeo.iq(
        natterXml('iq', { type: 'get', to: SLIX }, natterXml('query', { xmlns: NS.discoInfo })),
        20_000,
      );
      assert.equal(info.attrs.type, 'result', info.toString());
      const q = info.getChild('query', NS.discoInfo)!;
      assert.ok(
        q.getChildren('identity').some((i) => i.attrs.category === 'gateway' && i.attrs.type === 'irc'),
      );
      assert.ok(q.getChildren('feature').some((f) => f.attrs.var === 'urn:natter:test:echo'));
    },
  );

  test(
    'biboumi: a Natter user joins an IRC channel, talks to IRC and hears IRC as groupchat',
    BOUND,
    async (t) => {
      const ircd = await startNgircd();
      t.after(() => ircd.stop());
      const biboumi = await startBiboumi({ domain: IRC, secret: SECRET, port: server.port('component') });
      t.after(() => biboumi.stop());
      const irc = await IrcClient.connect(ircd.host, ircd.port, 'mercutio');
      t.after(() => irc.quit());
      const romeo = await login('irc');
      t.after(() => romeo.close());
      const room = `#test%${ircd.host}@${IRC}`;
      irc.send('JOIN #test');
      await irc.waitFor((l) => l.command === 'JOIN' && l.prefix.startsWith('mercutio!'));

      romeo.send(
        natterXml(
          'presence',
          { to: `${room}/romeo` },
          natterXml('x', { xmlns: 'http://jabber.org/protocol/muc' }),
        ),
      );
      // the user's self-presence (XEP-0045 status 110) says biboumi joined the channel for it
      await romeo.receive(
        (e) =>
          e.name === 'presence' &&
          e.attrs.from === `${room}/romeo` &&
          e.attrs.type !== 'error' &&
          (e
            .getChild('x', 'http://jabber.org/protocol/muc#user')
            ?.getChildren('status')
            .some((s) => s.attrs.code === '110') ??
            false),
        60_000,
      );
      await irc.waitFor((l) => l.command === 'JOIN' && l.prefix.startsWith('romeo!'), 30_000);

      romeo.send(
        natterXml(
          'message',
          { to: room, type: 'groupchat', id: 'g1' },
          natterXml('body', null, 'hello from xmpp'),
        ),
      );
      const said = await irc.waitFor(
        (l) => l.command === 'PRIVMSG' && l.params[1] === 'hello from xmpp',
        30_000,
      );
      assert.ok(said.prefix.startsWith('romeo!'));
      assert.equal(said.params[0], '#test');

      irc.send('PRIVMSG #test :hello from irc');
      const heard = await romeo.receive(
        (e) => e.name === 'message' && e.getChildText('body') === 'hello from irc',
        30_000,
      );
      assert.equal(heard.attrs.type, 'groupchat');
      assert.equal(heard.attrs.from, `${room}/mercutio`);
    },
  );
});
