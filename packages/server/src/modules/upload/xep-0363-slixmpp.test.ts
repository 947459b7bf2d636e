// XEP-0363 from a client nobody here wrote: slixmpp (Debian python3-slixmpp 1.8, plugin xep_0363,
// whose upload_file finds the service by disco, requests a slot and PUTs with aiohttp). The test
// then downloads the file with fetch and compares the bytes.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestServer, type TestServer } from '../../../test/support/test-server.js';
import { freePort } from '../../../test/support/federation-peers.js';
import { ensureDebianPackages, startManaged } from '../../../test/interop/third-party.js';

const PW = 'slixmpp-pw';
const BOUND = { timeout: 120_000 };

/**
 * A one-shot slixmpp client: finds the upload service through disco (slixmpp 1.8.3's own
 * `find_upload_service` fails on Debian's Python 3.11, so the script makes the same queries with
 * the xep_0030 plugin), uploads the file at argv[5] with `upload_file` and prints
 * `RESULT <get url>` (or `ERROR <why>`). slixmpp's aiohttp upload takes plain http URLs as they
 * come (no flag needed), so the test server's http listener serves it directly. The server's
 * certificate is self-signed: verification is off. slixmpp 1.8 knows only tls-unique channel
 * binding (undefined under TLS 1.3), so it logs in with PLAIN, over STARTTLS (see
 * private/xep-0048-slixmpp.test.ts).
 */
const SCRIPT = String.raw`
import asyncio, ssl, sys
from slixmpp import ClientXMPP

jid, password, host, port, path = sys.argv[1:6]

class Client(ClientXMPP):
    def __init__(self):
        super().__init__(jid, password, sasl_mech='PLAIN')
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        self.register_plugin('xep_0030')
        self.register_plugin('xep_0128')
        self.register_plugin('xep_0363')
        self.add_event_handler('session_start', self.start)
        self.add_event_handler('failed_auth', lambda _: self.finish('ERROR auth failed'))

    def finish(self, line):
        print(line, flush=True)
        self.disconnect()

    async def discover(self):
        # What xep_0363.find_upload_service does (it cannot run on Python 3.11: it hands bare
        # coroutines to asyncio.wait), one query after the other.
        items = await self['xep_0030'].get_items(self.boundjid.domain, timeout=10)
        for item in items['disco_items']['items']:
            info = await self['xep_0030'].get_info(item[0], timeout=10)
            d = info['disco_info']
            if ('store', 'file') in [(i[0], i[1]) for i in d['identities']] and \
                    'urn:xmpp:http:upload:0' in d['features']:
                plugin = self['xep_0363']
                plugin.upload_service = info['from']
                for form in d.iterables:
                    values = form['values']
                    if values.get('FORM_TYPE') == ['urn:xmpp:http:upload:0']:
                        plugin.max_file_size = int(values['max-file-size'])
                return str(info['from']), plugin.max_file_size
        raise Exception('no upload service found')

    async def start(self, _event):
        try:
            service, limit = await self.discover()
            print('SERVICE %s %d' % (service, limit), flush=True)
            url = await self['xep_0363'].upload_file(path, timeout=30)
            self.finish('RESULT ' + url)
        except Exception as e:
            self.finish('ERROR ' + repr(e))

client = Client()
client.loop.call_later(60, lambda: client.finish('ERROR timed out'))
client.connect((host, int(port)))
client.process(forever=False)
`;

describe('slixmpp XEP-0363 upload_file', () => {
  let server: TestServer;
  before(async () => {
    const port = await freePort();
    server = await startTestServer({
      listeners: [
        { type: 'c2s', port: 0, host: '127.0.0.1' },
        { type: 'http', port, host: '127.0.0.1' },
      ],
      modules: { upload: {} },
    });
    await server.addUser('juliet', PW);
  });
  after(() => server.destroy());

  test(
    'slixmpp discovers upload.localhost, gets a slot and PUTs a file; the GET URL serves the same bytes',
    BOUND,
    async () => {
      await ensureDebianPackages('/usr/lib/python3/dist-packages/slixmpp/plugins/xep_0363/http_upload.py', [
        'python3-slixmpp',
      ]);
      await ensureDebianPackages('/usr/lib/python3/dist-packages/aiohttp/__init__.py', ['python3-aiohttp']);
      const data = randomBytes(300 * 1024);
      const file = join(server.dataDir, 'café photo.jpg');
      writeFileSync(file, data);
      const proc = startManaged('/usr/bin/python3', [
        '-u',
        '-c',
        SCRIPT,
        'juliet@localhost/slixmpp',
        PW,
        '127.0.0.1',
        String(server.port('c2s')),
        file,
      ]);
      let url: string;
      try {
        await proc.waitForOutput(/^(RESULT|ERROR) .*$/m, 90_000);
        const line = /^(RESULT|ERROR) (.*)$/m.exec(proc.output())!;
        assert.equal(line[1], 'RESULT', proc.output());
        url = line[2]!.trim();
      } finally {
        await proc.stop();
      }
      // It found the service and its limit (XEP-0363 §3) through disco.
      assert.match(proc.output(), /^SERVICE upload\.localhost 104857600$/m);
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/upload\/[A-Za-z0-9_-]{32}\/caf%C3%A9%20photo\.jpg$/);
      const got = await fetch(url);
      assert.equal(got.status, 200);
      // slixmpp guessed the type from the name, and the slot kept it.
      assert.equal(got.headers.get('content-type'), 'image/jpeg');
      assert.deepEqual(Buffer.from(await got.arrayBuffer()), data);
    },
  );
});
