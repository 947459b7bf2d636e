import { z } from 'zod';
import { xml } from '@natter/xml';
import { NS, StanzaError } from '@natter/protocol';
import { defineModule, type IqRequest } from '../../core/module-api.js';

/**
 * XEP-0077 after authentication: registration info, password change and account removal.
 * (Registration before authentication is in core/stream/steps/register.ts, off by default.)
 */
export default defineModule({
  name: 'register',
  description: 'In-band password change and account removal (XEP-0077)',
  specs: ['XEP-0077'],
  enabledByDefault: true,
  options: z
    .object({ allowRemove: z.boolean().default(true), allowPasswordChange: z.boolean().default(true) })
    .strict()
    .prefault({}),
  // Read at each request.
  reloadable: ['allowRemove', 'allowPasswordChange'],
  setup(ctx) {
    // XEP-0077 §3.2/§3.3 examples address the server; clients also send them without `to`
    // (handled for the account, RFC 6120 §10.3.3): both are served, for one's own account only.
    const info = (req: IqRequest) => {
      if (req.to.local !== '' && !req.from.bare.equals(req.to)) throw new StanzaError('forbidden');
      return xml('query', { xmlns: NS.register }, xml('registered'), xml('username', null, req.from.local));
    };
    const change = async (req: IqRequest) => {
      if (req.from.domain !== ctx.domain || (req.to.local !== '' && !req.from.bare.equals(req.to)))
        throw new StanzaError('forbidden');
      const q = req.payload;
      if (q.getChild('remove', NS.register)) {
        if (!ctx.options.allowRemove) throw new StanzaError('not-allowed');
        await ctx.accounts.remove(req.from.local, req.from.domain);
        await ctx.notify('user/deleted', { jid: req.from.bare });
        ctx.log.info({ account: req.from.bare.toString() }, 'account removed in-band');
        // The result is written first (it is routed as soon as this handler returns), then every
        // session of the account is closed (XEP-0077 §3.2).
        setImmediate(() => void ctx.kickAccount(req.from.bare));
        return;
      }
      const username = q.getChildText('username', NS.register);
      const password = q.getChildText('password', NS.register);
      if (password === undefined || password === '')
        throw new StanzaError('bad-request', { text: 'a password is required' });
      if (username !== undefined && username.toLowerCase() !== req.from.local)
        throw new StanzaError('not-allowed', { text: 'you can only change your own password' });
      if (!ctx.options.allowPasswordChange) throw new StanzaError('not-allowed');
      if (
        !req.origin?.stream.secure &&
        ctx.config.auth.allowPlaintext !== 'always' &&
        !req.origin?.stream.credentialsAllowed()
      ) {
        throw new StanzaError('not-authorized', { text: 'change your password over TLS' });
      }
      await ctx.accounts.setPassword(req.from.local, req.from.domain, password);
      await ctx.notify('user/password-changed', { jid: req.from.bare });
      ctx.log.info({ account: req.from.bare.toString() }, 'password changed in-band');
      // Whoever knew the old password is logged out: every other session of the account ends
      // (stream error <reset/>); the one that changed it stays. After the result, as above.
      const keep = req.origin;
      setImmediate(() => {
        ctx
          .kickAccount(req.from.bare, 'reset', { except: keep, text: 'the password was changed' })
          .catch((err: unknown) => ctx.log.error({ err }, 'could not end the other sessions'));
      });
      return undefined;
    };
    for (const target of ['host', 'account'] as const) {
      ctx.iq(target, 'get', NS.register, 'query', info, { feature: target === 'host' });
      ctx.iq(target, 'set', NS.register, 'query', change, { feature: false });
    }
  },
});
