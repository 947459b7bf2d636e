// XEP-0048 bookmarks in private storage (XEP-0049) from a client nobody here wrote: slixmpp
// (Debian python3-slixmpp, plugins xep_0049 and xep_0048) on one side, a XEP-0402 client of the
// same account on the other, each seeing what the other stored.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import { TestClient } from '../../../test/support/test-client.js';
import {
  BASE_MODULES,
  hasModule,
  pubsubIq,
  ok,
  publish,
  event,
  about,
} from '../../../test/support/pubsub.js';
import { presenceWithCaps } from '../../../test/support/pep.js';
import { ensureDebianPackages, startManaged } from '../../../test/interop/third-party.js';

const PW = 'slixmpp-pw';
const BM = 'urn:xmpp:bookmarks:1';
const BOUND = { timeout: 120_000 };
const NO_PEP = hasModule('pep') ? false : 'needs the pep module';

/**
 * A one-shot slixmpp client: `store` sets the XEP-0048 bookmarks given as JSON through XEP-0049,
 * `fetch` reads them back; either prints `RESULT <json>` (or `ERROR <why>`) and disconnects.
 * The test server's certificate is self-signed: verification is off. slixmpp 1.8 knows only
 * tls-unique channel binding, undefined under TLS 1.3: its SCRAM-*-PLUS fails, and its plain SCRAM
 * says "y" (client could bind), which the server rightly takes for a downgrade (RFC 5802 §6). So
 * it logs in with PLAIN, over STARTTLS.
 */
const SCRIPT = String.raw`
import asyncio, json, ssl, sys
from slixmpp import ClientXMPP
from slixmpp.plugins.xep_0048 import Bookmarks

jid, password, host, port, mode, data = sys.argv[1:7]
data = json.loads(data)

class Client(ClientXMPP):
    def __init__(self):
        super().__init__(jid, password, sasl_mech='PLAIN')
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        self.register_plugin('xep_0030')
        self.register_plugin('xep_0049')
        self.register_plugin('xep_0048')
        self.add_event_handler('session_start', self.start)
        self.add_event_handler('failed_auth', lambda _: self.finish('ERROR auth failed'))

    def finish(self, line):
        print(line, flush=True)
        self.disconnect()

    async def start(self, _event):
        try:
            if mode == 'store':
                bookmarks = Bookmarks()
                for c in data['conferences']:
                    bookmarks.add_conference(c['jid'], c['nick'], name=c['name'],
                                             autojoin=c['autojoin'], password=c.get('password'))
                for u in data['urls']:
                    bookmarks.add_url(u['url'], name=u['name'])
                await self['xep_0048'].set_bookmarks(bookmarks, method='xep_0049')
                self.finish('RESULT ' + json.dumps({'stored': True}))
            else:
                iq = await self['xep_0048'].get_bookmarks(method='xep_0049')
                storage = iq['private']['bookmarks']
                self.finish('RESULT ' + json.dumps({
                    'conferences': [{'jid': str(c['jid']), 'name': c['name'], 'nick': c['nick'],
                                     'autojoin': c['autojoin'], 'password': c['password']}
                                    for c in storage['conferences']],
                    'urls': [{'url': u['url'], 'name': u['name']} for u in storage['urls']],
                }))
        except Exception as e:
            self.finish('ERROR ' + repr(e))

client = Client()
client.loop.call_later(60, lambda: client.finish('ERROR timed out'))
client.connect((host, int(port)))
client.process(forever=False)
`;

interface Conference {
  jid: string;
  name: string;
  nick: string;
  autojoin: boolean;
  password?: string;
}
interface Bookmarks {
  conferences: Conference[];
  urls: { url: string; name: string }[];
}

