import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fromBase64 } from './base64.js';
import { endPointHash } from './channel-binding.js';
import { chooseClientMechanism, createClientMechanism, createServerMechanism } from './factory.js';
import { dec, enc, memoryLookup, rejectsWith, runExchange } from './fixtures.test.js';

const creds = { username: 'romeo', password: 'secret' };
const exporter = { type: 'tls-exporter', data: new Uint8Array(32).fill(7) };
const bindings = (type: string) => (type === 'tls-exporter' ? exporter.data : undefined);

describe('SCRAM-*-PLUS channel binding (RFC 5802 §6)', () => {
  for (const mech of ['SCRAM-SHA-1-PLUS', 'SCRAM-SHA-256-PLUS'] as const) {
    test(`${mech}: the client sends p=type and c= carries the GS2 header plus the binding data`, async () => {
      const lookup = await memoryLookup({ romeo: 'secret' });
      const client = createClientMechanism(mech, creds, { channelBinding: exporter });
      const server = createServerMechanism(mech, lookup, { channelBinding: bindings });
      assert.equal(client.name, mech);
      assert.equal(server.name, mech);
      const first = await client.initial();
      assert.ok(dec(first).startsWith('p=tls-exporter,,n=romeo,r='));
      const serverFirst = await server.step(first);
      assert.equal(serverFirst.done, false);
      const final = dec(await client.challenge((serverFirst as { challenge: Uint8Array }).challenge));
      const c = /^c=([^,]+),/.exec(final)![1]!;
      assert.deepEqual(fromBase64(c), new Uint8Array([...enc('p=tls-exporter,,'), ...exporter.data]));
      const done = await server.step(enc(final));
      assert.equal(done.done, true);
    });
  }

  test('different binding data on the two ends (a man in the middle) fails', async () => {
    const lookup = await memoryLookup({ romeo: 'secret' });
    const client = createClientMechanism('SCRAM-SHA-256-PLUS', creds, {
      channelBinding: { type: 'tls-exporter', data: new Uint8Array(32).fill(8) },
    });
    const server = createServerMechanism('SCRAM-SHA-256-PLUS', lookup, { channelBinding: bindings });
    await rejectsWith(runExchange(client, server), 'not-authorized');
  });

  test('a binding type the server cannot provide fails', async () => {
    const lookup = await memoryLookup({ romeo: 'secret' });
    const client = createClientMechanism('SCRAM-SHA-256-PLUS', creds, {
      channelBinding: { type: 'tls-unique', data: new Uint8Array(12) },
    });
    const server = createServerMechanism('SCRAM-SHA-256-PLUS', lookup, { channelBinding: bindings });
    await rejectsWith(runExchange(client, server), 'not-authorized');
  });

  test('a -PLUS mechanism with the n or y flag fails', async () => {
    const lookup = await memoryLookup({ romeo: 'secret' });
    for (const flag of ['n', 'y']) {
      const server = createServerMechanism('SCRAM-SHA-256-PLUS', lookup, { channelBinding: bindings });
      await rejectsWith(server.step(enc(`${flag},,n=romeo,r=abc`)), 'not-authorized');
    }
  });

  test('plain SCRAM with p= fails', async () => {
    const lookup = await memoryLookup({ romeo: 'secret' });
    const server = createServerMechanism('SCRAM-SHA-256', lookup, { channelBinding: bindings });
    await rejectsWith(server.step(enc('p=tls-exporter,,n=romeo,r=abc')), 'malformed-request');
  });

  test('the y flag passes when the server offered no -PLUS and fails as a downgrade when it did', async () => {
    const lookup = await memoryLookup({ romeo: 'secret' });
    const client = () => createClientMechanism('SCRAM-SHA-256', creds, { channelBindingSupported: true });
    const first = dec(await client().initial());
    assert.ok(first.startsWith('y,,'));
    const ok = await runExchange(client(), createServerMechanism('SCRAM-SHA-256', lookup));
    assert.equal(ok.username, 'romeo');
    const downgraded = createServerMechanism('SCRAM-SHA-256', lookup, { channelBindingOffered: true });
    await rejectsWith(runExchange(client(), downgraded), 'not-authorized');
  });
});

describe('chooseClientMechanism with channel binding', () => {
  const all = ['SCRAM-SHA-1', 'SCRAM-SHA-256', 'SCRAM-SHA-1-PLUS', 'SCRAM-SHA-256-PLUS', 'PLAIN'];

  test('prefers SCRAM-SHA-256-PLUS when a binding is available', async () => {
    const m = chooseClientMechanism(all, creds, { allowPlain: true, channelBinding: exporter });
    assert.equal(m?.name, 'SCRAM-SHA-256-PLUS');
  });

  test('never picks -PLUS without a binding, and sends n when -PLUS was offered', async () => {
    const m = chooseClientMechanism(all, creds, { allowPlain: true, channelBindingSupported: true });
    assert.equal(m?.name, 'SCRAM-SHA-256');
    assert.ok(dec(await m!.initial()).startsWith('n,,'));
  });

  test('sends y when it could bind but the server offered no -PLUS', async () => {
    const m = chooseClientMechanism(['SCRAM-SHA-1', 'SCRAM-SHA-256'], creds, {
      allowPlain: true,
      channelBinding: exporter,
      channelBindingSupported: true,
    });
    assert.equal(m?.name, 'SCRAM-SHA-256');
    assert.ok(dec(await m!.initial()).startsWith('y,,'));
  });

  test('sends n without any binding', async () => {
    const m = chooseClientMechanism(['SCRAM-SHA-256'], creds, { allowPlain: false });
    assert.ok(dec(await m!.initial()).startsWith('n,,'));
  });
});

describe('endPointHash (RFC 5929 §4.1)', () => {
  // Certificate ::= SEQUENCE { tbs SEQUENCE, AlgorithmIdentifier SEQUENCE { OID }, BIT STRING }
  const cert = (oidHex: string): Uint8Array => {
    const oid = Buffer.from(oidHex, 'hex');
    const alg = Buffer.concat([Buffer.from([0x30, oid.length + 2, 0x06, oid.length]), oid]);
    const tbs = Buffer.from([0x30, 0x03, 0x02, 0x01, 0x02]);
    const sig = Buffer.from([0x03, 0x02, 0x00, 0xff]);
    const body = Buffer.concat([tbs, alg, sig]);
    return new Uint8Array(Buffer.concat([Buffer.from([0x30, body.length]), body]));
  };

  test('uses the signature hash, and SHA-256 for MD5 and SHA-1', () => {
    assert.equal(endPointHash(cert('2a8648ce3d040302')), 'sha256'); // ecdsa-with-SHA256
    assert.equal(endPointHash(cert('2a8648ce3d040303')), 'sha384'); // ecdsa-with-SHA384
    assert.equal(endPointHash(cert('2a864886f70d01010d')), 'sha512'); // sha512WithRSAEncryption
    assert.equal(endPointHash(cert('2a864886f70d010105')), 'sha256'); // sha1WithRSAEncryption
    assert.equal(endPointHash(cert('2a864886f70d010104')), 'sha256'); // md5WithRSAEncryption
  });

  test('no hash for algorithms without one, or for garbage', () => {
    assert.equal(endPointHash(cert('2b6570')), undefined); // Ed25519
    assert.equal(endPointHash(new Uint8Array([0x30, 0x80])), undefined);
    assert.equal(endPointHash(new Uint8Array(0)), undefined);
  });
});
