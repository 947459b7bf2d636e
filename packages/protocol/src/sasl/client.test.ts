import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { toBase64 } from './base64.js';
import { chooseClientMechanism, createClientMechanism } from './factory.js';
import { SaslFailure } from './sasl-failure.js';
import { dec, enc, rejectsWith } from './fixtures.test.js';

const creds = { username: 'user', password: 'pencil' };
const NONCE = 'fyko+d2lbbFgONRv9qkxdawL';
const SERVER_FIRST = `r=${NONCE}3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096`;

async function afterFirst(
  serverFirst: string,
  opts: { minIterations?: number; maxIterations?: number } = {},
) {
  const client = createClientMechanism('SCRAM-SHA-1', creds, { nonce: NONCE, ...opts });
  await client.initial();
  return client.challenge(enc(serverFirst));
}

describe('mechanism selection', () => {
  test('RFC 7677 §4 / RFC 6120 §6.3.3: SCRAM-SHA-256 is preferred over SCRAM-SHA-1 over PLAIN', () => {
    assert.equal(
      chooseClientMechanism(['PLAIN', 'SCRAM-SHA-1', 'SCRAM-SHA-256'], creds, { allowPlain: true })?.name,
      'SCRAM-SHA-256',
    );
    assert.equal(
      chooseClientMechanism(['PLAIN', 'SCRAM-SHA-1'], creds, { allowPlain: true })?.name,
      'SCRAM-SHA-1',
    );
    assert.equal(chooseClientMechanism(['PLAIN', 'X-OAUTH2'], creds, { allowPlain: true })?.name, 'PLAIN');
  });

  test('RFC 4616 §4: PLAIN is chosen only when allowed', () => {
    assert.equal(chooseClientMechanism(['PLAIN'], creds), null);
    assert.equal(chooseClientMechanism(['PLAIN'], creds, { allowPlain: false }), null);
    assert.equal(
      chooseClientMechanism(['SCRAM-SHA-1-PLUS', 'DIGEST-MD5'], creds, { allowPlain: true }),
      null,
    );
  });

  test('RFC 6120 §6.4.1: an unknown mechanism name is invalid-mechanism', () => {
    assert.throws(
      () => createClientMechanism('CRAM-MD5', creds),
      (e: unknown) => e instanceof SaslFailure && e.condition === 'invalid-mechanism',
    );
  });
});

describe('SCRAM client checks on server messages', () => {
  test('RFC 5802 §5.1: the authzid is sent escaped in the GS2 header and echoed in c=', async () => {
    const client = createClientMechanism('SCRAM-SHA-1', { ...creds, authzid: 'a,b=c' }, { nonce: NONCE });
    assert.equal(dec(await client.initial()), `n,a=a=2Cb=3Dc,n=user,r=${NONCE}`);
    const final = dec(await client.challenge(enc(SERVER_FIRST)));
    assert.ok(final.startsWith(`c=${toBase64(enc('n,a=a=2Cb=3Dc,'))},`));
  });

  test('RFC 5802 §5.1: a server nonce that does not extend the client nonce is not-authorized', async () => {
    await rejectsWith(afterFirst('r=somethingelse,s=QSXCR+Q6sek8bf92,i=4096'), 'not-authorized');
    await rejectsWith(afterFirst(`r=${NONCE},s=QSXCR+Q6sek8bf92,i=4096`), 'not-authorized');
  });

  test('RFC 5802 §7: a malformed server-first is malformed-request', async () => {
    for (const msg of [
      `s=QSXCR+Q6sek8bf92,r=${NONCE}x,i=4096`,
      `r=${NONCE}x,s=QSXCR+Q6sek8bf92`,
      `m=x,r=${NONCE}x,s=QSXCR+Q6sek8bf92,i=4096`,
      `r=${NONCE}x,s=QSXCR+Q6sek8bf92,i=04096`,
      `r=${NONCE}x,s=,i=4096`,
      'garbage',
    ]) {
      await rejectsWith(afterFirst(msg), 'malformed-request');
    }
  });

  test('RFC 6120 §6.5.2: invalid base64 salt is incorrect-encoding', async () => {
    await rejectsWith(afterFirst(`r=${NONCE}x,s=QSXCR+Q6sek8bf9,i=4096`), 'incorrect-encoding');
  });

  test('RFC 7677 §4: fewer iterations than the minimum is mechanism-too-weak; too many is refused', async () => {
    await rejectsWith(afterFirst(`r=${NONCE}x,s=QSXCR+Q6sek8bf92,i=1024`), 'mechanism-too-weak');
    await rejectsWith(
      afterFirst(`r=${NONCE}x,s=QSXCR+Q6sek8bf92,i=4096`, { maxIterations: 2048, minIterations: 1 }),
      'malformed-request',
    );
  });

  test('RFC 5802 §5: success without a server signature, or with e=, is not-authorized', async () => {
    for (const data of [null, enc('e=other-error')]) {
      const client = createClientMechanism('SCRAM-SHA-1', creds, { nonce: NONCE });
      await client.initial();
      await client.challenge(enc(SERVER_FIRST));
      await rejectsWith(client.success(data), 'not-authorized');
    }
  });

  test('RFC 5802 §5: a server-final sent as a challenge is verified and answered with an empty response', async () => {
    const client = createClientMechanism('SCRAM-SHA-1', creds, { nonce: NONCE });
    await client.initial();
    await client.challenge(enc(SERVER_FIRST));
    const response = await client.challenge(enc('v=rmF9pqV8S7suAoZWja4dJRkFsKQ='));
    assert.equal(response.length, 0);
    await client.success(null);
  });

  test('RFC 6120 §6.5.2: a server signature in invalid base64 is incorrect-encoding', async () => {
    const client = createClientMechanism('SCRAM-SHA-1', creds, { nonce: NONCE });
    await client.initial();
    await client.challenge(enc(SERVER_FIRST));
    await rejectsWith(client.success(enc('v=rmF9pqV8S7suAoZWja4dJRkFsKQ')), 'incorrect-encoding');
  });
});
