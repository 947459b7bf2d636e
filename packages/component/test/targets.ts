// The servers the component SDK is tested against, each started privately for one test file.
import { startProsody } from '../../client/test/prosody.js';
import type { TlsOptions } from '@natter/client';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEjabberd } from './ejabberd.js';

export const COMPONENT_DOMAIN = 'gw.localhost';
export const COMPONENT_SECRET = 'gateway-secret';

/** A running server with a component port that accepts COMPONENT_DOMAIN with COMPONENT_SECRET. */
export interface ComponentTarget {
  name: string;
  /** The users' domain. */
  domain: string;
  /** Where users connect (c2s). */
  service: string;
  tls?: TlsOptions;
  /** The component port, as `xmpp://127.0.0.1:port`. */
  componentService: string;
  users: { jid: string; password: string }[];
  stop(): Promise<void>;
}

export interface TargetFactory {
  name: string;
  start(): Promise<ComponentTarget>;
}

/** Natter in-process (packages/server): port 0, a temporary data folder, its own certificate. */
export async function startNatterTarget(): Promise<ComponentTarget> {
  // Imported by name only when this target runs, so the SDK's sources never depend on the server.
  const { startServer } = (await import('@natter/server' as string)) as typeof import('@natter/server');
  const dir = await mkdtemp(join(tmpdir(), 'natter-component-'));
  const domain = 'localhost';
  const server = await startServer({
    hosts: [domain],
    dataDir: dir,
    listeners: [
      { type: 'c2s', port: 0, host: '127.0.0.1' },
      { type: 'component', port: 0, host: '127.0.0.1' },
    ],
    components: { [COMPONENT_DOMAIN]: { secret: COMPONENT_SECRET } },
    limits: { disabled: true },
    log: { level: 'silent' },
  });
  const users = Array.from({ length: 40 }, (_, i) => ({
    jid: `user${i + 1}@${domain}`,
    password: `pw-${i + 1}-secret`,
  }));
  for (const u of users) await server.addUser(u.jid.split('@')[0]!, u.password);
  return {
    name: 'natter',
    domain,
    service: `xmpp://127.0.0.1:${server.port('c2s')}`,
    tls: { ca: await readFile(server.certificate.cert, 'utf8') },
    componentService: `xmpp://127.0.0.1:${server.port('component')}`,
    users,
    async stop() {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export const targets: TargetFactory[] = [
  { name: 'natter', start: startNatterTarget },
  {
    name: 'prosody',
    async start() {
      const p = await startProsody({ users: 40, components: { [COMPONENT_DOMAIN]: COMPONENT_SECRET } });
      return {
        name: 'prosody',
        domain: p.domain,
        service: p.service.tcp,
        tls: p.tls,
        componentService: `xmpp://127.0.0.1:${p.componentPort}`,
        users: p.users,
        stop: () => p.stop(),
      };
    },
  },
  {
    name: 'ejabberd',
    async start() {
      const e = await startEjabberd({ users: 40, components: { [COMPONENT_DOMAIN]: COMPONENT_SECRET } });
      return {
        name: 'ejabberd',
        domain: e.domain,
        service: e.service,
        componentService: `xmpp://127.0.0.1:${e.componentPort}`,
        users: e.users,
        stop: () => e.stop(),
      };
    },
  },
];

/** Hands out accounts of a target one at a time, so tests do not see each other's rosters. */
export class Accounts {
  #next = 0;
  constructor(private readonly target: ComponentTarget) {}
  take(): { jid: string; password: string } {
    const u = this.target.users[this.#next++];
    if (!u) throw new Error(`target ${this.target.name} has only ${this.target.users.length} accounts`);
    return u;
  }
}
