// SASL2 (XEP-0388) and FAST (XEP-0484): a password login asks for a token; the next login, by
// another client object with the same credential store and no password, uses it (HT-SHA-256-*).
// Against Natter (SASL2 and FAST), and Prosody 0.12 (neither: the password login as before).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  AuthenticationError,
  memoryCredentials,
  webStorageCredentials,
  xml,
  type StoredCredentials,
} from '../src/index.node.js';
import { describeTargets } from './helpers.js';
import { freePort } from './ports.js';

describeTargets('SASL2 and FAST tokens', (ctx) => {
  const fast = () => ctx.target.name === 'natter';

  test('a password login stores a token; the next login uses it without the password', async () => {
    const account = ctx.account();
    const credentials = memoryCredentials();
    const first = ctx.client(account, { credentials });
    await first.connect();
    assert.match(first.saslMechanism ?? '', /^SCRAM-SHA-(256|1)/);
    const stored = await credentials.get(first.account.toString());
    if (!fast()) {
      assert.equal(stored, undefined, 'no SASL2 here: nothing to keep');
      await first.disconnect();
      const noPassword = ctx.client(
        { jid: account.jid, password: undefined as unknown as string },
        { credentials },
      );
      await assert.rejects(noPassword.connect(), /no password/);
      return;
    }
    assert.ok(stored?.userAgentId, 'the installation has an id');
    assert.match(stored.token?.mechanism ?? '', /^HT-SHA-256-(EXPR|ENDP|NONE)$/);
    assert.ok(stored.token!.expiry > Date.now());
    await first.disconnect();

    const again = ctx.client({ jid: account.jid, password: undefined as unknown as string }, { credentials });
    const full = await again.connect();
    assert.equal(again.saslMechanism, stored.token!.mechanism);
    assert.equal(full.bare.toString(), account.jid);
    assert.equal((await credentials.get(account.jid))?.token?.count, 1, 'the use was counted');
    // Online for real: the server answers.
    const pong = await again.iq(
      xml('iq', { type: 'get', to: ctx.target.domain }, xml('ping', { xmlns: 'urn:xmpp:ping' })),
    );
    assert.equal(pong.attr('type'), 'result');
    await again.disconnect();
    // Once more: the count goes up again (a count is never sent twice).
    const third = ctx.client({ jid: account.jid, password: undefined as unknown as string }, { credentials });
    await third.connect();
    assert.equal((await credentials.get(account.jid))?.token?.count, 2);
  });

  test('a token the server refuses is forgotten: with the password the login goes on (and gets a new one), without it fails', async (t) => {
    if (!fast()) return t.skip('no FAST on this server');
    const account = ctx.account();
    const credentials = memoryCredentials();
    await ctx.client(account, { credentials }).connect();
    const good = (await credentials.get(account.jid))!;
    await credentials.set(account.jid, {
      ...good,
      token: { ...good.token!, token: `${good.token!.token}x` },
    });
    const withPassword = ctx.client(account, { credentials });
    await withPassword.connect();
    assert.match(withPassword.saslMechanism ?? '', /^SCRAM-/);
    const fresh = (await credentials.get(account.jid))!;
    assert.ok(fresh.token && fresh.token.token !== good.token!.token, 'a new token');
    assert.equal(fresh.userAgentId, good.userAgentId, 'the same installation');

    await credentials.set(account.jid, { ...fresh, token: { ...fresh.token!, token: 'forged' } });
    const without = ctx.client(
      { jid: account.jid, password: undefined as unknown as string },
      { credentials },
    );
    await assert.rejects(without.connect(), (err: unknown) => err instanceof AuthenticationError);
    assert.equal((await credentials.get(account.jid))?.token, undefined, 'the refused token is gone');
  });

  test('a password change voids the tokens issued before it', async (t) => {
    if (!fast() || !ctx.target.setPassword) return t.skip('no FAST on this server');
    const account = ctx.account();
    const credentials = memoryCredentials();
    await ctx.client(account, { credentials }).connect();
    await ctx.target.setPassword(account.jid, `${account.password}-new`);
    const without = ctx.client(
      { jid: account.jid, password: undefined as unknown as string },
      { credentials },
    );
    await assert.rejects(without.connect(), AuthenticationError);
  });

  /** A login, in another client object, with a copy of a token as it was before (a thief's copy). */
  const loginWithCopy = async (jid: string, stored: StoredCredentials) => {
    const copy = memoryCredentials();
    // A count above any the device used: only the token itself decides.
    await copy.set(jid, { ...stored, token: { ...stored.token!, count: stored.token!.count + 10 } });
    return ctx.client({ jid, password: undefined as unknown as string }, { credentials: copy }).connect();
  };

  test('forgetCredentials() invalidates the token on the server: a copy of it no longer logs in', async (t) => {
    if (!fast()) return t.skip('no FAST on this server');
    const account = ctx.account();
    const credentials = memoryCredentials();
    const c = ctx.client(account, { credentials });
    await c.connect();
    const stored = (await credentials.get(account.jid))!;
    assert.ok(stored.token);
    assert.equal(await c.forgetCredentials(), true);
    assert.equal(await credentials.get(account.jid), undefined, 'nothing left on this device');
    // The session goes on.
    const pong = await c.iq(
      xml('iq', { type: 'get', to: ctx.target.domain }, xml('ping', { xmlns: 'urn:xmpp:ping' })),
    );
    assert.equal(pong.attr('type'), 'result');
    await assert.rejects(loginWithCopy(account.jid, stored), (err: unknown) => {
      assert.ok(err instanceof AuthenticationError, String(err));
      assert.equal(err.condition, 'not-authorized');
      return true;
    });
  });

  test('forgetCredentials() with the server out of reach: the token is invalidated at the next connection', async (t) => {
    if (!fast()) return t.skip('no FAST on this server');
    const account = ctx.account();
    const credentials = memoryCredentials();
    await ctx.client(account, { credentials }).connect();
    const stored = (await credentials.get(account.jid))!;
    // Nothing listens on this port.
    const away = ctx.client(account, { credentials, service: `xmpp://127.0.0.1:${await freePort()}` });
    assert.equal(await away.forgetCredentials(), false);
    const pending = (await credentials.get(account.jid))!;
    assert.equal(pending.token, undefined, 'no token to log in with');
    assert.equal(pending.revoke?.token.token, stored.token!.token, 'kept to invalidate it');
    assert.notEqual(pending.userAgentId, stored.userAgentId, 'a new installation id');

    // The next connection, by the password: the old token is invalidated first.
    const next = ctx.client(account, { credentials });
    await next.connect();
    assert.match(next.saslMechanism ?? '', /^SCRAM-/);
    const now = (await credentials.get(account.jid))!;
    assert.equal(now.revoke, undefined, 'done');
    assert.ok(now.token && now.token.token !== stored.token!.token, 'a token of its own');
    assert.notEqual(now.userAgentId, stored.userAgentId, 'as a new installation');
    await assert.rejects(loginWithCopy(account.jid, stored), AuthenticationError);
    // The new installation's token is untouched by that.
    await next.disconnect();
    const later = ctx.client({ jid: account.jid, password: undefined as unknown as string }, { credentials });
    await later.connect();
    assert.match(later.saslMechanism ?? '', /^HT-SHA-256-/);
  });

  test('webStorageCredentials keeps the token across client objects (as across page loads)', async (t) => {
    if (!fast()) return t.skip('no FAST on this server');
    const account = ctx.account();
    const backing = new Map<string, string>();
    const storage = {
      getItem: (k: string) => backing.get(k) ?? null,
      setItem: (k: string, v: string) => void backing.set(k, v),
      removeItem: (k: string) => void backing.delete(k),
    };
    const first = ctx.client(account, { credentials: webStorageCredentials(storage) });
    await first.connect();
    await first.disconnect();
    assert.equal(backing.size, 1);
    const later = ctx.client(
      { jid: account.jid, password: undefined as unknown as string },
      { credentials: webStorageCredentials(storage) },
    );
    await later.connect();
    assert.match(later.saslMechanism ?? '', /^HT-SHA-256-/);
    await later.forgetCredentials();
    assert.equal(backing.size, 0);
  });
});
