import { jid, type Jid } from '@natter/jid';
import type { Config } from '../config.js';

/** Where the CLI finds the running server's admin listener, and which accounts it may name. */

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
