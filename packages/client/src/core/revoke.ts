// XEP-0484 token invalidation ("Client requests token invalidation"): to log a device out for good,
// the client authenticates with its token once more, with <fast invalidate='true'/>, on a
// connection of its own, and closes it. `Client.forgetCredentials()` and the next `connect()` use it.
import { NS } from '@natter/protocol';
import type { CredentialStore, StoredCredentials } from './credentials.js';
import { negotiateStartTls } from './negotiate.js';
import { authenticate2, FastTokenRefused } from './sasl2.js';
import { XmppStream } from './xmpp-stream.js';
import type { Transport } from '../transport/transport.js';

export interface RevokeContext {
  store: CredentialStore;
  /** The account's bare JID (the store's key). */
  key: string;
  username: string;
  domain: string;
  lang?: string;
  timeout: number;
  software: string;
  /** Connects a transport to the service (throws when no endpoint answers). */
  reach(): Promise<Transport>;
}

/** Removes the revocation once done, unless the store holds another one meanwhile. */
async function settle(ctx: RevokeContext, token: string): Promise<void> {
  const now = await ctx.store.get(ctx.key);
  if (now?.revoke?.token.token !== token) return;
  const rest: StoredCredentials = { userAgentId: now.userAgentId };
  if (now.token) rest.token = now.token;
  // Nothing left but an installation id that never logged in: the record goes.
  if (rest.token) await ctx.store.set(ctx.key, rest);
  else await ctx.store.delete(ctx.key);
}

/**
 * Invalidates the token in the store's `revoke` on the server. Resolves true when it is gone
 * (invalidated, refused as no longer valid, expired, or the server no longer does FAST), false
 * when it has to wait (no encrypted connection, a temporary failure); throws when the server
 * cannot be reached.
 */
export async function revokeToken(ctx: RevokeContext): Promise<boolean> {
  const stored = await ctx.store.get(ctx.key);
  const pending = stored?.revoke;
  if (!stored || !pending) return true;
  if (pending.token.expiry <= Date.now()) {
    await settle(ctx, pending.token.token);
    return true;
  }
  // Counted before it is sent, as every use of a token (a count is never used twice).
  const token = { ...pending.token, count: pending.token.count + 1 };
  await ctx.store.set(ctx.key, { ...stored, revoke: { ...pending, token } });

  const transport = await ctx.reach();
  const stream = new XmppStream(transport, ctx.domain, ctx.lang);
  try {
    let features = await stream.open(ctx.timeout);
    if (!transport.secure && features.getChild('starttls', NS.tls)) {
      await negotiateStartTls(stream);
      features = await stream.open(ctx.timeout);
    }
    // Never over an unencrypted connection (the token would be seen): later, over an encrypted one.
    if (!transport.secure) return false;
    const fast = features
      .getChild('authentication', NS.sasl2)
      ?.getChild('inline', NS.sasl2)
      ?.getChild('fast', NS.fast);
    if (!fast) {
      // No FAST here (any more): the server takes no token, this one included.
      await settle(ctx, token.token);
      return true;
    }
    await authenticate2(stream, features, {
      username: ctx.username,
      password: undefined,
      allowPlain: false,
      userAgent: { id: pending.userAgentId, software: ctx.software },
      token,
      requestToken: false,
      invalidate: true,
    });
    await settle(ctx, token.token);
    return true;
  } catch (err) {
    // The server's verdict that the token is no good: nothing left to invalidate.
    if (err instanceof FastTokenRefused) {
      await settle(ctx, token.token);
      return true;
    }
    // A temporary failure, a mechanism this connection cannot bind, a dropped connection: later.
    return false;
  } finally {
    if (!stream.ended) await stream.close().catch(() => undefined);
  }
}
