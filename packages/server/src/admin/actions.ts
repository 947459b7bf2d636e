import { parseJid, type Jid } from '@natter/jid';
import { isLocal } from '../core/session-registry.js';
import type { ServerCore } from '../core/server-core.js';

/**
 * Account actions of the administrator, the same whether the CLI asks a running server (admin HTTP
 * endpoints) or runs them on a server it started without listeners. Each does what the matching
 * in-band action does (XEP-0077), so that no data and no session outlives the change.
 */

export class AdminActionError extends Error {
  constructor(
    readonly status: 400 | 404 | 409,
    message: string,
  ) {
    super(message);
  }
}

/** The account (bare JID) of a hosted domain that `jid` names; errors say what is wrong. */
export function hostedAccount(core: ServerCore, jid: string | null | undefined): Jid {
  if (!jid) throw new AdminActionError(400, 'missing jid');
  let parsed: Jid;
  try {
    parsed = parseJid(jid);
  } catch (err) {
    throw new AdminActionError(400, `invalid JID ${jid}: ${(err as Error).message}`);
  }
  if (parsed.local === '') throw new AdminActionError(400, `${jid} is not an account (USER@HOST)`);
  if (!core.hosts.has(parsed.domain))
    throw new AdminActionError(
      400,
      `${parsed.domain} is not hosted by this server (hosts: ${[...core.hosts.keys()].join(', ')})`,
    );
  return parsed.bare;
}

/**
 * Removes an account: the row first (no new login), then its sessions, live and hibernated, are
 * ended (stream error not-authorized; what they held is routed again and bounces, the account being
 * gone), then the `user/deleted` hook removes its data (roster, archive, offline messages, vCard,
 * PEP and pubsub, blocking list, last activity): after the sessions, so that nothing their end
 * writes (last activity, offline messages) is left behind.
 */
export async function removeAccount(core: ServerCore, account: Jid): Promise<{ sessions: number }> {
  const host = core.hosts.get(account.domain);
  if (!host) throw new AdminActionError(400, `${account.domain} is not hosted here`);
  if (!(await core.accounts.remove(account.local, account.domain)))
    throw new AdminActionError(404, `no account ${account.toString()}`);
  const sessions = await core.kickAccount(account, 'not-authorized', { text: 'the account was removed' });
  await host.hooks.notify('user/deleted', { jid: account });
  core.log.info({ account: account.toString(), sessions }, 'account removed by the administrator');
  return { sessions };
}

/**
 * Ends sessions: every session of an account (bare JID), or one resource (full JID). `reason`
 * 'password' closes them with <reset/> (the password was changed), else with not-authorized.
 */
export async function endSessions(
  core: ServerCore,
  jid: Jid,
  reason: 'password' | 'admin' = 'admin',
): Promise<{ sessions: number }> {
  const condition = reason === 'password' ? 'reset' : 'not-authorized';
  const text = reason === 'password' ? 'the password was changed' : 'ended by the administrator';
  let sessions: number;
  if (jid.resource === '') sessions = await core.kickAccount(jid, condition, { text });
  else {
    const s = core.sessions.get(jid);
    sessions = 0;
    if (s && isLocal(s)) {
      s.stream.fail(condition, text);
      await core.endSession(s, false);
      sessions = 1;
    } else if (s) {
      core.cluster?.kick(s, condition, text);
      sessions = 1;
    }
  }
  // `natter user passwd` changed the password in storage: what the old one vouched for goes too.
  if (reason === 'password')
    await core.hosts.get(jid.domain)?.hooks.notify('user/password-changed', { jid: jid.bare });
  core.log.info({ jid: jid.toString(), sessions, reason }, 'sessions ended by the administrator');
  return { sessions };
}

/** The admin actions as endpoints of the admin listener (`listeners/admin-listener.ts`). */
export const accountRoutes = [
  {
    method: 'POST' as const,
    path: '/admin/users/remove',
    handle: ({ core, query }: { core: ServerCore; query: URLSearchParams }) =>
      removeAccount(core, hostedAccount(core, query.get('jid'))),
  },
  {
    method: 'POST' as const,
    path: '/admin/sessions/end',
    handle: ({ core, query }: { core: ServerCore; query: URLSearchParams }) => {
      const jid = query.get('jid') ?? '';
      const account = hostedAccount(core, jid);
      const full = parseJid(jid);
      const reason = query.get('reason') === 'password' ? 'password' : 'admin';
      return endSessions(core, full.resource ? full : account, reason);
    },
  },
];
