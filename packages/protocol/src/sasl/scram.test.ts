import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fromBase64, toBase64 } from './base64.js';
import { createClientMechanism, createServerMechanism } from './factory.js';
import type { CredentialLookup } from './mechanism.js';
import { SaslFailure } from './sasl-failure.js';
import { deriveScramCredentials, type ScramHash } from './scram-crypto.js';
import { ScramServerMechanism } from './scram-server.js';
import { dec, enc, memoryLookup, rejectsWith, runExchange } from './fixtures.test.js';

interface Vector {
  rfc: string;
  mech: 'SCRAM-SHA-1' | 'SCRAM-SHA-256';
  hash: ScramHash;
  clientNonce: string;
  serverNonce: string;
  salt: string;
  clientFirst: string;
  serverFirst: string;
  clientFinal: string;
  serverFinal: string;
}

const vectors: Vector[] = [
  {
    rfc: 'RFC 5802 §5',
    mech: 'SCRAM-SHA-1',
    hash: 'SHA-1',
    clientNonce: 'fyko+d2lbbFgONRv9qkxdawL',
    serverNonce: '3rfcNHYJY1ZVvWVs7j',
    salt: 'QSXCR+Q6sek8bf92',
    clientFirst: 'n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL',
    serverFirst: 'r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096',
    clientFinal: 'c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=',
    serverFinal: 'v=rmF9pqV8S7suAoZWja4dJRkFsKQ=',
  },
  {
    rfc: 'RFC 7677 §3',
    mech: 'SCRAM-SHA-256',
    hash: 'SHA-256',
    clientNonce: 'rOprNGfwEbeRWgbNEkqO',
    serverNonce: '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
    salt: 'W22ZaJ0SNY7soEsUEjb6gQ==',
    clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
    serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
    clientFinal:
      'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
    serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
  },
];

async function vectorLookup(v: Vector): Promise<CredentialLookup> {
  const creds = await deriveScramCredentials(v.hash, 'pencil', {
    salt: fromBase64(v.salt),
    iterations: 4096,
  });
  return { scram: async (user, hash) => (user === 'user' && hash === v.hash ? creds : null) };
}

for (const v of vectors) {
  describe(`${v.rfc}: ${v.mech} example exchange`, () => {
    test(`${v.rfc}: the client produces the exact example messages with the example nonce`, async () => {
      const client = createClientMechanism(
        v.mech,
        { username: 'user', password: 'pencil' },
        { nonce: v.clientNonce },
      );
      assert.equal(dec(await client.initial()), v.clientFirst);
      assert.equal(dec(await client.challenge(enc(v.serverFirst))), v.clientFinal);
      await client.success(enc(v.serverFinal));
    });

    test(`${v.rfc}: the server produces the exact example messages with the example nonce`, async () => {
      const server = new ScramServerMechanism(v.hash, await vectorLookup(v), { serverNonce: v.serverNonce });
      const first = await server.step(enc(v.clientFirst));
      assert.equal(first.done, false);
      assert.equal(!first.done && dec(first.challenge), v.serverFirst);
      const final = await server.step(enc(v.clientFinal));
      assert.ok(final.done);
      assert.equal(final.result.username, 'user');
      assert.equal(final.result.authzid, undefined);
      assert.equal(dec(final.result.additionalData!), v.serverFinal);
    });

    test(`${v.rfc}: stored credentials match the example keys`, async () => {
      const lookup = await vectorLookup(v);
      const creds = (await lookup.scram('user', v.hash))!;
      assert.equal(creds.iterations, 4096);
      assert.equal(toBase64(creds.salt), v.salt);
    });

    test(`${v.rfc}: the client refuses a server-final with a wrong signature (not-authorized)`, async () => {
      const client = createClientMechanism(
        v.mech,
        { username: 'user', password: 'pencil' },
        { nonce: v.clientNonce },
      );
      await client.initial();
      await client.challenge(enc(v.serverFirst));
      const sig = fromBase64(v.serverFinal.slice(2));
      sig[0]! ^= 1;
      await rejectsWith(client.success(enc(`v=${toBase64(sig)}`)), 'not-authorized');
    });
  });
}

