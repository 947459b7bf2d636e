// @natter/component/testing: boots a Natter server in-process with the gateway's domain configured,
// connects the component and logs users in, so a gateway's own tests need no system packages.
// Depends on @natter/server and @natter/client (optional peer dependencies of this subpath only).
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client, ClientOptions, NoPlugins, PluginMap } from '@natter/client';
import type { NatterServer } from '@natter/server';
import { createComponent, type Component, type ComponentOptions } from '../component.js';

export interface HarnessOptions {
  /** The component's domain. Default `gw.localhost`. */
  domain?: string;
  /** Its secret. Default: random. */
  secret?: string;
  /** The users' domain (the server's virtual host). Default `localhost`. */
  host?: string;
  /** Options of `h.component` beyond service, domain and secret. */
  component?: Partial<Omit<ComponentOptions, 'service' | 'domain' | 'secret'>>;
  /** Connect `h.component` before returning. Default true; false to register handlers first. */
  connect?: boolean;
  /** Extra server configuration (a Natter config object), merged over the harness's. */
  server?: Record<string, unknown>;
}

export interface Harness {
  /** The component, connected unless `connect: false`. */
  readonly component: Component;
  /** What to pass to your own gateway's constructor: `{ service, domain, secret }`. */
  readonly componentOptions: { service: string; domain: string; secret: string };
  /** The users' domain. */
  readonly host: string;
  /** The running server. */
  readonly server: NatterServer;
  /**
   * A connected @natter/client Client for `name@host` (the account is created on first use), with
   * initial presence sent and the roster requested, as a user's client does. Closed by `stop()`.
   */
  user<P extends PluginMap = NoPlugins>(name: string, opts?: Partial<ClientOptions<P>>): Promise<Client<P>>;
  /** Disconnects users and the component, stops the server, removes its data. */
  stop(): Promise<void>;
}

/**
 * Starts Natter in-process (loopback, ephemeral ports, a temporary data folder, SQLite, limits off)
 * with the component's domain configured, and connects a component to it.
 */
export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  let serverModule: typeof import('@natter/server');
  let clientModule: typeof import('@natter/client');
  try {
    serverModule = (await import('@natter/server' as string)) as typeof import('@natter/server');
    clientModule = (await import('@natter/client' as string)) as typeof import('@natter/client');
  } catch (err) {
    throw new Error(
      '@natter/component/testing needs @natter/server and @natter/client: npm install -D @natter/server @natter/client',
      { cause: err },
    );
  }
  const domain = opts.domain ?? 'gw.localhost';
  const secret = opts.secret ?? randomBytes(16).toString('hex');
  const host = opts.host ?? 'localhost';
  const dataDir = await mkdtemp(join(tmpdir(), 'natter-harness-'));
  let server: NatterServer;
  try {
    server = await serverModule.startServer({
      hosts: [host],
      dataDir,
      listeners: [
        { type: 'c2s', port: 0, host: '127.0.0.1' },
        { type: 'component', port: 0, host: '127.0.0.1' },
      ],
      components: { [domain]: { secret } },
      limits: { disabled: true },
      log: { level: 'silent' },
      ...opts.server,
    } as Parameters<typeof serverModule.startServer>[0]);
  } catch (err) {
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
  const ca = await readFile(server.certificate.cert, 'utf8');
  const componentOptions = { service: `xmpp://127.0.0.1:${server.port('component')}`, domain, secret };
  const component = createComponent({ ...opts.component, ...componentOptions });
  const clients: Client<PluginMap>[] = [];
  const accounts = new Map<string, string>();
  const stop = async () => {
    await Promise.all(clients.map((c) => c.disconnect().catch(() => undefined)));
    await component.disconnect();
    await server.stop();
    await rm(dataDir, { recursive: true, force: true });
  };
  if (opts.connect !== false) {
    try {
      await component.connect();
    } catch (err) {
      await stop();
      throw err;
    }
  }
  return {
    component,
    componentOptions,
    host,
    server,
    async user<P extends PluginMap = NoPlugins>(name: string, clientOpts: Partial<ClientOptions<P>> = {}) {
      let password = accounts.get(name);
      if (password === undefined) {
        password = randomBytes(12).toString('hex');
        await server.addUser(name, password, host);
        accounts.set(name, password);
      }
      const client = clientModule.createClient<P>({
        service: `xmpp://127.0.0.1:${server.port('c2s')}`,
        jid: `${name}@${host}`,
        password,
        tls: { ca },
        ...clientOpts,
      } as ClientOptions<P>);
      clients.push(client as unknown as Client<PluginMap>);
      await client.connect();
      await client.iq(
        clientModule.xml('iq', { type: 'get' }, clientModule.xml('query', { xmlns: 'jabber:iq:roster' })),
      );
      await client.sendPresence();
      return client;
    },
    stop,
  };
}
