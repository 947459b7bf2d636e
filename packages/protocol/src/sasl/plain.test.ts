import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createClientMechanism, createServerMechanism } from './factory.js';
import type { CredentialLookup } from './mechanism.js';
import { dec, enc, memoryLookup, rejectsWith, runExchange } from './fixtures.test.js';

const plain = (s: string) => enc(s.replace(/\|/g, '\0'));

describe('PLAIN', () => {
  test('RFC 4616 §2: the client sends authzid NUL authcid NUL passwd', async () => {
    const client = createClientMechanism('PLAIN', { username: 'tim', password: 'tanstaaftanstaaf' });
    assert.equal(dec(await client.initial()), '\0tim\0tanstaaftanstaaf');
    const withAuthz = createClientMechanism('PLAIN', {
      username: 'Ursel',
      password: 'kurt',
      authzid: 'Kurt',
    });
    assert.equal(dec(await withAuthz.initial()), 'Kurt\0Ursel\0kurt');
  });

  test('RFC 4616 §2: a client↔server round trip verifies the password against SHA-256 credentials', async () => {
    const lookup = await memoryLookup({ tim: 'tanstaaftanstaaf' }, ['SHA-256']);
    const result = await runExchange(
      createClientMechanism('PLAIN', { username: 'tim', password: 'tanstaaftanstaaf' }),
      createServerMechanism('PLAIN', lookup),
    );
    assert.deepEqual(result, { username: 'tim' });
    assert.deepEqual(lookup.calls, ['SHA-256:tim']);
  });

  test('RFC 4616 §2: the server falls back to SHA-1 credentials when no SHA-256 ones are stored', async () => {
    const lookup = await memoryLookup({ tim: 'pw' }, ['SHA-1']);
    const result = await runExchange(
      createClientMechanism('PLAIN', { username: 'tim', password: 'pw' }),
      createServerMechanism('PLAIN', lookup),
    );
    assert.equal(result.username, 'tim');
    assert.deepEqual(lookup.calls, ['SHA-256:tim', 'SHA-1:tim']);
  });

  test('RFC 4616 §2: an authzid different from the authcid is returned', async () => {
    const lookup = await memoryLookup({ admin: 'pw' });
    const result = await createServerMechanism('PLAIN', lookup, { domain: 'example.com' }).step(
      plain('juliet@example.com|admin|pw'),
    );
    assert.ok(result.done);
    assert.equal(result.result.authzid, 'juliet@example.com');
    const self = await createServerMechanism('PLAIN', lookup, { domain: 'example.com' }).step(
      plain('admin@example.com|admin|pw'),
    );
    assert.ok(self.done && self.result.authzid === undefined);
  });

  test('RFC 4616 §2 / RFC 4013: authcid and password are prepared with SASLprep', async () => {
    const lookup = await memoryLookup({ user: 'I X' });
    const result = await createServerMechanism('PLAIN', lookup).step(plain('|us\u00ADer|I\u00A0X'));
    assert.ok(result.done && result.result.username === 'user');
  });

  test('RFC 4616 §2: a wrong password fails with not-authorized', async () => {
    const lookup = await memoryLookup({ tim: 'pw' });
    await rejectsWith(createServerMechanism('PLAIN', lookup).step(plain('|tim|nope')), 'not-authorized');
    await rejectsWith(createServerMechanism('PLAIN', lookup).step(plain('|tim|')), 'not-authorized');
  });

  test('RFC 4616 §2: an unknown user fails with not-authorized like a wrong password', async () => {
    const lookup = await memoryLookup({ tim: 'pw' });
    await rejectsWith(createServerMechanism('PLAIN', lookup).step(plain('|nobody|pw')), 'not-authorized');
    assert.deepEqual(lookup.calls, ['SHA-256:nobody', 'SHA-1:nobody']);
  });

  test('RFC 4616 §2: malformed messages are refused with malformed-request', async () => {
    const lookup = await memoryLookup({ tim: 'pw' });
    for (const msg of [
      plain('tim|pw'),
      plain('|tim|pw|x'),
      plain('||pw'),
      enc('timpw'),
      Uint8Array.of(0, 0x74, 0xc3, 0, 0x70),
    ]) {
      await rejectsWith(createServerMechanism('PLAIN', lookup).step(msg), 'malformed-request');
    }
  });

  test('RFC 6120 §6.4.2: without an initial response the server asks with an empty challenge', async () => {
    const lookup = await memoryLookup({ tim: 'pw' });
    const server = createServerMechanism('PLAIN', lookup);
    const client = createClientMechanism('PLAIN', { username: 'tim', password: 'pw' });
    const first = await server.step(null);
    assert.ok(!first.done && first.challenge.length === 0);
    const second = await server.step(await client.challenge(first.challenge));
    assert.ok(second.done);
  });

  test('RFC 6120 §6.4.2: an initial response that is present but empty (`=`) is a malformed PLAIN message', async () => {
    const lookup = await memoryLookup({ tim: 'pw' });
    await rejectsWith(createServerMechanism('PLAIN', lookup).step(new Uint8Array(0)), 'malformed-request');
  });

  test('RFC 6120 §6.5.13: a failing store is temporary-auth-failure', async () => {
    const broken: CredentialLookup = {
      scram: async () => {
        throw new Error('db down');
      },
    };
    await rejectsWith(
      createServerMechanism('PLAIN', broken).step(plain('|tim|pw')),
      'temporary-auth-failure',
    );
  });
});
