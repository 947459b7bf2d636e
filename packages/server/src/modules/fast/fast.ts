import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { xml, type Element } from '@natter/xml';
import { jid, type Jid } from '@natter/jid';
import { NS, SaslFailure } from '@natter/protocol';
import { defineModule, type ClientStreamView, type Sasl2Request } from '../../core/module-api.js';
import {
  HT_MECHANISMS,
  HtServerMechanism,
  htMac,
  isHtMechanism,
  type HtMechanismName,
} from './ht-mechanism.js';
import { FastTokenStore, fastMigrations, type Slot, type StoredToken } from './token-store.js';

const DAY = 86_400_000;

const options = z
  .object({
    /** How long a token is valid after it was issued. */
    tokenLifetimeMs: z
      .number()
      .int()
      .min(60_000)
      .default(14 * DAY),
    /** User agents (installations) of one account holding a token; beyond it the least recently used lose theirs. */
    maxTokensPerAccount: z.number().int().min(1).max(1000).default(20),
  })
  .strict()
  .prefault({});

/** Per stream: the token an HT-* exchange of this stream matched, for what follows success. */
const USED = Symbol('fast-used');

interface Used {
  account: Jid;
  userAgent: string;
  slot: Slot;
  mechanism: HtMechanismName;
  created: number | undefined;
}

/** XEP-0484 §5: `count`, when the client sends it, is a non-negative integer. */
const COUNT = /^\d{1,15}$/;

