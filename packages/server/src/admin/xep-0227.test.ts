import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { parseElement } from '@natter/xml';
import { deriveScramCredentials, toBase64 } from '@natter/protocol';
import { readUser } from './xep-0227.js';

const twice = (b: Uint8Array) => Buffer.from(toBase64(b)).toString('base64');

describe('XEP-0227 <user/> as read', () => {
  test("ejabberd's keys: base64 once (the XEP) or twice (ejabberd 23.01), in <scram-credentials/> or scram: passwords", async () => {
    const k = await deriveScramCredentials('SHA-1', 'pw', { iterations: 4096 });
    const k256 = await deriveScramCredentials('SHA-256', 'pw', { iterations: 4096 });
    const forms = [
      `<scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'><iter-count>4096</iter-count><salt>${twice(k.salt)}</salt><server-key>${twice(k.serverKey)}</server-key><stored-key>${twice(k.storedKey)}</stored-key></scram-credentials>`,
    ];
    const users = [
      ...forms.map((f) => `<user xmlns='urn:xmpp:pie:0' name='a'>${f}</user>`),
      `<user xmlns='urn:xmpp:pie:0' name='a' password='scram:${toBase64(k.storedKey)},${toBase64(k.serverKey)},${toBase64(k.salt)},4096'/>`,
      `<user xmlns='urn:xmpp:pie:0' name='a' password='scram:sha:${twice(k.storedKey)},${twice(k.serverKey)},${twice(k.salt)},4096'/>`,
    ];
    for (const u of users) {
      const user = readUser(parseElement(u), 'example.com');
      assert.ok(user.credentials && 'keys' in user.credentials, u);
      assert.deepEqual(user.credentials.keys['SHA-1']?.storedKey, k.storedKey, u);
      assert.deepEqual(user.credentials.keys['SHA-1']?.salt, k.salt, u);
    }
    const sha256 = readUser(
      parseElement(
        `<user xmlns='urn:xmpp:pie:0' name='a' password='scram:sha256:${toBase64(k256.storedKey)},${toBase64(k256.serverKey)},${toBase64(k256.salt)},4096'/>`,
      ),
      'example.com',
    );
    assert.ok(sha256.credentials && 'keys' in sha256.credentials && sha256.credentials.keys['SHA-256']);
  });

  test('keys of the wrong length, or of an unsupported hash, are refused with a note, never taken as a password', () => {
    const u = readUser(
      parseElement(`<user xmlns='urn:xmpp:pie:0' name='a' password='scram:sha512:AAAA,AAAA,AAAA,4096'/>`),
      'example.com',
    );
    assert.equal(u.credentials, undefined);
    assert.match(u.notImported.join(), /sha512/);
    const bad = readUser(
      parseElement(
        `<user xmlns='urn:xmpp:pie:0' name='a'><scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'><iter-count>0</iter-count><salt>AAAA</salt><server-key>AAAA</server-key><stored-key>AAAA</stored-key></scram-credentials></user>`,
      ),
      'example.com',
    );
    assert.equal(bad.credentials, undefined);
    assert.match(bad.notImported.join(), /malformed SCRAM-SHA-1/);
  });

  test('messages and subscription requests written without jabber:client are stanzas all the same', () => {
    const u = readUser(
      parseElement(
        `<user xmlns='urn:xmpp:pie:0' name='a' password='p'><offline-messages><message from='b@example.com' to='a@example.com'><body>hi</body></message></offline-messages><presence from='c@example.com/r' type='subscribe'><status>me</status></presence></user>`,
      ),
      'example.com',
    );
    assert.equal(u.offline[0]?.stanza.xmlns, 'jabber:client');
    assert.equal(u.offline[0]?.stanza.getChildText('body', 'jabber:client'), 'hi');
    assert.equal(u.pending[0]?.contact, 'c@example.com');
    assert.equal(u.pending[0]?.stanza.getChildText('status', 'jabber:client'), 'me');
  });
});
