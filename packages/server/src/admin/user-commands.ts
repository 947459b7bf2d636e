import { jid, type Jid } from '@natter/jid';
import type { Config } from '../config.js';
import type { AccountStore } from '../accounts/account-store.js';
import { createLogger } from '../core/logger.js';
import { startServer } from '../server.js';
import { AdminActionError, removeAccount } from './actions.js';

/**
 * `natter user add|passwd|remove` beyond the account row: a running server is asked through its
 * admin endpoints (loopback), so that it ends the account's sessions and runs the `user/deleted`
 * hook itself; with no server running, removal starts the storage and the modules without
 * listeners and runs the same action.
 */

/** The account USER@HOST names, refused unless HOST is one of the configured hosts. */
export function hostedAccount(config: Config, user: string, host: string): Jid {
  const hosts = config.hosts.map((h) => h.toLowerCase());
  const account = jid(user, host);
  if (!hosts.includes(account.domain))
    throw new Error(
      `${account.domain} is not hosted by this server (hosts: ${hosts.join(', ')}); ` +
        `add it to "hosts" in the configuration first`,
    );
  return account;
}

/** Base URL of the running server's admin listener: --url, else the configured `admin` listener. */
export function adminBaseUrl(config: Config, url: string | undefined): string | undefined {
  if (url) return url.replace(/\/$/, '');
  const l = config.listeners.find((x) => x.type === 'admin');
  if (!l) return undefined;
  const host = l.host === '::' || l.host === '0.0.0.0' || l.host === '' ? '127.0.0.1' : l.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${l.port}`;
}

/** The admin token: --token, else NATTER_ADMIN_TOKEN, else the admin listener's configured token. */
export function adminToken(config: Config, token: string | undefined): string | undefined {
  return token ?? process.env.NATTER_ADMIN_TOKEN ?? config.listeners.find((x) => x.type === 'admin')?.token;
}

/** Where and how the CLI reaches the running server's admin listener. */
export interface AdminTarget {
  url?: string;
  token?: string;
}

type Asked =
  | { reached: true; status: number; body: { error?: string; sessions?: number } }
  | { reached: false; why: string };

/** POSTs to an admin endpoint; `reached: false` when no server answers there. */
async function ask(config: Config, target: AdminTarget, path: string): Promise<Asked> {
  const base = adminBaseUrl(config, target.url);
  if (!base) return { reached: false, why: 'no admin listener is configured (pass --url)' };
  const token = adminToken(config, target.token);
  let res: Response;
  try {
    res = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause;
    if (cause?.code === 'ECONNREFUSED') return { reached: false, why: `nothing listens at ${base}` };
    throw new Error(`cannot reach the server at ${base}: ${(err as Error).message}`);
  }
  const text = await res.text();
  let body: { error?: string; sessions?: number };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    body = { error: `${res.status} ${res.statusText}: ${text.trim()}` };
  }
  return { reached: true, status: res.status, body };
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** `natter user remove`: the account, its sessions and its data. Returns the line to print. */
export async function removeUser(config: Config, account: Jid, target: AdminTarget): Promise<string> {
  const asked = await ask(
    config,
    target,
    `/admin/users/remove?jid=${encodeURIComponent(account.toString())}`,
  );
  if (asked.reached) {
    if (asked.status !== 200) throw new Error(asked.body.error ?? `the server answered ${asked.status}`);
    return `removed ${account.toString()} and its data; ${plural(asked.body.sessions ?? 0, 'session')} ended`;
  }
  // No server: the same action on the storage, with the modules loaded (their user/deleted hooks).
  const server = await startServer(
    { ...config, listeners: [] },
    { logger: createLogger('warn', process.stderr), shutdownTimeoutMs: 10_000 },
  );
  try {
    await removeAccount(server.core, account);
  } catch (err) {
    if (err instanceof AdminActionError) throw new Error(err.message);
    throw err;
  } finally {
    await server.stop();
  }
  return `removed ${account.toString()} and its data (no running server: ${asked.why})`;
}

/** `natter user passwd`: the new password, then the running server ends the account's sessions. */
export async function changePassword(
  config: Config,
  store: AccountStore,
  account: Jid,
  password: string,
  target: AdminTarget,
): Promise<string> {
  if (!(await store.setPassword(account.local, account.domain, password)))
    throw new Error(`no account ${account.toString()}`);
  const asked = await ask(
    config,
    target,
    `/admin/sessions/end?reason=password&jid=${encodeURIComponent(account.toString())}`,
  );
  if (!asked.reached)
    return `password changed for ${account.toString()} (no running server to end sessions: ${asked.why})`;
  if (asked.status !== 200)
    return `password changed for ${account.toString()}, but its sessions were not ended: ${asked.body.error ?? asked.status}`;
  return `password changed for ${account.toString()}; ${plural(asked.body.sessions ?? 0, 'session')} ended`;
}