/** The HMAC key of a token (hex): the token's SHA-256 hash, which is what HMAC keys it with (see htMac). */
function keyOf(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/**
 * FAST (XEP-0484): after one password login, a client asks for a token bound to its user agent and
 * logs in with it afterwards in one round trip (HT-* mechanisms, draft-schmaus-kitten-sasl-ht),
 * with channel binding where the connection has it. Tokens are stored only as their HMAC key
 * (SHA-256) with the account's credentials at issue time; a changed password, a deleted account,
 * `invalidate`, expiry or a per-account cap void them. Replayed counts are refused.
 */
export default defineModule({
  name: 'fast',
  description: 'Fast authentication tokens: one round-trip logins after a first password login',
  specs: ['XEP-0484', 'draft-schmaus-kitten-sasl-ht'],
  enabledByDefault: true,
  options,
  migrations: fastMigrations,
  setup(ctx) {
    const opts = ctx.options;
    const store = new FastTokenStore(ctx.db);
    const domain = ctx.domain;

    /** HT-* mechanisms usable on this stream: with channel binding first, where it exists here. */
    const offered = (stream: ClientStreamView): HtMechanismName[] =>
      (Object.keys(HT_MECHANISMS) as HtMechanismName[]).filter((m) => {
        const type = HT_MECHANISMS[m];
        return type === undefined || stream.channelBinding(type) !== undefined;
      });

    /** What the account's password is now, in a form that changes whenever it changes (new salt). */
    async function credentialsOf(account: Jid): Promise<string | undefined> {
      // An imported account may have SHA-1 keys only (docs/decisions/0015): its tokens then follow
      // those, and end when a PLAIN login completes its SHA-256 keys (one password login more).
      const c =
        (await ctx.accounts.scram(account.local, account.domain, 'SHA-256')) ??
        (await ctx.accounts.scram(account.local, account.domain, 'SHA-1'));
      if (!c) return undefined;
      return createHash('sha256').update(c.salt).update(c.storedKey).digest('hex').slice(0, 32);
    }

    function check(req: Sasl2Request): SaslFailure | undefined {
      if (req.stream.host?.domain !== domain) return undefined;
      req.stream.data.delete(USED);
      const request = req.authenticate.getChild('request-token', NS.fast);
      const fast = req.authenticate.getChild('fast', NS.fast);
      if (request) {
        const m = request.attrs.mechanism ?? '';
        if (!isHtMechanism(m) || !offered(req.stream).includes(m))
          return new SaslFailure('malformed-request', `tokens are not issued for ${m} here`);
        if (!req.userAgent?.id)
          return new SaslFailure('malformed-request', 'a token is bound to a <user-agent id/>: send one');
      }
      if (isHtMechanism(req.mechanism)) {
        if (!req.userAgent?.id)
          return new SaslFailure('malformed-request', 'a token is bound to a <user-agent id/>: send one');
        if (!fast) return new SaslFailure('malformed-request', 'token authentication needs <fast/>');
      }
      const count = fast?.attrs.count;
      if (count !== undefined && !COUNT.test(count))
        return new SaslFailure('malformed-request', 'count is a non-negative integer');
      return undefined;
    }

    ctx.sasl2({
      inline: (stream) => [
        xml(
          'fast',
          { xmlns: NS.fast },
          offered(stream).map((m) => xml('mechanism', null, m)),
        ),
      ],
      check,
      mechanism: (req) => {
        const name = req.mechanism;
        const { stream } = req;
        if (!isHtMechanism(name) || stream.host?.domain !== domain || !offered(stream).includes(name))
          return undefined;
        const type = HT_MECHANISMS[name];
        const cb = type === undefined ? new Uint8Array(0) : stream.channelBinding(type)!;
        const userAgent = req.userAgent!.id!;
        const countAttr = req.authenticate.getChild('fast', NS.fast)?.attrs.count;
        return new HtServerMechanism(name, cb, async (username, mac) => {
          req.noteUsername(username);
          let account: Jid;
          try {
            account = jid(username, domain);
          } catch {
            return null;
          }
          const pair = await store.get(domain, account.local, userAgent);
          if (!pair) return null;
          const now = Date.now();
          const slots: [Slot, StoredToken | undefined][] = [
            ['current', pair.current],
            ['previous', pair.previous],
          ];
          for (const [slot, token] of slots) {
            if (!token || token.mechanism !== name || token.expires <= now) continue;
            const key = Buffer.from(token.key, 'hex');
            if (!timingSafeEqual(htMac(key, 'Initiator', cb), mac)) continue;
            if (pair.credentials !== (await credentialsOf(account))) {
              // The password changed (or the account is gone) since: none of its tokens hold.
              await store.remove(domain, account.local);
              return null;
            }
            if (countAttr !== undefined) {
              const fresh = await store.useCount(domain, account.local, userAgent, slot, Number(countAttr));
              if (!fresh) {
                ctx.log.info({ account: account.toString(), count: countAttr }, 'FAST token count replayed');
                return null;
              }
            }
            const used: Used = {
              account,
              userAgent,
              slot,
              mechanism: name,
              created: slot === 'current' ? pair.current.created : undefined,
            };
            stream.data.set(USED, used);
            return key;
          }
          return null;
        });
      },
      authenticated: async ({ stream, authenticate, account, userAgent, mechanism }) => {
        if (stream.host?.domain !== domain) return undefined;
        const used = isHtMechanism(mechanism) ? (stream.data.get(USED) as Used | undefined) : undefined;
        stream.data.delete(USED);
        const request = authenticate.getChild('request-token', NS.fast);
        const invalidate = ['true', '1'].includes(
          authenticate.getChild('fast', NS.fast)?.attrs.invalidate ?? '',
        );
        if (used && invalidate) {
          // XEP-0484 §4: the client logs out of this device for good.
          await store.remove(domain, account.local, used.userAgent);
          ctx.log.info({ account: account.toString() }, 'FAST token invalidated by the client');
        } else if (used?.slot === 'current' && !request) {
          await store.dropPrevious(domain, account.local, used.userAgent);
        }
        const now = Date.now();
        // XEP-0484 §6: a token past half its life is replaced while the client is here.
        const rotate =
          used !== undefined &&
          !invalidate &&
          used.created !== undefined &&
          now - used.created > opts.tokenLifetimeMs / 2;
        const wanted = request?.attrs.mechanism ?? (rotate ? used.mechanism : undefined);
        const id = userAgent?.id;
        if (wanted === undefined || id === undefined || (used && invalidate)) return undefined;
        const credentials = await credentialsOf(account);
        if (credentials === undefined) return undefined;
        const token = randomBytes(72).toString('base64url');
        const expires = now + opts.tokenLifetimeMs;
        await store.issue(
          domain,
          account.local,
          id,
          { key: keyOf(token), mechanism: wanted, expires, credentials },
          now,
          opts.maxTokensPerAccount,
        );
        const el: Element = xml('token', { xmlns: NS.fast, expiry: new Date(expires).toISOString(), token });
        return { elements: [el] };
      },
    });

    const drop = async ({ jid: account }: { jid: Jid }) => {
      if (account.domain === domain) await store.remove(domain, account.local);
    };
    ctx.hook('user/deleted', drop);
    ctx.hook('user/password-changed', drop);

    // Expired tokens go away on one node of a cluster (they are refused anyway).
    ctx.every(Math.min(opts.tokenLifetimeMs, DAY) / 4, () =>
      ctx.cluster.isLeader() ? store.purge(Date.now()) : undefined,
    );
  },
});
