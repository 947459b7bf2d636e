// The servers the component SDK is tested against, each started privately for one test file.
import { startProsody } from '../../client/test/prosody.js';
import type { TlsOptions } from '@natter/client';
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

export const targets: TargetFactory[] = [
  {
    name: 'prosody',
    async start() {
      const p = await startProsody({ users: 12, components: { [COMPONENT_DOMAIN]: COMPONENT_SECRET } });
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
      const e = await startEjabberd({ users: 12, components: { [COMPONENT_DOMAIN]: COMPONENT_SECRET } });
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