describe('SCRAM client↔server round trips', () => {
  for (const mech of ['SCRAM-SHA-1', 'SCRAM-SHA-256'] as const) {
    test(`RFC 5802 §5: ${mech} authenticates a user with the right password`, async () => {
      const lookup = await memoryLookup({ juliet: 'r0m3o!' });
      const result = await runExchange(
        createClientMechanism(mech, { username: 'juliet', password: 'r0m3o!' }),
        createServerMechanism(mech, lookup),
      );
      assert.equal(result.username, 'juliet');
      assert.equal(result.authzid, undefined);
      assert.match(dec(result.additionalData!), /^v=/);
    });

    test(`RFC 5802 §5.1: ${mech} usernames with ',' and '=' are escaped and unescaped`, async () => {
      const lookup = await memoryLookup({ 'a,b=c': 'pw' });
      const client = createClientMechanism(mech, { username: 'a,b=c', password: 'pw' });
      const first = await client.initial();
      assert.match(dec(first), /^n,,n=a=2Cb=3Dc,r=/);
      const result = await runExchange(
        createClientMechanism(mech, { username: 'a,b=c', password: 'pw' }),
        createServerMechanism(mech, lookup),
      );
      assert.equal(result.username, 'a,b=c');
    });

    test(`RFC 5802 §5.1 / RFC 4013: ${mech} usernames and passwords go through SASLprep on both sides`, async () => {
      const lookup = await memoryLookup({ user: 'pass word' });
      const result = await runExchange(
        createClientMechanism(mech, { username: 'us\u00ADer', password: 'pass\u00A0word' }),
        createServerMechanism(mech, lookup),
      );
      assert.equal(result.username, 'user');
    });

    test(`RFC 5802 §5.1: ${mech} an authzid is returned when it differs from the user`, async () => {
      const lookup = await memoryLookup({ admin: 'pw' });
      const withOther = await runExchange(
        createClientMechanism(mech, { username: 'admin', password: 'pw', authzid: 'juliet@example.com' }),
        createServerMechanism(mech, lookup, { domain: 'example.com' }),
      );
      assert.equal(withOther.authzid, 'juliet@example.com');
      const withSelf = await runExchange(
        createClientMechanism(mech, { username: 'admin', password: 'pw', authzid: 'admin@example.com' }),
        createServerMechanism(mech, lookup, { domain: 'example.com' }),
      );
      assert.equal(withSelf.authzid, undefined);
    });
  }

  test('RFC 6120 §6.4.2: without an initial response the server sends an empty challenge first', async () => {
    const lookup = await memoryLookup({ romeo: 'pw' });
    const server = createServerMechanism('SCRAM-SHA-256', lookup);
    const client = createClientMechanism('SCRAM-SHA-256', { username: 'romeo', password: 'pw' });
    const empty = await server.step(new Uint8Array(0));
    assert.ok(!empty.done && empty.challenge.length === 0);
    const first = await server.step(await client.initial());
    assert.ok(!first.done);
    const final = await server.step(await client.challenge(first.challenge));
    assert.ok(final.done);
    await client.success(final.result.additionalData!);
  });

  test('RFC 5802 §5.1: the server nonce extends the client nonce with at least 18 random bytes', async () => {
    const lookup = await memoryLookup({ romeo: 'pw' });
    const server = createServerMechanism('SCRAM-SHA-1', lookup);
    const step = await server.step(enc('n,,n=romeo,r=abc'));
    assert.ok(!step.done);
    const nonce = /^r=abc([^,]+),/.exec(dec(step.challenge))![1]!;
    assert.ok(fromBase64(nonce).length >= 18);
  });

  test('RFC 5802 §5.1: SCRAM-SHA-256 uses SHA-256 credentials, SCRAM-SHA-1 uses SHA-1 credentials', async () => {
    const lookup = await memoryLookup({ romeo: 'pw' });
    await runExchange(
      createClientMechanism('SCRAM-SHA-1', { username: 'romeo', password: 'pw' }),
      createServerMechanism('SCRAM-SHA-1', lookup),
    );
    await runExchange(
      createClientMechanism('SCRAM-SHA-256', { username: 'romeo', password: 'pw' }),
      createServerMechanism('SCRAM-SHA-256', lookup),
    );
    assert.deepEqual(lookup.calls, ['SHA-1:romeo', 'SHA-256:romeo']);
  });
});

/** Runs client-first against a fresh server and returns everything needed to forge the final message. */
async function startExchange(
  mech: 'SCRAM-SHA-1' | 'SCRAM-SHA-256',
  lookup: CredentialLookup,
  username = 'romeo',
  password = 'pw',
) {
  const server = createServerMechanism(mech, lookup);
  const client = createClientMechanism(mech, { username, password });
  const first = await server.step(await client.initial());
  assert.ok(!first.done);
  const clientFinal = dec(await client.challenge(first.challenge));
  return { server, client, serverFirst: dec(first.challenge), clientFinal };
}

