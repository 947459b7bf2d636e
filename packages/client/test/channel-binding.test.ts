// SCRAM-*-PLUS with channel binding (RFC 5802 §6, RFC 9266, RFC 5929, XEP-0440) from the SDK,
// against each target: Natter advertises tls-exporter (TLS 1.3) and tls-server-end-point;
// Prosody 0.12 advertises no XEP-0440 types, so the SDK must not pick a -PLUS it cannot complete.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeTargets } from './helpers.js';

describeTargets('SASL channel binding', (ctx) => {
  const natter = () => ctx.target.name === 'natter';

  test('STARTTLS on TLS 1.3: SCRAM-SHA-256-PLUS with tls-exporter where the server lists it', async () => {
    const c = ctx.client(ctx.account());
    await c.connect();
    if (natter()) {
      assert.equal(c.saslMechanism, 'SCRAM-SHA-256-PLUS');
      assert.equal(c.channelBinding, 'tls-exporter');
    } else {
      // Prosody 0.12 offers no -PLUS on TLS 1.3 (tls-unique is undefined there): the client, able
      // to bind, sends the GS2 flag y, which Prosody accepts because it has no binding to offer.
      assert.equal(c.saslMechanism?.endsWith('-PLUS'), false);
      assert.equal(c.channelBinding, undefined);
    }
  });

  test('direct TLS 1.2: SCRAM-SHA-256-PLUS with tls-server-end-point where the server lists it', async (t) => {
    if (!ctx.target.service.tls) return t.skip('target has no direct TLS port');
    const c = ctx.client(ctx.account(), {
      service: ctx.target.service.tls,
      tls: { ...ctx.target.tls, maxVersion: 'TLSv1.2' },
    });
    await c.connect();
    assert.equal(c.status, 'online');
    if (natter()) {
      assert.equal(c.saslMechanism, 'SCRAM-SHA-256-PLUS');
      assert.equal(c.channelBinding, 'tls-server-end-point');
    }
  });

  test('STARTTLS on TLS 1.2 logs in (Prosody offers -PLUS for tls-unique only: not chosen)', async () => {
    const c = ctx.client(ctx.account(), { tls: { ...ctx.target.tls, maxVersion: 'TLSv1.2' } });
    await c.connect();
    assert.equal(c.status, 'online');
    if (natter()) assert.equal(c.channelBinding, 'tls-server-end-point');
    else assert.equal(c.saslMechanism?.endsWith('-PLUS'), false);
  });

  test('with -PLUS filtered out by saslMechanisms the client sends n, not y, and logs in', async () => {
    // A y here would make a server that offered -PLUS refuse the login as a downgrade.
    const c = ctx.client(ctx.account(), { saslMechanisms: ['SCRAM-SHA-256'] });
    await c.connect();
    assert.equal(c.saslMechanism, 'SCRAM-SHA-256');
    assert.equal(c.channelBinding, undefined);
  });

  test('WebSocket without TLS: no channel binding, plain SCRAM', async () => {
    const c = ctx.client(ctx.account(), { service: ctx.target.service.ws });
    await c.connect();
    assert.equal(c.saslMechanism, 'SCRAM-SHA-256');
    assert.equal(c.channelBinding, undefined);
  });
});
