import { after, afterEach, before, describe } from 'node:test';
import {
  createClient,
  xml,
  type Client,
  type ClientOptions,
  type NoPlugins,
  type PluginMap,
} from '../src/index.node.js';
import { Accounts, type Target } from './target.js';
import { targets } from './targets.js';

export interface SuiteContext {
  /** The running server. */
  readonly target: Target;
  /** A fresh account for this test. */
  account(): { jid: string; password: string };
  /** A client for an account (not connected); disconnected after the test. */
  client<P extends PluginMap = NoPlugins>(
    account: { jid: string; password: string },
    opts?: Partial<ClientOptions<P>>,
  ): Client<P>;
  /** A connected client for a fresh account. */
  online<P extends PluginMap = NoPlugins>(opts?: Partial<ClientOptions<P>>): Promise<Client<P>>;
}

/** Runs `suite` once per target server (Prosody, and Natter once the integrator adds it). */
export function describeTargets(title: string, suite: (ctx: SuiteContext) => void): void {
  for (const factory of targets) {
    describe(`${title} (${factory.name})`, () => {
      let target: Target | undefined;
      let accounts: Accounts;
      let clients: Client<PluginMap>[] = [];
      before(async () => {
        target = await factory.start();
        accounts = new Accounts(target);
      });
      after(async () => {
        await target?.stop();
      });
      afterEach(async () => {
        const list = clients;
        clients = [];
        await Promise.all(list.map((c) => c.disconnect().catch(() => undefined)));
      });
      const ctx: SuiteContext = {
        get target() {
          if (!target) throw new Error('target not started');
          return target;
        },
        account: () => accounts.take(),
        client<P extends PluginMap = NoPlugins>(
          account: { jid: string; password: string },
          opts: Partial<ClientOptions<P>> = {},
        ) {
          const c = createClient<P>({
            service: ctx.target.service.tcp,
            tls: ctx.target.tls,
            ...account,
            ...opts,
          } as ClientOptions<P>);
          clients.push(c as unknown as Client<PluginMap>);
          return c;
        },
        async online<P extends PluginMap = NoPlugins>(opts: Partial<ClientOptions<P>> = {}) {
          const c = ctx.client<P>(ctx.account(), opts);
          await c.connect();
          return c;
        },
      };
      suite(ctx);
    });
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Sends initial presence and waits until the server has processed it (a ping round trip on the
 * same stream), so that stanzas other clients send next find this resource available.
 */
export async function available(client: Client<PluginMap>): Promise<void> {
  await client.sendPresence();
  await client.iq(xml('iq', { type: 'get', to: client.domain }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
}
