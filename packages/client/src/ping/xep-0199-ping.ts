import { xml } from '@natter/xml';
import type { Jid } from '@natter/jid';
import { NS } from '@natter/protocol';
import type { Client } from '../core/client.js';
import type { PluginDefinition } from '../core/plugin.js';

export const PING_XEP = 'XEP-0199';

/** Sends one XEP-0199 ping; resolves with the round-trip time in ms. Any reply, even an error, proves the peer is reachable. */
export async function sendPing(
  client: Client,
  to: string | Jid | undefined,
  timeout?: number,
): Promise<number> {
  const start = Date.now();
  const req = xml(
    'iq',
    { type: 'get', to: to === undefined ? undefined : String(to) },
    xml('ping', { xmlns: NS.ping }),
  );
  try {
    await client.iq(req, timeout === undefined ? {} : { timeout });
  } catch (err) {
    // RFC 6120 §8.3 errors such as service-unavailable are still a reply (XEP-0199 §4.2).
    if (!(err instanceof Error && err.name === 'StanzaError')) throw err;
    const condition = (err as { condition?: string }).condition;
    if (condition === 'remote-server-not-found' || condition === 'remote-server-timeout') throw err;
  }
  return Date.now() - start;
}

export interface PingApi {
  /** Pings the server (no `to`) or an entity; resolves with the round-trip time in ms, rejects with TimeoutError. */
  ping(to?: string | Jid, opts?: { timeout?: number }): Promise<number>;
}

/** XEP-0199: answers pings and pings others. */
export function ping(): PluginDefinition<PingApi> {
  return {
    name: 'ping',
    setup(ctx) {
      ctx.addFeature(NS.ping);
      ctx.client.handleIq('get', 'ping', NS.ping, () => undefined);
      return { ping: (to, opts = {}) => sendPing(ctx.client, to, opts.timeout) };
    },
  };
}