/** Runs the slixmpp client once and returns what it printed after RESULT. */
async function slixmpp(server: TestServer, user: string, mode: 'store' | 'fetch', data?: Bookmarks) {
  await ensureDebianPackages('/usr/lib/python3/dist-packages/slixmpp/plugins/xep_0048/bookmarks.py', [
    'python3-slixmpp',
  ]);
  const proc = startManaged('/usr/bin/python3', [
    '-u',
    '-c',
    SCRIPT,
    `${user}@localhost/slixmpp`,
    PW,
    '127.0.0.1',
    String(server.port('c2s')),
    mode,
    JSON.stringify(data ?? {}),
  ]);
  try {
    await proc.waitForOutput(/^(RESULT|ERROR) .*$/m, 90_000);
    const line = /^(RESULT|ERROR) (.*)$/m.exec(proc.output())!;
    assert.equal(line[1], 'RESULT', proc.output());
    return JSON.parse(line[2]!) as unknown;
  } finally {
    await proc.stop();
  }
}

describe('slixmpp XEP-0048 bookmarks ↔ XEP-0402', { skip: NO_PEP }, () => {
  let server: TestServer;
  let modern: TestClient;
  before(async () => {
    server = await startTestServer({ modules: BASE_MODULES });
    await server.addUser('juliet', PW);
    modern = await TestClient.login(server, 'juliet', PW, { resource: 'conversations' });
    await presenceWithCaps(modern, [`${BM}+notify`]);
  });
  after(async () => {
    await modern.close();
    await server.destroy();
  });

  test(
    'slixmpp stores bookmarks with XEP-0048; the XEP-0402 client is notified and reads them',
    BOUND,
    async () => {
      await slixmpp(server, 'juliet', 'store', {
        conferences: [
          {
            jid: 'snakes@conference.localhost',
            name: 'Snakes',
            nick: 'Monty',
            autojoin: true,
            password: 'spam',
          },
        ],
        urls: [{ url: 'https://slixmpp.example/', name: 'Docs' }],
      });
      const ev = await event(modern, about(BM), 10_000);
      const item = ev.getChild('items')!.getChild('item')!;
      assert.equal(item.attrs.id, 'snakes@conference.localhost');
      const res = ok(await modern.iq(pubsubIq('get', undefined, false, xml('items', { node: BM }))));
      const items = res.getChild('pubsub', NS.pubsub)!.getChild('items')!.getChildren('item');
      assert.deepEqual(
        items.map((i) => i.attrs.id),
        ['snakes@conference.localhost'],
      );
      const conference = items[0]!.getChild('conference', BM)!;
      assert.equal(conference.attrs.name, 'Snakes');
      assert.equal(conference.attrs.autojoin, 'true');
      assert.equal(conference.getChildText('nick', BM), 'Monty');
      assert.equal(conference.getChildText('password', BM), 'spam');
    },
  );

  test('a XEP-0402 publish shows in slixmpp’s XEP-0048 bookmarks, beside its URL', BOUND, async () => {
    ok(
      await publish(
        modern,
        undefined,
        BM,
        'orchard@conference.localhost',
        xml('conference', { xmlns: BM, name: 'The Orchard', autojoin: 'true' }, xml('nick', null, 'Jules')),
        {
          'pubsub#persist_items': 'true',
          'pubsub#max_items': 'max',
          'pubsub#send_last_published_item': 'never',
          'pubsub#access_model': 'whitelist',
        },
      ),
    );
    const got = (await slixmpp(server, 'juliet', 'fetch')) as Bookmarks;
    const byJid = new Map(got.conferences.map((c) => [c.jid, c]));
    assert.deepEqual([...byJid.keys()].sort(), [
      'orchard@conference.localhost',
      'snakes@conference.localhost',
    ]);
    assert.deepEqual(
      { ...byJid.get('orchard@conference.localhost') },
      {
        jid: 'orchard@conference.localhost',
        name: 'The Orchard',
        nick: 'Jules',
        autojoin: true,
        password: '',
      },
    );
    assert.equal(byJid.get('snakes@conference.localhost')?.password, 'spam');
    assert.deepEqual(got.urls, [{ url: 'https://slixmpp.example/', name: 'Docs' }]);
  });
});