describe('SCRAM server failures', () => {
  test('RFC 5802 §5: a wrong password fails with not-authorized at the final step', async () => {
    const lookup = await memoryLookup({ romeo: 'pw' });
    const { server, clientFinal } = await startExchange('SCRAM-SHA-256', lookup, 'romeo', 'wrong');
    await rejectsWith(server.step(enc(clientFinal)), 'not-authorized');
  });

  test('RFC 5802 §9: an unknown user gets a normal server-first and fails only at the final step', async () => {
    const lookup = await memoryLookup({ romeo: 'pw' });
    const a = await startExchange('SCRAM-SHA-256', lookup, 'nobody', 'pw');
    assert.match(a.serverFirst, /^r=[^,]+,s=[A-Za-z0-9+/]{22}==,i=4096$/);
    await rejectsWith(a.server.step(enc(a.clientFinal)), 'not-authorized');
    // The fake salt is stable per username (like a real account's) and differs between usernames.
    const b = await startExchange('SCRAM-SHA-256', lookup, 'nobody', 'pw');
    const c = await startExchange('SCRAM-SHA-256', lookup, 'someone', 'pw');
    const salt = (s: string) => /,s=([^,]+),/.exec(s)![1];
    assert.equal(salt(a.serverFirst), salt(b.serverFirst));
    assert.notEqual(salt(a.serverFirst), salt(c.serverFirst));
  });

  test('RFC 5802 §5: a tampered ClientProof fails with not-authorized', async () => {
    const lookup = await memoryLookup({ romeo: 'pw' });
    const { server, clientFinal } = await startExchange('SCRAM-SHA-1', lookup);
    const [head, proof] = clientFinal.split(',p=') as [string, string];
    const bytes = fromBase64(proof);
    bytes[5]! ^= 0x80;
    await rejectsWith(server.step(enc(`${head},p=${toBase64(bytes)}`)), 'not-authorized');
  });

  test('RFC 5802 §5.1: a client-final with a different nonce fails with not-authorized', async () => {
    const lookup = await memoryLookup({ romeo: 'pw' });
    const { server, clientFinal } = await startExchange('SCRAM-SHA-256', lookup);
    await rejectsWith(
      server.step(enc(clientFinal.replace(/,r=(.)/, (_m, c: string) => `,r=${c === 'A' ? 'B' : 'A'}`))),
      'not-authorized',
    );
  });

  test('RFC 5802 §5.1: a client-final nonce that only repeats the client part fails with not-authorized', async () => {
    const lookup = await memoryLookup({ romeo: 'pw' });
    const server = createServerMechanism('SCRAM-SHA-256', lookup);
    await server.step(enc('n,,n=romeo,r=clientnonce'));
    await rejectsWith(
      server.step(enc(`c=biws,r=clientnonce,p=${toBase64(new Uint8Array(32))}`)),
      'not-authorized',
    );
  });

  test('RFC 5802 §6: c= must carry the GS2 header of client-first ("y" sent, "n" echoed) — not-authorized', async () => {
    const lookup = await memoryLookup({ romeo: 'pw' });
    const server = createServerMechanism('SCRAM-SHA-256', lookup);
    const step = await server.step(enc('n,,n=romeo,r=abc'));
    assert.ok(!step.done);
    const nonce = /^r=([^,]+)/.exec(dec(step.challenge))![1]!;
    await rejectsWith(
      server.step(enc(`c=${toBase64(enc('y,,'))},r=${nonce},p=${toBase64(new Uint8Array(32))}`)),
      'not-authorized',
    );
  });

  test('RFC 5802 §6: a client using flag "y" authenticates when no -PLUS mechanism is offered', async () => {
    const lookup = await memoryLookup({ romeo: 'pw' });
    const server = createServerMechanism('SCRAM-SHA-1', lookup);
    const step = await server.step(enc('y,,n=romeo,r=abc'));
    assert.ok(!step.done);
  });

  test('RFC 5802 §6: flag "y" while the server offers -PLUS is a downgrade and fails with not-authorized', async () => {
    const lookup = await memoryLookup({ romeo: 'pw' });
    const server = createServerMechanism('SCRAM-SHA-1', lookup, { channelBindingOffered: true });
    await rejectsWith(server.step(enc('y,,n=romeo,r=abc')), 'not-authorized');
  });

  test('RFC 5802 §6: channel binding ("p=") on a non-PLUS mechanism is refused with malformed-request', async () => {
    const lookup = await memoryLookup({ romeo: 'pw' });
    await rejectsWith(
      createServerMechanism('SCRAM-SHA-256', lookup).step(enc('p=tls-exporter,,n=romeo,r=abc')),
      'malformed-request',
    );
  });

  test('RFC 5802 §7: malformed client-first messages are refused with malformed-request', async () => {
    const lookup = await memoryLookup({ romeo: 'pw' });
    const bad = [
      'n=romeo,r=abc', // no GS2 header
      'x,,n=romeo,r=abc', // unknown flag
      'n,b=x,n=romeo,r=abc', // bad authzid part
      'n,,m=ext,n=romeo,r=abc', // mandatory extension
      'n,,r=abc,n=romeo', // wrong order
      'n,,n=romeo', // no nonce
      'n,,n=,r=abc', // empty username
      'n,,n=ro=2Xmeo,r=abc', // bad escape
      'n,,n=romeo=,r=abc', // dangling '='
      'n,,n=romeo,r=a b', // nonce not printable
      'n,,n=romeo,r=', // empty nonce
      'n,,n=romeo,r=abc,', // empty attribute
      'n,,n=ro\u0007meo,r=abc', // SASLprep-prohibited username
      'n,a=,n=romeo,r=abc', // empty authzid value
    ];
    for (const msg of bad)
      await rejectsWith(createServerMechanism('SCRAM-SHA-1', lookup).step(enc(msg)), 'malformed-request');
    await rejectsWith(
      createServerMechanism('SCRAM-SHA-1', lookup).step(Uint8Array.of(0x6e, 0x2c, 0x2c, 0xff)),
      'malformed-request',
    );
  });

  test('RFC 5802 §7: optional extensions after the nonce are ignored', async () => {
    const lookup = await memoryLookup({ romeo: 'pw' });
    const step = await createServerMechanism('SCRAM-SHA-1', lookup).step(enc('n,,n=romeo,r=abc,x=whatever'));
    assert.ok(!step.done);
  });

  test('RFC 5802 §7: malformed client-final messages are refused with malformed-request', async () => {
    const lookup = await memoryLookup({ romeo: 'pw' });
    const variants = [
      (head: string, _proof: string) => head, // no proof
      (head: string, proof: string) => `${head},p=${proof},x=1`, // proof not last
      (head: string, proof: string) => `r=${head.split(',r=')[1]},c=biws,p=${proof}`, // wrong order
      (head: string) => `${head},p=${toBase64(new Uint8Array(20))}`, // wrong proof length for SHA-256
      (head: string, proof: string) => `${head},,p=${proof}`, // empty attribute
    ];
    for (const make of variants) {
      const { server, clientFinal } = await startExchange('SCRAM-SHA-256', lookup);
      const [head, proof] = clientFinal.split(',p=') as [string, string];
      await rejectsWith(server.step(enc(make(head, proof))), 'malformed-request');
    }
  });

  test('RFC 6120 §6.5.2: invalid base64 in c= or p= fails with incorrect-encoding', async () => {
    const lookup = await memoryLookup({ romeo: 'pw' });
    for (const mangle of [
      (m: string) => m.replace('c=biws', 'c=biw'),
      (m: string) => m.replace(/,p=.*/, ',p=@@@@'),
    ]) {
      const { server, clientFinal } = await startExchange('SCRAM-SHA-1', lookup);
      await rejectsWith(server.step(enc(mangle(clientFinal))), 'incorrect-encoding');
    }
  });

  test('RFC 6120 §6.5: a step after the exchange is over is refused', async () => {
    const lookup = await memoryLookup({ romeo: 'pw' });
    const { server, clientFinal } = await startExchange('SCRAM-SHA-1', lookup);
    const done = await server.step(enc(clientFinal));
    assert.ok(done.done);
    await rejectsWith(server.step(enc(clientFinal)), 'malformed-request');
  });

  test('RFC 6120 §6.5.13: a failing credential store gives temporary-auth-failure; its SaslFailures pass through', async () => {
    const broken: CredentialLookup = {
      scram: async () => {
        throw new Error('db down');
      },
    };
    await rejectsWith(
      createServerMechanism('SCRAM-SHA-1', broken).step(enc('n,,n=romeo,r=abc')),
      'temporary-auth-failure',
    );
    const disabled: CredentialLookup = {
      scram: async () => {
        throw new SaslFailure('account-disabled');
      },
    };
    await rejectsWith(
      createServerMechanism('SCRAM-SHA-1', disabled).step(enc('n,,n=romeo,r=abc')),
      'account-disabled',
    );
  });

  test('RFC 6120 §6.5.5: an unknown server mechanism name is invalid-mechanism', async () => {
    const lookup = await memoryLookup({});
    assert.throws(
      () => createServerMechanism('DIGEST-MD5' as 'PLAIN', lookup),
      (e: unknown) => e instanceof SaslFailure && e.condition === 'invalid-mechanism',
    );
  });
});
