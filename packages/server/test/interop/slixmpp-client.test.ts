// slixmpp (Debian python3-slixmpp), a client nobody here wrote, as a real process against Natter:
// its XEP-0050 plugin runs the "change my password" ad-hoc command; its XEP-0084 plugin publishes an
// avatar that a vCard reader (its XEP-0054 plugin) then finds converted (XEP-0398), and its
// XEP-0153 plugin sets a vCard photo that becomes the PEP avatar; as an admin, its XEP-0133 plugin
// lists the service administration commands and runs them.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { xml } from '@natter/xml';
import { NS } from '@natter/protocol';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestClient } from '../support/test-client.js';
import { ensureDebianPackages, runScriptedClient } from './third-party.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const PW = 'interop-pw';
const BOUND = { timeout: 120_000 };
const PASSWORD_NODE = 'https://natter.dev/commands/change-password';
/** A PNG's signature and IHDR chunk (3×2), then some bytes. */
const IMAGE = Buffer.concat([
  Buffer.from('89504e470d0a1a0a0000000d49484452000000030000000208060000', 'hex'),
  Buffer.from('slixmpp'),
]);
const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex');

interface Line {
  kind: string;
  [key: string]: unknown;
}

/** Runs one scenario of slixmpp-client.py to its end; resolves with the JSON lines it printed. */
async function slixmpp(
  server: TestServer,
  jid: string,
  password: string,
  scenario: string,
  arg = '',
): Promise<Line[]> {
  const run = await runScriptedClient(join(here, 'slixmpp-client.py'), [
    jid,
    password,
    '127.0.0.1',
    String(server.port('c2s')),
    scenario,
    arg,
  ]);
  const lines = run.lines as unknown as Line[];
  const failed = lines.find(
    (l) => l.kind === 'exception' || l.kind === 'iq-error' || l.kind === 'failed-auth',
  );
  assert.equal(failed, undefined, run.output);
  return lines;
}
const find = (lines: Line[], kind: string) => {
  const line = lines.find((l) => l.kind === kind);
  assert.ok(line, `no "${kind}" line in ${JSON.stringify(lines)}`);
  return line;
};

describe('slixmpp as a client: ad-hoc commands and avatar conversion', () => {
  let server: TestServer;
  before(async () => {
    await ensureDebianPackages('/usr/lib/python3/dist-packages/slixmpp/plugins/xep_0050/adhoc.py', [
      'python3-slixmpp',
    ]);
    server = await startTestServer({ admins: ['prince@localhost'] });
    for (const u of ['romeo', 'juliet', 'nurse', 'prince']) await server.addUser(u, PW);
  });
  after(() => server?.destroy());

  test(
    'XEP-0050: slixmpp lists the commands and changes its password with "change my password"',
    BOUND,
    async () => {
      const lines = await slixmpp(server, 'romeo@localhost/slix', PW, 'password', 'from-slixmpp');
      assert.ok((find(lines, 'commands').nodes as string[]).includes(PASSWORD_NODE));
      assert.deepEqual(find(lines, 'form'), {
        kind: 'form',
        status: 'executing',
        fields: { password: 'text-private', 'password-confirm': 'text-private' },
      });
      assert.equal(find(lines, 'mismatch').condition, 'bad-request');
      assert.equal(find(lines, 'completed').status, 'completed');
      const fresh = await TestClient.login(server, 'romeo', 'from-slixmpp', { resource: 'check' });
      await fresh.close();
      await assert.rejects(TestClient.login(server, 'romeo', PW, { resource: 'old' }));
    },
  );

  test(
    'XEP-0398: an avatar slixmpp publishes over PEP (xep_0084) is in its vCard for slixmpp’s xep_0054',
    BOUND,
    async () => {
      const published = await slixmpp(
        server,
        'juliet@localhost/slix',
        PW,
        'publish-avatar',
        IMAGE.toString('base64'),
      );
      assert.equal(find(published, 'published').id, sha1(IMAGE));
      const read = await slixmpp(server, 'nurse@localhost/reader', PW, 'read-vcard', 'juliet@localhost');
      const card = find(read, 'vcard');
      assert.equal(card.type, 'image/png');
      assert.deepEqual(Buffer.from(card.binval as string, 'base64'), IMAGE);
    },
  );

  test(
    'XEP-0133: an admin with slixmpp (xep_0133, xep_0050) counts online users, adds a user, disables it and lists it',
    BOUND,
    async () => {
      const lines = await slixmpp(server, 'prince@localhost/slix', PW, 'admin', 'tybalt@localhost:t-pw');
      const nodes = find(lines, 'commands').nodes as string[];
      for (const n of ['add-user', 'disable-user', 'get-online-users-num', 'get-disabled-users-list'])
        assert.ok(nodes.includes(`http://jabber.org/protocol/admin#${n}`), n);
      // slixmpp itself is online, with its presence sent.
      assert.deepEqual((find(lines, 'online').values as Record<string, string>).onlineusersnum, '1');
      assert.deepEqual(lines.find((l) => l.kind === 'form' && l.name === 'add-user')?.fields, {
        FORM_TYPE: 'hidden',
        accountjid: 'jid-single',
        password: 'text-private',
        'password-verify': 'text-private',
        email: 'text-multi',
        given_name: 'text-single',
        surname: 'text-single',
      });
      assert.equal(find(lines, 'added').status, 'completed');
      assert.equal(find(lines, 'disabled').status, 'completed');
      assert.deepEqual((find(lines, 'disabled-list').values as Record<string, string[]>).disableduserjids, [
        'tybalt@localhost',
      ]);
      // The account exists, with the password slixmpp gave it, and is disabled.
      await assert.rejects(TestClient.login(server, 'tybalt', 't-pw'), (err: { condition?: string }) => {
        assert.equal(err.condition, 'account-disabled');
        return true;
      });
    },
  );

  test('XEP-0398: a vCard photo slixmpp sets (xep_0153) becomes the PEP avatar', BOUND, async () => {
    await slixmpp(server, 'nurse@localhost/slix', PW, 'set-vcard-photo', IMAGE.toString('base64'));
    const nurse = await TestClient.login(server, 'nurse', PW, { resource: 'check' });
    const res = await nurse.iq(
      xml(
        'iq',
        { type: 'get' },
        xml('pubsub', { xmlns: NS.pubsub }, xml('items', { node: 'urn:xmpp:avatar:metadata' })),
      ),
    );
    assert.equal(res.attrs.type, 'result', res.toString());
    const info = res
      .getChild('pubsub')!
      .getChild('items')!
      .getChild('item')!
      .getChild('metadata')!
      .getChild('info')!;
    assert.equal(info.attrs.id, sha1(IMAGE));
    assert.equal(info.attrs.type, 'image/png');
    assert.equal(info.attrs.width, '3');
    await nurse.close();
  });
});
